// Processes that agree: two `vouch serve` processes of one instance on one real PostgreSQL database
// see each other's verdicts, retractions, trust and policy through the change feed (migration 0015,
// server/store/change-feed.ts) within 2 s, and one whose listening connection is killed catches up
// on what was written meanwhile and listens again.
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, runCli } from '../helpers/process.js';
import { HAVE_POSTGRES, POSTGRES_URL } from '../helpers/services.js';
import { admin, verdictBody } from '../helpers/fault-mesh.js';
import { lookupSha256, startScaleOut, type ScaleOut } from '../helpers/scale-out.js';

/** The bound the issue asks for: a change made through one process is seen by the other within it. */
const PROPAGATION_MS = 2_000;

function digest(): string {
  return randomBytes(32).toString('hex');
}

/** Issues a verdict about `sha256` through `process`'s admin API; returns its id (a URI). */
async function issue(process: ScaleOut['one'], sha256: string): Promise<string> {
  const res = await admin(process, 'POST', '/verdicts', verdictBody(sha256));
  expect(res.status).toBe(201);
  return ((await res.json()) as { id: string }).id;
}

/** The pids of the listening connections of the server process `pid` (application_name names it). */
async function listenerPids(db: pg.Client, pid: number): Promise<number[]> {
  const { rows } = await db.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE application_name = $1', [`vouch change feed ${pid}`]);
  return rows.map((r) => Number(r.pid));
}

describe.skipIf(!HAVE_POSTGRES)('two server processes on one PostgreSQL database', () => {
  let scale: ScaleOut;
  let superuser: pg.Client;

  beforeAll(async () => {
    scale = await startScaleOut(['127.0.0.5', '127.0.0.6']);
    superuser = new pg.Client({ connectionString: POSTGRES_URL });
    await superuser.connect();
  }, 120_000);

  afterAll(async () => {
    await superuser?.end();
    await scale?.cleanup();
  });

  it('a verdict issued through one is matched by the other, and a retraction through the other is gone at the first', async () => {
    const { one, two } = scale;
    const sha256 = digest();
    expect(await lookupSha256(two, sha256)).toEqual([]);
    const id = await issue(one, sha256);
    const matched = await eventually(async () => (await lookupSha256(two, sha256)).find((m) => m.id === id), PROPAGATION_MS, 'process 2 to match the verdict issued at 1');
    expect(matched.label).toBe('spam');

    const res = await admin(two, 'DELETE', `/verdicts/${id.split('/').pop()}`);
    expect(res.status).toBe(204);
    expect(await lookupSha256(two, sha256)).toEqual([]);
    await eventually(async () => (await lookupSha256(one, sha256)).length === 0, PROPAGATION_MS, 'the retraction at 2 to reach 1');
  });

  it('a policy change and a trust change through one are in force at the other', async () => {
    const { one, two } = scale;
    const current = (await (await admin(one, 'GET', '/policy')).json()) as { policy: { version: string } };
    const next = { ...current.policy, version: `scale-out-${randomBytes(4).toString('hex')}` };
    const put = await admin(one, 'PUT', '/policy', next);
    expect(put.status).toBe(200);
    const { hash } = (await (await admin(one, 'GET', '/policy')).json()) as { hash: string };
    await eventually(
      async () => ((await (await admin(two, 'GET', '/policy')).json()) as { hash: string; policy: { version: string } }).policy.version === next.version,
      PROPAGATION_MS,
      'the policy set at 1 to be in force at 2',
    );
    expect(((await (await admin(two, 'GET', '/policy')).json()) as { hash: string }).hash).toBe(hash);

    const peer = 'https://trusted.example/actor';
    const weightAt = async (process: ScaleOut['one']) =>
      ((await (await admin(process, 'GET', `/trust/weight?peer=${encodeURIComponent(peer)}`)).json()) as { abuse: { weight: number } }).abuse.weight;
    expect(await weightAt(two)).toBe(0);
    expect((await admin(one, 'PUT', '/trust', { peer, abuse: 0.7 })).status).toBe(200);
    const atOne = await weightAt(one);
    expect(atOne).toBeGreaterThan(0);
    await eventually(async () => (await weightAt(two)) === atOne, PROPAGATION_MS, 'the trust set at 1 to weigh the same at 2');
  });

  it('a hash list imported by the CLI on the same database is matched by both running processes', async () => {
    const { one, two } = scale;
    const hashes = Array.from({ length: 3 }, digest);
    const list = join(one.env.VOUCH_DATA_DIR, 'list.csv'); // removed with the instance
    writeFileSync(list, hashes.map((h) => `sha256:${h},spam`).join('\n'));
    const imported = await runCli(['import-hashes', list], one.env);
    expect(imported.code, imported.stderr).toBe(0);
    expect(JSON.parse(imported.stdout)).toEqual({ imported: 3, skipped: 0 });
    for (const process of [one, two]) {
      for (const h of hashes) {
        await eventually(async () => (await lookupSha256(process, h)).length === 1, PROPAGATION_MS, `${process.url} to match ${h} imported by the CLI`);
      }
    }
  });

  it('catches up on what was written while its listening connection was down, and listens again', async () => {
    const { one, two } = scale;
    const pid = two.server!.child.pid!;
    const [listener] = await listenerPids(superuser, pid);
    expect(listener).toBeGreaterThan(0);
    // Verdicts issued while process 2's listening connection is terminated and reopened: they reach
    // it through its high-water mark (the feed), not through a notification it could have missed.
    const { rows } = await superuser.query<{ done: boolean }>('SELECT pg_terminate_backend($1) AS done', [listener]);
    expect(rows[0].done).toBe(true);
    const during = Array.from({ length: 20 }, digest);
    const ids = await Promise.all(during.map((d) => issue(one, d)));
    for (const [n, d] of during.entries()) {
      await eventually(async () => (await lookupSha256(two, d)).some((m) => m.id === ids[n]), PROPAGATION_MS, `verdict ${n} issued during the outage to reach 2`);
    }
    const relistened = await eventually(async () => (await listenerPids(superuser, pid)).find((p) => p !== listener), 10_000, 'process 2 to listen again');
    expect(relistened).not.toBe(listener);
    expect(two.server!.logs.some((line) => line.includes('listening connection lost'))).toBe(true);

    const after = digest();
    const id = await issue(one, after);
    await eventually(async () => (await lookupSha256(two, after)).some((m) => m.id === id), PROPAGATION_MS, 'a verdict issued after the reconnection to reach 2');
  });
});

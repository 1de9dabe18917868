// The transparency log end to end: B (on the real PostgreSQL) logs every verdict it issues and
// pushes signed checkpoints to A, which checks and cosigns them; `vouch audit` verifies B's log
// from outside, and fails once B's database has been tampered with.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, freePort, runCli, startServerProcess, type ServerProcess } from '../helpers/process.js';
import { HAVE_POSTGRES, POSTGRES_URL, STORE_BACKENDS, tempDir } from '../helpers/services.js';
import { logOrigin } from '../../server/log/index.js';
import { openCheckpoint, verifierKey } from '../../shared/merkle/checkpoint.js';
import { leafHash } from '../../shared/merkle/tree.js';
import { verifyInclusion } from '../../shared/merkle/verify.js';
import { multibaseToEd25519 } from '../../shared/crypto/data-integrity.js';

const TOKEN = randomBytes(32).toString('hex');

describe.skipIf(!HAVE_POSTGRES)('transparency log between two servers', () => {
  let a: ServerProcess;
  let b: ServerProcess;
  let aUrl: string;
  let bUrl: string;
  let schema: string;
  const cleanups: Array<() => Promise<void>> = [];
  const stateDir = tempDir('vouch-audit-');
  const auditEnv = { VOUCH_ALLOW_PRIVATE_NETWORKS: '127.0.0.0/8' };

  const admin = (base: string, method: string, path: string, body?: unknown) =>
    fetch(`${base}/api/v1/admin${path}`, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });

  async function start(host: string, store: Record<string, string>): Promise<{ server: ServerProcess; url: string }> {
    const port = await freePort(host);
    const url = `http://${host}:${port}`;
    const server = await startServerProcess({
      ...store,
      VOUCH_HOST: host,
      VOUCH_PORT: String(port),
      VOUCH_PUBLIC_URL: url,
      VOUCH_ADMIN_TOKEN: TOKEN,
      VOUCH_FEDERATION_ALLOW_HTTP: 'true',
      VOUCH_ALLOW_PRIVATE_NETWORKS: '127.0.0.0/8',
      VOUCH_PUBLIC_OK_FEED: 'true',
      VOUCH_CHECKPOINT_EVERY_MS: '300',
      VOUCH_CHECKPOINT_AFTER_APPENDS: '4',
      VOUCH_DELIVERY_BACKOFF_BASE_MS: '100',
      VOUCH_DELIVERY_BACKOFF_MAX_MS: '1000',
      REDIS_URL: '',
    });
    return { server, url };
  }

  beforeAll(async () => {
    const storeA = STORE_BACKENDS.find((s) => s.name === 'pglite')!.create();
    const storeB = STORE_BACKENDS.find((s) => s.name === 'postgres')!.create();
    cleanups.push(storeA.cleanup, storeB.cleanup);
    schema = storeB.config.databaseSchema!;
    ({ server: a, url: aUrl } = await start('127.0.0.11', { VOUCH_DATA_DIR: storeA.config.dataDir }));
    ({ server: b, url: bUrl } = await start('127.0.0.12', {
      VOUCH_DATA_DIR: storeB.config.dataDir,
      DATABASE_URL: POSTGRES_URL,
      VOUCH_DATABASE_SCHEMA: schema,
    }));
    expect((await admin(aUrl, 'POST', '/peers/follow', { target: `${bUrl}/actor` })).status).toBe(202);
    await eventually(async () => {
      const res = await admin(bUrl, 'POST', '/peers/approve', { actor: `${aUrl}/actor` });
      return res.status === 200;
    }, 20_000, 'B to approve A');
    await eventually(async () => {
      const { peers } = await (await admin(aUrl, 'GET', '/peers')).json();
      return peers.some((p: { following: string }) => p.following === 'accepted');
    }, 20_000, 'A to be accepted');
  });

  afterAll(async () => {
    await a?.stop();
    await b?.stop();
    for (const cleanup of cleanups) await cleanup();
  });

  it('logs each verdict B issues, and A cosigns B\'s checkpoints', async () => {
    for (let i = 0; i < 12; i++) {
      const res = await admin(bUrl, 'POST', '/verdicts', {
        subjects: [{ algorithm: 'sha256', digest: randomBytes(32).toString('hex') }],
        label: i % 3 === 0 ? 'spam' : 'ok',
        confidence: 0.9,
        method: 'human',
      });
      expect(res.status).toBe(201);
    }
    const witness = `${new URL(aUrl).host}/vouch-log`;
    const note = await eventually(
      async () => {
        const text = await (await fetch(`${bUrl}/log/checkpoint`)).text();
        const [, size] = text.split('\n');
        return Number(size) === 12 && text.includes(`— ${witness} `) ? text : undefined;
      },
      30_000,
      'a checkpoint of all 12 entries cosigned by A',
    );
    expect(note.split('\n')[0]).toBe(`${new URL(bUrl).host}/vouch-log`);
    const { alerts } = await (await admin(aUrl, 'GET', '/log/alerts')).json();
    expect(alerts).toEqual([]);
    // Every entry's public part is served to anyone; abuse-labelled entries' private parts (the
    // digests) are withheld from anonymous readers.
    const page = await (await fetch(`${bUrl}/log/entries?start=0&end=12`)).json();
    expect(page.entries.every((e: { entry?: { vouchLogEntry?: number } }) => e.entry?.vouchLogEntry === 2)).toBe(true);
    expect(page.entries.filter((e: { private_withheld?: boolean }) => e.private_withheld).map((e: { entry: { public: { object: { label: string } } } }) => e.entry.public.object.label)).toEqual(['spam', 'spam', 'spam', 'spam']);
  });

  it('serves a verdict with a proof bundle that verifies offline', async () => {
    const issued = await (
      await admin(bUrl, 'POST', '/verdicts', {
        subjects: [{ algorithm: 'sha256', digest: randomBytes(32).toString('hex') }],
        label: 'ok',
        confidence: 0.8,
        method: 'human',
      })
    ).json();
    const bundle = await (await fetch(`${bUrl}/log/bundle?id=${encodeURIComponent(issued.id)}`)).json();
    // Offline from here: the log's key comes from B's actor, everything else from the bundle.
    const actor = await (await fetch(`${bUrl}/actor`)).json();
    const logKey = verifierKey(logOrigin(new URL(bUrl).host), multibaseToEd25519(actor.assertionMethod[0].publicKeyMultibase), 'ed25519');
    const { checkpoint } = openCheckpoint(bundle.checkpoint, logKey);
    const bytes = Buffer.from(bundle.entry_bytes, 'base64');
    expect(JSON.parse(bytes.toString('utf8')).public.object.id).toBe(issued.id);
    expect(bundle.private.activity.object.id).toBe(issued.id); // an ok verdict: its private part is public too
    const proof = bundle.inclusion.hashes.map((h: string) => Buffer.from(h, 'base64'));
    expect(verifyInclusion(leafHash(bytes), bundle.index, checkpoint.size, proof, checkpoint.rootHash)).toEqual({ ok: true });
    const relabelled = bytes.toString().replace('"label":"ok"', '"label":"spam"');
    expect(relabelled).not.toBe(bytes.toString());
    expect(verifyInclusion(leafHash(Buffer.from(relabelled)), bundle.index, checkpoint.size, proof, checkpoint.rootHash).ok).toBe(false);
    // Entries with abuse labels keep their private parts from anonymous readers (bundles apply the same rule).
    const restricted = await (await fetch(`${bUrl}/log/entries?start=0&end=1`)).json();
    expect(restricted.entries[0]).toMatchObject({ private_withheld: true, entry: { public: { object: { label: 'spam' } } } });
  });

  it('`vouch audit` verifies B\'s log and exports it; tampering with B\'s database makes it fail', async () => {
    const out = join(stateDir, 'b-log.jsonl');
    const ok = await runCli(['audit', bUrl, '--all', '--out', out, '--state', stateDir], auditEnv);
    expect(ok.code, ok.stderr).toBe(0);
    // Anonymous, the audit recomputes all 13 leaves from public parts: 4 spam entries' private parts withheld.
    expect(JSON.parse(ok.stdout)).toMatchObject({ ok: true, size: 13, entries: { checked: 13, withheld: 0, publicParts: 13, privateWithheld: 4, privateOpened: 9 } });
    expect(readFileSync(out, 'utf8').trim().split('\n')).toHaveLength(13);

    const client = new pg.Client({ connectionString: POSTGRES_URL });
    await client.connect();
    try {
      // Rewrite the label B logged in entry 0 (a spam verdict, whose digests anonymous readers
      // never see), leaving the tree alone: the public part alone gives it away.
      const { rows } = await client.query(`SELECT entry FROM ${schema}.log_entries WHERE idx = 0`);
      const original = rows[0].entry.toString('utf8');
      const forged = Buffer.from(original.replace('"label":"spam"', '"label":"ok"'));
      expect(forged.toString('utf8')).not.toBe(original);
      await client.query(`ALTER TABLE ${schema}.log_entries DISABLE TRIGGER USER`).catch(() => {});
      await client.query(`UPDATE ${schema}.log_entries SET entry = $1 WHERE idx = 0`, [forged]);
    } finally {
      await client.end();
    }
    const bad = await runCli(['audit', bUrl, '--all', '--state', stateDir], auditEnv);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/entry 0/);
    expect(JSON.parse(bad.stdout).ok).toBe(false);
  });
});

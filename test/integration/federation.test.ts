// Three real Vouch servers on 127.0.0.x: B on the real PostgreSQL server, A and C on PGlite, all
// delivering through BullMQ on the real Redis. A follows B and B approves; C is never approved.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, freePort, runCli, startServerProcess, type ServerProcess, LOCAL_FEDERATION_ENV } from '../helpers/process.js';
import { HAVE_POSTGRES, HAVE_REDIS, POSTGRES_URL, REDIS_URL, STORE_BACKENDS, tempDir } from '../helpers/services.js';
import { FakePeer } from '../helpers/fake-peer.js';

const TOKEN = randomBytes(32).toString('hex');

interface Instance {
  name: string;
  host: string;
  port: number;
  env: Record<string, string>;
  server?: ServerProcess;
  url: string;
  actor: string;
}

async function instance(name: string, host: string, store: Record<string, string>): Promise<Instance> {
  const port = await freePort(host);
  const url = `http://${host}:${port}`;
  return {
    name,
    host,
    port,
    url,
    actor: `${url}/actor`,
    env: {
      ...store,
      VOUCH_HOST: host,
      VOUCH_PORT: String(port),
      VOUCH_PUBLIC_URL: url,
      VOUCH_ADMIN_TOKEN: TOKEN,
      REDIS_URL,
      ...LOCAL_FEDERATION_ENV,
      VOUCH_DELIVERY_ATTEMPTS: '60',
      VOUCH_LOG_LEVEL: 'info',
    },
  };
}

async function start(i: Instance): Promise<void> {
  i.server = await startServerProcess({ ...i.env, VOUCH_PORT: String(i.port) });
}

function admin(i: Instance, method: string, path: string, body?: unknown): Promise<Response> {
  return fetch(`${i.url}/api/v1/admin${path}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

async function lookup(i: Instance, query: string): Promise<Array<Record<string, unknown>>> {
  const res = await fetch(`${i.url}/api/v1/verdicts?${query}`, { headers: { authorization: `Bearer ${TOKEN}` } });
  return ((await res.json()) as { matches: Array<Record<string, unknown>> }).matches;
}

async function peerState(i: Instance, actor: string) {
  const res = await admin(i, 'GET', '/peers');
  const { peers } = (await res.json()) as { peers: Array<{ actor: string; following: string; follower: string }> };
  return peers.find((p) => p.actor === actor);
}

const hex = (bytes: number) => randomBytes(bytes).toString('hex');

describe.skipIf(!HAVE_POSTGRES || !HAVE_REDIS)('federation between three servers', () => {
  let a: Instance;
  let b: Instance;
  let c: Instance;
  const cleanups: Array<() => Promise<void>> = [];

  beforeAll(async () => {
    const pglite = STORE_BACKENDS.find((s) => s.name === 'pglite')!;
    const postgres = STORE_BACKENDS.find((s) => s.name === 'postgres')!;
    const storeA = pglite.create();
    const storeB = postgres.create();
    const storeC = pglite.create();
    cleanups.push(storeA.cleanup, storeB.cleanup, storeC.cleanup);
    a = await instance('A', '127.0.0.2', { VOUCH_DATA_DIR: storeA.config.dataDir });
    b = await instance('B', '127.0.0.3', {
      VOUCH_DATA_DIR: storeB.config.dataDir,
      DATABASE_URL: POSTGRES_URL,
      VOUCH_DATABASE_SCHEMA: storeB.config.databaseSchema!,
    });
    c = await instance('C', '127.0.0.4', { VOUCH_DATA_DIR: storeC.config.dataDir });
    await Promise.all([start(a), start(b), start(c)]);
  });

  afterAll(async () => {
    for (const i of [a, b, c]) await i?.server?.stop();
    for (const cleanup of cleanups) await cleanup();
  });

  it('serves its actor, WebFinger and NodeInfo', async () => {
    const actor = await (await fetch(b.actor)).json();
    expect(actor).toMatchObject({ id: b.actor, type: 'Application', inbox: `${b.actor}/inbox`, publicKey: { owner: b.actor } });
    expect(actor.publicKey.publicKeyPem).toMatch(/BEGIN PUBLIC KEY/);
    expect(JSON.stringify(actor)).not.toMatch(/PRIVATE/);
    expect(actor.assertionMethod[0]).toMatchObject({ type: 'Multikey', controller: b.actor, publicKeyMultibase: expect.stringMatching(/^z6Mk/) });
    const wf = await (await fetch(`${b.url}/.well-known/webfinger?resource=acct:vouch@${b.host}:${b.port}`)).json();
    expect(wf.links[0].href).toBe(b.actor);
    const ni = await (await fetch(`${b.url}/nodeinfo/2.1`)).json();
    expect(ni).toMatchObject({ version: '2.1', software: { name: 'vouch' }, protocols: ['activitypub'] });
  });

  it('A follows B from the CLI, B approves from the CLI', async () => {
    const cli = (args: string[], i: Instance) => runCli(['peers', ...args, '--server', i.url], { VOUCH_ADMIN_TOKEN: TOKEN });
    const follow = await cli(['follow', b.actor], a);
    expect(follow.code, follow.stderr).toBe(0);
    await eventually(async () => (await peerState(b, a.actor))?.follower === 'pending', 15_000, 'B to see the follow request');
    const listed = await cli(['list'], b);
    expect(listed.stdout).toContain(`${a.actor}\tyou follow: none\tfollows you: pending`);
    const approve = await cli(['approve', a.actor], b);
    expect(approve.code, approve.stderr).toBe(0);
    await eventually(async () => (await peerState(a, b.actor))?.following === 'accepted', 15_000, 'A to see the Accept');

    // C asks too, and is never approved.
    expect((await admin(c, 'POST', '/peers/follow', { target: b.actor })).status).toBe(202);
    await eventually(async () => (await peerState(b, c.actor))?.follower === 'pending', 15_000, 'B to see C\'s request');
  });

  it('B issues, updates and retracts a verdict; A\'s index follows each step, C sees nothing', async () => {
    const pdq = hex(32);
    const sha256 = hex(32);
    const issued = await admin(b, 'POST', '/verdicts', {
      subjects: [{ algorithm: 'pdq', digest: pdq, quality: 100 }, { algorithm: 'sha256', digest: sha256 }],
      label: 'csam',
      confidence: 0.97,
      method: 'human',
    });
    expect(issued.status).toBe(201);
    const verdict = await issued.json();
    const id = verdict.id.split('/').pop();

    const onA = await eventually(async () => (await lookup(a, `pdq=${pdq}`))[0], 15_000, 'the verdict to reach A');
    expect(onA).toMatchObject({ id: verdict.id, issuer: b.actor, local: false, label: 'csam', distance: 0 });
    expect((await lookup(a, `sha256=${sha256}`))[0]).toMatchObject({ id: verdict.id });

    expect((await admin(b, 'PATCH', `/verdicts/${id}`, { label: 'spam', confidence: 0.5 })).status).toBe(200);
    await eventually(async () => (await lookup(a, `pdq=${pdq}`))[0]?.label === 'spam', 15_000, 'the update to reach A');

    expect((await admin(b, 'DELETE', `/verdicts/${id}`)).status).toBe(204);
    await eventually(async () => (await lookup(a, `pdq=${pdq}`)).length === 0, 15_000, 'the retraction to reach A');

    // A correction that changes the subjects is a new verdict superseding the old: B retracts the
    // old one as it issues the new, and A follows both steps. Only a verdict of B's own can be superseded.
    const first = await (await admin(b, 'POST', '/verdicts', { subjects: [{ algorithm: 'sha256', digest: sha256 }], label: 'spam', confidence: 0.6, method: 'human' })).json();
    await eventually(async () => (await lookup(a, `sha256=${sha256}`))[0]?.id === first.id, 15_000, 'the first verdict to reach A');
    const otherSha256 = hex(32);
    const correction = await admin(b, 'POST', '/verdicts', { subjects: [{ algorithm: 'sha256', digest: otherSha256 }], label: 'spam', confidence: 0.6, method: 'human', supersedes: first.id });
    expect(correction.status).toBe(201);
    await eventually(async () => (await lookup(a, `sha256=${sha256}`)).length === 0 && (await lookup(a, `sha256=${otherSha256}`)).length === 1, 15_000, 'A to drop the superseded verdict');
    const foreign = await admin(b, 'POST', '/verdicts', { subjects: [{ algorithm: 'sha256', digest: sha256 }], label: 'spam', confidence: 0.6, method: 'human', supersedes: `${a.actor.replace('/actor', '')}/verdicts/00000000-0000-4000-8000-000000000000` });
    expect(foreign.status).toBe(400);
    expect(await foreign.json()).toMatchObject({ error: { code: 'bad_supersedes' } });

    // C was never approved: nothing was delivered to it, and B's feed gives it nothing.
    expect(await lookup(c, `pdq=${pdq}`)).toEqual([]);
    const anonymous = await (await fetch(`${b.actor}/outbox`)).json();
    expect(anonymous.totalItems).toBe(0);
  });

  it('B\'s published trust reaches A: a peer A never met gets a share of B\'s weight', async () => {
    expect((await admin(a, 'PUT', '/trust', { peer: b.actor, abuse: 0.8, ok: 0.6 })).status).toBe(200);
    expect((await admin(b, 'PUT', '/trust', { peer: c.actor, abuse: 1 })).status).toBe(200);
    const weight = await eventually(async () => {
      const w = await (await admin(a, 'GET', `/trust/weight?peer=${encodeURIComponent(c.actor)}`)).json();
      return w.abuse.weight > 0 ? w : undefined;
    }, 15_000, 'B\'s TrustStatement to reach A');
    // Conserved flow: C gets at most delta (0.5) times B's pinned weight, and nothing on the ok side.
    expect(weight.abuse.weight).toBeCloseTo(0.5 * 0.8, 6);
    expect(weight.abuse.paths[0].via).toEqual([b.actor, c.actor]);
    expect(weight.ok.weight).toBe(0);
  });

  it('an unapproved peer\'s signed GET of B\'s feed returns no restricted items', async () => {
    const stranger = new FakePeer();
    await stranger.start('127.0.0.5');
    cleanups.push(() => stranger.stop());
    for (const url of [`${b.actor}/outbox`, `${b.actor}/outbox?page=true`, `${b.actor}/outbox?since=1970-01-01T00:00:00Z`]) {
      const res = await fetch(url, { headers: stranger.signedHeaders('GET', url) });
      expect(res.status).toBe(200);
      const body = await res.json();
      expect(body.totalItems ?? body.orderedItems.length).toBe(0);
    }
  });

  it('A, stopped while B issues 100 verdicts, ends with all 100 and none twice', async () => {
    await a.server!.stop();
    const digests = Array.from({ length: 100 }, () => hex(32));
    for (const digest of digests) {
      const res = await admin(b, 'POST', '/verdicts', { subjects: [{ algorithm: 'sha256', digest }], label: 'gore', confidence: 0.8, method: 'human' });
      expect(res.status).toBe(201);
    }
    await start(a);
    await eventually(
      async () => {
        const counts = await Promise.all(digests.map(async (d) => (await lookup(a, `sha256=${d}`)).length));
        return counts.every((n) => n === 1) ? counts : undefined;
      },
      60_000,
      'all 100 verdicts on A',
    );
    const deliveries = await (await admin(b, 'GET', '/deliveries')).json();
    expect(deliveries.dead).toEqual([]);
  });
});


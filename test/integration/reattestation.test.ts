// Peers deciding before we scan, between real servers on 127.0.0.x delivering through BullMQ on
// the real Redis.
// Re-attestation: C's moderator judges an image; B follows C and decides by C's verdict, so B
// publishes a consensus verdict naming it; A follows B only (not C) and decides the same image with
// no scan. When C retracts, B's consensus goes too and A no longer allows. Scanners are off there,
// so an unknown stays unknown: a decision comes only from verdicts.
// Deferred scans: remote media nobody waits on is scanned late, and not at all when a peer's
// verdict arrives first (a real in-process scanner with the bundled model, delayed BullMQ jobs).
import { randomBytes } from 'node:crypto';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { syntheticJpeg } from '../helpers/images.js';
import { eventually, startServerProcess, startVouch, type ServerProcess, LOCAL_FEDERATION_ENV } from '../helpers/process.js';
import { HAVE_REDIS, REDIS_URL } from '../helpers/services.js';
import { hashImage } from '../../shared/hashing/index.js';
import { adminApi } from '../helpers/admin-api.js';

const TOKEN = randomBytes(32).toString('hex');

interface Instance {
  url: string;
  actor: string;
  server: ServerProcess;
  env: Record<string, string>;
}

const { admin, submit, follow } = adminApi(TOKEN);
const verdictsAbout = async (i: Instance, sha256: string) =>
  ((await (await fetch(`${i.url}/api/v1/verdicts?sha256=${sha256}`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as { matches: Array<Record<string, unknown>> }).matches;

/** A server on `host` (scanner off unless `env` says otherwise); its store's cleanup goes to `cleanups`. */
async function start(host: string, cleanups: Array<() => Promise<void>>, env: Record<string, string> = {}): Promise<Instance> {
  const { server, url, env: started, cleanup } = await startVouch(host, {
    VOUCH_ADMIN_TOKEN: TOKEN,
    ...LOCAL_FEDERATION_ENV,
    REDIS_URL,
    VOUCH_SCANNER: 'off',
    ...env,
  });
  cleanups.push(cleanup);
  return { url, actor: `${url}/actor`, server, env: started };
}

describe.skipIf(!HAVE_REDIS)('re-attestation: A follows B, B follows C, and C’s judgement reaches A through B', () => {
  let a: Instance;
  let b: Instance;
  let c: Instance;
  const cleanups: Array<() => Promise<void>> = [];

  beforeAll(async () => {
    [a, b, c] = await Promise.all([start('127.0.0.51', cleanups), start('127.0.0.52', cleanups), start('127.0.0.53', cleanups)]);
    await follow(b, c);
    await follow(a, b);
  });

  afterAll(async () => {
    for (const i of [a, b, c]) await i?.server.stop();
    for (const cleanup of cleanups) await cleanup();
  });

  /** C's moderator says `ok` about this image (a human verdict, confidence 1), and B holds it. */
  async function judgedByC(seed: number) {
    const bytes = await syntheticJpeg(seed);
    const hashes = await hashImage(bytes);
    const issued = await admin(c, 'POST', '/verdicts', {
      subjects: [{ algorithm: 'sha256', digest: hashes.sha256 }, { algorithm: 'pdq', digest: hashes.pdq, quality: hashes.pdqQuality }],
      label: 'ok',
      confidence: 1,
      method: 'human',
    });
    expect(issued.status).toBe(201);
    await eventually(async () => (await verdictsAbout(b, hashes.sha256)).length > 0, 15_000, 'C’s verdict to reach B');
    return { bytes, hashes, uri: (issued.body as { id: string }).id };
  }

  it('B decides by C’s verdict and re-attests; A, which never followed C, allows with no scan', async () => {
    const { bytes, hashes, uri } = await judgedByC(501);
    // A knows nothing yet: unknown.
    expect(await submit(a, bytes)).toMatchObject({ outcome: 'unknown' });

    const atB = await submit(b, bytes);
    expect(atB).toMatchObject({ outcome: 'allow', label: 'ok', scan_pending: false });
    const consensus = await eventually(
      async () => (await verdictsAbout(a, hashes.sha256)).find((v) => v.method === 'consensus'),
      15_000,
      'B’s consensus verdict to reach A',
    );
    expect(consensus).toMatchObject({ issuer: b.actor, label: 'ok', basis: [{ issuer: c.actor, method: 'human', contribution: 1 }] });

    const atA = await submit(a, bytes);
    expect(atA).toMatchObject({ outcome: 'allow', label: 'ok', scan_pending: false, explanation: { decidedBy: 'peers' } });
    expect(atA.explanation.top[0]).toMatchObject({ issuer: b.actor, method: 'consensus', relays: { issuer: c.actor, method: 'human' }, contribution: 1 });

    // C retracts: B decides again, retracts its consensus, and A no longer allows.
    expect((await admin(c, 'DELETE', `/verdicts/${uri.split('/').pop()}`)).status).toBe(204);
    await eventually(async () => (await verdictsAbout(a, hashes.sha256)).length === 0, 15_000, 'B’s retraction to reach A');
    expect(await submit(a, bytes)).toMatchObject({ outcome: 'unknown' });
  });

  it('a hash list B imports replaces its consensus: B’s own list now decides', async () => {
    const { bytes, hashes } = await judgedByC(504);
    await submit(b, bytes);
    await eventually(async () => (await verdictsAbout(b, hashes.sha256)).some((v) => v.method === 'consensus'), 15_000, 'B’s consensus');
    const imported = await fetch(`${b.url}/api/v1/admin/hashes?source=partner`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'text/plain' },
      body: `sha256:${hashes.sha256},csam,1`,
    });
    expect(imported.status).toBe(201);
    const atB = await verdictsAbout(b, hashes.sha256);
    expect(atB.some((v) => v.method === 'consensus')).toBe(false);
    expect(atB).toContainEqual(expect.objectContaining({ local: true, method: 'hashlist', label: 'csam' }));
    // A hears of the retraction (hash lists themselves are never published).
    await eventually(async () => !(await verdictsAbout(a, hashes.sha256)).some((v) => v.method === 'consensus'), 15_000, 'the retraction to reach A');
  });

  it('asked by A’s pull on miss, B re-attests on demand an image it never saw', async () => {
    expect((await admin(a, 'POST', '/peers/pull', { actor: b.actor, enabled: true })).status).toBe(200);
    const { bytes, hashes } = await judgedByC(502);
    const atA = await submit(a, bytes);
    expect(atA).toMatchObject({ outcome: 'allow', scan_pending: false });
    expect(atA.explanation.top[0]).toMatchObject({ issuer: b.actor, method: 'consensus', relays: { issuer: c.actor } });
    // B now holds its consensus as its own verdict, published like any other.
    expect((await verdictsAbout(b, hashes.sha256)).map((v) => [v.issuer, v.method])).toContainEqual([b.actor, 'consensus']);
  });

  const consensusAt = async (i: Instance, sha256: string) => (await verdictsAbout(i, sha256)).filter((v) => v.method === 'consensus');

  it('B’s consensus expires with what it rests on, and follows a change of that expiry', async () => {
    const bytes = await syntheticJpeg(505);
    const hashes = await hashImage(bytes);
    const expires = new Date(Date.now() + 120_000).toISOString();
    const issued = await admin(c, 'POST', '/verdicts', { subjects: [{ algorithm: 'sha256', digest: hashes.sha256 }], label: 'ok', confidence: 1, method: 'human', expires });
    expect(issued.status).toBe(201);
    await eventually(async () => (await verdictsAbout(b, hashes.sha256)).length > 0, 15_000, 'C’s verdict to reach B');
    expect(await submit(b, bytes)).toMatchObject({ outcome: 'allow' });
    const first = await eventually(async () => (await consensusAt(a, hashes.sha256))[0], 15_000, 'B’s consensus to reach A');
    expect(first).toMatchObject({ issuer: b.actor, expires });

    // C makes its verdict last: B's consensus, the same sources, is updated to last too.
    const id = (issued.body as { id: string }).id.split('/').pop();
    expect((await admin(c, 'PATCH', `/verdicts/${id}`, { expires: null })).status).toBe(200);
    await eventually(async () => (await consensusAt(a, hashes.sha256))[0]?.expires === null, 15_000, 'B’s updated consensus to reach A');
    expect(await consensusAt(a, hashes.sha256)).toEqual([expect.objectContaining({ id: first.id, basis: [expect.objectContaining({ issuer: c.actor })] })]);
  });

  it('when a verdict B’s consensus rests on expires, B decides again then and re-attests what still holds', async () => {
    const bytes = await syntheticJpeg(507);
    const hashes = await hashImage(bytes);
    const subjects = [{ algorithm: 'sha256', digest: hashes.sha256 }];
    // A's and B's policies say what C's two models can see (unnamed classifiers count against no
    // label, relayed or not).
    for (const i of [a, b]) {
      const { policy } = (await admin(i, 'GET', '/policy')).body as { policy: { classifierScopes: Record<string, string[]> } };
      const classifierScopes = { ...policy.classifierScopes, 'model-a': ['sexual', 'csam'], 'model-b': ['sexual', 'csam'] };
      expect((await admin(i, 'PUT', '/policy', { ...policy, version: 'with-c-models', classifierScopes })).status).toBe(200);
    }
    // C's two classifiers say ok for good; its moderator says ok too, but only for a few seconds.
    const expires = new Date(Date.now() + 12_000).toISOString();
    for (const body of [
      { subjects, label: 'ok', confidence: 0.9, method: 'classifier', classifier: { name: 'model-a', version: '1' } },
      { subjects, label: 'ok', confidence: 0.9, method: 'classifier', classifier: { name: 'model-b', version: '1' } },
      { subjects, label: 'ok', confidence: 1, method: 'human', expires },
    ]) {
      expect((await admin(c, 'POST', '/verdicts', body)).status).toBe(201);
    }
    await eventually(async () => (await verdictsAbout(b, hashes.sha256)).length === 3, 15_000, 'C’s verdicts to reach B');
    expect(await submit(b, bytes)).toMatchObject({ outcome: 'allow' });
    const first = await eventually(async () => (await consensusAt(a, hashes.sha256))[0], 15_000, 'B’s consensus to reach A');
    expect(first).toMatchObject({ expires });
    // C's moderator outranks C's own scanner while it holds (one issuer speaks once).
    expect((first.basis as Array<{ method: string }>).map((s) => s.method)).toEqual(['human']);

    // Past the expiry B's decision rests on the classifiers alone: a new consensus naming them,
    // expiring never, replaces the old one.
    const next = await eventually(async () => {
      const now = await consensusAt(a, hashes.sha256);
      return now.length === 1 && now[0].id !== first.id ? now[0] : undefined;
    }, 40_000, 'B’s new consensus to reach A');
    expect(next).toMatchObject({ expires: null });
    expect((next.basis as Array<{ method: string }>).map((s) => s.method)).toEqual(['classifier', 'classifier']);
    expect(await submit(a, bytes)).toMatchObject({ outcome: 'allow', scan_pending: false });
  });

  it('B’s trust in C withdrawn: B re-decides what it re-attested and retracts it, a restart between', async () => {
    const { bytes, hashes } = await judgedByC(506);
    await submit(b, bytes);
    await eventually(async () => (await verdictsAbout(a, hashes.sha256)).some((v) => v.method === 'consensus'), 15_000, 'B’s consensus to reach A');
    // Restarted, B knows its consensus verdicts from its store only (not yet which peers each
    // depended on): the first trust change re-decides them all.
    await b.server.stop();
    b.server = await startServerProcess(b.env);
    expect((await admin(b, 'PUT', '/trust', { peer: c.actor, abuse: 1, ok: 0 })).status).toBe(200);
    await eventually(async () => !(await verdictsAbout(a, hashes.sha256)).some((v) => v.method === 'consensus'), 15_000, 'B’s retraction to reach A');
    expect(await submit(a, bytes)).toMatchObject({ outcome: 'unknown' });
    const metrics = await (await fetch(`${b.url}/metrics`)).text();
    expect(metrics).toMatch(/^vouch_consensus_redecided_total\{reason="trust"\} [1-9]/m);
    expect(metrics).toMatch(/^vouch_consensus_live \d+$/m);
    // Trusted again: nothing re-attests until B decides about the image again.
    expect((await admin(b, 'PUT', '/trust', { peer: c.actor, abuse: 1, ok: 1 })).status).toBe(200);
    await submit(b, bytes);
    await eventually(async () => (await verdictsAbout(a, hashes.sha256)).some((v) => v.method === 'consensus'), 15_000, 'B’s new consensus');
  });

  it('a consensus decided on a rotated copy’s verdicts survives B deciding again (its rotations are kept)', async () => {
    // C judged a copy of the image turned a quarter; B sees the image upright and matches C's
    // verdicts through its rotations. A block: a rotated copy is not the same image, so its `ok`
    // could never allow (decision 15), but its abuse flags block at any tier.
    const bytes = await syntheticJpeg(508);
    const turned = await sharp(bytes).rotate(90).jpeg({ quality: 95 }).toBuffer();
    const turnedPdq = (await hashImage(turned)).pdq;
    const hashes = await hashImage(bytes);
    expect((await admin(c, 'POST', '/verdicts', { subjects: [{ algorithm: 'pdq', digest: turnedPdq, quality: 100 }], label: 'gore', confidence: 1, method: 'human' })).status).toBe(201);
    await eventually(async () => (await fetch(`${b.url}/api/v1/verdicts?pdq=${turnedPdq}`, { headers: { authorization: `Bearer ${TOKEN}` } }).then((r) => r.json())).matches.length === 1, 15_000, 'C’s verdict to reach B');
    expect(await submit(b, bytes)).toMatchObject({ outcome: 'block', label: 'gore' });
    const first = await eventually(async () => (await consensusAt(a, hashes.sha256))[0], 15_000, 'B’s consensus to reach A');

    // A policy change re-decides every consensus of B's: this one is decided as it first was.
    const redecided = async () => Number((await (await fetch(`${b.url}/metrics`)).text()).match(/^vouch_consensus_redecided_total\{reason="policy"\} (\d+)/m)?.[1] ?? 0);
    const before = await redecided();
    const { policy } = (await admin(b, 'GET', '/policy')).body as { policy: Record<string, unknown> };
    expect((await admin(b, 'PUT', '/policy', { ...policy, version: 'same-thresholds' })).status).toBe(200);
    await eventually(async () => (await redecided()) > before, 20_000, 'B’s pass');
    expect(await consensusAt(b, hashes.sha256)).toEqual([expect.objectContaining({ id: first.id })]);
  });

  it('a verdict of B’s own replaces its consensus', async () => {
    const { bytes, hashes } = await judgedByC(503);
    await submit(b, bytes);
    await eventually(async () => (await verdictsAbout(b, hashes.sha256)).some((v) => v.method === 'consensus'), 15_000, 'B’s consensus');
    // B's moderator disagrees with C.
    const own = await admin(b, 'POST', '/verdicts', { subjects: [{ algorithm: 'sha256', digest: hashes.sha256 }], label: 'spam', confidence: 0.9, method: 'human' });
    expect(own.status).toBe(201);
    await eventually(async () => !(await verdictsAbout(b, hashes.sha256)).some((v) => v.method === 'consensus'), 15_000, 'B’s consensus to go');
    const atA = await eventually(async () => {
      const d = await submit(a, bytes);
      return d.outcome === 'block' ? d : undefined;
    }, 15_000, 'A to follow B’s own verdict');
    expect(atA).toMatchObject({ label: 'spam' });
  });
});

describe.skipIf(!HAVE_REDIS)('deferred scans: remote media nobody waits on is scanned late, or not at all', () => {
  let p: Instance;
  let q: Instance;
  const cleanups: Array<() => Promise<void>> = [];

  beforeAll(async () => {
    [p, q] = await Promise.all([start('127.0.0.54', cleanups, { VOUCH_SCANNER: 'inprocess' }), start('127.0.0.55', cleanups)]);
    await follow(p, q);
    // Short deferral for the test; no random spot check (2 % by default) in a deterministic test.
    const { policy } = (await admin(p, 'GET', '/policy')).body as { policy: Record<string, unknown> };
    expect((await admin(p, 'PUT', '/policy', { ...policy, version: 'deferred-3s', deferScanSeconds: 3, spotCheckShare: 0 })).status).toBe(200);
  });

  afterAll(async () => {
    for (const i of [p, q]) await i?.server.stop();
    for (const cleanup of cleanups) await cleanup();
  });

  const decisionsAbout = async (sha256: string) =>
    ((await admin(p, 'GET', '/decisions')).body as { decisions: Array<{ id: number; sha256: string; outcome: string }> }).decisions.filter((d) => d.sha256 === sha256);
  const ownClassifierVerdicts = async (sha256: string) => (await verdictsAbout(p, sha256)).filter((v) => v.local && v.method === 'classifier');

  it('a peer verdict arriving while the scan waits spares it: the decision is recorded, nothing is scanned', async () => {
    const bytes = await syntheticJpeg(601);
    const first = await submit(p, bytes, '?remote=1');
    expect(first).toMatchObject({ outcome: 'unknown', scan_pending: true });
    const hashes = await hashImage(bytes);
    const issued = await admin(q, 'POST', '/verdicts', {
      subjects: [{ algorithm: 'sha256', digest: hashes.sha256 }],
      label: 'ok',
      confidence: 1,
      method: 'human',
    });
    expect(issued.status).toBe(201);
    const settled = await eventually(async () => (await decisionsAbout(hashes.sha256)).find((d) => d.id > first.decision_id), 20_000, 'the decision when the deferred scan fell due');
    expect(settled).toMatchObject({ outcome: 'allow' });
    // Well past the deferral: still no verdict of our scanner's.
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    expect(await ownClassifierVerdicts(hashes.sha256)).toEqual([]);
  });

  it('with no peer verdict, the scan runs once the deferral is over', async () => {
    const bytes = await syntheticJpeg(602);
    const started = Date.now();
    const first = await submit(p, bytes, '?remote=1');
    expect(first).toMatchObject({ outcome: 'unknown', scan_pending: true });
    const [verdict] = await eventually(async () => {
      const own = await ownClassifierVerdicts(first.hashes.sha256);
      return own.length > 0 ? own : undefined;
    }, 30_000, 'the deferred scan');
    expect(Date.parse(verdict.published as string) - started).toBeGreaterThanOrEqual(2_900);
    expect(verdict).toMatchObject({ classifier: expect.stringMatching(/nsfw/i) });
  });

  it('our own upload is scanned at once, however long remote media would wait', async () => {
    const { policy } = (await admin(p, 'GET', '/policy')).body as { policy: Record<string, unknown> };
    expect((await admin(p, 'PUT', '/policy', { ...policy, version: 'deferred-1h', deferScanSeconds: 3_600 })).status).toBe(200);
    const first = await submit(p, await syntheticJpeg(603));
    expect(first).toMatchObject({ outcome: 'unknown', scan_pending: true });
    await eventually(async () => (await ownClassifierVerdicts(first.hashes.sha256)).length > 0, 30_000, 'the scan, long before an hour');
  });
});

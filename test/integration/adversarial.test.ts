// Decision 15 between real servers: BIG scans and judges, SMALL follows BIG (trust 0.9 both ways),
// both on 127.0.0.x over the real Redis, each deciding through its own decider. Scanners are off:
// the scan results are posted as classifier verdicts through the admin API, as a scanner's would
// be recorded (the scanner path itself is tested in scanning.test.ts). The crafted images come from
// the white-box PDQ collision generator (test/helpers/pdq-collision.ts); none of them is anything
// but a striped gradient or a generated picture.
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { syntheticJpeg } from '../helpers/images.js';
import { craftCollision, stripedGradientPng } from '../helpers/pdq-collision.js';
import { eventually, startVouch, type ServerProcess, LOCAL_FEDERATION_ENV } from '../helpers/process.js';
import { HAVE_REDIS, REDIS_URL } from '../helpers/services.js';
import { hashImage, hexHammingDistance, type ImageHashes } from '../../shared/hashing/index.js';
import { STRICT_PDQ_RADIUS } from '../../server/trust/decide.js';
import { adminApi } from '../helpers/admin-api.js';

const TOKEN = randomBytes(32).toString('hex');
const MOBILENET = { name: 'nsfwjs-mobilenet-v2', version: 'nsfwjs-4.3.0' };
const INCEPTION = { name: 'nsfwjs-inception-v3', version: 'nsfwjs-4.3.0' };

interface Instance {
  url: string;
  actor: string;
  server: ServerProcess;
}

const { admin, submit, follow } = adminApi(TOKEN);
const verdictCount = async (i: Instance, sha256: string) =>
  ((await (await fetch(`${i.url}/api/v1/verdicts?sha256=${sha256}`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as { matches: unknown[] }).matches.length;
const subjectsOf = (h: ImageHashes) => [
  { algorithm: 'sha256', digest: h.sha256 },
  { algorithm: 'pdq', digest: h.pdq, quality: h.pdqQuality },
  { algorithm: 'phash64', digest: h.phash64 },
];
/** A verdict issued at `by`: a scan's result (classifier) or a moderator's (human). */
async function issue(by: Instance, h: ImageHashes, label: string, method: 'classifier' | 'human', classifier?: { name: string; version: string }) {
  const issued = await admin(by, 'POST', '/verdicts', { subjects: subjectsOf(h), label, confidence: method === 'human' ? 1 : 0.95, method, ...(classifier ? { classifier } : {}) });
  expect(issued.status).toBe(201);
}
/** BIG's scanner, both bundled models, says ok. */
const bigScansOk = async (big: Instance, h: ImageHashes) => {
  await issue(big, h, 'ok', 'classifier', MOBILENET);
  await issue(big, h, 'ok', 'classifier', INCEPTION);
};

describe.skipIf(!HAVE_REDIS)('decision 15 between servers: crafted images and near-duplicates never override the exact file', () => {
  let big: Instance;
  let small: Instance;
  const cleanups: Array<() => Promise<void>> = [];

  beforeAll(async () => {
    const start = async (host: string): Promise<Instance> => {
      const { server, url, cleanup } = await startVouch(host, { VOUCH_ADMIN_TOKEN: TOKEN, ...LOCAL_FEDERATION_ENV, REDIS_URL, VOUCH_SCANNER: 'off' });
      cleanups.push(cleanup);
      return { url, actor: `${url}/actor`, server };
    };
    [big, small] = await Promise.all([start('127.0.0.71'), start('127.0.0.72')]);
    await follow(small, big, 0.9);
    // Deterministic: no random spot check.
    const { policy } = (await admin(small, 'GET', '/policy')).body as { policy: Record<string, unknown> };
    expect((await admin(small, 'PUT', '/policy', { ...policy, version: 'no-spot-checks', spotCheckShare: 0 })).status).toBe(200);
  });

  afterAll(async () => {
    for (const i of [big, small]) await i?.server.stop();
    for (const cleanup of cleanups) await cleanup();
  });

  it('the reported case: SMALL’s ok on a 300 px copy does not override BIG’s human csam on the original', async () => {
    const original = await readFile(new URL('../fixtures/pdq/dih_bridge-1-original.jpg', import.meta.url));
    const copy = await sharp(original).resize({ width: 300 }).jpeg({ quality: 70 }).toBuffer();
    const [h, hc] = await Promise.all([hashImage(original), hashImage(copy)]);
    // 1. BIG scans the original (two models say ok), then BIG's moderator calls it csam.
    await bigScansOk(big, h);
    await issue(big, h, 'csam', 'human');
    await eventually(async () => (await verdictCount(small, h.sha256)) === 3, 15_000, 'BIG’s verdicts to reach SMALL');
    // 2. SMALL's scanner says ok about its own, smaller copy.
    await issue(small, hc, 'ok', 'classifier', MOBILENET);
    expect(hexHammingDistance(h.pdq, hc.pdq)).toBeGreaterThan(0);
    // 3. SMALL is asked about the original: never allow.
    const decision = await submit(small, original);
    expect(decision).toMatchObject({ outcome: 'block', label: 'csam' });
    const rows = decision.explanation.top as Array<{ issuer: string; method: string; notCounted?: string }>;
    expect(rows.find((r) => r.issuer === small.actor)).toMatchObject({ notCounted: 'looser-than-evidence' });
    expect(rows.filter((r) => r.issuer === big.actor && r.method === 'classifier').every((r) => r.notCounted === 'outranked-by-own-human')).toBe(true);
    // The copy itself, which BIG's csam matches within the matcher's radius: its own ok is on the exact file, so a human must look.
    expect(await submit(small, copy)).toMatchObject({ outcome: 'review', label: 'csam' });
  });

  it('a crafted image within the strict radius of an allowed one is not allowed without a scan', async () => {
    const target = await syntheticJpeg(7101, 800, 600);
    const h = await hashImage(target);
    await bigScansOk(big, h);
    await eventually(async () => (await verdictCount(small, h.sha256)) === 2, 15_000, 'BIG’s verdicts to reach SMALL');
    expect(await submit(small, target)).toMatchObject({ outcome: 'allow', label: 'ok' });
    const crafted = await craftCollision(await stripedGradientPng(), h.pdq, { maxDistance: 4, maxRounds: 6 });
    expect(crafted.reached).toBe(true);
    expect(crafted.distance).toBeLessThanOrEqual(STRICT_PDQ_RADIUS);
    const decision = await submit(small, crafted.bytes);
    expect(decision.outcome).toBe('unknown'); // scanned here (scanner off in this test: stays unknown)
    expect(decision.explanation.labels.find((l: { label: string }) => l.label === 'csam')).toMatchObject({ sameImageOk: 0 });
  });

  it('a crafted image near a hash BIG’s moderator blocked is blocked', async () => {
    const target = await syntheticJpeg(7102, 800, 600);
    const h = await hashImage(target);
    await issue(big, h, 'csam', 'human');
    await eventually(async () => (await verdictCount(small, h.sha256)) === 1, 15_000, 'BIG’s verdict to reach SMALL');
    const crafted = await craftCollision(await stripedGradientPng(), h.pdq, { maxDistance: 8, maxRounds: 6 });
    expect(crafted.reached).toBe(true);
    expect(await submit(small, crafted.bytes)).toMatchObject({ outcome: 'block', label: 'csam' });
  });
});

// Video end to end (issue 17's done-means) on real servers, the real ffmpeg and generated videos:
// a 20 s video whose 3rd second is a known-abuse image is refused by the pict-rs hook; a video A's
// moderator judged reaches B, and B decides a re-encoded copy (other codec, bitrate, size) from
// A's verdict without a scan; truncated, malformed and over-limit videos get a 4xx and leave
// nothing behind. A is on PGlite, B on the real PostgreSQL; delivery through the real Redis.
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, freePort, startServerProcess, type ServerProcess, LOCAL_FEDERATION_ENV } from '../helpers/process.js';
import { HAVE_POSTGRES, HAVE_REDIS, POSTGRES_URL, REDIS_URL, STORE_BACKENDS } from '../helpers/services.js';
import { adminApi, type Peer } from '../helpers/admin-api.js';
import { syntheticPixels } from '../helpers/images.js';
import { HAVE_FFMPEG, distinctFrames, lavfiVideo, reencode, videoOfFrames, videoScratch } from '../helpers/videos.js';

const TOKEN = randomBytes(32).toString('hex');
const { admin, follow } = adminApi(TOKEN);
const W = 320;
const H = 240;

interface Instance extends Peer {
  server?: ServerProcess;
  /** The server's own TMPDIR: where video hashing writes its temporary copy. */
  tmp: string;
}

async function instance(host: string, store: Record<string, string>): Promise<Instance> {
  const port = await freePort(host);
  const url = `http://${host}:${port}`;
  const tmp = await mkdtemp(join(tmpdir(), 'vouch-video-intake-'));
  const server = await startServerProcess({
    ...store,
    VOUCH_HOST: host,
    VOUCH_PORT: String(port),
    VOUCH_PUBLIC_URL: url,
    VOUCH_ADMIN_TOKEN: TOKEN,
    VOUCH_QUARANTINE_KEY: randomBytes(32).toString('base64'),
    VOUCH_SCANNER: 'inprocess',
    VOUCH_SCAN_WAIT_MS: '60000',
    // A short limit, so that an over-long video is cheap to make.
    VOUCH_VIDEO_MAX_SECONDS: '30',
    TMPDIR: tmp,
    REDIS_URL,
    ...LOCAL_FEDERATION_ENV,
  });
  return { url, actor: `${url}/actor`, server, tmp };
}

const pictrs = (i: Instance, bytes: Buffer) => fetch(`${i.url}/api/v1/pictrs/validate`, { method: 'POST', body: bytes });

async function counts(i: Instance): Promise<{ decisions: number; quarantined: number }> {
  const { decisions } = (await admin(i, 'GET', '/decisions')).body as { decisions: unknown[] };
  const { items } = (await admin(i, 'GET', '/quarantine')).body as { items: unknown[] };
  return { decisions: decisions.length, quarantined: items.length };
}

describe.skipIf(!HAVE_POSTGRES || !HAVE_REDIS || !HAVE_FFMPEG)('video through intake, hooks and federation', () => {
  let a: Instance;
  let b: Instance;
  let scratch: Awaited<ReturnType<typeof videoScratch>>;
  const cleanups: Array<() => Promise<void>> = [];

  beforeAll(async () => {
    scratch = await videoScratch();
    const storeA = STORE_BACKENDS.find((s) => s.name === 'pglite')!.create();
    const storeB = STORE_BACKENDS.find((s) => s.name === 'postgres')!.create();
    cleanups.push(storeA.cleanup, storeB.cleanup);
    [a, b] = await Promise.all([
      instance('127.0.0.71', { VOUCH_DATA_DIR: storeA.config.dataDir }),
      instance('127.0.0.72', { VOUCH_DATA_DIR: storeB.config.dataDir, DATABASE_URL: POSTGRES_URL, VOUCH_DATABASE_SCHEMA: storeB.config.databaseSchema! }),
    ]);
  }, 180_000);

  afterAll(async () => {
    for (const i of [a, b]) {
      await i?.server?.stop();
      if (i) await rm(i.tmp, { recursive: true, force: true });
    }
    for (const cleanup of cleanups) await cleanup();
    await scratch?.remove();
  });

  it('blocks through the pict-rs hook a 20 s video whose 3rd second is an image on a csam hash list', async () => {
    const reference = syntheticPixels(7_001, W, H);
    const png = await sharp(reference, { raw: { width: W, height: H, channels: 3 } }).png().toBuffer();
    const { pdq } = (await (await fetch(`${b.url}/api/v1/hash`, { method: 'POST', body: png })).json()) as { pdq: string };
    const listed = await fetch(`${b.url}/api/v1/admin/hashes?source=partner`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'text/plain' },
      body: `pdq:${pdq},csam,1`,
    });
    expect(listed.status).toBe(201);
    const frames = distinctFrames(7_100, 20, W, H);
    frames[2] = reference;
    const video = await readFile(await videoOfFrames(scratch.dir, 'third-second', frames, W, H, { codec: 'h264', faststart: true }));

    const res = await pictrs(b, video);
    const body = (await res.json()) as Record<string, unknown>;
    expect(res.status, JSON.stringify(body)).toBe(406);
    expect(body).toMatchObject({ outcome: 'block', label: 'csam', quarantined: true, scanned: false });
    const detail = (await admin(b, 'GET', `/decisions/${body.decision_id}`)).body as { explanation: { decidedBy: string; localVerdict?: { method: string } } };
    expect(detail.explanation).toMatchObject({ decidedBy: 'local', localVerdict: { method: 'hashlist' } });

    // The same video without that second is not this image: nothing matches.
    const clean = await readFile(await videoOfFrames(scratch.dir, 'clean', distinctFrames(7_100, 20, W, H), W, H, { codec: 'h264', faststart: true }));
    const cleanRes = await pictrs(b, clean);
    expect(cleanRes.status).toBe(201);
    expect(await cleanRes.json()).toMatchObject({ outcome: 'unknown', quarantined: false });
  }, 180_000);

  it('a video A\'s moderator judged reaches B, which decides a re-encoded copy from it without a scan', async () => {
    await follow(b, a);
    const original = await videoOfFrames(scratch.dir, 'original', distinctFrames(7_300, 12, 640, 360), 640, 360, { codec: 'h264', faststart: true });
    const onA = await pictrs(a, await readFile(original));
    const seen = (await onA.json()) as { decision_id: number; sha256: string; outcome: string };
    expect(onA.status).toBe(201);
    expect(seen.outcome).toBe('unknown');
    const review = await admin(a, 'POST', `/decisions/${seen.decision_id}/review`, { action: 'overturn', label: 'sexual', reason: 'adult video' });
    expect(review.status).toBe(200);
    // A's verdict names the video by MD5, SHA-256 and its frame list, and B stores it.
    await eventually(async () => {
      const res = await fetch(`${b.url}/api/v1/verdicts?sha256=${seen.sha256}`, { headers: { authorization: `Bearer ${TOKEN}` } });
      return ((await res.json()) as { matches: unknown[] }).matches.length === 1;
    }, 30_000, 'A\'s verdict to reach B');

    // Another codec (VP9 in WebM), another size, another bitrate: other bytes, near frames.
    const copy = await readFile(await reencode(original, scratch.dir, 'copy', { codec: 'vp9', width: 480, height: 270, bitrate: '300k' }));
    const res = await pictrs(b, copy);
    const body = (await res.json()) as Record<string, unknown>;
    expect(res.status, JSON.stringify(body)).toBe(406);
    // Decided from A's verdict: no scan ran and none is pending on B.
    expect(body).toMatchObject({ outcome: 'block', label: 'sexual', scanned: false, scan_pending: false });
    const detail = (await admin(b, 'GET', `/decisions/${body.decision_id}`)).body as { explanation: { decidedBy: string; top: Array<{ issuer: string; tier: string }> } };
    expect(detail.explanation.decidedBy).toBe('peers');
    expect(detail.explanation.top[0]).toMatchObject({ issuer: a.actor, tier: 'strict' });
  }, 240_000);

  it('refuses truncated, malformed and over-long videos with a 4xx and keeps nothing', async () => {
    const before = await counts(b);
    const whole = await readFile(await videoOfFrames(scratch.dir, 'whole', distinctFrames(7_500, 5, W, H), W, H, { codec: 'h264', faststart: true }));
    const truncated = whole.subarray(0, Math.floor(whole.length / 2));
    const malformed = Buffer.concat([Buffer.from([0x1a, 0x45, 0xdf, 0xa3]), randomBytes(4_000)]);
    const overLong = await readFile(await lavfiVideo(scratch.dir, 'long', `testsrc2=s=160x120:r=5:d=40`, { codec: 'h264' }));
    for (const [name, bytes] of [['truncated', truncated], ['malformed', malformed], ['over-long', overLong]] as const) {
      for (const hook of ['/api/v1/pictrs/validate', '/api/v1/media']) {
        const res = await fetch(`${b.url}${hook}`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/octet-stream' }, body: bytes });
        const text = await res.text();
        expect(res.status, `${name} through ${hook}: ${text}`).toBeGreaterThanOrEqual(400);
        expect(res.status, `${name} through ${hook}: ${text}`).toBeLessThan(500);
        expect(text).toMatch(/corrupt|unsupported_format|too_long/);
      }
    }
    // Nothing kept: no decision (no media decided), no quarantine item, no temporary file.
    expect(await counts(b)).toEqual(before);
    expect(await readdir(b.tmp)).toEqual([]);
  }, 180_000);
});

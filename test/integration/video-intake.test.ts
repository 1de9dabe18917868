// Video end to end (issue 17's done-means) on real servers, the real ffmpeg and generated videos:
// a 20 s video whose 3rd second is a known-abuse image is refused by the pict-rs hook; a video
// nobody judged is scanned by sampled frames, one verdict per model naming it by MD5, SHA-256 and
// vPDQ with the frames behind it, and its re-upload is decided from that scan (another instance's
// video is scanned late, after its deferral); pull on miss asks by SHA-256 and MD5; a video A's
// moderator judged reaches B, and B decides a re-encoded copy (other codec, bitrate, size) from
// A's verdict without a scan; truncated, malformed and over-limit videos get a 4xx and leave
// nothing behind. A is on PGlite, B on the real PostgreSQL; delivery through the real Redis.
// B's in-process scanner runs two generated ONNX models (test/helpers/models.ts): the mean-colour
// model, which generated frames steer (a red-tinted frame is `sexual`, a green-tinted one `ok`),
// and a second one that says `ok` to everything. A runs no scanner: its moderator is the judge.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, freePort, runCli, startServerProcess, type ServerProcess, LOCAL_FEDERATION_ENV } from '../helpers/process.js';
import { HAVE_POSTGRES, HAVE_REDIS, POSTGRES_URL, REDIS_URL, STORE_BACKENDS } from '../helpers/services.js';
import { adminApi, type Peer } from '../helpers/admin-api.js';
import { syntheticPixels } from '../helpers/images.js';
import { HAVE_FFMPEG, distinctFrames, lavfiVideo, reencode, videoOfFrames, videoScratch } from '../helpers/videos.js';
import { meanColourConfig, meanColourModel } from '../helpers/models.js';
import { FakePeer } from '../helpers/fake-peer.js';

const TOKEN = randomBytes(32).toString('hex');
const { admin, follow } = adminApi(TOKEN);
const W = 320;
const H = 240;

interface Instance extends Peer {
  server?: ServerProcess;
  /** The server's own TMPDIR: where video hashing writes its temporary copy. */
  tmp: string;
}

/**
 * Generated frames with one colour channel raised to 200..231 (the others keep their texture, so
 * PDQ stays informative): what the mean-colour model reads as red (`sexual`) or green (`ok`).
 */
function tinted(frames: Buffer[], channel: 0 | 1): Buffer[] {
  return frames.map((pixels) => {
    const out = Buffer.from(pixels);
    for (let i = channel; i < out.length; i += 3) out[i] = 200 + (out[i] >> 3);
    return out;
  });
}
const RED = 0;
const GREEN = 1;

/** Verdicts our scanner issued (one per model per scan), from /metrics' vouch_scans_total. */
async function scansOf(i: Instance): Promise<number> {
  const text = await (await fetch(`${i.url}/metrics`)).text();
  return [...text.matchAll(/^vouch_scans_total\{[^}]*\} (\d+)$/gm)].reduce((sum, m) => sum + Number(m[1]), 0);
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

/**
 * What an instance kept about the given files: decisions and quarantine items naming their SHA-256.
 * (By file, not by count: an earlier test's late scan may still be quarantining its own video.)
 */
async function keptAbout(i: Instance, files: Buffer[]): Promise<{ decisions: unknown[]; quarantined: unknown[] }> {
  const shas = new Set(files.map((f) => createHash('sha256').update(f).digest('hex')));
  const { decisions } = (await admin(i, 'GET', '/decisions')).body as { decisions: Array<{ sha256: string }> };
  const { items } = (await admin(i, 'GET', '/quarantine')).body as { items: Array<{ sha256: string }> };
  return { decisions: decisions.filter((d) => shas.has(d.sha256)), quarantined: items.filter((q) => shas.has(q.sha256)) };
}

describe.skipIf(!HAVE_POSTGRES || !HAVE_REDIS || !HAVE_FFMPEG)('video through intake, hooks and federation', () => {
  let a: Instance;
  let b: Instance;
  let scratch: Awaited<ReturnType<typeof videoScratch>>;
  const cleanups: Array<() => Promise<void>> = [];

  beforeAll(async () => {
    scratch = await videoScratch();
    await writeFile(join(scratch.dir, 'mean-nchw.onnx'), meanColourModel('NCHW', 'batch'));
    await writeFile(join(scratch.dir, 'colour.json'), JSON.stringify(meanColourConfig()));
    await writeFile(
      join(scratch.dir, 'all-ok.json'),
      JSON.stringify(meanColourConfig({ name: 'test-all-ok', measures: 'Nothing: a test model whose every class means ok.', labels: { red: 'ok', green: 'ok', blue: 'ok' } })),
    );
    const scanner = {
      VOUCH_SCANNER: 'inprocess',
      VOUCH_CLASSIFIER: `${join(scratch.dir, 'colour.json')},${join(scratch.dir, 'all-ok.json')}`,
      VOUCH_VIDEO_SCAN_FRAMES: '8',
    };
    const storeA = STORE_BACKENDS.find((s) => s.name === 'pglite')!.create();
    const storeB = STORE_BACKENDS.find((s) => s.name === 'postgres')!.create();
    cleanups.push(storeA.cleanup, storeB.cleanup);
    [a, b] = await Promise.all([
      instance('127.0.0.71', { VOUCH_DATA_DIR: storeA.config.dataDir, VOUCH_SCANNER: 'off' }),
      instance('127.0.0.72', { VOUCH_DATA_DIR: storeB.config.dataDir, DATABASE_URL: POSTGRES_URL, VOUCH_DATABASE_SCHEMA: storeB.config.databaseSchema!, ...scanner }),
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
    const frames = tinted(distinctFrames(7_100, 20, W, H), GREEN);
    frames[2] = reference;
    const video = await readFile(await videoOfFrames(scratch.dir, 'third-second', frames, W, H, { codec: 'h264', faststart: true }));

    const res = await pictrs(b, video);
    const body = (await res.json()) as Record<string, unknown>;
    expect(res.status, JSON.stringify(body)).toBe(406);
    expect(body).toMatchObject({ outcome: 'block', label: 'csam', quarantined: true, scanned: false });
    const detail = (await admin(b, 'GET', `/decisions/${body.decision_id}`)).body as { explanation: { decidedBy: string; localVerdict?: { method: string } } };
    expect(detail.explanation).toMatchObject({ decidedBy: 'local', localVerdict: { method: 'hashlist' } });

    // The same video without that second is not this image: nothing matches, so B's scanner
    // judges it, and its frames (all green) are ok.
    const clean = await readFile(await videoOfFrames(scratch.dir, 'clean', tinted(distinctFrames(7_100, 20, W, H), GREEN), W, H, { codec: 'h264', faststart: true }));
    const cleanRes = await pictrs(b, clean);
    const cleanBody = (await cleanRes.json()) as Record<string, unknown>;
    expect(cleanRes.status, JSON.stringify(cleanBody)).toBe(201);
    expect(cleanBody).toMatchObject({ scanned: true, quarantined: false });
    expect(cleanBody.label).toBeNull();
  }, 180_000);

  it('scans a video nobody judged: one verdict per model, named by MD5, SHA-256 and vPDQ, with the frames behind it', async () => {
    // 8 s, second 3 (3 s to 4 s) red: the scanner's 8 frames are at 0.5 s, 1.5 s, …, 7.5 s.
    const frames = tinted(distinctFrames(7_700, 8, W, H), GREEN);
    frames[3] = tinted([syntheticPixels(7_710, W, H)], RED)[0];
    const video = await readFile(await videoOfFrames(scratch.dir, 'red-second', frames, W, H, { codec: 'h264', faststart: true }));
    const scansBefore = await scansOf(b);

    const res = await fetch(`${b.url}/api/v1/media?wait=1`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/octet-stream' }, body: video });
    const body = (await res.json()) as { decision_id: number; outcome: string; label: string; scanned: boolean; hashes: { sha256: string; md5: string; vpdq_frames: number } };
    expect(res.status, JSON.stringify(body)).toBe(200);
    expect(body).toMatchObject({ scanned: true, label: 'sexual' });
    expect(body.outcome).not.toBe('unknown');
    expect(await scansOf(b)).toBe(scansBefore + 2);

    // Two verdicts (one per model), each naming the video by SHA-256, MD5 and its frame list.
    const found = await fetch(`${b.url}/api/v1/verdicts?md5=${body.hashes.md5}`, { headers: { authorization: `Bearer ${TOKEN}` } });
    const { matches } = (await found.json()) as { matches: Array<{ label: string; classifier: string; subjects: Array<{ algorithm: string; digest: string }> }> };
    expect(matches.map((m) => `${m.classifier} ${m.label}`).sort()).toEqual(['test-all-ok@1 ok', 'test-mean-colour@1 sexual']);
    for (const m of matches) {
      expect(m.subjects.find((s) => s.algorithm === 'sha256')?.digest).toBe(body.hashes.sha256);
      expect(m.subjects.find((s) => s.algorithm === 'md5')?.digest).toBe(body.hashes.md5);
      expect(m.subjects.filter((s) => s.algorithm === 'vpdq').length).toBeGreaterThan(0);
      expect(m.subjects.some((s) => s.algorithm === 'pdq' || s.algorithm === 'phash64')).toBe(false);
    }

    // The decision after the scan explains itself by both verdicts and the frames behind each;
    // `vouch explain` names the frame that drove it.
    type Frames = { sampled: number; frames: Array<{ seconds: number; label: string }> };
    const detail = (await admin(b, 'GET', `/decisions/${body.decision_id}`)).body as { explanation: { top: Array<{ local: boolean; label: string; scannedFrames?: Frames }> } };
    const behind = detail.explanation.top.filter((c) => c.local).map((c) => c.scannedFrames);
    expect(behind).toHaveLength(2);
    expect(behind.every((f) => f?.sampled === 8)).toBe(true);
    expect(detail.explanation.top.find((c) => c.label === 'sexual')?.scannedFrames?.frames).toEqual([expect.objectContaining({ seconds: 3.5, label: 'sexual' })]);
    const explained = await runCli(['explain', `sha256:${body.hashes.sha256}`, '--server', b.url], { VOUCH_ADMIN_TOKEN: TOKEN });
    expect(explained.code, explained.stderr).toBe(0);
    expect(explained.stdout).toMatch(/frames behind it \(of 8 sampled\): 3\.5 s sexual/);

    // The same video again is decided from our own scan: no second scan.
    const again = await fetch(`${b.url}/api/v1/media?wait=1`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/octet-stream' }, body: video });
    const againBody = (await again.json()) as Record<string, unknown>;
    expect(againBody).toMatchObject({ outcome: body.outcome, label: 'sexual', scanned: false, scan_pending: false });
    expect(await scansOf(b)).toBe(scansBefore + 2);
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
    const copyPath = await reencode(original, scratch.dir, 'copy', { codec: 'vp9', width: 480, height: 270, bitrate: '300k' });
    const copy = await readFile(copyPath);
    const scansBefore = await scansOf(b);
    const res = await pictrs(b, copy);
    const body = (await res.json()) as Record<string, unknown>;
    expect(res.status, JSON.stringify(body)).toBe(406);
    // Decided from A's verdict: no scan ran and none is pending on B.
    expect(body).toMatchObject({ outcome: 'block', label: 'sexual', scanned: false, scan_pending: false });
    const detail = (await admin(b, 'GET', `/decisions/${body.decision_id}`)).body as {
      explanation: { decidedBy: string; top: Array<{ issuer: string; tier: string; videoMatch?: { queryMatchPercent: number; comparedMatchPercent: number } }> };
    };
    expect(detail.explanation.decidedBy).toBe('peers');
    expect(detail.explanation.top[0]).toMatchObject({ issuer: a.actor, tier: 'strict' });
    // The explanation shows HMA's shares: most of the copy's frames are the original's, and back.
    expect(detail.explanation.top[0].videoMatch?.queryMatchPercent).toBeGreaterThanOrEqual(80);
    expect(detail.explanation.top[0].videoMatch?.comparedMatchPercent).toBeGreaterThan(0);
    // `vouch explain` on the file: B has recorded it, so its frames are looked up too.
    const explained = await runCli(['explain', copyPath, '--server', b.url], { VOUCH_ADMIN_TOKEN: TOKEN });
    expect(explained.code, explained.stderr).toBe(0);
    expect(explained.stdout).toMatch(/^BLOCK \(sexual\)/);
    expect(explained.stdout).toMatch(/video match: \d+\.\d% of this video's frames, \d+\.\d% of that one's/);
    // B has a scanner, and did not call it.
    expect(await scansOf(b)).toBe(scansBefore);
  }, 240_000);

  it('pull on miss asks a followed peer about an unknown video by SHA-256 and MD5, and its verdict spares the scan', async () => {
    const peer = new FakePeer();
    await peer.start('127.0.0.73');
    cleanups.push(() => peer.stop());
    expect((await admin(b, 'POST', '/peers/follow', { target: peer.actor })).status).toBe(202);
    const followed = await eventually(async () => peer.received.find((activity) => activity.type === 'Follow'), 15_000, 'the Follow');
    expect((await peer.post(`${b.url}/actor/inbox`, peer.activity('Accept', followed))).status).toBe(202);
    expect((await admin(b, 'PUT', '/trust', { peer: peer.actor, abuse: 0.9, ok: 0.9 })).status).toBe(200);
    expect((await admin(b, 'POST', '/peers/pull', { actor: peer.actor, enabled: true })).status).toBe(200);
    // No random spot check (2 % by default) in this deterministic test.
    const { policy } = (await admin(b, 'GET', '/policy')).body as { policy: Record<string, unknown> };
    expect((await admin(b, 'PUT', '/policy', { ...policy, version: 'no-spot-checks', spotCheckShare: 0 })).status).toBe(200);

    const video = await readFile(await videoOfFrames(scratch.dir, 'pulled', distinctFrames(7_900, 4, W, H), W, H, { codec: 'vp9' }));
    const md5 = createHash('md5').update(video).digest('hex');
    const sha256 = createHash('sha256').update(video).digest('hex');
    // The peer knows the file by its MD5 only, as an HMA hash list would name it.
    peer.lookupVerdicts = [peer.signObject(peer.verdict([{ algorithm: 'md5', digest: md5 }], { label: 'spam', method: 'human', confidence: 0.95 }))];
    const scansBefore = await scansOf(b);
    const res = await fetch(`${b.url}/api/v1/media?wait=1`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/octet-stream' }, body: video });
    const body = (await res.json()) as Record<string, unknown>;
    expect(res.status, JSON.stringify(body)).toBe(200);
    expect(peer.lookups).toHaveLength(1);
    const asked = new URLSearchParams(peer.lookups[0].split('?')[1]);
    expect(Object.fromEntries(asked)).toEqual({ sha256, md5 });
    expect(body).toMatchObject({ outcome: 'block', label: 'spam', scanned: false, scan_pending: false, explanation: { decidedBy: 'peers' } });
    expect(await scansOf(b)).toBe(scansBefore);
    // Asked by MD5 alone, B explains the same decision.
    const explained = await runCli(['explain', `md5:${md5}`, '--server', b.url, '--json'], { VOUCH_ADMIN_TOKEN: TOKEN });
    expect(explained.code, explained.stderr).toBe(0);
    expect(JSON.parse(explained.stdout)).toMatchObject({ outcome: 'block', label: 'spam' });
    peer.lookupVerdicts = [];
  }, 120_000);

  it('a video from another instance nobody waits on is scanned late, and the decision after it recorded', async () => {
    const { policy } = (await admin(b, 'GET', '/policy')).body as { policy: Record<string, unknown> };
    expect((await admin(b, 'PUT', '/policy', { ...policy, version: 'defer-1s', deferScanSeconds: 1 })).status).toBe(200);
    const frames = tinted(distinctFrames(8_100, 4, W, H), GREEN);
    frames[1] = tinted([syntheticPixels(8_110, W, H)], RED)[0];
    const video = await readFile(await videoOfFrames(scratch.dir, 'remote', frames, W, H, { codec: 'h264' }));
    const scansBefore = await scansOf(b);
    const res = await fetch(`${b.url}/api/v1/media?remote=1`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/octet-stream' }, body: video });
    const body = (await res.json()) as { outcome: string; scan_pending: boolean; hashes: { sha256: string } };
    expect(body).toMatchObject({ outcome: 'unknown', scan_pending: true });
    // Due a second later, re-checked against peers' verdicts (none), then scanned.
    await eventually(async () => (await scansOf(b)) === scansBefore + 2, 60_000, 'the deferred scan');
    const after = await eventually(async () => {
      const { decisions } = (await admin(b, 'GET', '/decisions')).body as { decisions: Array<{ sha256: string; label: string | null; outcome: string }> };
      return decisions.find((d) => d.sha256 === body.hashes.sha256 && d.label === 'sexual');
    }, 30_000, 'the decision after the scan');
    expect(after.outcome).not.toBe('unknown');
  }, 120_000);

  it('refuses truncated, malformed and over-long videos with a 4xx and keeps nothing', async () => {
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
    expect(await keptAbout(b, [truncated, malformed, overLong])).toEqual({ decisions: [], quarantined: [] });
    // (B's scanner's ONNX Runtime keeps files of its own in TMPDIR: only video hashing's are checked.)
    expect((await readdir(b.tmp)).filter((name) => name.startsWith('vouch-video-'))).toEqual([]);
  }, 180_000);
});

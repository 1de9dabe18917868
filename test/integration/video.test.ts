// vPDQ through the real system ffmpeg, on generated videos: frames hash as the images they show,
// re-encoded copies match by HMA's rule and unrelated videos do not, and hostile files (truncated,
// garbage, over the limits, giant declared frames, playlists naming other files) are refused with
// a typed error, quickly, leaving no temporary file.
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeVpdq, hashImage, hexHammingDistance, matchVpdq, normalizeRawFrame, parseVpdq, pdqHash, pdqToHex } from '../../shared/hashing/index.js';
import {
  DEFAULT_VIDEO_LIMITS,
  VIDEO_PIPELINE_ID,
  VideoRejectedError,
  hashVideoBytes,
  hashVideoFile,
  type VideoHashOptions,
  type VideoRejectionCode,
} from '../../server/video/index.js';
import { runCli } from '../helpers/process.js';
import { HAVE_FFMPEG, animation, distinctFrames, lavfiVideo, reencode, videoOfFrames, videoScratch } from '../helpers/videos.js';

const W = 320;
const H = 240;

async function refusal(f: () => Promise<unknown>): Promise<VideoRejectedError> {
  try {
    await f();
  } catch (err) {
    expect(err).toBeInstanceOf(VideoRejectedError);
    return err as VideoRejectedError;
  }
  throw new Error('expected the video to be refused');
}

async function expectRefused(bytes: Buffer, code: VideoRejectionCode, options?: VideoHashOptions): Promise<VideoRejectedError> {
  const started = Date.now();
  const err = await refusal(() => hashVideoBytes(bytes, options));
  expect(err.code, err.message).toBe(code);
  // Refusals are prompt (the limit is ffmpeg's deadline, 300 s by default): not a timing
  // assertion on speed, a check that nothing waited for the deadline.
  expect(Date.now() - started).toBeLessThan(DEFAULT_VIDEO_LIMITS.timeoutMs);
  return err;
}

/**
 * This file's own temporary folder (TMPDIR, which os.tmpdir() reads at each call): other test files
 * running at the same time make and remove `vouch-video-*` folders in the shared one.
 */
let privateTmp = '';
const sharedTmp = tmpdir();

async function leftoverTempDirs(): Promise<string[]> {
  return (await readdir(privateTmp)).filter((name) => name.startsWith('vouch-video-'));
}

async function pngPdq(pixels: Buffer, width: number, height: number): Promise<{ pdq: string; quality: number }> {
  const hashes = await hashImage(await sharp(pixels, { raw: { width, height, channels: 3 } }).png().toBuffer());
  return { pdq: hashes.pdq, quality: hashes.pdqQuality };
}

describe.skipIf(!HAVE_FFMPEG)('vPDQ video hashing through ffmpeg', () => {
  let scratch: { dir: string; remove: () => Promise<void> };
  /** 20 s, second k shows frame k; the 3rd second (2–3 s) shows the reference image. */
  let frames: Buffer[];
  let original: string;
  let tempBefore: string[];

  beforeAll(async () => {
    privateTmp = await mkdtemp(join(sharedTmp, 'vouch-test-tmp-'));
    process.env.TMPDIR = privateTmp;
    tempBefore = await leftoverTempDirs();
    scratch = await videoScratch();
    frames = distinctFrames(1700, 20, W, H);
    original = await videoOfFrames(scratch.dir, 'original', frames, W, H, { codec: 'h264', fps: 25 });
  });
  afterAll(async () => {
    await scratch?.remove();
    process.env.TMPDIR = sharedTmp;
    if (privateTmp) await rm(privateTmp, { recursive: true, force: true });
  });

  it('hashes each frame of a lossless video exactly as the image it shows (known answers)', async () => {
    const shown = frames.slice(0, 4);
    const path = await videoOfFrames(scratch.dir, 'lossless', shown, W, H, { codec: 'h264-lossless', fps: 5 });
    const hashes = await hashVideoFile(path);
    expect(hashes.frames.map((f) => f.seconds)).toEqual([0, 1, 2, 3]);
    expect(hashes.pipeline).toBe(VIDEO_PIPELINE_ID);
    expect(hashes.codec).toBe('h264');
    for (let k = 0; k < shown.length; k++) {
      const image = await pngPdq(shown[k], W, H);
      // Meta's known-answer rule for one image across implementations: distance <= 10 and quality
      // >= 80; frames of a lossless video are the image itself, so they agree exactly.
      expect(hexHammingDistance(hashes.frames[k].pdq, image.pdq), `frame ${k}`).toBe(0);
      expect(hashes.frames[k].quality).toBe(image.quality);
      expect(hashes.frames[k].quality).toBeGreaterThanOrEqual(80);
    }
  });

  it("applies the video's display rotation, as EXIF orientation is applied to photos", async () => {
    const lossless = await videoOfFrames(scratch.dir, 'upright', frames.slice(0, 1), W, H, { codec: 'h264-lossless', fps: 5 });
    const rotated = join(scratch.dir, 'rotated.mp4');
    await promisify(execFile)('ffmpeg', ['-nostdin', '-loglevel', 'error', '-y', '-i', lossless, '-c', 'copy', '-metadata:s:v:0', 'rotate=90', rotated]);
    const [frame] = (await hashVideoFile(rotated)).frames;
    // ffmpeg 5.1 stores `rotate=90` as a display matrix turning the picture 90° counter-clockwise
    // (ffprobe: rotation 90); players show it so, and so is it hashed.
    const shown = await hashImage(await sharp(frames[0], { raw: { width: W, height: H, channels: 3 } }).rotate(270).png().toBuffer());
    const upright = await pngPdq(frames[0], W, H);
    expect(hexHammingDistance(frame.pdq, shown.pdq)).toBe(0);
    expect(hexHammingDistance(frame.pdq, upright.pdq)).toBeGreaterThan(31);
  });

  it('finds the reference image in the 3rd second of a 20 s H.264 video, with MD5 and SHA-256 of the file', async () => {
    const hashes = await hashVideoFile(original);
    expect(hashes.frames).toHaveLength(20);
    expect(hashes.durationSeconds).toBeCloseTo(20, 0);
    expect(hashes.md5).toMatch(/^[0-9a-f]{32}$/);
    expect(hashes.sha256).toMatch(/^[0-9a-f]{64}$/);
    const reference = await pngPdq(frames[2], W, H);
    const third = hashes.frames[2];
    expect(third.seconds).toBe(2);
    expect(hexHammingDistance(third.pdq, reference.pdq)).toBeLessThanOrEqual(10);
    // The closest frame to the reference is that one, and every other second is far from it.
    const distances = hashes.frames.map((f) => hexHammingDistance(f.pdq, reference.pdq));
    expect(distances.filter((d) => d <= 31)).toHaveLength(1);
    // Bytes and file give the same answer.
    const fromBytes = await hashVideoBytes(await readFile(original));
    expect(fromBytes).toEqual(hashes);
  });

  it('matches re-encoded copies (VP9 WebM, smaller, lower bitrate; H.264 at 720p and 30 fps) both ways, and not an unrelated video', async () => {
    const reference = await hashVideoFile(original);
    const vp9 = await hashVideoFile(await reencode(original, scratch.dir, 'copy-vp9', { codec: 'vp9', width: 240, height: 180, bitrate: '150k' }));
    expect(vp9.codec).toBe('vp9');
    expect(vp9.container).toMatch(/webm/);
    const hd = await hashVideoFile(await reencode(original, scratch.dir, 'copy-720p', { codec: 'h264', width: 1280, height: 720, fps: 30, bitrate: '800k' }));
    for (const copy of [vp9, hd]) {
      expect(copy.md5).not.toBe(reference.md5);
      const forward = matchVpdq(copy.frames, reference.frames);
      expect(forward.isMatch, JSON.stringify(forward)).toBe(true);
      expect(forward.queryMatchPercent).toBeGreaterThanOrEqual(90);
      expect(matchVpdq(reference.frames, copy.frames).isMatch).toBe(true);
    }
    const unrelated = await hashVideoFile(await videoOfFrames(scratch.dir, 'unrelated', distinctFrames(9100, 20, W, H), W, H, { codec: 'h264' }));
    const miss = matchVpdq(unrelated.frames, reference.frames);
    expect(miss.isMatch).toBe(false);
    expect(miss.queryMatchPercent).toBeLessThan(20);
    // A 6 s clip of the original matches it (compared-match 0 %: a clip of a known video), while
    // the original does not match the clip (80 % of the query must be found).
    const clip = await hashVideoFile(await videoOfFrames(scratch.dir, 'clip', frames.slice(5, 11), W, H, { codec: 'vp9' }));
    expect(matchVpdq(clip.frames, reference.frames).isMatch).toBe(true);
    expect(matchVpdq(reference.frames, clip.frames).isMatch).toBe(false);
    // The frame list survives its wire form.
    expect(parseVpdq(encodeVpdq(reference.frames))).toEqual(reference.frames);
  });

  it('hashes animated GIF and WebP through sharp, one frame per second as shown', async () => {
    const shown = distinctFrames(4200, 3, W, H);
    for (const format of ['gif', 'webp'] as const) {
      // Each image for 500 ms: at 0 s image 0, at 1 s image 2, then the animation ends at 1.5 s.
      const bytes = await animation(format, shown, W, H, 500);
      const hashes = await hashVideoBytes(bytes);
      expect(hashes.container).toBe(format);
      expect(hashes.durationSeconds).toBe(1.5);
      expect(hashes.frames.map((f) => f.seconds)).toEqual([0, 1]);
      const expected = [shown[0], shown[2]];
      for (let k = 0; k < expected.length; k++) {
        const normalized = await normalizeRawFrame({ pixels: expected[k], width: W, height: H, channels: 3 });
        const pdq = pdqToHex(pdqHash(normalized.luma, normalized.width, normalized.height).hash);
        // GIF quantises to 256 colours: close, not equal; lossless WebP is exact.
        const d = hexHammingDistance(hashes.frames[k].pdq, pdq);
        expect(d, `${format} frame ${k}`).toBeLessThanOrEqual(format === 'webp' ? 0 : 16);
      }
    }
  });

  describe('refuses hostile or oversized input with a typed error', () => {
    it('truncated files: index at the end (moov missing) and index first (data missing)', async () => {
      const bytes = await readFile(original);
      await expectRefused(bytes.subarray(0, Math.floor(bytes.length / 2)), 'corrupt');
      const whole = await readFile(await reencode(original, scratch.dir, 'faststart', { codec: 'h264', faststart: true }));
      await expectRefused(whole.subarray(0, Math.floor(whole.length * 0.6)), 'corrupt');
    });

    it('garbage bytes, an empty file, text', async () => {
      const garbage = Buffer.alloc(64 * 1024);
      for (let i = 0; i < garbage.length; i++) garbage[i] = (i * 2654435761) >>> 24;
      await expectRefused(garbage, 'corrupt');
      await expectRefused(Buffer.alloc(0), 'empty');
      await expectRefused(Buffer.from('hello, this is not a video\n'), 'corrupt');
    });

    it('playlists and lists naming other files or URLs (HLS, concat, ffconcat)', async () => {
      const hls = '#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nfile:///etc/passwd\n#EXTINF:10,\nhttp://127.0.0.1:9/x.ts\n#EXT-X-ENDLIST\n';
      const errHls = await expectRefused(Buffer.from(hls), 'unsupported_format');
      expect(errHls.message).toMatch(/hls/);
      const errConcat = await expectRefused(Buffer.from("ffconcat version 1.0\nfile '/etc/passwd'\nfile 'http://127.0.0.1:9/x.mp4'\n"), 'unsupported_format');
      expect(errConcat.message).toMatch(/concat/);
      await expectRefused(Buffer.from('[playlist]\nFile1=http://127.0.0.1:9/x.mp4\n'), 'unsupported_format');
    });

    it('over the limits: bytes, duration, frames, pixels, streams', async () => {
      const bytes = await readFile(original);
      await expectRefused(bytes, 'too_large', { limits: { ...DEFAULT_VIDEO_LIMITS, maxBytes: bytes.length - 1 } });
      await expectRefused(bytes, 'too_long', { limits: { ...DEFAULT_VIDEO_LIMITS, maxDurationSeconds: 10 } });
      await expectRefused(bytes, 'too_many_frames', { limits: { ...DEFAULT_VIDEO_LIMITS, maxVideoFrames: 400 } });
      await expectRefused(bytes, 'too_many_pixels', { limits: { ...DEFAULT_VIDEO_LIMITS, maxPixels: W * H - 1 } });
      const streams = await lavfiVideo(scratch.dir, 'streams', 'testsrc2=s=64x48:d=1', { codec: 'h264' }, [
        '-f', 'lavfi', '-i', 'sine=d=1', '-f', 'lavfi', '-i', 'sine=d=1', '-f', 'lavfi', '-i', 'sine=d=1',
        '-map', '0', '-map', '1', '-map', '2', '-map', '3', '-c:a', 'aac',
      ]);
      await expectRefused(await readFile(streams), 'too_many_streams', { limits: { ...DEFAULT_VIDEO_LIMITS, maxStreams: 3 } });
      // Within the limit the same file hashes: its audio is never decoded.
      expect((await hashVideoBytes(await readFile(streams))).frames).toHaveLength(1);
      // An animation over the image frame limit.
      const gif = await animation('gif', distinctFrames(1, 5, 32, 24), 32, 24, 100);
      await expectRefused(gif, 'too_many_frames', { limits: { ...DEFAULT_VIDEO_LIMITS, maxFrames: 4 } });
    });

    it('tiny files declaring giant frames: in the container (WebM track 60000x60000), in the bitstream (VP8 keyframe 12000x12000)', async () => {
      const webm = await readFile(await lavfiVideo(scratch.dir, 'small', 'testsrc2=s=320x256:d=1', { codec: 'vp9' }));
      const container = patchMatroskaSize(webm, { width: 320, height: 256 }, { width: 60000, height: 60000 });
      const errContainer = await expectRefused(container, 'corrupt');
      expect(errContainer.message).toMatch(/60000x60000 is invalid/);
      expect(errContainer.message).not.toMatch(/0x[0-9a-f]{6,}/);
      // The container says 320x256 and passes the probe; the keyframe says 12000x12000 (144 Mpx,
      // over the 100 Mpx limit): ffmpeg's memory limit or our frame check stops it.
      const vp8 = await readFile(await lavfiVideo(scratch.dir, 'vp8', 'testsrc2=s=320x256:d=1', { codec: 'vp8' }));
      const keyframe = vp8.indexOf(Buffer.from([0x9d, 0x01, 0x2a, 0x40, 0x01, 0x00, 0x01]));
      expect(keyframe).toBeGreaterThan(0);
      const bomb = Buffer.from(vp8);
      bomb.writeUInt16LE(12000, keyframe + 3);
      bomb.writeUInt16LE(12000, keyframe + 5);
      const errBomb = await refusal(() => hashVideoBytes(bomb));
      expect(['too_costly', 'too_many_pixels']).toContain(errBomb.code);
    });

    it('a decode past its deadline or memory limit is killed and refused as too costly', async () => {
      const bytes = await readFile(original);
      await expectRefused(bytes, 'too_costly', { limits: { ...DEFAULT_VIDEO_LIMITS, timeoutMs: 1 } });
      await expectRefused(bytes, 'too_costly', { limits: { ...DEFAULT_VIDEO_LIMITS, memoryBytes: 16 * 2 ** 20 } });
    });

    it('without ffmpeg, video is refused with a clear error; animations (sharp) still hash', async () => {
      const bytes = await readFile(original);
      const missing = { tools: { ffmpeg: join(scratch.dir, 'no-such-ffmpeg') } };
      const err = await expectRefused(bytes, 'no_video_decoder', missing);
      expect(err.message).toMatch(/VOUCH_FFMPEG=.*no-such-ffmpeg is not an executable file/);
      const noPath = await expectRefused(bytes, 'no_video_decoder', { tools: { path: scratch.dir } });
      expect(noPath.message).toMatch(/ffmpeg is not on the PATH/);
      const gif = await animation('gif', distinctFrames(3, 2, 32, 24), 32, 24, 1000);
      expect((await hashVideoBytes(gif, missing)).frames).toHaveLength(2);
    });

    it('leaves no temporary file behind', async () => {
      expect(await leftoverTempDirs()).toEqual(tempBefore);
    });
  });

  it('`vouch hash --video` prints MD5, SHA-256 and the vPDQ wire form per file, and a JSON error for a bad one', async () => {
    const bad = join(scratch.dir, 'garbage.mp4');
    await writeFile(bad, 'not a video at all');
    const result = await runCli(['hash', '--video', original, bad], { VOUCH_VIDEO_FPS: '0.5' });
    expect(result.code).toBe(1);
    const [good, refused] = result.stdout.trim().split('\n').map((line) => JSON.parse(line));
    const direct = await hashVideoFile(original, { framesPerSecond: 0.5 });
    expect(good).toMatchObject({ file: original, md5: direct.md5, sha256: direct.sha256, frames_per_second: 0.5, pipeline: VIDEO_PIPELINE_ID, codec: 'h264' });
    expect(parseVpdq(good.vpdq)).toEqual(direct.frames);
    expect(good.vpdq).toHaveLength(10);
    expect(refused).toEqual({ file: bad, error: { code: 'corrupt', message: expect.stringMatching(/^not a readable video/) } });
    expect(result.stderr).toContain(`vouch hash: ${bad}: not a readable video`);
    const missing = await runCli(['hash', '--video', original], { VOUCH_FFMPEG: join(scratch.dir, 'no-ffmpeg') });
    expect(JSON.parse(missing.stdout).error.code).toBe('no_video_decoder');
    // Without --video, files that are all videos by content are hashed as videos.
    const sniffed = await runCli(['hash', original], { VOUCH_VIDEO_FPS: '0.5' });
    expect(sniffed.code).toBe(0);
    expect(JSON.parse(sniffed.stdout)).toMatchObject({ file: original, md5: direct.md5, sha256: direct.sha256 });
  });

  it('refuses settings out of range (frames per second, a duration the wire form cannot carry)', async () => {
    const bytes = await readFile(original);
    await expect(hashVideoBytes(bytes, { framesPerSecond: 0 })).rejects.toThrow(RangeError);
    await expect(hashVideoBytes(bytes, { framesPerSecond: 2, limits: { ...DEFAULT_VIDEO_LIMITS, maxDurationSeconds: 3600 } })).rejects.toThrow(/more than a vPDQ frame list holds/);
    // Two frames a second: 40 frames for 20 s, each second's image twice.
    const twice = await hashVideoBytes(bytes, { framesPerSecond: 2 });
    expect(twice.frames.length).toBe(40);
    expect(twice.frames[5].seconds).toBe(2.5);
    // A video-like name changes nothing: content decides.
    const named = join(scratch.dir, 'really.webm');
    await writeFile(named, bytes);
    expect((await hashVideoFile(named)).codec).toBe('h264');
  });
});

/**
 * Rewrites a Matroska file's PixelWidth and PixelHeight elements (IDs 0xB0, 0xBA, 2 bytes of data
 * each) from one size to another, in place: a small real file that declares a giant frame.
 */
function patchMatroskaSize(webm: Buffer, from: { width: number; height: number }, to: { width: number; height: number }): Buffer {
  const out = Buffer.from(webm);
  const patch = (id: number, old: number, value: number) => {
    const element = Buffer.from([id, 0x82, old >> 8, old & 0xff]);
    const at = out.indexOf(element);
    if (at < 0) throw new Error(`no element 0x${id.toString(16)} = ${old} found`);
    out.writeUInt16BE(value, at + 2);
  };
  patch(0xb0, from.width, to.width);
  patch(0xba, from.height, to.height);
  return out;
}

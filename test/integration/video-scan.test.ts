// The scanner classifies video: frames sampled evenly (capped) through the real confined ffmpeg (or
// sharp for GIF/WebP), classified by real ONNX models, one verdict per model per video with the
// frames behind it. The bundled nsfwjs model cannot be steered by generated frames, so the
// aggregation on real videos uses the mean-colour test model (test/helpers/models.ts: red frames
// are `sexual`, green `ok`, blue `gore`); the bundled model runs beside it for the verdict count.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDefaultClassifier, createOnnxClassifier, parseOnnxClassifierConfig, type Classification, type Classifier, type OnnxClassifierConfigInput } from '../../server/scanning/classifiers/index.js';
import { EXPLAINED_FRAMES, aggregateFrames, classifyVideo } from '../../server/scanning/video-scan.js';
import { scanMedia } from '../../server/scanning/scanner.js';
import { VideoRejectedError } from '../../server/video/index.js';
import { sampleVideoFrames } from '../../server/video/frames.js';
import { previewStill } from '../../server/scanning/preview-still.js';
import sharp from 'sharp';
import { meanColourConfig, meanColourModel } from '../helpers/models.js';
import { syntheticPng } from '../helpers/images.js';
import { HAVE_FFMPEG, animation, videoOfFrames, videoScratch } from '../helpers/videos.js';

const W = 160;
const H = 120;

function solid(r: number, g: number, b: number): Buffer {
  const px = Buffer.alloc(W * H * 3);
  for (let i = 0; i < W * H; i++) px.set([r, g, b], i * 3);
  return px;
}
const GREEN = solid(0, 200, 0);
const RED = solid(220, 0, 0);
const BLUE = solid(0, 0, 220);

function classification(label: Classification['label'], confidence: number): Classification {
  return { label, confidence, scores: { [label]: confidence } };
}

describe('aggregating frame classifications into one verdict', () => {
  it('one abusive frame makes the video abusive, at the highest score of that label', () => {
    const v = aggregateFrames([
      { seconds: 0.5, classification: classification('ok', 0.99) },
      { seconds: 1.5, classification: classification('sexual', 0.7) },
      { seconds: 2.5, classification: classification('ok', 0.98) },
      { seconds: 3.5, classification: classification('sexual', 0.9) },
    ]);
    expect(v.label).toBe('sexual');
    expect(v.confidence).toBe(0.9);
    expect(v.scannedFrames).toEqual({
      sampled: 4,
      frames: [
        { seconds: 3.5, label: 'sexual', confidence: 0.9 },
        { seconds: 1.5, label: 'sexual', confidence: 0.7 },
      ],
    });
  });

  it('between two abuse labels the highest-scoring frame decides, and only its label\'s frames are named', () => {
    const v = aggregateFrames([
      { seconds: 0, classification: classification('gore', 0.6) },
      { seconds: 1, classification: classification('sexual', 0.95) },
    ]);
    expect(v.label).toBe('sexual');
    expect(v.scannedFrames.frames).toEqual([{ seconds: 1, label: 'sexual', confidence: 0.95 }]);
  });

  it('a video of ok frames is ok at its least clear frame, which the explanation names', () => {
    const v = aggregateFrames([
      { seconds: 0, classification: classification('ok', 0.99) },
      { seconds: 1, classification: classification('ok', 0.61) },
      { seconds: 2, classification: classification('ok', 0.8) },
    ]);
    expect(v).toEqual({
      label: 'ok',
      confidence: 0.61,
      scannedFrames: {
        sampled: 3,
        frames: [
          { seconds: 1, label: 'ok', confidence: 0.61 },
          { seconds: 2, label: 'ok', confidence: 0.8 },
          { seconds: 0, label: 'ok', confidence: 0.99 },
        ],
      },
    });
  });

  it('names at most EXPLAINED_FRAMES frames', () => {
    const frames = Array.from({ length: 12 }, (_, i) => ({ seconds: i, classification: classification('gore', 0.5 + i / 100) }));
    const v = aggregateFrames(frames);
    expect(v.scannedFrames.sampled).toBe(12);
    expect(v.scannedFrames.frames.map((f) => f.seconds)).toEqual([11, 10, 9, 8, 7].slice(0, EXPLAINED_FRAMES));
  });

  it('refuses an empty frame list', () => {
    expect(() => aggregateFrames([])).toThrow(RangeError);
  });
});

describe.skipIf(!HAVE_FFMPEG)('classifying generated videos', () => {
  let scratch: { dir: string; remove: () => Promise<void> };
  let colour: Classifier;
  let bundled: Classifier;
  beforeAll(async () => {
    scratch = await videoScratch();
    await writeFile(join(scratch.dir, 'mean-nchw.onnx'), meanColourModel('NCHW', 'batch'));
    colour = await createOnnxClassifier(parseOnnxClassifierConfig(meanColourConfig() as OnnxClassifierConfigInput, scratch.dir));
    bundled = await createDefaultClassifier();
  }, 60_000);
  afterAll(async () => {
    await colour?.close();
    await bundled?.close();
    await scratch?.remove();
  });

  it('a flagged second among benign ones: one verdict per model, the flagged frame named with its time', async () => {
    // Second 3 (3 s to 4 s) is red; the 8 frames are taken at 0.5 s, 1.5 s, …, 7.5 s.
    const path = await videoOfFrames(scratch.dir, 'one-red', [GREEN, GREEN, GREEN, RED, GREEN, GREEN, GREEN, GREEN], W, H, { codec: 'h264' });
    const verdicts = await classifyVideo(await readFile(path), [colour, bundled]);
    expect(verdicts).toHaveLength(2);
    const [byColour, byBundled] = verdicts;
    expect(byColour.label).toBe('sexual');
    expect(byColour.confidence).toBeGreaterThan(0.9);
    expect(byColour.scannedFrames.sampled).toBe(8);
    expect(byColour.scannedFrames.frames).toHaveLength(1);
    expect(byColour.scannedFrames.frames[0]).toMatchObject({ seconds: 3.5, label: 'sexual' });
    // The bundled model judges the same 8 frames (its judgement of flat colours is not the point).
    expect(byBundled.scannedFrames.sampled).toBe(8);
    expect(['ok', 'sexual']).toContain(byBundled.label);
  }, 60_000);

  it('an all-benign video is ok', async () => {
    const path = await videoOfFrames(scratch.dir, 'green', [GREEN, GREEN, GREEN, GREEN], W, H, { codec: 'vp9' });
    const [v] = await classifyVideo(await readFile(path), [colour]);
    expect(v.label).toBe('ok');
    expect(v.scannedFrames.sampled).toBe(4);
  }, 60_000);

  it('samples evenly and at most maxFrames: 20 s gives 16 frames at the middles of 16 equal parts', async () => {
    const path = await videoOfFrames(scratch.dir, 'long', Array.from({ length: 20 }, (_, i) => (i % 2 ? GREEN : BLUE)), W, H, { codec: 'h264', fps: 5 });
    const sampled = await sampleVideoFrames(await readFile(path));
    expect(sampled.durationSeconds).toBeCloseTo(20, 0);
    expect(sampled.frames).toHaveLength(16);
    const step = sampled.durationSeconds / 16;
    sampled.frames.forEach((f, k) => expect(f.seconds).toBeCloseTo((k + 0.5) * step, 2));
    expect(sampled.frames.every((f) => f.width === W && f.height === H && f.rgb.length === W * H * 3)).toBe(true);
    // Configurable cap, and a frame shows what the video shows then (blue seconds are even).
    const four = await sampleVideoFrames(await readFile(path), { maxFrames: 4 });
    expect(four.frames.map((f) => f.seconds)).toEqual([2.5, 7.5, 12.5, 17.5].map((s) => Math.round(s * (sampled.durationSeconds / 20) * 1000) / 1000));
    const [first] = four.frames;
    expect(first.rgb[2]).toBeGreaterThan(150); // 2.5 s: blue
  }, 90_000);

  it('frames are scaled down to maxSide in the decoder', async () => {
    const path = await videoOfFrames(scratch.dir, 'big', [GREEN, GREEN], W, H, { codec: 'h264', width: 640, height: 480 });
    const { frames } = await sampleVideoFrames(await readFile(path), { maxSide: 64 });
    expect(frames.every((f) => f.width === 64 && f.height === 48)).toBe(true);
  }, 60_000);

  it('an animated GIF and WebP are classified by their frames too', async () => {
    for (const format of ['gif', 'webp'] as const) {
      const bytes = await animation(format, [GREEN, GREEN, BLUE, GREEN], W, H, 1000);
      const [v] = await classifyVideo(bytes, [colour]);
      expect(v.label, format).toBe('gore');
      expect(v.scannedFrames.frames.map((f) => f.seconds), format).toEqual([2.5]);
    }
  }, 60_000);

  it('scanMedia: a video yields results with frames, an image without', async () => {
    const path = await videoOfFrames(scratch.dir, 'scan', [GREEN, RED], W, H, { codec: 'vp9' });
    const [video] = await scanMedia(await readFile(path), [colour]);
    expect(video).toMatchObject({ label: 'sexual', classifier: { name: 'test-mean-colour', version: '1' }, scannedFrames: { sampled: 2 } });
    const [image] = await scanMedia(await syntheticPng(1), [colour]);
    expect(image.scannedFrames).toBeUndefined();
  }, 60_000);

  it('a corrupt or truncated video is a VideoRejectedError, not a crash', async () => {
    const path = await videoOfFrames(scratch.dir, 'whole', [GREEN, RED, GREEN], W, H, { codec: 'h264' });
    const whole = await readFile(path);
    for (const bytes of [whole.subarray(0, Math.floor(whole.length / 2)), Buffer.concat([whole.subarray(0, 64), Buffer.alloc(4096, 0x5a)])]) {
      const err = await classifyVideo(bytes, [colour]).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(VideoRejectedError);
      expect((err as VideoRejectedError).code).toBe('corrupt');
    }
  }, 60_000);

  it('the preview still of an MP4, a WebM and a GIF is the middle frame, decoded; an image is itself', async () => {
    // 3 s: green, red, green; the middle frame (1.5 s) is red.
    const mp4 = await readFile(await videoOfFrames(scratch.dir, 'still', [GREEN, RED, GREEN], W, H, { codec: 'h264' }));
    const webm = await readFile(await videoOfFrames(scratch.dir, 'still', [GREEN, RED, GREEN], W, H, { codec: 'vp9' }));
    const gif = await animation('gif', [GREEN, RED, GREEN], W, H, 1000);
    for (const [name, bytes] of [['mp4', mp4], ['webm', webm], ['gif', gif]] as const) {
      const still = await previewStill(bytes);
      expect(still.kind, name).toBe('video-frame');
      expect(still.seconds, name).toBeCloseTo(1.5, 1);
      const { data, info } = await sharp(still.image).raw().toBuffer({ resolveWithObject: true });
      expect([info.width, info.height], name).toEqual([W, H]);
      expect(data[0], name).toBeGreaterThan(150); // red
      expect(data[1], name).toBeLessThan(60);
    }
    const png = await syntheticPng(2);
    expect(await previewStill(png)).toEqual({ image: png, kind: 'image' });
  }, 60_000);

  it('a video that cannot be decoded previews as a placeholder still, not an error', async () => {
    const mp4 = await readFile(await videoOfFrames(scratch.dir, 'broken', [GREEN, RED, GREEN], W, H, { codec: 'h264' }));
    const still = await previewStill(Buffer.concat([mp4.subarray(0, 64), Buffer.alloc(2048, 0x5a)]));
    expect(still.kind).toBe('placeholder');
    const meta = await sharp(still.image).metadata();
    expect(meta.format).toBe('png');
    // Without ffmpeg at all: the same placeholder (no_video_decoder), images unaffected.
    const missing = await previewStill(mp4, { tools: { ffmpeg: '/nonexistent/ffmpeg' } });
    expect(missing.kind).toBe('placeholder');
  }, 60_000);
});

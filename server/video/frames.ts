// A few frames spread evenly across a video, as RGB pixels: what the scanner's classifiers and the
// console's blurred still see of a video. Decoded like hashing decodes (probe and limits first, the
// confined ffmpeg for MP4/MOV and WebM/MKV, sharp for animated GIF/WebP), but only `maxFrames`
// frames, scaled down in the decoder, so that classifying a long video costs a handful of frames.
//
// Frame k of N is the one shown at the middle of the k-th of N equal parts of the video:
// (k + 0.5) x duration / N. Midpoints rather than 0, D/N, …: the first frame of a video is often
// a fade-in or a title card, and a single sample (the preview still) lands in the middle.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { animatedFormatOf, decodeAnimationPage, pageAt, readAnimation } from './animated.js';
import { decodeFrames } from './decode.js';
import { VideoRejectedError } from './errors.js';
import { DEFAULT_VIDEO_LIMITS, type VideoLimits } from './limits.js';
import { probeVideo } from './probe.js';
import { locateVideoTools, type VideoToolSettings } from './tools.js';

/** One sampled frame: 8-bit RGB, row-major, `width * height * 3` bytes, and when it is shown. */
export interface SampledFrame {
  seconds: number;
  rgb: Buffer;
  width: number;
  height: number;
}

export interface SampledVideo {
  durationSeconds: number;
  frames: SampledFrame[];
}

export interface FrameSampleOptions {
  /** Frames taken at most (default 16). */
  maxFrames?: number;
  /** Frames closer than this are not taken: a 5 s clip gives 5 frames, not 16 (default 1 s). */
  minSpacingSeconds?: number;
  /** Frames are scaled down to at most this on a side (default 1024, what classifiers get of images). */
  maxSide?: number;
  limits?: VideoLimits;
  tools?: VideoToolSettings;
}

export const DEFAULT_SAMPLED_FRAMES = 16;
/** Most frames one call may take, whatever it asks: they are all held in memory at once. */
export const MAX_SAMPLED_FRAMES = 64;
const DEFAULT_MAX_SIDE = 1024;

interface Sampling {
  maxFrames: number;
  minSpacingSeconds: number;
  maxSide: number;
  limits: VideoLimits;
}

function samplingOf(options: FrameSampleOptions): Sampling {
  const maxFrames = options.maxFrames ?? DEFAULT_SAMPLED_FRAMES;
  if (!Number.isSafeInteger(maxFrames) || maxFrames < 1 || maxFrames > MAX_SAMPLED_FRAMES) {
    throw new RangeError(`maxFrames must be an integer 1..${MAX_SAMPLED_FRAMES}, got ${maxFrames}`);
  }
  const minSpacingSeconds = options.minSpacingSeconds ?? 1;
  if (!(minSpacingSeconds > 0)) throw new RangeError(`minSpacingSeconds must be positive, got ${minSpacingSeconds}`);
  const maxSide = options.maxSide ?? DEFAULT_MAX_SIDE;
  if (!Number.isSafeInteger(maxSide) || maxSide < 16) throw new RangeError(`maxSide must be an integer of 16 or more, got ${maxSide}`);
  return { maxFrames, minSpacingSeconds, maxSide, limits: options.limits ?? DEFAULT_VIDEO_LIMITS };
}

/** How many frames a video of this length gets: one per `minSpacingSeconds`, at least 1, at most `maxFrames`. */
export function sampleCount(durationSeconds: number, maxFrames: number, minSpacingSeconds: number): number {
  return Math.max(1, Math.min(maxFrames, Math.floor(durationSeconds / minSpacingSeconds)));
}

/** When the k-th of `count` frames is shown, to the millisecond. */
export function sampleTime(k: number, count: number, durationSeconds: number): number {
  return Math.round(((k + 0.5) * durationSeconds * 1000) / count) / 1000;
}

/**
 * Samples frames of video bytes (MP4/MOV, WebM/MKV, animated GIF/WebP). Throws a
 * VideoRejectedError (with hashing's codes) for a video that is refused or cannot be decoded.
 * A video container is written to a private temporary directory for ffmpeg, removed before returning.
 */
export async function sampleVideoFrames(bytes: Buffer, options: FrameSampleOptions = {}): Promise<SampledVideo> {
  const sampling = samplingOf(options);
  const { limits } = sampling;
  if (bytes.length === 0) throw new VideoRejectedError('empty', 'video is empty (0 bytes)');
  if (bytes.length > limits.maxBytes) throw new VideoRejectedError('too_large', `video is ${bytes.length} bytes, limit ${limits.maxBytes}`);
  if (animatedFormatOf(bytes.subarray(0, 12))) return sampleAnimation(bytes, sampling);
  const tools = locateVideoTools(options.tools);
  const dir = await mkdtemp(join(tmpdir(), 'vouch-video-'));
  try {
    const path = join(dir, 'input');
    await writeFile(path, bytes, { mode: 0o600, flag: 'wx' });
    const probed = await probeVideo(tools, path, limits);
    const count = sampleCount(probed.durationSeconds, sampling.maxFrames, sampling.minSpacingSeconds);
    const step = probed.durationSeconds / count;
    const frames: SampledFrame[] = [];
    // Rational rate in milliseconds, exact: ffmpeg's fps filter takes "num/den".
    const stepMs = Math.max(1, Math.round(step * 1000));
    await decodeFrames(
      tools,
      path,
      limits,
      { framesPerSecond: `1000/${stepMs}`, maxFrames: count, maxSide: sampling.maxSide, startSeconds: step / 2 },
      async (frame, k) => {
        frames.push({ seconds: sampleTime(k, count, probed.durationSeconds), rgb: frame.pixels, width: frame.width, height: frame.height });
      },
    );
    return { durationSeconds: probed.durationSeconds, frames };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function sampleAnimation(bytes: Buffer, sampling: Sampling): Promise<SampledVideo> {
  const { limits, maxSide } = sampling;
  const animation = await readAnimation(bytes, limits);
  const { info } = animation;
  const count = sampleCount(info.durationSeconds, sampling.maxFrames, sampling.minSpacingSeconds);
  const deadline = Date.now() + limits.timeoutMs;
  const frames: SampledFrame[] = [];
  for (let k = 0; k < count; k++) {
    if (Date.now() > deadline) throw new VideoRejectedError('too_costly', `decoding took longer than ${limits.timeoutMs / 1000} s`);
    const seconds = sampleTime(k, count, info.durationSeconds);
    const { pixels, channels } = await decodeAnimationPage(bytes, animation, pageAt(animation, seconds), limits);
    frames.push({ seconds, ...(await toRgb(pixels, info.width, info.height, channels, maxSide)) });
  }
  return { durationSeconds: info.durationSeconds, frames };
}

/** RGB(A) pixels to RGB at most `maxSide` on a side; transparency over white, as images are. */
async function toRgb(pixels: Buffer, width: number, height: number, channels: 3 | 4, maxSide: number): Promise<{ rgb: Buffer; width: number; height: number }> {
  const { data, info } = await sharp(pixels, { raw: { width, height, channels } })
    .flatten({ background: '#ffffff' })
    .resize({ width: maxSide, height: maxSide, fit: 'inside', withoutEnlargement: true })
    .removeAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  return { rgb: data, width: info.width, height: info.height };
}

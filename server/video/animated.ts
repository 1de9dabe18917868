// Frames of animated GIF and WebP, decoded by sharp (libvips) rather than ffmpeg: Debian 12's
// ffmpeg 5.1 cannot decode animated WebP at all ("image data not found"), and sharp already reads
// both under the image limits (bytes, pixels per frame, frame count checked on the header).
// Sampling follows ffmpeg's `fps` filter: at each tick k / fps, the page shown then.
import sharp, { type Metadata } from 'sharp';
import type { VpdqFrame } from '../../shared/hashing/index.js';
import { hashRgbFrame, sampleSeconds } from './decode.js';
import { VideoRejectedError } from './errors.js';
import { maxSampledFrames, type VideoLimits } from './limits.js';

export type AnimatedFormat = 'gif' | 'webp';

/** GIF87a/GIF89a, or a RIFF WEBP container. */
export function animatedFormatOf(head: Buffer): AnimatedFormat | undefined {
  if (head.length >= 6 && /^GIF8[79]a$/.test(head.subarray(0, 6).toString('latin1'))) return 'gif';
  if (head.length >= 12 && head.subarray(0, 4).toString('latin1') === 'RIFF' && head.subarray(8, 12).toString('latin1') === 'WEBP') return 'webp';
  return undefined;
}

/**
 * Browsers show a GIF frame of 0–10 ms for 100 ms (a "0 delay" GIF would otherwise last no time
 * at all); WebP players do the same for 0. Applied to both.
 */
function shownMs(delay: number | undefined): number {
  return delay === undefined || delay <= 10 ? 100 : delay;
}

export interface AnimatedInfo {
  format: AnimatedFormat;
  width: number;
  height: number;
  pages: number;
  durationSeconds: number;
}

function decodeError(err: unknown): VideoRejectedError {
  const first = (err instanceof Error ? err.message : String(err)).split('\n')[0].replace(/:\s*$/, '').trim();
  return new VideoRejectedError('corrupt', `not a decodable animation: ${first || 'decoder error'}`, { cause: err });
}

/** An animation's header read and checked against the limits, with when each page starts. */
export interface Animation {
  info: AnimatedInfo;
  /** When each page starts, in ms. */
  starts: number[];
}

/** Reads an animated GIF/WebP's header (already within limits.maxBytes) and checks it against the limits. */
export async function readAnimation(bytes: Buffer, limits: VideoLimits): Promise<Animation> {
  let meta: Metadata;
  try {
    meta = await sharp(bytes, { limitInputPixels: false, failOn: 'error', pages: -1 }).metadata();
  } catch (err) {
    throw decodeError(err);
  }
  const format = meta.format === 'gif' || meta.format === 'webp' ? meta.format : undefined;
  if (!format) throw new VideoRejectedError('unsupported_format', `format '${meta.format}' is not an animation`);
  const width = meta.width;
  const height = meta.pageHeight ?? meta.height;
  if (!(width > 0 && height > 0)) throw new VideoRejectedError('corrupt', `the animation declares a ${width}x${height} frame`);
  if (width * height > limits.maxPixels) {
    throw new VideoRejectedError('too_many_pixels', `animation frames are ${width}x${height} = ${width * height} pixels, limit ${limits.maxPixels}`);
  }
  const pages = meta.pages ?? 1;
  if (pages > limits.maxFrames) throw new VideoRejectedError('too_many_frames', `the animation has ${pages} frames, limit ${limits.maxFrames}`);

  const starts: number[] = [];
  let total = 0;
  for (let p = 0; p < pages; p++) {
    starts.push(total);
    total += shownMs(meta.delay?.[p]);
  }
  const durationSeconds = total / 1000;
  if (durationSeconds > limits.maxDurationSeconds) {
    throw new VideoRejectedError('too_long', `the animation lasts ${Math.round(durationSeconds)} s, limit ${limits.maxDurationSeconds} s`);
  }
  return { info: { format, width, height, pages, durationSeconds }, starts };
}

/** The page shown at `seconds`: the last one starting at or before it. */
export function pageAt(animation: Animation, seconds: number): number {
  let page = 0;
  while (page + 1 < animation.starts.length && animation.starts[page + 1] <= seconds * 1000) page++;
  return page;
}

/** Decodes one page of an animation (as composed for display) to 8-bit RGB or RGBA. */
export async function decodeAnimationPage(bytes: Buffer, animation: Animation, page: number, limits: VideoLimits): Promise<{ pixels: Buffer; channels: 3 | 4 }> {
  const { width, height } = animation.info;
  try {
    const out = await sharp(bytes, { limitInputPixels: limits.maxPixels, failOn: 'error', page, pages: 1 })
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    const channels = out.info.channels;
    if (out.info.width !== width || out.info.height !== height || (channels !== 3 && channels !== 4)) {
      throw new VideoRejectedError('corrupt', `animation frame ${page} decodes as ${out.info.width}x${out.info.height}x${channels}`);
    }
    return { pixels: out.data, channels };
  } catch (err) {
    if (err instanceof VideoRejectedError) throw err;
    throw decodeError(err);
  }
}

/** Hashes the frames of an animated GIF/WebP held in memory (already within limits.maxBytes). */
export async function hashAnimatedFrames(bytes: Buffer, limits: VideoLimits, framesPerSecond: number): Promise<{ info: AnimatedInfo; frames: VpdqFrame[] }> {
  const animation = await readAnimation(bytes, limits);
  const { info } = animation;
  const totalMs = info.durationSeconds * 1000;
  const frames: VpdqFrame[] = [];
  const maxFrames = maxSampledFrames(limits, framesPerSecond);
  // Reaching page p decodes the pages before it (GIF frames draw over each other), so a long
  // animation of large frames costs more than its size says: the same deadline as ffmpeg's.
  const deadline = Date.now() + limits.timeoutMs;
  for (let k = 0; k < maxFrames; k++) {
    if (Date.now() > deadline) throw new VideoRejectedError('too_costly', `decoding took longer than ${limits.timeoutMs / 1000} s`);
    const seconds = sampleSeconds(k, framesPerSecond);
    if (k > 0 && seconds * 1000 >= totalMs) break;
    const { pixels, channels } = await decodeAnimationPage(bytes, animation, pageAt(animation, seconds), limits);
    const { pdq, quality } = await hashRgbFrame(pixels, info.width, info.height, channels);
    frames.push({ pdq, quality, seconds });
  }
  return { info, frames };
}

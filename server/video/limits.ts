// Limits and settings of video hashing, with their defaults and the reasons for them.
import { DEFAULT_IMAGE_LIMITS, VPDQ_MAX_FRAMES, type ImageLimits } from '../../shared/hashing/index.js';

/**
 * The image limits (bytes, pixels per frame; `maxFrames` bounds the pages of animated GIF/WebP as
 * it does for images) plus what only video has.
 */
export interface VideoLimits extends ImageLimits {
  /** Longest video accepted, in seconds. */
  maxDurationSeconds: number;
  /** Most frames a video may declare (containers count them; else duration x frame rate). */
  maxVideoFrames: number;
  /** Most streams in the container (video, audio, subtitles, data). */
  maxStreams: number;
  /** Wall-clock limit of each ffprobe and ffmpeg run. */
  timeoutMs: number;
  /** RLIMIT_DATA of each ffprobe and ffmpeg run. */
  memoryBytes: number;
  /** Decoder threads of each ffmpeg run. */
  threads: number;
}

/**
 * Defaults:
 *  - 10 minutes: PeerTube's and Lemmy's short clips and most Matrix videos; 600 frames at 1 fps,
 *    ~48 KB of frame list on the wire. Longer videos are refused, not hashed in part.
 *  - 36 000 frames: 10 minutes at 60 fps.
 *  - 16 streams: a video, a few audio and subtitle tracks; hundreds of streams only slow probing.
 *  - 300 s: hashing a minute of 720p30 H.264 took 6.2 s of CPU here (docs/benchmarks.md,
 *    "Video"), so 10 minutes of 1080p30 need ~140 s of CPU and of 1080p60 ~280 s: on 2 cores,
 *    the longest accepted videos finish; a decoder made to spin is stopped.
 *  - 512 MiB: with 2 threads, 1080p H.264 decodes within 128 MiB and 4K H.264 or VP9 within
 *    192 MiB (measured with prlimit); 8K needs more and is refused as too costly. A file declaring
 *    a giant frame fails to allocate instead of taking the machine's memory.
 *  - 2 decoder threads: memory and CPU per video do not grow with the machine's core count.
 */
export const DEFAULT_VIDEO_LIMITS: Readonly<VideoLimits> = Object.freeze({
  ...DEFAULT_IMAGE_LIMITS,
  maxDurationSeconds: 600,
  maxVideoFrames: 36_000,
  maxStreams: 16,
  timeoutMs: 300_000,
  memoryBytes: 512 * 2 ** 20,
  threads: 2,
});

/** Frames hashed per second of video: vPDQ's 1 by default, at most 5, at least one per 10 s. */
export const DEFAULT_FRAMES_PER_SECOND = 1;
export const MIN_FRAMES_PER_SECOND = 0.1;
export const MAX_FRAMES_PER_SECOND = 5;

/** Frames a video within the limits yields at `framesPerSecond` (one more for rounding at the end). */
export function maxSampledFrames(limits: VideoLimits, framesPerSecond: number): number {
  return Math.ceil(limits.maxDurationSeconds * framesPerSecond) + 1;
}

/** Throws a RangeError naming the first setting out of range (a programming or configuration error). */
export function checkVideoSettings(limits: VideoLimits, framesPerSecond: number): void {
  for (const key of ['maxBytes', 'maxPixels', 'maxFrames', 'maxVideoFrames', 'maxStreams', 'timeoutMs', 'memoryBytes', 'threads'] as const) {
    const v = limits[key];
    if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`VideoLimits.${key} must be a positive integer, got ${v}`);
  }
  if (!(limits.maxDurationSeconds > 0)) throw new RangeError(`VideoLimits.maxDurationSeconds must be positive, got ${limits.maxDurationSeconds}`);
  if (!(framesPerSecond >= MIN_FRAMES_PER_SECOND && framesPerSecond <= MAX_FRAMES_PER_SECOND)) {
    throw new RangeError(`frames per second must be ${MIN_FRAMES_PER_SECOND}..${MAX_FRAMES_PER_SECOND}, got ${framesPerSecond}`);
  }
  const frames = maxSampledFrames(limits, framesPerSecond);
  if (frames > VPDQ_MAX_FRAMES) {
    throw new RangeError(`${limits.maxDurationSeconds} s at ${framesPerSecond} fps is ${frames} frames, more than a vPDQ frame list holds (${VPDQ_MAX_FRAMES})`);
  }
}

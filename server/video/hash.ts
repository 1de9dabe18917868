// Hashing a video: MD5 and SHA-256 of the bytes (identity; HMA keys videos by MD5), and vPDQ, the
// PDQ of one frame per 1/fps seconds. MP4/MOV and WebM/MKV go through the confined system ffmpeg
// (probe first, limits checked, then decode); animated GIF and WebP through sharp.
import { createHash } from 'node:crypto';
import { mkdtemp, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VIDEO_PIPELINE_ID, type VpdqFrame } from '../../shared/hashing/vpdq.js';
import { animatedFormatOf, hashAnimatedFrames } from './animated.js';
import { hashVideoFrames } from './decode.js';
import { VideoRejectedError } from './errors.js';
import { DEFAULT_FRAMES_PER_SECOND, DEFAULT_VIDEO_LIMITS, checkVideoSettings, type VideoLimits } from './limits.js';
import { probeVideo } from './probe.js';
import { locateVideoTools, type VideoToolSettings } from './tools.js';

/** How frame lists are made (shared/hashing/vpdq.ts); verdicts about videos name it. */
export { VIDEO_PIPELINE_ID };

export interface VideoHashes {
  /** Hex MD5 of the bytes: the video identity HMA and its hash lists use. */
  md5: string;
  /** Hex SHA-256 of the bytes: Vouch's exact-match key, as for images. */
  sha256: string;
  /** vPDQ: one frame per 1 / framesPerSecond seconds, from 0 s. */
  frames: VpdqFrame[];
  framesPerSecond: number;
  /** VIDEO_PIPELINE_ID. */
  pipeline: string;
  /** `mov,mp4,…`, `matroska,webm`, `gif` or `webp`. */
  container: string;
  /** `h264`, `hevc`, `vp8`, `vp9`, `av1`, `gif` or `webp`. */
  codec: string;
  /** Frame size as stored. */
  width: number;
  height: number;
  durationSeconds: number;
  byteSize: number;
}

export interface VideoHashOptions {
  limits?: VideoLimits;
  framesPerSecond?: number;
  /** Where ffmpeg is (VOUCH_FFMPEG, VOUCH_FFPROBE, PATH). */
  tools?: VideoToolSettings;
}

function digests(bytes: Buffer): { md5: string; sha256: string } {
  return { md5: createHash('md5').update(bytes).digest('hex'), sha256: createHash('sha256').update(bytes).digest('hex') };
}

/** The file's first bytes, to tell animations from videos. */
async function headOf(path: string): Promise<Buffer> {
  const file = await open(path, 'r');
  try {
    const head = Buffer.alloc(12);
    const { bytesRead } = await file.read(head, 0, head.length, 0);
    return head.subarray(0, bytesRead);
  } finally {
    await file.close();
  }
}

/** MD5 and SHA-256 of a file, streamed. */
async function fileDigests(path: string): Promise<{ md5: string; sha256: string }> {
  const md5 = createHash('md5');
  const sha256 = createHash('sha256');
  const file = await open(path, 'r');
  try {
    for await (const chunk of file.createReadStream({ autoClose: false }) as AsyncIterable<Buffer>) {
      md5.update(chunk);
      sha256.update(chunk);
    }
  } finally {
    await file.close();
  }
  return { md5: md5.digest('hex'), sha256: sha256.digest('hex') };
}

function settings(options: VideoHashOptions): { limits: VideoLimits; framesPerSecond: number } {
  const limits = options.limits ?? DEFAULT_VIDEO_LIMITS;
  const framesPerSecond = options.framesPerSecond ?? DEFAULT_FRAMES_PER_SECOND;
  checkVideoSettings(limits, framesPerSecond);
  return { limits, framesPerSecond };
}

/**
 * Hashes a video file the server holds (written by it, or named by an operator). Throws a
 * VideoRejectedError with a stable code when the file is refused, or when ffmpeg is missing for
 * a format that needs it. Leaves nothing behind.
 */
export async function hashVideoFile(path: string, options: VideoHashOptions = {}): Promise<VideoHashes> {
  const { limits, framesPerSecond } = settings(options);
  const info = await stat(path);
  if (!info.isFile()) throw new VideoRejectedError('corrupt', 'not a regular file');
  if (info.size === 0) throw new VideoRejectedError('empty', 'video is empty (0 bytes)');
  if (info.size > limits.maxBytes) throw new VideoRejectedError('too_large', `video is ${info.size} bytes, limit ${limits.maxBytes}`);
  const animated = animatedFormatOf(await headOf(path));
  if (animated) return hashAnimatedBytes(await readFile(path), limits, framesPerSecond);
  const tools = locateVideoTools(options.tools);
  const probed = await probeVideo(tools, path, limits);
  const frames = await hashVideoFrames(tools, path, limits, framesPerSecond);
  return {
    ...(await fileDigests(path)),
    frames,
    framesPerSecond,
    pipeline: VIDEO_PIPELINE_ID,
    container: probed.container,
    codec: probed.codec,
    width: probed.width,
    height: probed.height,
    durationSeconds: probed.durationSeconds,
    byteSize: info.size,
  };
}

async function hashAnimatedBytes(bytes: Buffer, limits: VideoLimits, framesPerSecond: number): Promise<VideoHashes> {
  const { info, frames } = await hashAnimatedFrames(bytes, limits, framesPerSecond);
  return {
    ...digests(bytes),
    frames,
    framesPerSecond,
    pipeline: VIDEO_PIPELINE_ID,
    container: info.format,
    codec: info.format,
    width: info.width,
    height: info.height,
    durationSeconds: info.durationSeconds,
    byteSize: bytes.length,
  };
}

/**
 * Hashes video bytes from an upload. Videos are written to a private temporary directory for
 * ffmpeg (MP4 needs a seekable input: its index may sit at the end), removed before returning,
 * whatever happens.
 */
export async function hashVideoBytes(bytes: Buffer, options: VideoHashOptions = {}): Promise<VideoHashes> {
  const { limits, framesPerSecond } = settings(options);
  if (bytes.length === 0) throw new VideoRejectedError('empty', 'video is empty (0 bytes)');
  if (bytes.length > limits.maxBytes) throw new VideoRejectedError('too_large', `video is ${bytes.length} bytes, limit ${limits.maxBytes}`);
  if (animatedFormatOf(bytes.subarray(0, 12))) return hashAnimatedBytes(bytes, limits, framesPerSecond);
  // Before writing anything: without ffmpeg there is nothing to do with the file.
  locateVideoTools(options.tools);
  const dir = await mkdtemp(join(tmpdir(), 'vouch-video-'));
  try {
    const path = join(dir, 'input');
    await writeFile(path, bytes, { mode: 0o600, flag: 'wx' });
    return await hashVideoFile(path, { limits, framesPerSecond, tools: options.tools });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

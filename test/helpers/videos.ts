// Generated test videos, made with the system ffmpeg from generated frames (test/helpers/images.ts)
// or its lavfi sources: nothing but synthetic pixels. Locally a missing ffmpeg skips the video tests
// with a message; in CI (VOUCH_REQUIRE_SERVICES=1) it fails them.
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { booleanVariable } from '../../server/config/index.js';
import { syntheticPixels } from './images.js';

const run = promisify(execFile);

async function ffmpegInstalled(): Promise<boolean> {
  try {
    await run('ffmpeg', ['-hide_banner', '-version']);
    await run('ffprobe', ['-hide_banner', '-version']);
    return true;
  } catch (err) {
    if (booleanVariable(process.env, 'VOUCH_REQUIRE_SERVICES')) throw new Error(`ffmpeg required (VOUCH_REQUIRE_SERVICES=1) but not runnable: ${(err as Error).message}`);
    console.warn('ffmpeg/ffprobe not found: the video tests are not run');
    return false;
  }
}

export const HAVE_FFMPEG = await ffmpegInstalled();

/** How a generated video is encoded. */
export interface Encoding {
  /** `h264` (yuv420p, CRF), `h264-lossless` (RGB, lossless: decoded frames equal the images), `vp9`, `vp8`. */
  codec: 'h264' | 'h264-lossless' | 'vp9' | 'vp8';
  width?: number;
  height?: number;
  /** Frame rate of the video (the images are held for whole seconds). */
  fps?: number;
  /** e.g. `300k`; the codec's default quality when unset. */
  bitrate?: string;
  /** MP4 with its index (moov) first, as web uploads usually are. */
  faststart?: boolean;
}

function encoderArgs(e: Encoding): string[] {
  const rate = e.bitrate ? ['-b:v', e.bitrate] : [];
  const faststart = e.faststart ? ['-movflags', '+faststart'] : [];
  switch (e.codec) {
    case 'h264':
      return ['-c:v', 'libx264', '-preset', 'veryfast', '-pix_fmt', 'yuv420p', ...(e.bitrate ? rate : ['-crf', '23']), ...faststart];
    case 'h264-lossless':
      return ['-c:v', 'libx264rgb', '-preset', 'veryfast', '-qp', '0', '-pix_fmt', 'rgb24'];
    case 'vp8':
      return ['-c:v', 'libvpx', '-deadline', 'realtime', '-pix_fmt', 'yuv420p', '-b:v', e.bitrate ?? '200k'];
    case 'vp9':
      return ['-c:v', 'libvpx-vp9', '-deadline', 'realtime', '-cpu-used', '8', '-pix_fmt', 'yuv420p', ...(e.bitrate ? rate : ['-b:v', '0', '-crf', '40'])];
  }
}

function extensionOf(e: Encoding): string {
  return e.codec === 'vp9' || e.codec === 'vp8' ? 'webm' : 'mp4';
}

/** A folder for one test's files, and its removal. */
export async function videoScratch(): Promise<{ dir: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'vouch-test-video-'));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** Raw RGB frames as PNG files frame-000.png…, for ffmpeg's image2 input. */
async function writeFrames(dir: string, frames: readonly Buffer[], width: number, height: number): Promise<string> {
  for (let i = 0; i < frames.length; i++) {
    const png = await sharp(frames[i], { raw: { width, height, channels: 3 } }).png().toBuffer();
    await writeFile(join(dir, `frame-${String(i).padStart(3, '0')}.png`), png);
  }
  return join(dir, 'frame-%03d.png');
}

/**
 * A video showing each raw RGB frame (width x height) for one second, in order: second k (from
 * k s to k + 1 s) shows frames[k]. Written into `dir`; returns its path.
 */
export async function videoOfFrames(dir: string, name: string, frames: readonly Buffer[], width: number, height: number, e: Encoding): Promise<string> {
  const framesDir = await mkdtemp(join(dir, 'frames-'));
  const pattern = await writeFrames(framesDir, frames, width, height);
  const out = join(dir, `${name}.${extensionOf(e)}`);
  const scale = e.width && e.height ? [`scale=${e.width}:${e.height}`] : [];
  await run('ffmpeg', [
    '-nostdin', '-hide_banner', '-loglevel', 'error', '-y',
    '-framerate', '1', '-i', pattern,
    '-vf', [`fps=${e.fps ?? 25}`, ...scale].join(','),
    ...encoderArgs(e), out,
  ]);
  await rm(framesDir, { recursive: true, force: true });
  return out;
}

/** Re-encodes a video (another codec, size or bitrate), as a platform's transcoder would. */
export async function reencode(input: string, dir: string, name: string, e: Encoding): Promise<string> {
  const out = join(dir, `${name}.${extensionOf(e)}`);
  const filters = [...(e.fps ? [`fps=${e.fps}`] : []), ...(e.width && e.height ? [`scale=${e.width}:${e.height}`] : [])];
  await run('ffmpeg', ['-nostdin', '-hide_banner', '-loglevel', 'error', '-y', '-i', input, ...(filters.length ? ['-vf', filters.join(',')] : []), ...encoderArgs(e), out]);
  return out;
}

/** A video from one of ffmpeg's lavfi sources, e.g. `testsrc2=s=1280x720:r=30:d=60`. */
export async function lavfiVideo(dir: string, name: string, source: string, e: Encoding, extra: string[] = []): Promise<string> {
  const out = join(dir, `${name}.${extensionOf(e)}`);
  await run('ffmpeg', ['-nostdin', '-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', source, ...extra, ...encoderArgs(e), out]);
  return out;
}

/** `count` distinct photo-like frames (seeds seed, seed + 1, …). */
export function distinctFrames(seed: number, count: number, width: number, height: number): Buffer[] {
  return Array.from({ length: count }, (_, i) => syntheticPixels(seed + i, width, height));
}

/** An animated GIF or WebP of raw RGB frames, each shown `delayMs`. */
export async function animation(format: 'gif' | 'webp', frames: readonly Buffer[], width: number, height: number, delayMs: number): Promise<Buffer> {
  const tall = Buffer.concat(frames);
  const image = sharp(tall, { raw: { width, height: height * frames.length, channels: 3, pageHeight: height } });
  const options = { delay: frames.map(() => delayMs), loop: 0 };
  return format === 'gif' ? image.gif(options).toBuffer() : image.webp({ ...options, lossless: true }).toBuffer();
}

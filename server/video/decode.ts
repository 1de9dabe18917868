// Frames of an MP4/MOV/WebM/MKV video at a fixed rate, decoded by the confined ffmpeg, each hashed
// with PDQ after the image pipeline's normalisation.
//
// ffmpeg picks the frames (its `fps` filter rounding up: at each tick k / fps, the frame shown then,
// which is the frame Meta's reference vPDQ takes at constant frame rates: frame number k x fps
// of the video; checked on ThreatExchange's sample videos, docs/video.md), applies
// the display rotation, converts to 8-bit RGB and writes each frame as PPM to a pipe. PPM rather
// than raw video: every frame carries its own size, so a stream whose resolution changes midway,
// or a rotation we did not predict, cannot shift frame boundaries. Frames are read and hashed one
// at a time (the pipe pauses ffmpeg meanwhile), so memory holds one frame, whatever the length.
import type { Readable } from 'node:stream';
import { normalizeRawFrame, pdqHash, pdqToHex, type VpdqFrame } from '../../shared/hashing/index.js';
import { VideoRejectedError } from './errors.js';
import { maxSampledFrames, type VideoLimits } from './limits.js';
import { VIDEO_CODECS, fileUrl, inputOptions } from './probe.js';
import { firstErrorLine, runConfined, type VideoTools } from './tools.js';

/** `P6\n<width> <height>\n255\n`, as ffmpeg's PPM encoder writes it. */
const PPM_HEADER = /^P6\n(\d{1,5}) (\d{1,5})\n255\n/;
const PPM_HEADER_MAX = 20;

/** Splits a stream of PPM images into frames, checking each one's size before buffering it. */
async function* ppmFrames(stdout: Readable, maxPixels: number): AsyncGenerator<{ pixels: Buffer; width: number; height: number }> {
  let pending = Buffer.alloc(0);
  let frame: { pixels: Buffer; width: number; height: number; filled: number } | undefined;
  for await (const chunk of stdout as AsyncIterable<Buffer>) {
    let data = pending.length > 0 ? Buffer.concat([pending, chunk]) : chunk;
    pending = Buffer.alloc(0);
    while (data.length > 0) {
      if (!frame) {
        const m = PPM_HEADER.exec(data.subarray(0, PPM_HEADER_MAX).toString('latin1'));
        if (!m) {
          if (data.length >= PPM_HEADER_MAX) throw new VideoRejectedError('corrupt', 'the decoder produced an unexpected frame format');
          pending = Buffer.from(data);
          break;
        }
        const width = Number(m[1]);
        const height = Number(m[2]);
        if (width === 0 || height === 0) throw new VideoRejectedError('corrupt', `the decoder produced a ${width}x${height} frame`);
        if (width * height > maxPixels) throw new VideoRejectedError('too_many_pixels', `a decoded frame is ${width}x${height} = ${width * height} pixels, limit ${maxPixels}`);
        frame = { pixels: Buffer.allocUnsafe(width * height * 3), width, height, filled: 0 };
        data = data.subarray(m[0].length);
        continue;
      }
      const n = Math.min(data.length, frame.pixels.length - frame.filled);
      data.copy(frame.pixels, frame.filled, 0, n);
      frame.filled += n;
      data = data.subarray(n);
      if (frame.filled === frame.pixels.length) {
        yield { pixels: frame.pixels, width: frame.width, height: frame.height };
        frame = undefined;
      }
    }
  }
  if (frame || pending.length > 0) throw new VideoRejectedError('corrupt', 'the decoder stopped in the middle of a frame');
}

/** PDQ and quality of one decoded RGB frame, through the image pipeline's normalisation. */
export async function hashRgbFrame(pixels: Buffer, width: number, height: number, channels: 3 | 4 = 3): Promise<{ pdq: string; quality: number }> {
  const { luma, width: w, height: h } = await normalizeRawFrame({ pixels, width, height, channels });
  const { hash, quality } = pdqHash(luma, w, h);
  return { pdq: pdqToHex(hash), quality };
}

/** The timestamp of the k-th frame sampled at `framesPerSecond`, to the millisecond. */
export function sampleSeconds(k: number, framesPerSecond: number): number {
  return Math.round((k * 1000) / framesPerSecond) / 1000;
}

/** A decoded frame: 8-bit RGB, row-major, `width * height * 3` bytes. */
export interface RgbFrame {
  pixels: Buffer;
  width: number;
  height: number;
}

export interface FrameSampling {
  /** ffmpeg's `fps` filter rate (a number or an exact `num/den`): frame k is the one shown at k / rate. */
  framesPerSecond: number | string;
  /** Where frame 0 is taken, in seconds (default 0): ffmpeg seeks there before decoding. */
  startSeconds?: number;
  /** Frames decoded at most; more from the decoder is refused as `too_many_frames`. */
  maxFrames: number;
  /** Frames larger than this on a side are scaled down (aspect kept) by ffmpeg before the pipe. */
  maxSide?: number;
}

/**
 * Decodes the frames of a probed video file at a fixed rate through the confined ffmpeg, handing
 * each to `onFrame` with its index as it arrives (ffmpeg waits meanwhile). Refuses a file that
 * decodes to no frame at all.
 */
export async function decodeFrames(
  tools: VideoTools,
  path: string,
  limits: VideoLimits,
  sampling: FrameSampling,
  onFrame: (frame: RgbFrame, index: number) => Promise<void>,
): Promise<void> {
  const { framesPerSecond, maxFrames, maxSide, startSeconds } = sampling;
  const seek = startSeconds ? ['-ss', startSeconds.toFixed(3)] : [];
  // Scaled in ffmpeg, so that a caller wanting small frames never holds a 4K one in memory.
  const scale = maxSide === undefined ? '' : `,scale=w='min(iw,${maxSide})':h='min(ih,${maxSide})':force_original_aspect_ratio=decrease`;
  let count = 0;
  await runConfined(
    tools,
    'ffmpeg',
    [
      '-nostdin', '-hide_banner', '-loglevel', 'error',
      // Stop at the first decoding error: a truncated or damaged file is refused, not read in part.
      '-xerror',
      ...inputOptions(VIDEO_CODECS),
      '-threads', String(limits.threads),
      // Read no further than the longest video accepted, whatever the header said.
      '-t', String(limits.maxDurationSeconds),
      ...seek,
      '-i', fileUrl(path),
      '-map', '0:V:0', '-an', '-sn', '-dn',
      // After a seek, timestamps restart at the first frame decoded, so that tick 0 is that frame.
      '-vf', `${startSeconds ? 'setpts=PTS-STARTPTS,' : ''}fps=${framesPerSecond}:round=up${scale}`,
      '-frames:v', String(maxFrames),
      '-f', 'image2pipe', '-c:v', 'ppm', '-pix_fmt', 'rgb24',
      'pipe:1',
    ],
    limits,
    async (stdout) => {
      for await (const frame of ppmFrames(stdout, limits.maxPixels)) {
        if (count >= maxFrames) throw new VideoRejectedError('too_many_frames', `the decoder produced more than ${maxFrames} frames`);
        await onFrame(frame, count++);
      }
    },
    (stderrTail) => `not a decodable video: ${firstErrorLine(stderrTail, path)}`,
  );
  if (count === 0) throw new VideoRejectedError('corrupt', 'not a decodable video: no frame could be decoded');
}

/** Decodes and hashes the frames of a probed video file. */
export async function hashVideoFrames(tools: VideoTools, path: string, limits: VideoLimits, framesPerSecond: number): Promise<VpdqFrame[]> {
  const frames: VpdqFrame[] = [];
  await decodeFrames(tools, path, limits, { framesPerSecond, maxFrames: maxSampledFrames(limits, framesPerSecond) }, async (frame, index) => {
    const { pdq, quality } = await hashRgbFrame(frame.pixels, frame.width, frame.height);
    frames.push({ pdq, quality, seconds: sampleSeconds(index, framesPerSecond) });
  });
  return frames;
}

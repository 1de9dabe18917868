// What a video file declares, read by ffprobe under the same confinement as decoding, and the
// limits checked on it before a single frame is decoded.
import { z } from 'zod';
import { VideoRejectedError } from './errors.js';
import { firstErrorLine, runConfined, type VideoTools } from './tools.js';
import type { VideoLimits } from './limits.js';

/**
 * Demuxers ffmpeg may use (its `-format_whitelist`): MP4/MOV and Matroska/WebM. Everything else
 * ffmpeg can open is refused before its demuxer runs: playlists (HLS, DASH) and concat lists that
 * name other files or URLs, image sequences, raw streams. Animated GIF and WebP are not decoded
 * by ffmpeg at all (animated.ts).
 */
export const VIDEO_DEMUXERS = ['mov', 'matroska'] as const;

/** Video decoders ffmpeg may run (`-codec_whitelist`): what phones, browsers and PeerTube produce. */
export const VIDEO_CODECS = ['h264', 'hevc', 'vp8', 'vp9', 'av1'] as const;

/**
 * Audio and subtitle decoders the probe may open: ffprobe opens a decoder for every stream to read
 * its parameters, so a file with another codec is refused rather than decoded by less-used code.
 * Decoding proper opens the video decoder only.
 */
const PROBE_OTHER_CODECS = [
  'aac', 'mp3', 'opus', 'vorbis', 'flac', 'alac', 'ac3', 'eac3', 'amr_nb', 'amr_wb',
  'pcm_s16le', 'pcm_s16be', 'pcm_s24le', 'pcm_f32le', 'pcm_u8', 'pcm_alaw', 'pcm_mulaw',
  'mov_text', 'webvtt', 'subrip', 'ass',
];

export interface VideoInfo {
  /** The demuxer ffprobe used (`mov,mp4,…` or `matroska,webm`). */
  container: string;
  codec: string;
  /** Frame size as stored (before the display rotation ffmpeg applies when decoding). */
  width: number;
  height: number;
  durationSeconds: number;
  /** Frames declared, or estimated from duration and frame rate when the container has no count. */
  frames: number;
}

const numeric = z.union([z.string(), z.number()]).optional();
const probeSchema = z.object({
  streams: z
    .array(
      z.object({
        codec_type: z.string().optional(),
        codec_name: z.string().optional(),
        width: z.number().optional(),
        height: z.number().optional(),
        nb_frames: numeric,
        avg_frame_rate: z.string().optional(),
        duration: numeric,
        disposition: z.object({ attached_pic: z.number().optional() }).partial().optional(),
      }),
    )
    .default([]),
  format: z.object({
    format_name: z.string(),
    duration: numeric,
    nb_streams: z.number(),
  }),
});

/** ffmpeg's input options common to probing and decoding: local file only, whitelisted demuxers. */
export function inputOptions(codecs: readonly string[]): string[] {
  return ['-protocol_whitelist', 'file', '-format_whitelist', VIDEO_DEMUXERS.join(','), '-codec_whitelist', codecs.join(',')];
}

/** `file:` so that no part of the name is read as a protocol (`concat:`, `subfile,`…). */
export function fileUrl(path: string): string {
  return `file:${path}`;
}

function finite(value: string | number | undefined): number | undefined {
  if (value === undefined || value === 'N/A') return undefined;
  const n = typeof value === 'number' ? value : Number(value);
  return Number.isFinite(n) && n >= 0 ? n : undefined;
}

function frameRate(text: string | undefined): number | undefined {
  const m = /^(\d+)\/(\d+)$/.exec(text ?? '');
  if (!m || Number(m[2]) === 0) return undefined;
  const rate = Number(m[1]) / Number(m[2]);
  return rate > 0 ? rate : undefined;
}

function refusal(stderrTail: string, path: string): string {
  const codec = /Codec \(([\w-]+)\) not on whitelist/.exec(stderrTail);
  if (codec) return `codec '${codec[1]}' is not accepted`;
  const format = /\[([\w,-]+) @ [^\]]*\] Format not on whitelist/.exec(stderrTail);
  if (format) return `container '${format[1]}' is not accepted`;
  return `not a readable video: ${firstErrorLine(stderrTail, path)}`;
}

/** Reads what the file declares and checks it against the limits, or throws a VideoRejectedError. */
export async function probeVideo(tools: VideoTools, path: string, limits: VideoLimits): Promise<VideoInfo> {
  const chunks: Buffer[] = [];
  let size = 0;
  let tail: string;
  try {
    tail = await runConfined(
      tools,
      'ffprobe',
      [
        '-v', 'error', '-hide_banner',
        ...inputOptions([...VIDEO_CODECS, ...PROBE_OTHER_CODECS]),
        '-show_entries',
        'format=format_name,duration,nb_streams:stream=codec_type,codec_name,width,height,nb_frames,avg_frame_rate,duration:stream_disposition=attached_pic',
        '-of', 'json',
        fileUrl(path),
      ],
      limits,
      async (stdout) => {
        for await (const chunk of stdout as AsyncIterable<Buffer>) {
          size += chunk.length;
          // ffprobe's answer for the streams allowed is a few KB; more is a file built to flood it.
          if (size > 256 * 1024) throw new VideoRejectedError('too_many_streams', 'the file declares too much for a video');
          chunks.push(chunk);
        }
      },
      (stderrTail) => refusal(stderrTail, path),
    );
  } catch (err) {
    // Whitelist refusals are not corruption: say so with the right code.
    if (err instanceof VideoRejectedError && err.code === 'corrupt' && /is not accepted$/.test(err.message)) {
      throw new VideoRejectedError('unsupported_format', err.message);
    }
    throw err;
  }
  // A file ffprobe reads with errors (e.g. truncated) still exits 0: an error line means corrupt.
  if (tail.trim() !== '') throw new VideoRejectedError('corrupt', refusal(tail, path));

  let parsed: z.infer<typeof probeSchema>;
  try {
    parsed = probeSchema.parse(JSON.parse(Buffer.concat(chunks).toString('utf8')));
  } catch {
    throw new VideoRejectedError('corrupt', 'not a readable video: the container could not be described');
  }
  const { format, streams } = parsed;
  if (format.nb_streams > limits.maxStreams) {
    throw new VideoRejectedError('too_many_streams', `the file has ${format.nb_streams} streams, limit ${limits.maxStreams}`);
  }
  const video = streams.find((s) => s.codec_type === 'video' && s.disposition?.attached_pic !== 1);
  if (!video) throw new VideoRejectedError('unsupported_format', 'the file has no video stream');
  const codec = video.codec_name ?? 'unknown';
  if (!(VIDEO_CODECS as readonly string[]).includes(codec)) throw new VideoRejectedError('unsupported_format', `codec '${codec}' is not accepted`);
  const width = video.width ?? 0;
  const height = video.height ?? 0;
  if (!(width > 0 && height > 0)) throw new VideoRejectedError('corrupt', `the video stream declares a ${width}x${height} frame`);
  if (width * height > limits.maxPixels) {
    throw new VideoRejectedError('too_many_pixels', `video frames are ${width}x${height} = ${width * height} pixels, limit ${limits.maxPixels}`);
  }
  const durationSeconds = finite(video.duration) ?? finite(format.duration);
  if (durationSeconds === undefined) throw new VideoRejectedError('corrupt', 'the video declares no duration');
  if (durationSeconds > limits.maxDurationSeconds) {
    throw new VideoRejectedError('too_long', `the video lasts ${Math.round(durationSeconds)} s, limit ${limits.maxDurationSeconds} s`);
  }
  const rate = frameRate(video.avg_frame_rate);
  const frames = finite(video.nb_frames) ?? (rate !== undefined ? Math.ceil(durationSeconds * rate) : undefined);
  if (frames === undefined) throw new VideoRejectedError('corrupt', 'the video declares neither a frame count nor a frame rate');
  if (frames > limits.maxVideoFrames) {
    throw new VideoRejectedError('too_many_frames', `the video has ${frames} frames, limit ${limits.maxVideoFrames}`);
  }
  return { container: format.format_name, codec, width, height, durationSeconds, frames };
}

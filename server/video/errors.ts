/**
 * Refusals of the video pipeline. Every refusal is a `VideoRejectedError` with a stable `code`
 * (callers map codes to HTTP statuses: `no_video_decoder` is this server's lack, 415 or 422, the
 * rest are the input's fault, 4xx; `too_large` 413). Messages are for humans, never echo ffmpeg's
 * full output, and never carry file paths the server chose.
 */

export type VideoRejectionCode =
  /** ffmpeg, ffprobe or prlimit is not installed (or VOUCH_FFMPEG points nowhere). */
  | 'no_video_decoder'
  | 'empty'
  | 'too_large'
  | 'too_long'
  | 'too_many_pixels'
  | 'too_many_frames'
  | 'too_many_streams'
  /** Not a container or codec on the whitelist, or no video stream. */
  | 'unsupported_format'
  | 'corrupt'
  /** Decoding ran past its time or memory limit. */
  | 'too_costly';

export class VideoRejectedError extends Error {
  constructor(
    readonly code: VideoRejectionCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'VideoRejectedError';
  }
}

export function isVideoRejectedError(err: unknown): err is VideoRejectedError {
  return err instanceof VideoRejectedError;
}

/**
 * Refusals of the image pipeline. Every refusal is an `ImageRejectedError` with a stable `code`
 * (callers map codes to HTTP statuses, metrics and pict-rs answers; the message is for humans and
 * may change, the code may not).
 */

export type ImageRejectionCode =
  | 'empty'
  | 'too_large'
  | 'too_many_pixels'
  | 'too_many_frames'
  | 'unsupported_format'
  | 'corrupt';

export abstract class ImageRejectedError extends Error {
  abstract readonly code: ImageRejectionCode;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

export class EmptyImageError extends ImageRejectedError {
  override readonly code = 'empty' as const;
  constructor() {
    super('image is empty (0 bytes)');
  }
}

export class ImageTooLargeError extends ImageRejectedError {
  override readonly code = 'too_large' as const;
  constructor(
    readonly bytes: number,
    readonly limit: number,
  ) {
    super(`image is ${bytes} bytes, limit ${limit}`);
  }
}

export class TooManyPixelsError extends ImageRejectedError {
  override readonly code = 'too_many_pixels' as const;
  readonly pixels: number;
  constructor(
    readonly width: number,
    readonly height: number,
    readonly limit: number,
  ) {
    const pixels = width * height;
    super(`image is ${width}x${height} = ${pixels} pixels, limit ${limit}`);
    this.pixels = pixels;
  }
}

export class TooManyFramesError extends ImageRejectedError {
  override readonly code = 'too_many_frames' as const;
  constructor(
    readonly frames: number,
    readonly limit: number,
  ) {
    super(`image has ${frames} frames, limit ${limit}`);
  }
}

export class UnsupportedFormatError extends ImageRejectedError {
  override readonly code = 'unsupported_format' as const;
  constructor(
    /** The format the decoder recognised, or undefined when it recognised none. */
    readonly format: string | undefined,
    detail?: string,
    options?: { cause?: unknown },
  ) {
    super(
      format === undefined
        ? `not a recognised image format${detail ? ` (${detail})` : ''}`
        : `image format '${format}' is not accepted${detail ? ` (${detail})` : ''}`,
      options,
    );
  }
}

export class CorruptImageError extends ImageRejectedError {
  override readonly code = 'corrupt' as const;
  constructor(detail: string, options?: { cause?: unknown }) {
    super(`image data is corrupt or truncated: ${detail}`, options);
  }
}

export function isImageRejectedError(err: unknown): err is ImageRejectedError {
  return err instanceof ImageRejectedError;
}

/**
 * Decoding and normalisation: untrusted bytes -> small luminance image, identical on every instance.
 *
 * Order matters for safety: the byte size is checked before anything is parsed, and the header
 * (format, width, height, frames) before anything is decoded, so a decompression bomb costs a
 * header parse, never its pixel buffer. sharp's own `limitInputPixels` repeats the pixel check
 * inside the decoder in case a header and the decoder disagree.
 *
 * Normalisation (PIPELINE_ID names it; change either and both must change):
 *  1. decode one frame only: the first of an animation or multi-page file (HEIF: the primary image);
 *  2. apply EXIF orientation, so a photo hashes as it is displayed;
 *  3. flatten alpha onto white: hash what a viewer sees on the usual light background. The
 *     alternative, dropping alpha, would hash colours hidden under transparent pixels, which lets
 *     an uploader show one picture and have another one hashed. For opaque images (every JPEG,
 *     most PNGs) both rules give the same pixels, so reference PDQ hashes still match;
 *  4. convert to sRGB 8-bit (ICC profiles and CMYK are honoured by sharp);
 *  5. shrink to fit 512x512 with Lanczos-3, aspect kept, never enlarging. PDQ's reference tool
 *     also hashes from <= 512 px (it squashes to 512x512; PDQ barely notices the difference), and
 *     512 is still 8x PDQ's 64 px working size and 16x pHash's 32;
 *  6. luminance Y = 0.299 R + 0.587 G + 0.114 B on the 8-bit sRGB values, as PDQ defines it.
 */

import sharp, { type Metadata, type OutputInfo, type Sharp } from 'sharp';
import { FLATTEN_BACKGROUND, NORMALIZED_MAX_SIDE, RESIZE_KERNEL } from './pipeline.js';
import {
  CorruptImageError,
  EmptyImageError,
  ImageRejectedError,
  ImageTooLargeError,
  TooManyFramesError,
  TooManyPixelsError,
  UnsupportedFormatError,
} from './errors.js';

export interface ImageLimits {
  /** Largest accepted input, in bytes. */
  maxBytes: number;
  /** Largest accepted frame, width x height as stored (before orientation). */
  maxPixels: number;
  /** Most frames/pages an input may declare (animated GIF/WebP, multi-page TIFF, HEIF). */
  maxFrames: number;
}

/**
 * Defaults:
 *  - 50 MiB: well above the image sizes fediverse software accepts by default (Mastodon: 16 MB);
 *    the bytes are in memory once per in-flight request anyway.
 *  - 100 Mpx: phone photos (12-50 Mpx) and large camera exports pass. Most decoders stream, but a
 *    frame the decoder must hold whole (interlaced PNG, some TIFFs) costs 3 bytes a pixel: 300 MB
 *    at the limit, so a few concurrent worst cases still fit a small server (sharp's own default,
 *    268 Mpx, would be 800 MB). Raise it for archives of huge scans.
 *  - 1000 frames: only the first frame is decoded, so frames cost little here; the limit refuses
 *    pathological containers (metadata and downstream frame samplers are linear in frames) while
 *    leaving 40 s of 25 fps animation, longer than real GIFs and stickers.
 */
export const DEFAULT_IMAGE_LIMITS: Readonly<ImageLimits> = Object.freeze({
  maxBytes: 50 * 1024 * 1024,
  maxPixels: 100_000_000,
  maxFrames: 1000,
});

export { FRAME_NORMALIZATION, NORMALIZED_MAX_SIDE, PIPELINE_ID } from './pipeline.js';

/** Library versions doing the decoding (for logs and bug reports; not part of PIPELINE_ID). */
export const NORMALIZER_LIBRARIES: Readonly<Record<string, string>> = Object.freeze({
  sharp: sharp.versions.sharp ?? 'unknown',
  vips: sharp.versions.vips,
});

/**
 * Formats accepted. Others that sharp may read are refused: SVG renders text and vectors at an
 * arbitrary density (and is a large attack surface), the rest are not web media.
 */
const ACCEPTED_FORMATS: ReadonlySet<string> = new Set(['jpeg', 'png', 'webp', 'gif', 'tiff', 'heif']);

export interface NormalizedImage {
  /** Luminance 0..255, row-major, width x height. */
  luma: Float32Array;
  /** Size of the normalised image (longest side <= NORMALIZED_MAX_SIDE). */
  width: number;
  height: number;
  /** Size of the original as displayed, i.e. after EXIF orientation. */
  originalWidth: number;
  originalHeight: number;
  /** Decoder format name (jpeg, png, webp, gif, tiff, heif). */
  format: string;
  /** Frames/pages the container declares (1 for still images). */
  frames: number;
}

function checkLimits(limits: ImageLimits): void {
  for (const k of ['maxBytes', 'maxPixels', 'maxFrames'] as const) {
    const v = limits[k];
    if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`ImageLimits.${k} must be a positive integer, got ${v}`);
  }
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** sharp reports everything as plain Errors; classify by message. */
function mapDecodeError(err: unknown, format: string | undefined): ImageRejectedError {
  if (err instanceof ImageRejectedError) return err;
  const msg = messageOf(err);
  if (/unsupported image format/i.test(msg)) return new UnsupportedFormatError(undefined, undefined, { cause: err });
  if (/no decoding plugin|not supported|unsupported (feature|codec|compression|jpeg process|colou?r)/i.test(msg)) {
    return new UnsupportedFormatError(format, msg, { cause: err });
  }
  // First line only, without sharp's empty "...: " tails ("Input buffer has corrupt header: ").
  const detail = msg.split('\n')[0].replace(/:\s*$/, '').trim();
  return new CorruptImageError(detail || 'decoder error', { cause: err });
}

/**
 * Decodes untrusted image bytes into the normalised luminance image, or throws an
 * ImageRejectedError subclass. Other errors (programming errors, out of memory) propagate as is.
 */
export async function decodeNormalized(
  bytes: Buffer,
  limits: ImageLimits = DEFAULT_IMAGE_LIMITS,
): Promise<NormalizedImage> {
  checkLimits(limits);
  if (bytes.length === 0) throw new EmptyImageError();
  if (bytes.length > limits.maxBytes) throw new ImageTooLargeError(bytes.length, limits.maxBytes);

  // Header only. The pixel limit is ours to enforce here, with a precise error, so sharp's is off.
  let meta: Metadata;
  try {
    meta = await sharp(bytes, { limitInputPixels: false, failOn: 'error' }).metadata();
  } catch (err) {
    throw mapDecodeError(err, undefined);
  }
  const format = meta.format as string;
  if (!ACCEPTED_FORMATS.has(format)) throw new UnsupportedFormatError(format);
  if (format === 'heif' && meta.compression === 'hevc') {
    // The prebuilt libvips carries no HEVC decoder (patents); AVIF is fine.
    throw new UnsupportedFormatError(format, 'HEVC-compressed HEIF (HEIC) cannot be decoded');
  }
  const width = meta.width;
  const height = meta.pageHeight ?? meta.height; // one frame, whatever the loader reports
  if (!(width > 0) || !(height > 0)) throw new CorruptImageError(`header declares a ${width}x${height} image`);
  if (width * height > limits.maxPixels) throw new TooManyPixelsError(width, height, limits.maxPixels);
  const frames = meta.pages ?? 1;
  if (frames > limits.maxFrames) throw new TooManyFramesError(frames, limits.maxFrames);
  const swap = (meta.orientation ?? 1) >= 5; // EXIF 5..8 transpose the image
  const originalWidth = swap ? height : width;
  const originalHeight = swap ? width : height;

  let data: Buffer;
  let info: OutputInfo;
  try {
    ({ data, info } = await shrinkToNormalized(sharp(bytes, {
      limitInputPixels: limits.maxPixels, // second guard, inside the decoder
      sequentialRead: true, // stream through the decoder: memory ~ a few scanlines, not the frame
      failOn: 'error', // truncated or broken data is refused; mere warnings (odd ICC chunks) are not
      pages: 1, // one frame; `page` stays unset so that HEIF gives its primary image, others frame 0
    }).autoOrient()).toBuffer({ resolveWithObject: true }));
  } catch (err) {
    if (/exceeds pixel limit/i.test(messageOf(err))) throw new TooManyPixelsError(width, height, limits.maxPixels);
    throw mapDecodeError(err, format);
  }

  const { luma, width: w, height: h } = lumaOf(data, info);
  return { luma, width: w, height: h, originalWidth, originalHeight, format, frames };
}

/** Steps 3 to 5 of the pipeline (flatten, shrink to fit, sRGB 8-bit), on any decoded source. */
function shrinkToNormalized(image: Sharp): Sharp {
  return image
    .flatten({ background: FLATTEN_BACKGROUND })
    .resize({
      width: NORMALIZED_MAX_SIDE,
      height: NORMALIZED_MAX_SIDE,
      fit: 'inside',
      withoutEnlargement: true,
      kernel: RESIZE_KERNEL,
      // Big JPEGs are first reduced 2/4/8x inside the decoder (DCT scaling), the rest by the
      // kernel: several times faster on camera photos, and PDQ/pHash do not see the difference
      // (same hashes on the reference images either way). Explicit, as the default could move.
      fastShrinkOnLoad: true,
    })
    .toColourspace('srgb')
    .raw({ depth: 'uchar' });
}

/** Step 6: luminance of the 8-bit sRGB result. */
function lumaOf(data: Buffer, info: OutputInfo): { luma: Float32Array; width: number; height: number } {
  const w = info.width;
  const h = info.height;
  const ch = info.channels;
  const n = w * h;
  if (ch < 3 || data.length < n * ch) throw new CorruptImageError(`decoder returned ${ch} channels, ${data.length} bytes for ${w}x${h}`);
  const luma = new Float32Array(n);
  for (let i = 0, p = 0; i < n; i++, p += ch) {
    luma[i] = 0.299 * data[p] + 0.587 * data[p + 1] + 0.114 * data[p + 2];
  }
  return { luma, width: w, height: h };
}

/** A decoded frame: 8-bit sRGB pixels, row-major, 3 (RGB) or 4 (RGBA) channels, no padding. */
export interface RawFrame {
  pixels: Buffer;
  width: number;
  height: number;
  channels: 3 | 4;
}

/**
 * Steps 3 to 6 of the pipeline on a frame something else decoded (a video frame from ffmpeg, a
 * page of an animation): the same flatten, shrink and luminance as decodeNormalized, so a frame
 * and the same picture as an image hash alike. Orientation is the decoder's business (ffmpeg
 * applies a video's rotation). The frame must be within the caller's pixel limit already.
 */
export async function normalizeRawFrame(frame: RawFrame): Promise<{ luma: Float32Array; width: number; height: number }> {
  const { pixels, width, height, channels } = frame;
  if (!(width > 0 && height > 0) || pixels.length !== width * height * channels) {
    throw new RangeError(`a ${width}x${height} frame of ${channels} channels needs ${width * height * channels} bytes, got ${pixels.length}`);
  }
  const { data, info } = await shrinkToNormalized(sharp(pixels, { raw: { width, height, channels }, limitInputPixels: false })).toBuffer({
    resolveWithObject: true,
  });
  return lumaOf(data, info);
}

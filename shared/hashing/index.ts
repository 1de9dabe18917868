/**
 * Image hashing, the part every Vouch instance must compute identically:
 * SHA-256 of the bytes, PDQ (+ quality, + optional dihedral variants) and pHash-64 of the
 * normalised image (see normalize.ts for the pipeline and its id); vPDQ frame lists of video and
 * their match rule (vpdq.ts; the frames themselves are decoded by server/video).
 */

import { createHash } from 'node:crypto';
import { DEFAULT_IMAGE_LIMITS, PIPELINE_ID, decodeNormalized, type ImageLimits, type NormalizedImage } from './normalize.js';
import {
  PDQ_DIHEDRAL_TRANSFORMS,
  hammingDistance,
  hexToBytes,
  pdqDihedral,
  pdqHash,
  pdqToHex,
  type PdqDihedralTransform,
} from './pdq.js';
import { phash64, phashToHex } from './phash.js';

export interface ImageHashes {
  /** Hex SHA-256 of the original bytes (exact-match key). */
  sha256: string;
  /** PDQ, 64 hex chars, reference order. */
  pdq: string;
  /** PDQ quality 0..100; below 50 the PDQ hash should not be used for matching. */
  pdqQuality: number;
  /** pHash-64, 16 hex chars. */
  phash64: string;
  /** Normalisation pipeline id (PIPELINE_ID). */
  pipeline: string;
  /** Original size as displayed (after EXIF orientation). */
  width: number;
  height: number;
  /** Decoder format name (jpeg, png, webp, gif, tiff, heif). */
  format: string;
}

export interface ImageHashesWithDihedral extends ImageHashes {
  /** The PDQ hashes of the 8 rotations/mirrors of the image; `original` equals `pdq`. */
  pdqDihedral: Record<PdqDihedralTransform, string>;
}

function sha256Hex(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function baseHashes(bytes: Buffer, img: NormalizedImage, pdq: string, pdqQuality: number): ImageHashes {
  return {
    sha256: sha256Hex(bytes),
    pdq,
    pdqQuality,
    phash64: phashToHex(phash64(img.luma, img.width, img.height)),
    pipeline: PIPELINE_ID,
    width: img.originalWidth,
    height: img.originalHeight,
    format: img.format,
  };
}

/**
 * Hashes untrusted image bytes. Throws an ImageRejectedError subclass (with a stable `code`) when
 * the input is refused: empty, too large, too many pixels or frames, unsupported or corrupt.
 */
export async function hashImage(bytes: Buffer, limits: ImageLimits = DEFAULT_IMAGE_LIMITS): Promise<ImageHashes> {
  const img = await decodeNormalized(bytes, limits);
  const { hash, quality } = pdqHash(img.luma, img.width, img.height);
  return baseHashes(bytes, img, pdqToHex(hash), quality);
}

/** As hashImage, plus the 8 dihedral PDQ variants (for indexing: one lookup then finds rotated
 *  and mirrored copies). Same decode; the PDQ part costs ~4x a plain PDQ (about 1 ms more). */
export async function hashImageWithDihedral(
  bytes: Buffer,
  limits: ImageLimits = DEFAULT_IMAGE_LIMITS,
): Promise<ImageHashesWithDihedral> {
  const img = await decodeNormalized(bytes, limits);
  const { hashes, quality } = pdqDihedral(img.luma, img.width, img.height);
  const pdqHex = {} as Record<PdqDihedralTransform, string>;
  for (const t of PDQ_DIHEDRAL_TRANSFORMS) pdqHex[t] = pdqToHex(hashes[t]);
  return { ...baseHashes(bytes, img, pdqHex.original, quality), pdqDihedral: pdqHex };
}

export {
  DEFAULT_IMAGE_LIMITS,
  FRAME_NORMALIZATION,
  NORMALIZED_MAX_SIDE,
  NORMALIZER_LIBRARIES,
  PIPELINE_ID,
  decodeNormalized,
  normalizeRawFrame,
  type ImageLimits,
  type NormalizedImage,
  type RawFrame,
} from './normalize.js';
export {
  PDQ_DIHEDRAL_TRANSFORMS,
  PDQ_HASH_BYTES,
  hammingDistance,
  pdqDihedral,
  pdqFromHex,
  pdqHash,
  pdqToHex,
  type PdqDihedralResult,
  type PdqDihedralTransform,
  type PdqResult,
} from './pdq.js';
export { PHASH64_BYTES, phash64, phashFromHex, phashToHex } from './phash.js';
export {
  VPDQ_DEFAULTS,
  VPDQ_MAX_FRAMES,
  VpdqFormatError,
  distinctGoodFrames,
  encodeVpdq,
  formatVpdqFrame,
  matchVpdq,
  parseVpdq,
  type VpdqFrame,
  type VpdqMatch,
  type VpdqMatchOptions,
} from './vpdq.js';
export {
  CorruptImageError,
  EmptyImageError,
  ImageRejectedError,
  ImageTooLargeError,
  TooManyFramesError,
  TooManyPixelsError,
  UnsupportedFormatError,
  isImageRejectedError,
  type ImageRejectionCode,
} from './errors.js';

/** Hamming distance between two hex hashes of the same kind (PDQ or pHash-64). */
export function hexHammingDistance(a: string, b: string): number {
  if (a.length !== b.length || a.length % 2 !== 0) {
    throw new RangeError(`hex hashes must have the same even length, got ${a.length} and ${b.length}`);
  }
  return hammingDistance(hexToBytes(a, a.length / 2), hexToBytes(b, b.length / 2));
}

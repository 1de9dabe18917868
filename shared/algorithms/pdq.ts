// PDQ (decision 2): Meta's 256-bit perceptual hash of the normalised image, with a quality 0..100.
// Matched by Hamming distance in the multi-index over all eight rotations and mirrors of the query
// (decision 5); tiers per decision 15: within policy.match.strictRadius a near-duplicate (`strict`),
// up to 31 `similar`. Its verdicts also carry the image's pHash-64, which the decider compares.
import { formatHexDigest, hamming, parseHexDigest } from './hex-digest.js';
import { phash64 } from './phash64.js';
import { sha256 } from './sha256.js';
import type { HashAlgorithm, MatchTier } from './types.js';

const BYTES = 32;

export const pdq: HashAlgorithm = Object.freeze({
  name: 'pdq',
  description: 'PDQ of the normalised image (256 bits) with its quality',
  content: ['image'] as const,
  digestBytes: BYTES,
  hasQuality: true,
  /** Below this, PDQ hashes are too flat to match reliably (Meta's guidance). */
  minQuality: 50,
  index: 'pdq' as const,
  /** The largest distance the index answers exactly, and the design's match threshold. */
  maxDistance: 31,
  identifiesFile: false,
  confirmedBy: 'phash64',
  parse: (text: unknown) => parseHexDigest('pdq', BYTES, text),
  format: (digest: Uint8Array) => formatHexDigest('pdq', BYTES, digest),
  distance: hamming,
  tier: (distance: number, strictRadius: number): MatchTier => (distance <= strictRadius ? 'strict' : 'similar'),
});

/**
 * The subjects an image's hashes make, for our verdicts and for lookups: its SHA-256, its PDQs
 * with their quality (one for a verdict; the eight rotations and mirrors for a lookup), and the
 * pHash-64 a PDQ match is confirmed by. The media table's image columns map here and nowhere else.
 */
export function imageSubjects(hashes: { sha256: string; pdq?: readonly string[]; pdqQuality?: number; phash64?: string }): Array<{ algorithm: string; digest: string; quality?: number }> {
  const quality = hashes.pdqQuality === undefined ? {} : { quality: hashes.pdqQuality };
  return [
    { algorithm: sha256.name, digest: hashes.sha256 },
    ...(hashes.pdq ?? []).map((digest) => ({ algorithm: pdq.name, digest, ...quality })),
    ...(hashes.phash64 ? [{ algorithm: phash64.name, digest: hashes.phash64 }] : []),
  ];
}

// pHash-64 of the normalised image: carried in our verdicts beside PDQ and compared with a PDQ
// match's (policy.match.phashRadius), never looked up on its own. Not independent of PDQ under a
// crafted collision (decision 15, docs/benchmarks.md "Match radii").
import { formatHexDigest, hamming, parseHexDigest } from './hex-digest.js';
import type { HashAlgorithm, MatchTier } from './types.js';

const BYTES = 8;

export const phash64: HashAlgorithm = Object.freeze({
  name: 'phash64',
  description: 'pHash-64 of the normalised image (64 bits)',
  content: ['image'] as const,
  digestBytes: BYTES,
  hasQuality: false,
  minQuality: 0,
  index: 'none' as const,
  maxDistance: 0,
  identifiesFile: false,
  parse: (text: unknown) => parseHexDigest('phash64', BYTES, text),
  format: (digest: Uint8Array) => formatHexDigest('phash64', BYTES, digest),
  distance: hamming,
  tier: (): MatchTier => 'similar',
});

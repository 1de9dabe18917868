// The common shape of Vouch's digests: a fixed number of bytes written as lower-case hex.
import { DigestFormatError, type HashAlgorithm, type MatchTier } from './types.js';

const LOWER_HEX = /^[0-9a-f]*$/;

/** Parses `text` as exactly `bytes` bytes of lower-case hex, or throws saying what is wrong. */
export function parseHexDigest(name: string, bytes: number, text: unknown): Uint8Array {
  if (typeof text !== 'string') throw new DigestFormatError(`${name} digest must be a hex string`);
  if (text.length !== bytes * 2) throw new DigestFormatError(`${name} digest must be ${bytes * 2} hex characters`);
  if (!LOWER_HEX.test(text)) {
    throw new DigestFormatError(/^[0-9a-fA-F]*$/.test(text) ? `${name} digest must be lower-case hexadecimal` : `${name} digest must be hexadecimal`);
  }
  return Uint8Array.from(Buffer.from(text, 'hex'));
}

export function formatHexDigest(name: string, bytes: number, digest: Uint8Array): string {
  if (digest.length !== bytes) throw new DigestFormatError(`${name} digest must be ${bytes} bytes, got ${digest.length}`);
  return Buffer.from(digest.buffer, digest.byteOffset, digest.byteLength).toString('hex');
}

/** Number of differing bits. */
export function hamming(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) throw new RangeError(`digests of ${a.length} and ${b.length} bytes cannot be compared`);
  let d = 0;
  for (let i = 0; i < a.length; i++) {
    let x = a[i] ^ b[i];
    x -= (x >> 1) & 0x55;
    x = (x & 0x33) + ((x >> 2) & 0x33);
    d += (x + (x >> 4)) & 0x0f;
  }
  return d;
}

/**
 * A cryptographic digest of the file's bytes: matched exactly, and a match is the very same file
 * (decision 15's `exact` tier).
 */
export function fileDigestAlgorithm(name: string, description: string, digestBytes: number): HashAlgorithm {
  return Object.freeze({
    name,
    description,
    content: ['bytes'] as const,
    digestBytes,
    hasQuality: false,
    minQuality: 0,
    index: 'exact' as const,
    maxDistance: 0,
    identifiesFile: true,
    parse: (text: unknown) => parseHexDigest(name, digestBytes, text),
    format: (digest: Uint8Array) => formatHexDigest(name, digestBytes, digest),
    distance: (a: Uint8Array, b: Uint8Array) => (hamming(a, b) === 0 ? 0 : Infinity),
    tier: (): MatchTier => 'exact',
  });
}

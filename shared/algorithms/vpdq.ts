// vPDQ (decision 22): Meta's video hash, the PDQ of one frame per second with its quality and
// timestamp (shared/hashing/vpdq.ts has the wire form and HMA's match rule). On the wire one
// subject carries the whole frame list (`frames`); stored and indexed, each distinct frame is a
// 32-byte row in the PDQ space, so a frame of a video finds a verdict about an image and an image
// finds a video's frames. A video-to-video match counts only when HMA's query/compared shares
// reach the policy's (policy.video, checked by the decider); tiers are PDQ's, never `exact`: only
// the same file (MD5 or SHA-256) is the same video (decision 15).
import { VPDQ_DEFAULTS, VPDQ_MAX_FRAMES, encodeVpdq, parseVpdq, type VpdqFrame } from '../hashing/vpdq.js';
import { formatHexDigest, hamming, parseHexDigest } from './hex-digest.js';
import { md5 } from './md5.js';
import { sha256 } from './sha256.js';
import type { HashAlgorithm, MatchTier } from './types.js';

const BYTES = 32;

export const vpdq: HashAlgorithm = Object.freeze({
  name: 'vpdq',
  description: 'vPDQ of a video: the PDQ of one frame per second, with quality and timestamp',
  content: ['video'] as const,
  digestBytes: BYTES,
  hasQuality: true,
  minQuality: VPDQ_DEFAULTS.minQuality,
  index: 'pdq' as const,
  maxDistance: VPDQ_DEFAULTS.distance,
  identifiesFile: false,
  frameList: { maxFrames: VPDQ_MAX_FRAMES },
  /** One frame's PDQ, as stored (the wire's `frames` are parsed by parseFrames). */
  parse: (text: unknown) => parseHexDigest('vpdq', BYTES, text),
  format: (digest: Uint8Array) => formatHexDigest('vpdq', BYTES, digest),
  distance: hamming,
  tier: (distance: number, strictRadius: number): MatchTier => (distance <= strictRadius ? 'strict' : 'similar'),
});

/** One stored frame subject: a distinct frame's PDQ, its quality, and where it first appears. */
export interface FrameSubject {
  algorithm: string;
  digest: string;
  quality: number;
  seconds: number;
}

/**
 * A frame list (wire form or hashed) as stored subjects: one per distinct PDQ, at its first
 * timestamp, with the best quality it was seen at.
 */
export function frameSubjects(frames: readonly VpdqFrame[], algorithm: HashAlgorithm = vpdq): FrameSubject[] {
  const byPdq = new Map<string, FrameSubject>();
  for (const f of frames) {
    const seen = byPdq.get(f.pdq);
    if (seen) seen.quality = Math.max(seen.quality, f.quality);
    else byPdq.set(f.pdq, { algorithm: algorithm.name, digest: f.pdq, quality: f.quality, seconds: f.seconds });
  }
  return [...byPdq.values()];
}

/** Stored frame subjects back into one wire frame list, in time order. */
export function framesOfSubjects(subjects: ReadonlyArray<{ digest: string; quality?: number; seconds?: number }>): string[] {
  const frames = subjects.map((s) => ({ pdq: s.digest, quality: s.quality ?? 0, seconds: s.seconds ?? 0 }));
  frames.sort((a, b) => a.seconds - b.seconds || (a.pdq < b.pdq ? -1 : 1));
  return encodeVpdq(frames);
}

/** Parses a wire frame list strictly (shared/hashing/vpdq.ts parseVpdq); throws VpdqFormatError. */
export function parseFrames(value: unknown): VpdqFrame[] {
  return parseVpdq(value);
}

/**
 * The subjects a video's hashes make, for our verdicts and for lookups: its SHA-256 and MD5 (the
 * same file), then its distinct frames.
 */
export function videoSubjects(hashes: { sha256: string; md5: string; frames: readonly VpdqFrame[] }): Array<{ algorithm: string; digest: string; quality?: number; seconds?: number }> {
  return [{ algorithm: sha256.name, digest: hashes.sha256 }, { algorithm: md5.name, digest: hashes.md5 }, ...frameSubjects(hashes.frames)];
}

// What a hash algorithm is to Vouch: the pure description every instance must agree on (wire
// format, validation, distance, index kind, match radius and the decision tier of each distance).
// One file per algorithm beside this one; `index.ts` is the registry that lists them. The server
// reads algorithms only through the registry (docs/architecture.md, "How to add an algorithm").

/** What an algorithm hashes: an image (after normalisation), a video, or the bytes of any file. */
export type ContentKind = 'image' | 'video' | 'bytes';

/**
 * Which in-memory index holds the algorithm's digests (server/matching): `exact` a hash table of
 * whole digests, `pdq` the PDQ multi-index (Hamming distance on 256 bits), `none` not looked up
 * (carried in subjects, e.g. a second hash the decider checks a match against).
 */
export type IndexKind = 'exact' | 'pdq' | 'none';

/** Decision 15's match tiers: the exact file, a near-duplicate, or merely similar. */
export type MatchTier = 'exact' | 'strict' | 'similar';

/** A digest text that is not one of an algorithm's. The message says what is expected. */
export class DigestFormatError extends Error {
  override name = 'DigestFormatError';
}

export interface HashAlgorithm {
  /** The name in verdict subjects, hash lists and the `hash_algorithms` table. */
  readonly name: string;
  /** What the digest is, for docs and error messages. */
  readonly description: string;
  /** The content it hashes. */
  readonly content: readonly ContentKind[];
  /** Bytes of one digest as stored (`verdict_subjects.digest`). */
  readonly digestBytes: number;
  /** Whether a subject may carry a quality 0..100 (perceptual hashes of flat images are unreliable). */
  readonly hasQuality: boolean;
  /** Digests of a lower quality are neither indexed nor looked up. 0 when there is no quality. */
  readonly minQuality: number;
  readonly index: IndexKind;
  /** The largest distance a lookup answers: 0 for exact algorithms. */
  readonly maxDistance: number;
  /**
   * Whether a match identifies the very same file, the only match at which an `ok` may count
   * towards allow (decision 15).
   */
  readonly identifiesFile: boolean;
  /**
   * Another algorithm whose digest, carried in the same verdict, the decider compares for a match
   * by this one (policy.match.phashRadius): PDQ's pHash-64.
   */
  readonly confirmedBy?: string;
  /**
   * Present for an algorithm whose subject on the wire is a list of frame hashes (`frames`, at most
   * `maxFrames`) rather than one `digest`: vPDQ. Each distinct frame is stored, indexed and matched
   * as a digest of its own; the decider then applies the video-level rule (policy.video).
   */
  readonly frameList?: { readonly maxFrames: number };
  /** Strict parse of the wire text (lower-case hex of `digestBytes` bytes); throws DigestFormatError. */
  parse(text: unknown): Uint8Array;
  /** The wire text of a digest. */
  format(digest: Uint8Array): string;
  /** Distance between two digests of this algorithm (0 = equal). */
  distance(a: Uint8Array, b: Uint8Array): number;
  /** The decision tier of a match at `distance`, given the policy's strict radius. */
  tier(distance: number, strictRadius: number): MatchTier;
}

// The hash-algorithm registry: every algorithm Vouch knows, each described in its own file. The
// vocabulary, the hash-list parser, the matcher, the verdict store and the decision engine ask the
// registry; none of them names an algorithm. docs/architecture.md, "How to add an algorithm".
import { md5 } from './md5.js';
import { pdq } from './pdq.js';
import { phash64 } from './phash64.js';
import { sha256 } from './sha256.js';
import { vpdq } from './vpdq.js';
import { DigestFormatError, type HashAlgorithm } from './types.js';

export { imageSubjects } from './pdq.js';
export { frameSubjects, framesOfSubjects, parseFrames, videoSubjects, type FrameSubject } from './vpdq.js';
export { DigestFormatError, type ContentKind, type HashAlgorithm, type IndexKind, type MatchTier } from './types.js';

/**
 * The algorithm that keys the media table, re-attestation and the console's explain links: the
 * SHA-256 of the original bytes, which every medium (image or video) has.
 */
export const MEDIA_KEY_ALGORITHM = sha256.name;
/** The near-duplicate hash of an image, which explanations take when a verdict names no media key. */
export const IMAGE_SIMILARITY_ALGORITHM = pdq.name;

/** A subject of a verdict or a query: an algorithm's name and the wire text of a digest. */
export interface HashSubject {
  algorithm: string;
  /** Lower-case hex of the digest. */
  digest: string;
  /** 0..100, for algorithms with a quality. */
  quality?: number;
}

export class AlgorithmRegistry {
  private readonly byName: ReadonlyMap<string, HashAlgorithm>;

  constructor(readonly all: readonly HashAlgorithm[]) {
    const byName = new Map<string, HashAlgorithm>();
    for (const a of all) {
      if (!/^[a-z][a-z0-9_-]{0,31}$/.test(a.name)) throw new Error(`algorithm name '${a.name}' must be 1-32 of a-z, 0-9, _ and -`);
      if (byName.has(a.name)) throw new Error(`algorithm '${a.name}' is registered twice`);
      if (!(Number.isInteger(a.digestBytes) && a.digestBytes > 0 && a.digestBytes <= 32)) throw new Error(`algorithm '${a.name}': digests are 1 to 32 bytes`);
      if (a.index === 'pdq' && a.digestBytes !== 32) throw new Error(`algorithm '${a.name}': the PDQ index holds 32-byte digests`);
      byName.set(a.name, a);
    }
    for (const a of all) {
      if (a.confirmedBy !== undefined && !byName.has(a.confirmedBy)) throw new Error(`algorithm '${a.name}' is confirmed by unknown '${a.confirmedBy}'`);
    }
    this.byName = byName;
  }

  get names(): string[] {
    return this.all.map((a) => a.name);
  }

  has(name: unknown): name is string {
    return typeof name === 'string' && this.byName.has(name);
  }

  /** The algorithm called `name`; throws DigestFormatError for a name it does not know. */
  get(name: unknown): HashAlgorithm {
    const found = typeof name === 'string' ? this.byName.get(name) : undefined;
    if (!found) throw new DigestFormatError(`unknown hash algorithm ${JSON.stringify(name)?.slice(0, 40)} (known: ${this.names.join(', ')})`);
    return found;
  }

  /** The algorithms whose subjects are frame lists (vPDQ). */
  get frameLists(): HashAlgorithm[] {
    return this.all.filter((a) => a.frameList !== undefined);
  }

  /** The algorithms whose digests a lookup finds (index other than `none`). */
  get indexed(): HashAlgorithm[] {
    return this.all.filter((a) => a.index !== 'none');
  }

  /** The widest radius any algorithm answers: a match at it counts least (decision 15's match(d)). */
  get widestRadius(): number {
    return Math.max(0, ...this.all.map((a) => a.maxDistance));
  }

  /** Parses one subject's digest (and checks its quality is allowed) or throws DigestFormatError. */
  parseSubject(subject: HashSubject): Uint8Array {
    const algorithm = this.get(subject.algorithm);
    if (subject.quality !== undefined && !algorithm.hasQuality) throw new DigestFormatError(`quality is not defined for ${algorithm.name} subjects`);
    return algorithm.parse(subject.digest);
  }
}

/** The algorithms of this build, in the order subjects are written. */
export const ALGORITHM_REGISTRY = new AlgorithmRegistry([pdq, sha256, phash64, md5, vpdq]);

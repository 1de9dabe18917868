// The matcher: in-memory lookups from hash to verdict id, one index per algorithm the registry
// (shared/algorithms) says is looked up: a hash table of whole digests for `exact` algorithms, the
// PDQ multi-index for `pdq` ones. Digests of every `pdq`-kind algorithm live in the same 256-bit
// space, so a query's PDQ is searched in each of their indexes. It knows nothing of verdict rows;
// the verdicts module feeds it.
import { ALGORITHM_REGISTRY, type AlgorithmRegistry, type HashAlgorithm } from '../../shared/algorithms/index.js';
import { PdqIndex } from './pdq-index.js';
import { Sha256Index } from './sha256-index.js';

/** A stored verdict subject as the index receives it. */
export interface IndexedSubject {
  algorithm: string;
  digest: Uint8Array;
  quality: number | null;
}

/** One hash of the media looked up; several of one algorithm are allowed (PDQ's rotations and mirrors). */
export interface QueryHash {
  algorithm: string;
  digest: Uint8Array;
  quality?: number;
}

export interface MatchQuery {
  /**
   * The media's hashes. Those of algorithms the registry does not look up (pHash-64) are carried
   * for the decider, which compares them with a match's (HashAlgorithm.confirmedBy).
   */
  hashes: QueryHash[];
  /** At most this distance for near-duplicate algorithms (default: each algorithm's own radius). */
  maxDistance?: number;
}

export interface Match {
  verdictId: number;
  /** The algorithm of the verdict's subject that matched. */
  algorithm: string;
  distance: number;
}

const EXACT_KEY_BYTES = 32;

/** Exact digests shorter than 32 bytes (MD5) are zero-padded: each algorithm has its own table. */
function exactKey(digest: Uint8Array): Uint8Array {
  if (digest.length === EXACT_KEY_BYTES) return digest;
  const key = new Uint8Array(EXACT_KEY_BYTES);
  key.set(digest);
  return key;
}

/** Packs PDQ rows into typed arrays as they stream in: loading millions allocates no object per hash. */
class PdqPacker {
  private hashes = new Uint8Array(32 * 1024);
  private ids = new Uint32Array(1024);
  private count = 0;

  push(digest: Uint8Array, verdictId: number): void {
    if (this.count === this.ids.length) {
      const ids = new Uint32Array(this.ids.length * 2);
      ids.set(this.ids);
      this.ids = ids;
      const hashes = new Uint8Array(this.hashes.length * 2);
      hashes.set(this.hashes);
      this.hashes = hashes;
    }
    this.hashes.set(digest, this.count * 32);
    this.ids[this.count++] = verdictId;
  }

  build(): PdqIndex {
    return PdqIndex.build(this.hashes.subarray(0, this.count * 32), this.ids.subarray(0, this.count));
  }
}

export class Matcher {
  private exact = new Map<string, Sha256Index>();
  private pdq = new Map<string, PdqIndex>();

  constructor(private readonly registry: AlgorithmRegistry = ALGORITHM_REGISTRY) {
    for (const a of registry.indexed) {
      if (a.index === 'exact') this.exact.set(a.name, new Sha256Index());
      else this.pdq.set(a.name, new PdqIndex());
    }
  }

  /** The algorithm of a subject, if the registry looks it up and the subject is good enough to index. */
  private indexed(subject: { algorithm: string; quality?: number | null }): HashAlgorithm | undefined {
    if (!this.registry.has(subject.algorithm)) return undefined;
    const algorithm = this.registry.get(subject.algorithm);
    if (algorithm.index === 'none' || (subject.quality ?? 100) < algorithm.minQuality) return undefined;
    return algorithm;
  }

  /** Replaces the whole index in one pass (start-up). */
  rebuild(): { push(verdictId: number, subject: IndexedSubject): void; finish(): void } {
    const exact = new Map([...this.exact.keys()].map((name) => [name, new Sha256Index()]));
    const packers = new Map([...this.pdq.keys()].map((name) => [name, new PdqPacker()]));
    return {
      push: (verdictId, subject) => {
        const algorithm = this.indexed(subject);
        if (algorithm?.index === 'exact') exact.get(algorithm.name)!.add(exactKey(subject.digest), verdictId);
        else if (algorithm?.index === 'pdq') packers.get(algorithm.name)!.push(subject.digest, verdictId);
      },
      finish: () => {
        this.pdq = new Map([...packers].map(([name, packer]) => [name, packer.build()]));
        this.exact = exact;
      },
    };
  }

  add(verdictId: number, subjects: IndexedSubject[]): void {
    for (const subject of subjects) {
      const algorithm = this.indexed(subject);
      if (algorithm?.index === 'exact') this.exact.get(algorithm.name)!.add(exactKey(subject.digest), verdictId);
      else if (algorithm?.index === 'pdq') this.pdq.get(algorithm.name)!.add(subject.digest, verdictId);
    }
  }

  /**
   * Drops a verdict. With its subjects given, each entry is found through the index (microseconds);
   * without, every index is scanned (milliseconds per million hashes).
   */
  remove(verdictId: number, subjects?: IndexedSubject[]): void {
    if (!subjects) {
      for (const index of this.pdq.values()) index.remove(verdictId);
      for (const index of this.exact.values()) index.remove(verdictId);
      return;
    }
    for (const subject of subjects) {
      // Quality is not checked here: removing what was never added is a no-op.
      this.exact.get(subject.algorithm)?.remove(verdictId, exactKey(subject.digest));
      this.pdq.get(subject.algorithm)?.removeEntry(subject.digest, verdictId);
    }
  }

  /** Exact hits first (distance 0), then near-duplicate hits by distance; one row per verdict. */
  match(query: MatchQuery): Match[] {
    const found = new Map<number, Match>();
    const pdqQueries: Uint8Array[] = [];
    for (const hash of query.hashes) {
      const algorithm = this.indexed(hash);
      if (algorithm?.index === 'exact') {
        for (const verdictId of this.exact.get(algorithm.name)!.get(exactKey(hash.digest))) {
          found.set(verdictId, { verdictId, algorithm: algorithm.name, distance: 0 });
        }
      } else if (algorithm?.index === 'pdq') pdqQueries.push(hash.digest);
    }
    if (pdqQueries.length > 0) {
      const near: Match[] = [];
      for (const [name, index] of this.pdq) {
        const radius = Math.min(query.maxDistance ?? Infinity, this.registry.get(name).maxDistance);
        for (const hit of index.searchMany(pdqQueries, radius)) near.push({ verdictId: hit.id, algorithm: name, distance: hit.distance });
      }
      near.sort((a, b) => a.distance - b.distance);
      for (const hit of near) if (!found.has(hit.verdictId)) found.set(hit.verdictId, hit);
    }
    return [...found.values()].sort((a, b) => a.distance - b.distance);
  }

  /** Entries per indexed algorithm. */
  get size(): Record<string, number> {
    const size: Record<string, number> = {};
    for (const [name, index] of this.exact) size[name] = index.size;
    for (const [name, index] of this.pdq) size[name] = index.size;
    return size;
  }
}

/**
 * The lookup for hashes given as subjects (lower-case hex, as verdicts and media rows carry them).
 * A subject whose digest its algorithm refuses is left out: it cannot match anything.
 */
export function queryOf(
  subjects: ReadonlyArray<{ algorithm: string; digest: string; quality?: number }>,
  options: { maxDistance?: number; registry?: AlgorithmRegistry } = {},
): MatchQuery {
  const registry = options.registry ?? ALGORITHM_REGISTRY;
  const hashes: QueryHash[] = [];
  for (const s of subjects) {
    if (!registry.has(s.algorithm)) continue;
    let digest: Uint8Array;
    try {
      digest = registry.get(s.algorithm).parse(s.digest);
    } catch {
      continue;
    }
    hashes.push({ algorithm: s.algorithm, digest, ...(s.quality === undefined ? {} : { quality: s.quality }) });
  }
  return { hashes, ...(options.maxDistance === undefined ? {} : { maxDistance: options.maxDistance }) };
}

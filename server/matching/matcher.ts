// The matcher: in-memory exact (SHA-256) and near-duplicate (PDQ, multi-index hashing) lookups
// from hash to verdict id. It knows nothing of verdict rows; the verdicts module feeds it.
import { PdqIndex } from './pdq-index.js';
import { Sha256Index } from './sha256-index.js';

/** PDQ hashes below this quality are too flat to match reliably (Meta's own guidance). */
export const MIN_PDQ_QUALITY = 50;
/** The largest distance the index answers exactly, and the design's match threshold. */
export const MAX_PDQ_DISTANCE = 31;

export interface IndexedSubject {
  algorithm: string;
  digest: Uint8Array;
  quality: number | null;
}

export interface MatchQuery {
  sha256?: Uint8Array;
  /** The query's PDQ hash, and optionally its dihedral variants (rotations and mirrors). */
  pdq?: Uint8Array[];
  pdqQuality?: number;
  maxDistance?: number;
  /** The media's pHash-64: not looked up, but the decider checks PDQ matches against it. */
  phash64?: Uint8Array;
}

export interface Match {
  verdictId: number;
  algorithm: 'sha256' | 'pdq';
  distance: number;
}

function indexablePdq(subject: IndexedSubject): boolean {
  return subject.algorithm === 'pdq' && (subject.quality ?? 100) >= MIN_PDQ_QUALITY;
}

export class Matcher {
  private pdq = new PdqIndex();
  private sha = new Sha256Index();

  /**
   * Replaces the whole index in one pass (start-up). Rows are packed into typed arrays as they
   * stream in, so loading millions of hashes allocates no object per hash.
   */
  rebuild(): { push(verdictId: number, subject: IndexedSubject): void; finish(): void } {
    let hashes = new Uint8Array(32 * 1024);
    let ids = new Uint32Array(1024);
    let count = 0;
    const sha = new Sha256Index();
    return {
      push: (verdictId, subject) => {
        if (subject.algorithm === 'sha256') sha.add(subject.digest, verdictId);
        else if (indexablePdq(subject)) {
          if (count === ids.length) {
            const grownIds = new Uint32Array(ids.length * 2);
            grownIds.set(ids);
            ids = grownIds;
            const grownHashes = new Uint8Array(hashes.length * 2);
            grownHashes.set(hashes);
            hashes = grownHashes;
          }
          hashes.set(subject.digest, count * 32);
          ids[count++] = verdictId;
        }
      },
      finish: () => {
        this.pdq = PdqIndex.build(hashes.subarray(0, count * 32), ids.subarray(0, count));
        this.sha = sha;
      },
    };
  }

  add(verdictId: number, subjects: IndexedSubject[]): void {
    for (const subject of subjects) {
      if (subject.algorithm === 'sha256') this.sha.add(subject.digest, verdictId);
      else if (indexablePdq(subject)) this.pdq.add(subject.digest, verdictId);
    }
  }

  /**
   * Drops a verdict. With its subjects given, each entry is found through the index (microseconds);
   * without, both indexes are scanned (milliseconds per million hashes).
   */
  remove(verdictId: number, subjects?: IndexedSubject[]): void {
    if (!subjects) {
      this.pdq.remove(verdictId);
      this.sha.remove(verdictId);
      return;
    }
    for (const subject of subjects) {
      if (subject.algorithm === 'sha256') this.sha.remove(verdictId, subject.digest);
      else if (subject.algorithm === 'pdq') this.pdq.removeEntry(subject.digest, verdictId);
    }
  }

  /** Exact SHA-256 hits first (distance 0), then PDQ hits by distance; one row per verdict. */
  match(query: MatchQuery): Match[] {
    const maxDistance = query.maxDistance ?? MAX_PDQ_DISTANCE;
    const found = new Map<number, Match>();
    if (query.sha256) {
      for (const verdictId of this.sha.get(query.sha256)) {
        found.set(verdictId, { verdictId, algorithm: 'sha256', distance: 0 });
      }
    }
    const pdqUsable = query.pdq && query.pdq.length > 0 && (query.pdqQuality ?? 100) >= MIN_PDQ_QUALITY;
    if (pdqUsable) {
      for (const hit of this.pdq.searchMany(query.pdq!, maxDistance)) {
        if (!found.has(hit.id)) found.set(hit.id, { verdictId: hit.id, algorithm: 'pdq', distance: hit.distance });
      }
    }
    return [...found.values()].sort((a, b) => a.distance - b.distance);
  }

  get size(): { pdq: number; sha256: number } {
    return { pdq: this.pdq.size, sha256: this.sha.size };
  }
}

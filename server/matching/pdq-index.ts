/**
 * In-memory near-duplicate index for 256-bit PDQ hashes: multi-index hashing (Norouzi, Punjani and
 * Fleet, "Fast Exact Search in Hamming Space with Multi-Index Hashing", 2012/2014).
 *
 * Exactness. The 256 bits are cut into 16 chunks of 16 bits. If two hashes differ in d <= 31 bits,
 * then by pigeonhole some chunk differs in at most floor(31 / 16) = 1 bit. So probing, for each chunk,
 * the bucket of the query's chunk value and the 16 buckets one bit away from it (17 probes, 272 in
 * all) reaches every stored hash within distance 31; each candidate's full distance is then verified.
 * Results are therefore exactly those of a brute-force scan, not an approximation. For
 * maxDistance <= 15 one chunk must match exactly, so one probe per chunk (16 in all) suffices.
 * Beyond 31 the argument fails, so a larger maxDistance throws.
 *
 * De-duplication without per-query state. A hash near the query is reached through every chunk in
 * which it is within the probe radius. It is reported only from the first such chunk: when a
 * candidate found through chunk j passes verification, chunks 0..j-1 are checked (from the words
 * already loaded) and it is skipped if one of them was also within the radius. This costs nothing for
 * the vast majority of candidates (those that fail verification) and needs no visited-array.
 *
 * Byte and bit order. A hash is 32 opaque bytes (for PDQ: as `shared/hashing` produces them, i.e.
 * hex order, byte 0 first). Bit i of the hash is bit (i % 8) of byte floor(i / 8). Chunk j is bytes
 * 2j and 2j+1, read little-endian (value = byte[2j] | byte[2j+1] << 8). With `shared/hashing`'s PDQ
 * layout, chunk j is exactly reference word 15 - j (one row of the 16x16 DCT sign matrix); any fixed
 * convention would do, as Hamming distance does not depend on bit order. Words are stored as
 * little-endian 32-bit integers on every platform (the bulk loader byte-swaps on big-endian hosts).
 *
 * Layout (typed arrays only, no object per hash):
 *  - entry storage: 8 x int32 hash words (32 B) + uint32 id (4 B) + 1 tombstone bit per entry,
 *    growable (x1.5);
 *  - static part, per chunk, in CSR form: one shared Int32Array of 16 x 65 537 bucket offsets
 *    (4.2 MB) and per chunk a posting list of entry indices sorted by chunk value, packed in 3 bytes
 *    per entry while the static part holds <= 2^24 entries (4 bytes beyond): 48 B per entry;
 *  - delta part, for entries added since the last merge: per-bucket singly linked lists in typed
 *    arrays (16 x 65 536 heads, 4.2 MB, allocated on first add; 16 x int32 links per delta entry).
 *    When the delta reaches `mergeFraction` of the static part (and at least `minDelta`), everything
 *    is rebuilt into the static part (counting sort, O(n)): inserts are amortised O(1).
 *  Total after a bulk build: 84 B per entry plus 4.2 MB, about 88 MB per million.
 *
 * Duplicates: adding the same (hash, id) pair twice stores two entries. Results are per id (the
 * minimum distance over that id's entries), so duplicates never show in results; they only cost
 * memory, and `remove(id)` removes them all. One id may carry several different hashes (a verdict
 * about several files): it is reported once, at its smallest distance.
 *
 * Not re-entrant: searches use per-index scratch buffers (fine: JavaScript runs them one at a time).
 */

const HASH_BYTES = 32;
const WORDS = 8;
const CHUNKS = 16;
const BUCKETS = 1 << 16;
const OFFSETS_PER_CHUNK = BUCKETS + 1;
/** Largest Hamming distance for which results are exact (see the module comment). */
export const PDQ_INDEX_MAX_DISTANCE = 31;
/** Static parts up to this many entries store postings in 3 bytes, larger ones in 4. */
const NARROW_POSTINGS_LIMIT = 1 << 24;
const EMPTY_I32 = new Int32Array(0);

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint32Array([0x01020304]).buffer)[0] === 0x04;

export interface PdqMatch {
  /** The uint32 payload given to `add` / `build`. */
  id: number;
  /** Hamming distance to the nearest of this id's hashes (over all queries, for `searchMany`). */
  distance: number;
}

export interface PdqIndexOptions {
  /** Merge the delta into the static part once it holds this fraction of it. Default 0.25. */
  mergeFraction?: number;
  /** ...but never before the delta holds this many entries. Default 65 536. */
  minDelta?: number;
  /** @internal For tests: 4-byte postings even when 3 would do (normally only beyond 2^24 entries). */
  widePostings?: boolean;
}

function popcount32(x: number): number {
  x = (x - ((x >>> 1) & 0x55555555)) | 0;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  x = (x + (x >>> 4)) & 0x0f0f0f0f;
  return Math.imul(x, 0x01010101) >>> 24;
}

function checkHash(hash: Uint8Array, what: string): void {
  if (!(hash instanceof Uint8Array) || hash.length !== HASH_BYTES) {
    throw new TypeError(`${what} must be a ${HASH_BYTES}-byte Uint8Array`);
  }
}

function checkId(id: number): void {
  if (!Number.isInteger(id) || id < 0 || id > 0xffffffff) {
    throw new RangeError(`id must be a uint32, got ${id}`);
  }
}

function checkDistance(maxDistance: number): number {
  if (!Number.isInteger(maxDistance) || maxDistance < 0 || maxDistance > PDQ_INDEX_MAX_DISTANCE) {
    throw new RangeError(
      `maxDistance must be an integer in 0..${PDQ_INDEX_MAX_DISTANCE} (the index is exact only up to ` +
        `${PDQ_INDEX_MAX_DISTANCE}), got ${maxDistance}`,
    );
  }
  return maxDistance;
}

/** Hash bytes -> 8 little-endian int32 words at out[at..at+7]. */
function loadWords(hash: Uint8Array, out: Int32Array, at: number): void {
  for (let w = 0; w < WORDS; w++) {
    const b = w << 2;
    out[at + w] = hash[b] | (hash[b + 1] << 8) | (hash[b + 2] << 16) | (hash[b + 3] << 24);
  }
}

/** Hamming distance between two 32-byte hashes (same convention as the index). */
export function pdqDistance(a: Uint8Array, b: Uint8Array): number {
  checkHash(a, 'a');
  checkHash(b, 'b');
  let d = 0;
  for (let w = 0; w < WORDS; w++) {
    const i = w << 2;
    const x = a[i] | (a[i + 1] << 8) | (a[i + 2] << 16) | (a[i + 3] << 24);
    const y = b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24);
    d += popcount32(x ^ y);
  }
  return d;
}

export class PdqIndex {
  /** Largest maxDistance accepted (results are exact up to it). */
  static readonly MAX_DISTANCE = PDQ_INDEX_MAX_DISTANCE;

  private readonly mergeFraction: number;
  private readonly minDelta: number;
  private readonly narrowLimit: number;

  // Entry storage; entries [0, count) are stored, of which deadCount are tombstoned.
  private words: Int32Array;
  private ids: Uint32Array;
  private dead: Int32Array;
  private capacity: number;
  private count = 0;
  private deadCount = 0;

  // Static part: entries [0, baseCount).
  private baseCount = 0;
  private width = 3;
  private offsets: Int32Array | null = null;
  private postings: Uint8Array[] = [];

  // Delta part: entries [baseCount, count); k = entry - baseCount.
  private deltaHeads: Int32Array | null = null;
  private deltaNext: Int32Array = EMPTY_I32;

  // Per-search scratch.
  private readonly q = new Int32Array(WORDS);
  private resEntry = new Int32Array(64);
  private resDist = new Int32Array(64);
  private resCount = 0;

  constructor(options: PdqIndexOptions = {}) {
    const mergeFraction = options.mergeFraction ?? 0.25;
    const minDelta = options.minDelta ?? 65_536;
    if (!(mergeFraction > 0)) throw new RangeError('mergeFraction must be > 0');
    if (!Number.isInteger(minDelta) || minDelta < 1) throw new RangeError('minDelta must be an integer >= 1');
    this.mergeFraction = mergeFraction;
    this.minDelta = minDelta;
    this.narrowLimit = options.widePostings ? 0 : NARROW_POSTINGS_LIMIT;
    this.capacity = 0;
    this.words = EMPTY_I32;
    this.ids = new Uint32Array(0);
    this.dead = EMPTY_I32;
  }

  /**
   * Bulk loader: `hashes` holds n hashes of 32 bytes back to back, `ids[i]` is the payload of hash i.
   * O(n) (two counting-sort passes per pair of chunks); the inputs are copied, not retained.
   */
  static build(hashes: Uint8Array, ids: Uint32Array, options: PdqIndexOptions = {}): PdqIndex {
    if (!(hashes instanceof Uint8Array)) throw new TypeError('hashes must be a Uint8Array');
    if (!(ids instanceof Uint32Array)) throw new TypeError('ids must be a Uint32Array');
    const n = ids.length;
    if (hashes.length !== n * HASH_BYTES) {
      throw new RangeError(`hashes must hold ${n} x ${HASH_BYTES} bytes, got ${hashes.length}`);
    }
    const index = new PdqIndex(options);
    index.ensureCapacity(n, true);
    new Uint8Array(index.words.buffer, 0, n * HASH_BYTES).set(hashes);
    if (!LITTLE_ENDIAN_HOST) {
      const w = index.words;
      for (let i = 0; i < n * WORDS; i++) {
        const x = w[i];
        w[i] = ((x & 0xff) << 24) | ((x & 0xff00) << 8) | ((x >>> 8) & 0xff00) | (x >>> 24);
      }
    }
    index.ids.set(ids);
    index.count = n;
    index.rebuild();
    return index;
  }

  /** Number of live (id, hash) entries. */
  get size(): number {
    return this.count - this.deadCount;
  }

  /** Bytes held in typed arrays (allocated capacity, scratch included). */
  memoryBytes(): number {
    let bytes =
      this.words.byteLength +
      this.ids.byteLength +
      this.dead.byteLength +
      this.deltaNext.byteLength +
      this.q.byteLength +
      this.resEntry.byteLength +
      this.resDist.byteLength;
    if (this.offsets) bytes += this.offsets.byteLength;
    if (this.deltaHeads) bytes += this.deltaHeads.byteLength;
    for (const p of this.postings) bytes += p.byteLength;
    return bytes;
  }

  /**
   * Adds one hash with its uint32 payload. Amortised O(1); every so often (when the delta reaches
   * `mergeFraction` of the static part) the call rebuilds the static part, O(n).
   */
  add(hash: Uint8Array, id: number): void {
    checkHash(hash, 'hash');
    checkId(id);
    const e = this.count;
    this.ensureCapacity(e + 1, false);
    loadWords(hash, this.words, e << 3);
    this.ids[e] = id;
    this.count = e + 1;

    const k = e - this.baseCount;
    if (this.deltaHeads === null) this.deltaHeads = new Int32Array(CHUNKS * BUCKETS).fill(-1);
    if (this.deltaNext.length < (k + 1) * CHUNKS) {
      const grown = new Int32Array(Math.max(1024, (k + 1) * 2) * CHUNKS);
      grown.set(this.deltaNext);
      this.deltaNext = grown;
    }
    const heads = this.deltaHeads;
    const next = this.deltaNext;
    const words = this.words;
    for (let j = 0; j < CHUNKS; j++) {
      const x = words[(e << 3) + (j >> 1)];
      const v = (j & 1) === 0 ? x & 0xffff : x >>> 16;
      const h = (j << 16) | v;
      next[(k << 4) | j] = heads[h];
      heads[h] = k;
    }
    if (k + 1 >= Math.max(this.minDelta, this.baseCount * this.mergeFraction)) this.rebuild();
  }

  /**
   * Removes every entry carrying `id` (tombstones; space is reclaimed at the next merge). Returns
   * how many entries were removed. O(n) scan of the id array (about 1 ms per million entries);
   * prefer `removeEntry` when the hash is known, and `removeMany` for batches.
   */
  remove(id: number): number {
    checkId(id);
    const ids = this.ids;
    const dead = this.dead;
    let removed = 0;
    for (let e = 0, n = this.count; e < n; e++) {
      if (ids[e] === id && ((dead[e >>> 5] >>> (e & 31)) & 1) === 0) {
        dead[e >>> 5] |= 1 << (e & 31);
        removed++;
      }
    }
    return this.tombstoned(removed);
  }

  /** Removes every entry whose id is in `ids`, in one O(n) pass. Returns how many were removed. */
  removeMany(ids: Iterable<number>): number {
    const set = new Set<number>();
    for (const id of ids) {
      checkId(id);
      set.add(id);
    }
    if (set.size === 0) return 0;
    if (set.size === 1) return this.remove(set.values().next().value as number);
    // A bitmap over a multiplicative hash of the id filters out nearly every non-member cheaply.
    let bits = 1024;
    while (bits < set.size * 16 && bits < 1 << 26) bits <<= 1;
    const shift = 32 - Math.log2(bits);
    const filter = new Int32Array(bits >>> 5);
    for (const id of set) {
      const h = Math.imul(id, 0x9e3779b1) >>> shift;
      filter[h >>> 5] |= 1 << (h & 31);
    }
    const stored = this.ids;
    const dead = this.dead;
    let removed = 0;
    for (let e = 0, n = this.count; e < n; e++) {
      const id = stored[e];
      const h = Math.imul(id, 0x9e3779b1) >>> shift;
      if (((filter[h >>> 5] >>> (h & 31)) & 1) === 0) continue;
      if (((dead[e >>> 5] >>> (e & 31)) & 1) !== 0 || !set.has(id)) continue;
      dead[e >>> 5] |= 1 << (e & 31);
      removed++;
    }
    return this.tombstoned(removed);
  }

  /**
   * Removes the entries that carry both this exact hash and this id, found through the index
   * (O(bucket size), no scan). Returns how many were removed.
   */
  removeEntry(hash: Uint8Array, id: number): number {
    checkHash(hash, 'hash');
    checkId(id);
    this.resCount = 0;
    this.collect(hash, 0);
    const dead = this.dead;
    let removed = 0;
    for (let i = 0; i < this.resCount; i++) {
      const e = this.resEntry[i];
      if (this.ids[e] === id) {
        dead[e >>> 5] |= 1 << (e & 31);
        removed++;
      }
    }
    this.resCount = 0;
    return this.tombstoned(removed);
  }

  /**
   * Ids within `maxDistance` (0..31) of `query`, one result per id at its smallest distance, sorted
   * by distance then id. Exact (equal to a brute-force scan).
   */
  search(query: Uint8Array, maxDistance: number = PDQ_INDEX_MAX_DISTANCE): PdqMatch[] {
    checkHash(query, 'query');
    const maxD = checkDistance(maxDistance);
    this.resCount = 0;
    this.collect(query, maxD);
    return this.takeResults();
  }

  /**
   * The union of `search` over several queries (e.g. the 8 dihedral variants of one image's PDQ),
   * one result per id at its smallest distance over all queries, sorted by distance then id.
   */
  searchMany(queries: readonly Uint8Array[], maxDistance: number = PDQ_INDEX_MAX_DISTANCE): PdqMatch[] {
    const maxD = checkDistance(maxDistance);
    for (const query of queries) checkHash(query, 'query');
    this.resCount = 0;
    for (const query of queries) this.collect(query, maxD);
    return this.takeResults();
  }

  /** Merges the delta into the static part and drops tombstoned entries now (normally automatic). */
  compact(): void {
    if (this.count > this.baseCount || this.deadCount > 0) this.rebuild();
  }

  // ---------------------------------------------------------------------------------------------

  private tombstoned(removed: number): number {
    this.deadCount += removed;
    if (removed > 0 && this.deadCount >= Math.max(this.minDelta, this.count * this.mergeFraction)) {
      this.rebuild();
    }
    return removed;
  }

  private ensureCapacity(needed: number, exact: boolean): void {
    if (needed <= this.capacity) return;
    const cap = exact ? needed : Math.max(needed, this.capacity + (this.capacity >>> 1), 1024);
    const words = new Int32Array(cap * WORDS);
    words.set(this.words.subarray(0, this.count * WORDS));
    const ids = new Uint32Array(cap);
    ids.set(this.ids.subarray(0, this.count));
    const dead = new Int32Array((cap + 31) >>> 5);
    dead.set(this.dead);
    this.words = words;
    this.ids = ids;
    this.dead = dead;
    this.capacity = cap;
  }

  /** Drops tombstoned entries, then rebuilds the static part over all entries (delta emptied). */
  private rebuild(): void {
    if (this.deadCount > 0) this.compactStorage();
    const n = this.count;
    this.baseCount = n;
    if (this.deltaHeads) this.deltaHeads.fill(-1);
    this.deltaNext = EMPTY_I32;
    if (n === 0) {
      this.offsets = null;
      this.postings = [];
      return;
    }
    const width = n <= this.narrowLimit ? 3 : 4;
    this.width = width;
    const offsets = this.offsets ?? new Int32Array(CHUNKS * OFFSETS_PER_CHUNK);
    this.offsets = offsets;
    const words = this.words;
    const cursor = new Int32Array(2 * BUCKETS);
    // Chunks 2w and 2w+1 are the low and high halves of word w: one pass over the words counts
    // both, a second scatters both (stable, so each bucket lists entries in increasing order).
    for (let w = 0; w < WORDS; w++) {
      const lo = 2 * w * OFFSETS_PER_CHUNK;
      const hi = lo + OFFSETS_PER_CHUNK;
      offsets.fill(0, lo, hi + OFFSETS_PER_CHUNK);
      for (let i = w, end = n << 3; i < end; i += WORDS) {
        const x = words[i];
        offsets[lo + 1 + (x & 0xffff)]++;
        offsets[hi + 1 + (x >>> 16)]++;
      }
      for (let v = 0; v < BUCKETS; v++) {
        offsets[lo + v + 1] += offsets[lo + v];
        offsets[hi + v + 1] += offsets[hi + v];
      }
      for (let v = 0; v < BUCKETS; v++) {
        cursor[v] = offsets[lo + v] * width;
        cursor[BUCKETS + v] = offsets[hi + v] * width;
      }
      // Release the old lists before allocating new ones, to keep the peak low.
      this.postings[2 * w] = this.postings[2 * w + 1] = new Uint8Array(0);
      const pLo = new Uint8Array(n * width);
      const pHi = new Uint8Array(n * width);
      if (width === 3) {
        for (let e = 0; e < n; e++) {
          const x = words[(e << 3) + w];
          let p = cursor[x & 0xffff];
          cursor[x & 0xffff] = p + 3;
          pLo[p] = e;
          pLo[p + 1] = e >>> 8;
          pLo[p + 2] = e >>> 16;
          p = cursor[BUCKETS + (x >>> 16)];
          cursor[BUCKETS + (x >>> 16)] = p + 3;
          pHi[p] = e;
          pHi[p + 1] = e >>> 8;
          pHi[p + 2] = e >>> 16;
        }
      } else {
        for (let e = 0; e < n; e++) {
          const x = words[(e << 3) + w];
          let p = cursor[x & 0xffff];
          cursor[x & 0xffff] = p + 4;
          pLo[p] = e;
          pLo[p + 1] = e >>> 8;
          pLo[p + 2] = e >>> 16;
          pLo[p + 3] = e >>> 24;
          p = cursor[BUCKETS + (x >>> 16)];
          cursor[BUCKETS + (x >>> 16)] = p + 4;
          pHi[p] = e;
          pHi[p + 1] = e >>> 8;
          pHi[p + 2] = e >>> 16;
          pHi[p + 3] = e >>> 24;
        }
      }
      this.postings[2 * w] = pLo;
      this.postings[2 * w + 1] = pHi;
    }
  }

  /** Moves live entries down over tombstoned ones, keeping their order. */
  private compactStorage(): void {
    const words = this.words;
    const ids = this.ids;
    const dead = this.dead;
    let to = 0;
    for (let e = 0, n = this.count; e < n; e++) {
      if (((dead[e >>> 5] >>> (e & 31)) & 1) !== 0) continue;
      if (to !== e) {
        const s = e << 3;
        const t = to << 3;
        for (let w = 0; w < WORDS; w++) words[t + w] = words[s + w];
        ids[to] = ids[e];
      }
      to++;
    }
    dead.fill(0);
    this.count = to;
    this.deadCount = 0;
  }

  /** Appends (entry, distance) for every live entry within maxD of the query, each entry once. */
  private collect(query: Uint8Array, maxD: number): void {
    loadWords(query, this.q, 0);
    const radius = maxD >= CHUNKS ? 1 : 0;
    if (this.baseCount > 0) this.scanStatic(maxD, radius);
    if (this.count > this.baseCount) this.scanDelta(maxD, radius);
  }

  private scanStatic(maxD: number, radius: number): void {
    const words = this.words;
    const offsets = this.offsets!;
    const postings = this.postings;
    const dead = this.dead;
    const width = this.width;
    const wide = width === 4;
    const q = this.q;
    const q0 = q[0], q1 = q[1], q2 = q[2], q3 = q[3], q4 = q[4], q5 = q[5], q6 = q[6], q7 = q[7];
    const probes = radius === 0 ? 1 : 17;
    for (let j = 0; j < CHUNKS; j++) {
      const qw = q[j >> 1];
      const qc = (j & 1) === 0 ? qw & 0xffff : qw >>> 16;
      const post = postings[j];
      const base = j * OFFSETS_PER_CHUNK;
      for (let b = 0; b < probes; b++) {
        const v = b === 0 ? qc : qc ^ (1 << (b - 1));
        const end = offsets[base + v + 1] * width;
        for (let o = offsets[base + v] * width; o < end; o += width) {
          let e = post[o] | (post[o + 1] << 8) | (post[o + 2] << 16);
          if (wide) e |= post[o + 3] << 24;
          const k = e << 3;
          let d =
            popcount32(words[k] ^ q0) +
            popcount32(words[k + 1] ^ q1) +
            popcount32(words[k + 2] ^ q2) +
            popcount32(words[k + 3] ^ q3);
          if (d > maxD) continue;
          d +=
            popcount32(words[k + 4] ^ q4) +
            popcount32(words[k + 5] ^ q5) +
            popcount32(words[k + 6] ^ q6) +
            popcount32(words[k + 7] ^ q7);
          if (d > maxD) continue;
          if (j > 0 && this.reachedEarlier(k, j, radius)) continue;
          if (((dead[e >>> 5] >>> (e & 31)) & 1) !== 0) continue;
          this.pushResult(e, d);
        }
      }
    }
  }

  private scanDelta(maxD: number, radius: number): void {
    const words = this.words;
    const heads = this.deltaHeads!;
    const next = this.deltaNext;
    const dead = this.dead;
    const baseCount = this.baseCount;
    const q = this.q;
    const q0 = q[0], q1 = q[1], q2 = q[2], q3 = q[3], q4 = q[4], q5 = q[5], q6 = q[6], q7 = q[7];
    const probes = radius === 0 ? 1 : 17;
    for (let j = 0; j < CHUNKS; j++) {
      const qw = q[j >> 1];
      const qc = (j & 1) === 0 ? qw & 0xffff : qw >>> 16;
      for (let b = 0; b < probes; b++) {
        const v = b === 0 ? qc : qc ^ (1 << (b - 1));
        for (let k = heads[(j << 16) | v]; k >= 0; k = next[(k << 4) | j]) {
          const e = baseCount + k;
          const w = e << 3;
          let d =
            popcount32(words[w] ^ q0) +
            popcount32(words[w + 1] ^ q1) +
            popcount32(words[w + 2] ^ q2) +
            popcount32(words[w + 3] ^ q3);
          if (d > maxD) continue;
          d +=
            popcount32(words[w + 4] ^ q4) +
            popcount32(words[w + 5] ^ q5) +
            popcount32(words[w + 6] ^ q6) +
            popcount32(words[w + 7] ^ q7);
          if (d > maxD) continue;
          if (j > 0 && this.reachedEarlier(w, j, radius)) continue;
          if (((dead[e >>> 5] >>> (e & 31)) & 1) !== 0) continue;
          this.pushResult(e, d);
        }
      }
    }
  }

  /** Whether the entry at word offset k is within `radius` of the query in some chunk before j. */
  private reachedEarlier(k: number, j: number, radius: number): boolean {
    const words = this.words;
    const q = this.q;
    for (let i = 0; i < j; i++) {
      const x = ((words[k + (i >> 1)] ^ q[i >> 1]) >>> ((i & 1) << 4)) & 0xffff;
      if (radius === 0 ? x === 0 : (x & (x - 1)) === 0) return true;
    }
    return false;
  }

  private pushResult(e: number, d: number): void {
    const n = this.resCount;
    if (n === this.resEntry.length) {
      const entries = new Int32Array(n * 2);
      entries.set(this.resEntry);
      this.resEntry = entries;
      const dists = new Int32Array(n * 2);
      dists.set(this.resDist);
      this.resDist = dists;
    }
    this.resEntry[n] = e;
    this.resDist[n] = d;
    this.resCount = n + 1;
  }

  private takeResults(): PdqMatch[] {
    const n = this.resCount;
    this.resCount = 0;
    if (n === 0) return [];
    const ids = this.ids;
    const entries = this.resEntry;
    const dists = this.resDist;
    if (n === 1) return [{ id: ids[entries[0]], distance: dists[0] }];
    const best = new Map<number, number>();
    for (let i = 0; i < n; i++) {
      const id = ids[entries[i]];
      const d = dists[i];
      const prev = best.get(id);
      if (prev === undefined || d < prev) best.set(id, d);
    }
    const out: PdqMatch[] = [];
    for (const [id, distance] of best) out.push({ id, distance });
    out.sort((a, b) => a.distance - b.distance || a.id - b.id);
    return out;
  }
}

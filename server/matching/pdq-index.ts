/**
 * In-memory near-duplicate index for 256-bit PDQ hashes: multi-index hashing (Norouzi, Punjani and
 * Fleet, "Fast Exact Search in Hamming Space with Multi-Index Hashing", 2012/2014), with a filter
 * stored in each posting that spares most candidates the random access to their hash.
 *
 * Exactness. The 256 bits are cut into 16 chunks of 16 bits, and the chunks are paired: pair p is
 * chunks 2p and 2p+1 (32-bit word p). If a stored hash is within d <= maxDistance <= 31 of the
 * query, the 8 pairs' distances sum to d, so some pair differs in at most S = floor(maxDistance / 8)
 * <= 3 bits; within that pair one chunk differs in at most r = floor(S / 2) <= 1 bits (c, say) and
 * its partner chunk in at most S - c. So the search probes, for every chunk, the buckets within
 * radius r of the query's chunk value (17 buckets for r = 1, i.e. maxDistance >= 16; 1 bucket
 * below), and keeps a posting only if its partner chunk can be within S - c of the query's. Every
 * stored hash within maxDistance passes for at least one chunk; each survivor's full distance is then
 * verified. Results are therefore exactly those of a brute-force scan, never an approximation.
 * Beyond 31, r would be 2 (137 probes per chunk); the index refuses maxDistance > 31.
 *
 * The partner filter. Each posting is one int32: the entry index, shifted left, and the partner
 * chunk folded to the bits left over: 12 bits while the static part holds <= 2^20 entries (bits
 * 12..15 XORed onto bits 0..3), 8 up to 2^24 (high byte XOR low byte), 4 up to 2^28, the limit.
 * Folding is linear and maps a difference of c bits to one of at most c bits, so the popcount of the
 * folded difference is a lower bound and the filter loses nothing. For an unrelated hash (radius-1
 * buckets, partner budget 2) it passes 79/4096 = 1.9 % of the postings with 12 bits and 37/256 =
 * 14 % with 8, so nearly all candidates are rejected from the sequentially read posting list,
 * without the random access to their hash.
 *
 * Chunk 0 needs no posting list: the entries themselves are stored in order of their chunk 0 (each
 * rebuild sorts them), so its buckets are contiguous runs of the hash array, read sequentially and
 * filtered on the exact partner distance.
 *
 * De-duplication without per-query state. A hash near the query can pass through several chunks. It
 * is reported only from the first chunk it passes through: when a candidate found through chunk j is
 * within maxDistance, the same test is applied to chunks 0..j-1 (from the words already loaded) and
 * the candidate is skipped if one of them passes. Only matches pay for this; no visited-array.
 *
 * Byte and bit order. A hash is 32 opaque bytes (for PDQ: as `shared/hashing` produces them, i.e.
 * hex order, byte 0 first). Bit i of the hash is bit (i % 8) of byte floor(i / 8). Chunk j is bytes
 * 2j and 2j+1, read little-endian (value = byte[2j] | byte[2j+1] << 8). With `shared/hashing`'s PDQ
 * layout, chunk j is exactly reference word 15 - j (one row of the 16x16 DCT sign matrix); any fixed
 * convention would do, as Hamming distance does not depend on bit order. Words are stored as
 * little-endian 32-bit integers on every platform (hashes are read byte by byte, and the bulk
 * loader views the input as int32 words only on little-endian hosts).
 *
 * Layout (typed arrays only, no object per hash):
 *  - entry storage: 8 x int32 hash words (32 B) + uint32 id (4 B), growable (x1.5), plus 1
 *    tombstone bit per entry once anything has been removed;
 *  - static part, in CSR form per chunk: bucket offsets (per chunk, an int32 base per 256 buckets and
 *    a uint16 per bucket: 2.1 MB for the 16 chunks; a chunk whose 256-bucket blocks exceed 65 535
 *    entries, i.e. beyond ~16M uniform hashes or with heavy skew, falls back to int32 offsets, +0.13
 *    MB) and, for chunks 1..15, an Int32Array of postings (entry index + partner fold) grouped by
 *    chunk value, in increasing entry order within a bucket: 60 B per entry;
 *  - delta part, for entries added since the last merge: per-bucket singly linked lists in typed
 *    arrays (16 x 65 536 heads, 4.2 MB, allocated on first add; 16 int32 links per delta entry, each
 *    carrying an 8-bit partner fold). When the delta reaches `mergeFraction` of the static part (and
 *    at least `minDelta`), everything is rebuilt into the static part (counting sort, O(n)), so
 *    inserts are amortised O(1).
 *  After a bulk build: 96 B per entry plus 2.1 MB (98 MB at 1M, 96.2 MB per million at 10M). A
 *  rebuild briefly holds the old and new entry storage (+36 B per entry) but not the old postings.
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
/** Filter bits per static posting: the bits the entry index leaves free, at most 12. */
function filterBitsFor(n: number): number {
  return n <= 1 << 20 ? 12 : n <= 1 << 24 ? 8 : 4;
}
/** Most entries one index holds (28 index bits + 4 filter bits per posting). */
const MAX_ENTRIES = 1 << 28;
/** Delta positions are stored +1 in 24 bits. */
const MAX_DELTA = (1 << 24) - 2;
/** Bucket offsets: an int32 base per block of 256 buckets (257 blocks: the end sentinel too). */
const BLOCK_SHIFT = 8;
const BLOCKS = (BUCKETS >>> BLOCK_SHIFT) + 1;
const EMPTY_I32 = new Int32Array(0);
const EMPTY_U32 = new Uint32Array(0);
const EMPTY_U16 = new Uint16Array(0);

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint32Array([0x01020304]).buffer)[0] === 0x04;

/** Popcount of 12 bits (a 4 KB table). */
const POP12 = new Uint8Array(1 << 12);
for (let i = 1; i < 1 << 12; i++) POP12[i] = (i & 1) + POP12[i >> 1];

/** A 16-bit partner chunk value folded to `bits` bits (12, 8 or 4; 16: unchanged). Linear. */
function fold(x: number, bits: number): number {
  if (bits === 16) return x;
  if (bits === 12) return (x ^ (x >>> 12)) & 0xfff;
  const f = (x ^ (x >>> 8)) & 0xff;
  return bits === 8 ? f : (f ^ (f >>> 4)) & 0xf;
}

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
  /** @internal For tests: at most this many filter bits (12, 8 or 4; normally set by size). */
  maxFilterBits?: 12 | 8 | 4;
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

/** Lower bound of a 16-bit partner chunk difference's popcount, from its fold to `bits` bits. */
function partnerBound(x: number, bits: number): number {
  return bits === 16 ? popcount32(x) : POP12[fold(x, bits)];
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
  private readonly maxFilterBits: number;

  // Entry storage: entries [0, count), of which deadCount are tombstoned (bits in `dead`, allocated
  // on the first removal).
  private words: Int32Array = EMPTY_I32;
  private ids: Uint32Array = EMPTY_U32;
  private dead: Int32Array = EMPTY_I32;
  private capacity = 0;
  private count = 0;
  private deadCount = 0;

  // Static part: entries [0, baseCount), stored in order of chunk 0.
  private baseCount = 0;
  /** Filter bits per posting (12, 8 or 4 by size); the entry index is shifted left by this. */
  private filterBits = 12;
  private blockBase: Int32Array = EMPTY_I32;
  private relOffsets: Uint16Array[] = [];
  private fullOffsets: Int32Array[] = [];
  private postings: Int32Array[] = [];

  // Delta part: entries [baseCount, count); k = entry - baseCount. deltaHeads[chunk << 16 | value]
  // = k + 1 of the newest entry with that chunk value (0: none); deltaNext[k << 4 | chunk] =
  // (k' + 1) << 8 | fold of the partner chunk, k' being the next (older) entry on that list.
  private deltaHeads: Int32Array | null = null;
  private deltaNext: Int32Array = EMPTY_I32;

  // Per-search scratch.
  private readonly q = new Int32Array(WORDS);
  private resEntry = new Int32Array(64);
  private resDist = new Int32Array(64);
  private resCount = 0;
  private cand: Int32Array = new Int32Array(1024);

  constructor(options: PdqIndexOptions = {}) {
    const mergeFraction = options.mergeFraction ?? 0.25;
    const minDelta = options.minDelta ?? 65_536;
    if (!(mergeFraction > 0)) throw new RangeError('mergeFraction must be > 0');
    if (!Number.isInteger(minDelta) || minDelta < 1) throw new RangeError('minDelta must be an integer >= 1');
    this.mergeFraction = mergeFraction;
    this.minDelta = minDelta;
    this.maxFilterBits = options.maxFilterBits ?? 12;
    if (![12, 8, 4].includes(this.maxFilterBits)) throw new RangeError('maxFilterBits must be 12, 8 or 4');
  }

  /**
   * Bulk loader: `hashes` holds n hashes of 32 bytes back to back, `ids[i]` is the payload of hash i.
   * O(n): counting sorts, one pass per chunk pair to count and one to scatter. The inputs are only
   * read during the call, never retained.
   */
  static build(hashes: Uint8Array, ids: Uint32Array, options: PdqIndexOptions = {}): PdqIndex {
    if (!(hashes instanceof Uint8Array)) throw new TypeError('hashes must be a Uint8Array');
    if (!(ids instanceof Uint32Array)) throw new TypeError('ids must be a Uint32Array');
    const n = ids.length;
    if (hashes.length !== n * HASH_BYTES) {
      throw new RangeError(`hashes must hold ${n} x ${HASH_BYTES} bytes, got ${hashes.length}`);
    }
    if (n > MAX_ENTRIES) throw new RangeError(`a PdqIndex holds at most ${MAX_ENTRIES} entries`);
    const index = new PdqIndex(options);
    if (n === 0) return index;
    let source: Int32Array;
    if (LITTLE_ENDIAN_HOST && hashes.byteOffset % 4 === 0) {
      source = new Int32Array(hashes.buffer, hashes.byteOffset, n * WORDS); // a view, no copy
    } else if (LITTLE_ENDIAN_HOST) {
      source = new Int32Array(n * WORDS); // unaligned: one aligned copy
      new Uint8Array(source.buffer).set(hashes);
    } else {
      source = new Int32Array(n * WORDS);
      for (let i = 0, b = 0; i < n * WORDS; i++, b += 4) {
        source[i] = hashes[b] | (hashes[b + 1] << 8) | (hashes[b + 2] << 16) | (hashes[b + 3] << 24);
      }
    }
    index.rebuildFrom(source, ids, n, false, n);
    return index;
  }

  /** Number of live (id, hash) entries. */
  get size(): number {
    return this.count - this.deadCount;
  }

  /** Bytes held in typed arrays (allocated capacity and scratch included). */
  memoryBytes(): number {
    let bytes =
      this.words.byteLength +
      this.ids.byteLength +
      this.dead.byteLength +
      this.blockBase.byteLength +
      this.deltaNext.byteLength +
      this.q.byteLength +
      this.cand.byteLength +
      this.resEntry.byteLength +
      this.resDist.byteLength;
    if (this.deltaHeads) bytes += this.deltaHeads.byteLength;
    for (const a of this.relOffsets) bytes += a.byteLength;
    for (const a of this.fullOffsets) bytes += a.byteLength;
    for (const a of this.postings) bytes += a.byteLength;
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
    this.ensureCapacity(e + 1);
    loadWords(hash, this.words, e << 3);
    this.ids[e] = id;
    this.count = e + 1;

    const k = e - this.baseCount;
    if (this.deltaHeads === null) this.deltaHeads = new Int32Array(CHUNKS * BUCKETS);
    if (this.deltaNext.length < (k + 1) * CHUNKS) {
      const grown = new Int32Array(Math.max(1024, k + 1 + (k >>> 1)) * CHUNKS);
      grown.set(this.deltaNext);
      this.deltaNext = grown;
    }
    const heads = this.deltaHeads;
    const next = this.deltaNext;
    const words = this.words;
    for (let j = 0; j < CHUNKS; j++) {
      const x = words[(e << 3) + (j >> 1)];
      const v = (j & 1) === 0 ? x & 0xffff : x >>> 16;
      const partner = (j & 1) === 0 ? x >>> 16 : x & 0xffff;
      const h = (j << 16) | v;
      next[(k << 4) | j] = (heads[h] << 8) | fold(partner, 8);
      heads[h] = k + 1;
    }
    if (k + 1 >= Math.min(MAX_DELTA, Math.max(this.minDelta, this.baseCount * this.mergeFraction))) {
      this.rebuild(false);
    }
  }

  /**
   * Removes every entry carrying `id` (tombstones; space is reclaimed at the next merge). Returns
   * how many entries were removed. O(n): a scan of the id array (about 1-2 ms per million entries);
   * prefer `removeEntry` when the hash is known, and `removeMany` for batches.
   */
  remove(id: number): number {
    checkId(id);
    const ids = this.ids;
    let removed = 0;
    for (let e = 0, n = this.count; e < n; e++) {
      if (ids[e] === id && this.markDead(e)) removed++;
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
    let removed = 0;
    for (let e = 0, n = this.count; e < n; e++) {
      const id = stored[e];
      const h = Math.imul(id, 0x9e3779b1) >>> shift;
      if (((filter[h >>> 5] >>> (h & 31)) & 1) === 0 || !set.has(id)) continue;
      if (this.markDead(e)) removed++;
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
    let removed = 0;
    for (let i = 0; i < this.resCount; i++) {
      const e = this.resEntry[i];
      if (this.ids[e] === id && this.markDead(e)) removed++;
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

  /**
   * Merges the delta into the static part, drops tombstoned entries and trims spare capacity (and
   * the delta's 4 MB of list heads), now; merges otherwise happen by themselves, without trimming.
   * O(n). Worth calling after a burst of adds, at a quiet moment.
   */
  compact(): void {
    this.rebuild(true);
    this.deltaHeads = null;
  }

  // ---------------------------------------------------------------------------------------------

  /** Tombstones entry e; false if it already was. */
  private markDead(e: number): boolean {
    if (this.dead.length === 0) this.dead = new Int32Array((this.capacity + 31) >>> 5);
    const bit = 1 << (e & 31);
    if ((this.dead[e >>> 5] & bit) !== 0) return false;
    this.dead[e >>> 5] |= bit;
    return true;
  }

  private tombstoned(removed: number): number {
    this.deadCount += removed;
    if (removed > 0 && this.deadCount >= Math.max(this.minDelta, this.count * this.mergeFraction)) {
      this.rebuild(false);
    }
    return removed;
  }

  private ensureCapacity(needed: number): void {
    if (needed <= this.capacity) return;
    if (needed > MAX_ENTRIES) throw new RangeError(`a PdqIndex holds at most ${MAX_ENTRIES} entries`);
    const cap = Math.min(MAX_ENTRIES, Math.max(needed, this.capacity + (this.capacity >>> 1), 1024));
    const words = new Int32Array(cap * WORDS);
    words.set(this.words.subarray(0, this.count * WORDS));
    const ids = new Uint32Array(cap);
    ids.set(this.ids.subarray(0, this.count));
    this.words = words;
    this.ids = ids;
    if (this.dead.length > 0) {
      const dead = new Int32Array((cap + 31) >>> 5);
      dead.set(this.dead);
      this.dead = dead;
    }
    this.capacity = cap;
  }

  private rebuild(trim: boolean): void {
    const live = this.count - this.deadCount;
    this.rebuildFrom(this.words, this.ids, this.count, this.deadCount > 0, trim ? live : Math.max(live, this.capacity));
  }

  /**
   * Rebuilds everything from the entries in (words, ids)[0, count), skipping tombstoned ones when
   * `skipDead`: entries are re-stored in order of chunk 0, then the postings of chunks 1..15 are
   * built by counting sort (two chunks per pass, as chunks 2w and 2w+1 are the halves of word w).
   * Afterwards the delta is empty.
   */
  private rebuildFrom(src: Int32Array, srcIds: Uint32Array, srcCount: number, skipDead: boolean, capacity: number): void {
    const dead = this.dead;
    // Drop the old postings first: they are useless once entries move, and the peak stays lower.
    this.postings = [];
    this.relOffsets = [];
    this.fullOffsets = [];
    if (this.deltaHeads) this.deltaHeads.fill(0);
    this.deltaNext = EMPTY_I32;

    const offLo = new Int32Array(OFFSETS_PER_CHUNK);
    const offHi = new Int32Array(OFFSETS_PER_CHUNK);
    const cursorLo = new Int32Array(BUCKETS);
    const cursorHi = new Int32Array(BUCKETS);

    // 1. Storage in chunk-0 order.
    for (let e = 0; e < srcCount; e++) {
      if (skipDead && ((dead[e >>> 5] >>> (e & 31)) & 1) !== 0) continue;
      offLo[1 + (src[e << 3] & 0xffff)]++;
    }
    for (let v = 0; v < BUCKETS; v++) offLo[v + 1] += offLo[v];
    const n = offLo[BUCKETS];
    cursorLo.set(offLo.subarray(0, BUCKETS));
    const words = new Int32Array(capacity * WORDS);
    const ids = new Uint32Array(capacity);
    for (let e = 0; e < srcCount; e++) {
      if (skipDead && ((dead[e >>> 5] >>> (e & 31)) & 1) !== 0) continue;
      const s = e << 3;
      const t = cursorLo[src[s] & 0xffff]++;
      const d = t << 3;
      words[d] = src[s];
      words[d + 1] = src[s + 1];
      words[d + 2] = src[s + 2];
      words[d + 3] = src[s + 3];
      words[d + 4] = src[s + 4];
      words[d + 5] = src[s + 5];
      words[d + 6] = src[s + 6];
      words[d + 7] = src[s + 7];
      ids[t] = srcIds[e];
    }
    this.words = words;
    this.ids = ids;
    this.capacity = capacity;
    this.count = n;
    this.baseCount = n;
    this.deadCount = 0;
    this.dead = EMPTY_I32;
    if (n === 0) {
      this.blockBase = EMPTY_I32;
      return;
    }
    const fb = Math.min(this.maxFilterBits, filterBitsFor(n));
    this.filterBits = fb;
    this.blockBase = new Int32Array(CHUNKS * BLOCKS);
    this.storeOffsets(0, offLo);
    this.postings[0] = EMPTY_I32;

    // 2. Postings of chunks 1..15: entry index << fb | fold of the partner chunk.
    for (let w = 0; w < WORDS; w++) {
      const both = w > 0; // chunk 0 (low half of word 0) has no postings
      offLo.fill(0);
      offHi.fill(0);
      for (let i = w, end = n << 3; i < end; i += WORDS) {
        const x = words[i];
        offLo[1 + (x & 0xffff)]++;
        offHi[1 + (x >>> 16)]++;
      }
      for (let v = 0; v < BUCKETS; v++) {
        offLo[v + 1] += offLo[v];
        offHi[v + 1] += offHi[v];
      }
      cursorLo.set(offLo.subarray(0, BUCKETS));
      cursorHi.set(offHi.subarray(0, BUCKETS));
      const pLo = both ? new Int32Array(n) : EMPTY_I32;
      const pHi = new Int32Array(n);
      if (both) {
        for (let e = 0; e < n; e++) {
          const x = words[(e << 3) + w];
          const vLo = x & 0xffff;
          const vHi = x >>> 16;
          const tag = e << fb;
          pLo[cursorLo[vLo]++] = tag | fold(vHi, fb);
          pHi[cursorHi[vHi]++] = tag | fold(vLo, fb);
        }
        this.storeOffsets(2 * w, offLo);
        this.postings[2 * w] = pLo;
      } else {
        for (let e = 0; e < n; e++) {
          const x = words[e << 3];
          pHi[cursorHi[x >>> 16]++] = (e << fb) | fold(x & 0xffff, fb);
        }
      }
      this.storeOffsets(2 * w + 1, offHi);
      this.postings[2 * w + 1] = pHi;
    }
  }

  /** Stores chunk j's bucket offsets (prefix sums, 65 537 of them) compactly if they fit. */
  private storeOffsets(j: number, off: Int32Array): void {
    const bb = j * BLOCKS;
    for (let b = 0; b < BLOCKS; b++) this.blockBase[bb + b] = off[b << BLOCK_SHIFT];
    const rel = new Uint16Array(OFFSETS_PER_CHUNK);
    for (let v = 0; v < OFFSETS_PER_CHUNK; v++) {
      const r = off[v] - this.blockBase[bb + (v >>> BLOCK_SHIFT)];
      if (r > 0xffff) {
        this.relOffsets[j] = EMPTY_U16;
        this.fullOffsets[j] = off.slice();
        return;
      }
      rel[v] = r;
    }
    this.relOffsets[j] = rel;
    this.fullOffsets[j] = EMPTY_I32;
  }

  /** Appends (entry, distance) for every live entry within maxD of the query, each entry once. */
  private collect(query: Uint8Array, maxD: number): void {
    loadWords(query, this.q, 0);
    const budget = maxD >>> 3; // S: some pair of chunks is within this distance
    if (this.baseCount > 0) this.scanStatic(maxD, budget);
    if (this.count > this.baseCount) this.scanDelta(maxD, budget);
  }

  private scanStatic(maxD: number, budget: number): void {
    const words = this.words;
    const blockBase = this.blockBase;
    const fb = this.filterBits;
    const fmask = (1 << fb) - 1;
    const q = this.q;
    const q0 = q[0];
    const probes = budget >= 2 ? 17 : 1;
    for (let j = 0; j < CHUNKS; j++) {
      const qw = q[j >> 1];
      const qc = (j & 1) === 0 ? qw & 0xffff : qw >>> 16;
      const qf = fold((j & 1) === 0 ? qw >>> 16 : qw & 0xffff, fb);
      const post = this.postings[j];
      const rel = this.relOffsets[j];
      const full = this.fullOffsets[j];
      const useFull = full.length > 0;
      const bb = j * BLOCKS;
      // Phase 1: filter the probed buckets (sequential reads, no branch on the filter) into a list
      // of candidate entries; phase 2 (verify) reads their hashes, independent random reads.
      let cand = this.cand;
      let nc = 0;
      for (let b = 0; b < probes; b++) {
        const v = b === 0 ? qc : qc ^ (1 << (b - 1));
        const t = b === 0 ? budget : budget - 1; // the partner chunk's share of the pair budget
        let start: number;
        let end: number;
        if (useFull) {
          start = full[v];
          end = full[v + 1];
        } else {
          start = blockBase[bb + (v >>> BLOCK_SHIFT)] + rel[v];
          end = blockBase[bb + ((v + 1) >>> BLOCK_SHIFT)] + rel[v + 1];
        }
        if (start === end) continue;
        if (nc + end - start > cand.length) cand = this.growCand(nc + end - start);
        if (j === 0) {
          // Chunk 0's bucket is a run of the storage; its partner (chunk 1) is checked exactly.
          for (let e = start; e < end; e++) {
            cand[nc] = e;
            nc += ((t - popcount32((words[e << 3] ^ q0) >>> 16)) >>> 31) ^ 1;
          }
        } else {
          for (let o = start; o < end; o++) {
            const p = post[o];
            cand[nc] = p >>> fb;
            nc += ((t - POP12[(p ^ qf) & fmask]) >>> 31) ^ 1;
          }
        }
      }
      if (nc > 0) this.verify(cand, nc, j, maxD, budget, 16, fb);
    }
  }

  private growCand(needed: number): Int32Array {
    let size = this.cand.length;
    while (size < needed) size *= 2;
    const grown = new Int32Array(size);
    grown.set(this.cand);
    return (this.cand = grown);
  }

  /** Full distances of candidate entries found through chunk j; pushes the matches. */
  private verify(cand: Int32Array, nc: number, j: number, maxD: number, budget: number, bits0: number, bits: number): void {
    const words = this.words;
    const q = this.q;
    const q0 = q[0], q1 = q[1], q2 = q[2], q3 = q[3], q4 = q[4], q5 = q[5], q6 = q[6], q7 = q[7];
    for (let i = 0; i < nc; i++) {
      const e = cand[i];
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
      if (j > 0 && this.passesEarlier(k, j, budget, bits0, bits)) continue;
      if (this.deadCount > 0 && ((this.dead[e >>> 5] >>> (e & 31)) & 1) !== 0) continue;
      this.pushResult(e, d);
    }
  }

  private scanDelta(maxD: number, budget: number): void {
    const words = this.words;
    const heads = this.deltaHeads!;
    const next = this.deltaNext;
    const baseCount = this.baseCount;
    const q = this.q;
    const q0 = q[0], q1 = q[1], q2 = q[2], q3 = q[3], q4 = q[4], q5 = q[5], q6 = q[6], q7 = q[7];
    const probes = budget >= 2 ? 17 : 1;
    for (let j = 0; j < CHUNKS; j++) {
      const qw = q[j >> 1];
      const qc = (j & 1) === 0 ? qw & 0xffff : qw >>> 16;
      const qf = fold((j & 1) === 0 ? qw >>> 16 : qw & 0xffff, 8);
      for (let b = 0; b < probes; b++) {
        const v = b === 0 ? qc : qc ^ (1 << (b - 1));
        const t = b === 0 ? budget : budget - 1;
        for (let k1 = heads[(j << 16) | v]; k1 !== 0; ) {
          const k = k1 - 1;
          const link = next[(k << 4) | j];
          k1 = link >>> 8;
          if (POP12[(link ^ qf) & 0xff] > t) continue;
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
          if (j > 0 && this.passesEarlier(w, j, budget, 8, 8)) continue;
          if (this.deadCount > 0 && ((this.dead[e >>> 5] >>> (e & 31)) & 1) !== 0) continue;
          this.pushResult(e, d);
        }
      }
    }
  }

  /**
   * Whether the entry at word offset k passes the probe-and-filter test that the scans apply (partner
   * bound from `bits0` bits for chunk 0, `bits` for the others) for some chunk before j, i.e. was
   * already reported from there.
   */
  private passesEarlier(k: number, j: number, budget: number, bits0: number, bits: number): boolean {
    const words = this.words;
    const q = this.q;
    const radius = budget >>> 1;
    for (let i = 0; i < j; i++) {
      const x = words[k + (i >> 1)] ^ q[i >> 1];
      const own = (i & 1) === 0 ? x & 0xffff : x >>> 16;
      const c = own === 0 ? 0 : (own & (own - 1)) === 0 ? 1 : 2;
      if (c > radius) continue;
      const partner = (i & 1) === 0 ? x >>> 16 : x & 0xffff;
      if (partnerBound(partner, i === 0 ? bits0 : bits) <= budget - c) return true;
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

import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { PdqIndex, pdqDistance, type PdqMatch } from '../../server/matching/pdq-index.js';
import { Sha256Index } from '../../server/matching/sha256-index.js';

/** xorshift32: deterministic, fast. */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
}

function randomHash(next: () => number): Uint8Array {
  const h = new Uint8Array(32);
  for (let i = 0; i < 32; i += 4) {
    const x = next();
    h[i] = x;
    h[i + 1] = x >>> 8;
    h[i + 2] = x >>> 16;
    h[i + 3] = x >>> 24;
  }
  return h;
}

/** Copy of h with exactly k distinct random bits flipped. */
function flip(h: Uint8Array, k: number, next: () => number): Uint8Array {
  const out = h.slice();
  const chosen = new Set<number>();
  while (chosen.size < k) chosen.add(next() & 255);
  for (const bit of chosen) out[bit >> 3] ^= 1 << (bit & 7);
  return out;
}

/** Flips `perChunk[j]` distinct bits inside chunk j (bytes 2j, 2j+1). */
function flipPerChunk(h: Uint8Array, perChunk: number[], next: () => number): Uint8Array {
  const out = h.slice();
  perChunk.forEach((k, j) => {
    const chosen = new Set<number>();
    while (chosen.size < k) chosen.add(next() & 15);
    for (const b of chosen) out[2 * j + (b >> 3)] ^= 1 << (b & 7);
  });
  return out;
}

class Reference {
  readonly entries: Array<{ hash: Uint8Array; id: number }> = [];
  add(hash: Uint8Array, id: number): void {
    this.entries.push({ hash, id });
  }
  remove(id: number): void {
    for (let i = this.entries.length - 1; i >= 0; i--) if (this.entries[i].id === id) this.entries.splice(i, 1);
  }
  removeEntry(hash: Uint8Array, id: number): void {
    for (let i = this.entries.length - 1; i >= 0; i--) {
      const e = this.entries[i];
      if (e.id === id && pdqDistance(e.hash, hash) === 0) this.entries.splice(i, 1);
    }
  }
  searchMany(queries: Uint8Array[], maxDistance: number): PdqMatch[] {
    const best = new Map<number, number>();
    for (const q of queries) {
      for (const { hash, id } of this.entries) {
        const d = pdqDistance(hash, q);
        if (d <= maxDistance && !(best.get(id)! <= d)) best.set(id, d);
      }
    }
    return [...best].map(([id, distance]) => ({ id, distance })).sort((a, b) => a.distance - b.distance || a.id - b.id);
  }
}

/** Random near (0..40 bits from a stored hash) and far queries, all compared with brute force. */
function checkAgainstReference(index: PdqIndex, ref: Reference, next: () => number, queries: number): number {
  let hits = 0;
  for (let i = 0; i < queries; i++) {
    let q: Uint8Array;
    if (i % 5 === 4 || ref.entries.length === 0) q = randomHash(next);
    else q = flip(ref.entries[next() % ref.entries.length].hash, next() % 41, next);
    const maxDistance = i % 3 === 0 ? 31 : next() % 32;
    const got = index.search(q, maxDistance);
    expect(got).toEqual(ref.searchMany([q], maxDistance));
    hits += got.length;
  }
  return hits;
}

/** Stored set with clusters (many entries near each other, found through several chunks) and shared ids. */
function makeData(n: number, seed: number): { hashes: Uint8Array[]; ids: number[] } {
  const next = rng(seed);
  const hashes: Uint8Array[] = [];
  const ids: number[] = [];
  while (hashes.length < n) {
    const centre = randomHash(next);
    const members = 1 + (next() % 12);
    for (let m = 0; m < members && hashes.length < n; m++) {
      hashes.push(m === 0 ? centre : flip(centre, next() % 24, next));
      // Ids mostly unique, sometimes shared by several hashes, occasionally near 2^32.
      const r = next() % 10;
      ids.push(r === 0 && ids.length > 0 ? ids[next() % ids.length] : r === 1 ? 0xffffffff - hashes.length : hashes.length);
    }
  }
  return { hashes, ids };
}

function pack(hashes: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(hashes.length * 32);
  hashes.forEach((h, i) => out.set(h, i * 32));
  return out;
}

describe('PdqIndex', () => {
  it('matches brute force after a bulk build', () => {
    const { hashes, ids } = makeData(6000, 1);
    const ref = new Reference();
    hashes.forEach((h, i) => ref.add(h, ids[i]));
    const index = PdqIndex.build(pack(hashes), Uint32Array.from(ids));
    expect(index.size).toBe(6000);
    const hits = checkAgainstReference(index, ref, rng(2), 3000);
    expect(hits).toBeGreaterThan(1000); // the comparison is not vacuous
  });

  it.each([8, 4] as const)('matches brute force with the %i-bit partner filter (used beyond 2^20, 2^24 entries)', (bits) => {
    const { hashes, ids } = makeData(3000, 14 + bits);
    const ref = new Reference();
    hashes.forEach((h, i) => ref.add(h, ids[i]));
    const index = PdqIndex.build(pack(hashes.slice(0, 2000)), Uint32Array.from(ids.slice(0, 2000)), {
      maxFilterBits: bits,
      minDelta: 200,
    });
    for (let i = 2000; i < 3000; i++) index.add(hashes[i], ids[i]);
    checkAgainstReference(index, ref, rng(15), 1500);
  });

  it('finds every hash at distance <= 31 whatever the spread of bits over the chunks', () => {
    const next = rng(3);
    const stored = Array.from({ length: 200 }, () => randomHash(next));
    const index = PdqIndex.build(pack(stored), Uint32Array.from(stored.keys()));
    for (let i = 0; i < stored.length; i++) {
      const j = i % 16;
      // 2 bits in 15 chunks and 1 in chunk j: distance 31, reachable only through chunk j.
      const d31 = flipPerChunk(stored[i], Array.from({ length: 16 }, (_, c) => (c === j ? 1 : 2)), next);
      expect(index.search(d31, 31)).toEqual([{ id: i, distance: 31 }]);
      expect(index.search(d31, 30)).toEqual([]);
      // 1 bit in 15 chunks, 0 in chunk j: distance 15, found with one probe per chunk.
      const d15 = flipPerChunk(stored[i], Array.from({ length: 16 }, (_, c) => (c === j ? 0 : 1)), next);
      expect(index.search(d15, 15)).toEqual([{ id: i, distance: 15 }]);
      expect(index.search(d15, 14)).toEqual([]);
      // 1 bit in every chunk: 16, needs the radius-1 probes.
      const d16 = flipPerChunk(stored[i], Array.from({ length: 16 }, () => 1), next);
      expect(index.search(d16, 16)).toEqual([{ id: i, distance: 16 }]);
      expect(index.search(d16, 15)).toEqual([]);
      expect(index.search(stored[i], 0)).toEqual([{ id: i, distance: 0 }]);
    }
  });

  it('is exact at every maxDistance when the bits are spread to defeat the pair filter', () => {
    // For maxDistance m, the pairs of chunks (2p, 2p+1) get distances as close to the bound
    // floor(m / 8) + 1 as the total m allows, each split at random between the two chunks (e.g.
    // 4 = 0+4, 1+3, 2+2...): the hash is findable only through the one or two tight pairs.
    const next = rng(16);
    const stored = Array.from({ length: 300 }, () => randomHash(next));
    const built = PdqIndex.build(pack(stored), Uint32Array.from(stored.keys()));
    const incremental = new PdqIndex();
    stored.forEach((h, i) => incremental.add(h, i));
    for (let i = 0; i < 2000; i++) {
      const target = next() % stored.length;
      const m = i % 32;
      const pairs = new Array<number>(8).fill((m >> 3) + 1);
      for (let cut = 8 - (m & 7); cut > 0; ) {
        const p = next() % 8;
        if (pairs[p] > 0) {
          pairs[p]--;
          cut--;
        }
      }
      const perChunk: number[] = [];
      for (const sum of pairs) {
        const a = next() % (sum + 1);
        perChunk.push(a, sum - a);
      }
      const q = flipPerChunk(stored[target], perChunk, next);
      expect(pdqDistance(q, stored[target])).toBe(m);
      for (const index of [built, incremental]) {
        expect(index.search(q, m)).toContainEqual({ id: target, distance: m });
        if (m > 0) expect(index.search(q, m - 1)).not.toContainEqual({ id: target, distance: m });
      }
    }
  });

  it('stays exact on heavily skewed data (int32 bucket offsets when a block overflows uint16)', () => {
    // 70 000 hashes sharing chunks 0 and 3 (and near one another): one 256-bucket block of those
    // chunks holds more than 65 535 entries.
    const next = rng(17);
    const centre = randomHash(next);
    const hashes: Uint8Array[] = [];
    const ref = new Reference();
    for (let i = 0; i < 70_000; i++) {
      const h = i % 7 === 0 ? randomHash(next) : flip(centre, 20 + (next() % 30), next);
      h[0] = h[1] = h[6] = h[7] = 0;
      hashes.push(h);
      ref.add(h, i);
    }
    const index = PdqIndex.build(pack(hashes), Uint32Array.from(hashes.keys()));
    for (let i = 0; i < 60; i++) {
      const q = i % 3 === 2 ? randomHash(next) : flip(hashes[next() % hashes.length], next() % 32, next);
      if (i % 2 === 0) q[0] = q[1] = 0;
      const maxDistance = i % 2 === 0 ? 31 : next() % 32;
      expect(index.search(q, maxDistance)).toEqual(ref.searchMany([q], maxDistance));
    }
    // The ends of the big buckets (stable sort: the first and last hashes given).
    for (const i of [0, 1, 2, 3, 4, 69_995, 69_996, 69_997, 69_998, 69_999]) {
      expect(index.search(hashes[i], 0)).toContainEqual({ id: i, distance: 0 });
      const q = flip(hashes[i], 9, next);
      expect(index.search(q, 31)).toEqual(ref.searchMany([q], 31));
    }
  });

  it('matches brute force through incremental adds across merge boundaries', () => {
    const { hashes, ids } = makeData(3000, 4);
    const index = new PdqIndex({ minDelta: 50, mergeFraction: 0.3 });
    const ref = new Reference();
    const next = rng(5);
    for (let i = 0; i < hashes.length; i++) {
      index.add(hashes[i], ids[i]);
      ref.add(hashes[i], ids[i]);
      // Query often: right before and after merges, with a delta of every size in between.
      if (i % 37 === 0 || i < 120) checkAgainstReference(index, ref, next, 10);
    }
    expect(index.size).toBe(3000);
    checkAgainstReference(index, ref, next, 1000);
  });

  it('adds on top of a bulk build (static part plus delta)', () => {
    const { hashes, ids } = makeData(4000, 6);
    const index = PdqIndex.build(pack(hashes.slice(0, 2500)), Uint32Array.from(ids.slice(0, 2500)), { minDelta: 100 });
    const ref = new Reference();
    for (let i = 0; i < 2500; i++) ref.add(hashes[i], ids[i]);
    const next = rng(7);
    for (let i = 2500; i < 4000; i++) {
      index.add(hashes[i], ids[i]);
      ref.add(hashes[i], ids[i]);
      if (i % 50 === 0) checkAgainstReference(index, ref, next, 20);
    }
    checkAgainstReference(index, ref, next, 500);
  });

  it('matches brute force after removals (remove, removeMany, removeEntry) and compaction', () => {
    const { hashes, ids } = makeData(4000, 8);
    const index = PdqIndex.build(pack(hashes.slice(0, 3000)), Uint32Array.from(ids.slice(0, 3000)), {
      minDelta: 64,
      mergeFraction: 0.2,
    });
    const ref = new Reference();
    for (let i = 0; i < 3000; i++) ref.add(hashes[i], ids[i]);
    for (let i = 3000; i < 4000; i++) {
      index.add(hashes[i], ids[i]);
      ref.add(hashes[i], ids[i]);
    }
    const next = rng(9);
    for (let round = 0; round < 30; round++) {
      // remove(id): all of that id's entries, wherever they are (static part or delta).
      for (let r = 0; r < 10; r++) {
        const id = ref.entries[next() % ref.entries.length].id;
        const expected = ref.entries.filter((e) => e.id === id).length;
        expect(index.remove(id)).toBe(expected);
        ref.remove(id);
        expect(index.remove(id)).toBe(0);
      }
      // removeEntry(hash, id): only that pair.
      const victim = ref.entries[next() % ref.entries.length];
      const expected = ref.entries.filter((e) => e.id === victim.id && pdqDistance(e.hash, victim.hash) === 0).length;
      expect(index.removeEntry(victim.hash, victim.id)).toBe(expected);
      ref.removeEntry(victim.hash, victim.id);
      // removeMany.
      const batch = Array.from({ length: 5 }, () => ref.entries[next() % ref.entries.length].id);
      const batchSet = new Set(batch);
      const expectedMany = ref.entries.filter((e) => batchSet.has(e.id)).length;
      expect(index.removeMany(batch)).toBe(expectedMany);
      for (const id of batchSet) ref.remove(id);
      expect(index.size).toBe(ref.entries.length);
      checkAgainstReference(index, ref, next, 40);
      // Re-adding after removal works.
      const back = hashes[next() % hashes.length];
      index.add(back, 7_777_777 + round);
      ref.add(back, 7_777_777 + round);
    }
    index.compact();
    expect(index.size).toBe(ref.entries.length);
    checkAgainstReference(index, ref, next, 500);
  });

  it('searchMany is the union with the minimum distance per id', () => {
    const { hashes, ids } = makeData(3000, 10);
    const index = PdqIndex.build(pack(hashes), Uint32Array.from(ids), { minDelta: 64 });
    const ref = new Reference();
    hashes.forEach((h, i) => ref.add(h, ids[i]));
    for (let i = 0; i < 200; i++) {
      const extra = randomHash(rng(100 + i));
      index.add(extra, 5_000_000 + i);
      ref.add(extra, 5_000_000 + i);
    }
    const next = rng(11);
    let hits = 0;
    for (let i = 0; i < 300; i++) {
      const queries = Array.from({ length: 8 }, (_, v) =>
        v % 2 === 0 ? flip(ref.entries[next() % ref.entries.length].hash, next() % 36, next) : randomHash(next),
      );
      const maxDistance = next() % 32;
      const got = index.searchMany(queries, maxDistance);
      expect(got).toEqual(ref.searchMany(queries, maxDistance));
      hits += got.length;
    }
    expect(hits).toBeGreaterThan(300);
    expect(index.searchMany([], 31)).toEqual([]);
  });

  it('builds from hashes at any byte offset of their buffer', () => {
    const { hashes, ids } = makeData(1500, 18);
    const ref = new Reference();
    hashes.forEach((h, i) => ref.add(h, ids[i]));
    for (const offset of [0, 1, 3, 32]) {
      const buffer = new Uint8Array(offset + hashes.length * 32 + 5);
      buffer.set(pack(hashes), offset);
      const view = buffer.subarray(offset, offset + hashes.length * 32);
      const index = PdqIndex.build(view, Uint32Array.from(ids));
      buffer.fill(0xff); // the index keeps no reference to its input
      checkAgainstReference(index, ref, rng(19 + offset), 200);
    }
  });

  it('stores duplicates as separate entries but reports each id once', () => {
    const next = rng(12);
    const h = randomHash(next);
    const index = new PdqIndex();
    index.add(h, 1);
    index.add(h, 1);
    index.add(flip(h, 3, next), 1);
    index.add(flip(h, 5, next), 2);
    expect(index.size).toBe(4);
    expect(index.search(h)).toEqual([
      { id: 1, distance: 0 },
      { id: 2, distance: 5 },
    ]);
    expect(index.remove(1)).toBe(3);
    expect(index.search(h)).toEqual([{ id: 2, distance: 5 }]);
  });

  it('rejects bad arguments', () => {
    const index = new PdqIndex();
    const h = new Uint8Array(32);
    index.add(h, 1);
    expect(() => index.search(h, 32)).toThrow(RangeError);
    expect(() => index.searchMany([h], 40)).toThrow(RangeError);
    expect(() => index.search(h, -1)).toThrow(RangeError);
    expect(() => index.search(h, 1.5)).toThrow(RangeError);
    expect(() => index.search(new Uint8Array(31))).toThrow(TypeError);
    expect(() => index.add(h, -1)).toThrow(RangeError);
    expect(() => index.add(h, 2 ** 32)).toThrow(RangeError);
    expect(() => PdqIndex.build(new Uint8Array(33), new Uint32Array(1))).toThrow(RangeError);
    expect(index.search(h, 31)).toEqual([{ id: 1, distance: 0 }]);
    expect(new PdqIndex().search(h)).toEqual([]);
    expect(PdqIndex.build(new Uint8Array(0), new Uint32Array(0)).search(h)).toEqual([]);
  });

  it('uses at most 100 MB per million hashes (1M random hashes, bulk build)', () => {
    const n = 1_000_000;
    const hashes = new Uint8Array(n * 32);
    const words = new Int32Array(hashes.buffer);
    let s = 0x9e3779b9;
    for (let i = 0; i < words.length; i++) {
      s ^= s << 13;
      s ^= s >>> 17;
      s ^= s << 5;
      words[i] = s;
    }
    const ids = new Uint32Array(n);
    for (let i = 0; i < n; i++) ids[i] = i;
    const t0 = performance.now();
    const index = PdqIndex.build(hashes, ids);
    const buildMs = performance.now() - t0;
    const mbPerMillion = index.memoryBytes() / 1e6;
    console.log(`PdqIndex: ${mbPerMillion.toFixed(1)} MB per million, built in ${buildMs.toFixed(0)} ms`);
    expect(mbPerMillion).toBeLessThanOrEqual(100);
    // Spot check exactness at this size (brute force on a few queries).
    const next = rng(13);
    for (let i = 0; i < 5; i++) {
      const target = next() % n;
      const q = flip(hashes.subarray(target * 32, target * 32 + 32), next() % 32, next);
      const expected: PdqMatch[] = [];
      for (let e = 0; e < n; e++) {
        const d = pdqDistance(hashes.subarray(e * 32, e * 32 + 32), q);
        if (d <= 31) expected.push({ id: e, distance: d });
      }
      expected.sort((a, b) => a.distance - b.distance || a.id - b.id);
      expect(index.search(q)).toEqual(expected);
    }
  });
});

describe('Sha256Index', () => {
  const digest = (i: number): Uint8Array => createHash('sha256').update(`file ${i}`).digest();
  const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

  it('maps digests to ids exactly, like a Map, through adds and removals', () => {
    const index = new Sha256Index();
    const ref = new Map<string, number[]>();
    const next = rng(20);
    const add = (d: Uint8Array, id: number): void => {
      const key = hex(d);
      const list = ref.get(key) ?? [];
      const fresh = !list.includes(id);
      if (fresh) list.push(id);
      ref.set(key, list);
      expect(index.add(next() & 1 ? d : key.toUpperCase(), id)).toBe(fresh);
    };
    const removeId = (id: number, via?: Uint8Array): void => {
      let expected = 0;
      for (const [key, list] of ref) {
        if (via && key !== hex(via)) continue;
        const i = list.indexOf(id);
        if (i >= 0) {
          list.splice(i, 1);
          expected++;
          if (list.length === 0) ref.delete(key);
        }
      }
      expect(index.remove(id, via)).toBe(expected);
    };
    const check = (): void => {
      let pairs = 0;
      for (const [key, list] of ref) {
        expect(index.get(key)).toEqual(list);
        pairs += list.length;
      }
      expect(index.size).toBe(pairs);
      expect(index.digestCount).toBe(ref.size);
    };
    for (let round = 0; round < 20; round++) {
      for (let i = 0; i < 500; i++) {
        const d = digest(next() % 3000);
        add(d, next() % 400);
      }
      for (let i = 0; i < 40; i++) removeId(next() % 400);
      for (let i = 0; i < 40; i++) removeId(next() % 400, digest(next() % 3000));
      check();
      for (let i = 0; i < 200; i++) {
        const d = digest(100_000 + next());
        expect(index.get(d)).toEqual(ref.get(hex(d)) ?? []);
        expect(index.has(d)).toBe(ref.has(hex(d)));
      }
    }
    // Remove everything: the table empties cleanly, then fills again.
    for (let id = 0; id < 400; id++) removeId(id);
    expect(index.size).toBe(0);
    expect(index.digestCount).toBe(0);
    for (let i = 0; i < 3000; i++) add(digest(i), i);
    check();
  });

  it('rejects malformed digests and ids', () => {
    const index = new Sha256Index();
    expect(() => index.add(new Uint8Array(31), 1)).toThrow(TypeError);
    expect(() => index.add('ab', 1)).toThrow(TypeError);
    expect(() => index.get('z'.repeat(64))).toThrow(TypeError);
    expect(() => index.add(digest(1), -1)).toThrow(RangeError);
    expect(index.get(digest(1))).toEqual([]);
  });

  it('stays lean: bytes per digest at 1M', () => {
    const index = new Sha256Index();
    const d = new Uint8Array(32);
    const w = new Int32Array(d.buffer);
    let s = 12345;
    for (let i = 0; i < 1_000_000; i++) {
      for (let j = 0; j < 8; j++) {
        s ^= s << 13;
        s ^= s >>> 17;
        s ^= s << 5;
        w[j] = s;
      }
      index.add(d, i);
    }
    expect(index.size).toBe(1_000_000);
    const perDigest = index.memoryBytes() / 1e6;
    console.log(`Sha256Index: ${perDigest.toFixed(1)} B per digest at 1M`);
    expect(perDigest).toBeLessThan(100);
  });
});

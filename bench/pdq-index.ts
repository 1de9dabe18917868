// Benchmarks of the in-memory match indexes (server/matching): PDQ near-duplicate lookups at 100k,
// 1M and 10M hashes, memory, build time; SHA-256 index memory against a Map<string, number[]>.
// Prints figures, asserts nothing. Single-threaded; timings are per call on this machine.
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { PdqIndex } from '../server/matching/pdq-index.js';
import { Sha256Index } from '../server/matching/sha256-index.js';

export interface BenchLine {
  name: string;
  value: number;
  unit: string;
}

const QUERIES = 2000; // half near-duplicates of stored hashes, half uniform random
const WARMUP = 500;

/** xorshift32 over an int32 state; `next()` returns an int32. */
class Rng {
  constructor(private s: number) {
    if (this.s === 0) this.s = 0x2545f491;
  }
  next(): number {
    let s = this.s;
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (this.s = s);
  }
  below(n: number): number {
    return (this.next() >>> 0) % n;
  }
}

function fillRandom(bytes: Uint8Array, rng: Rng): void {
  const words = new Int32Array(bytes.buffer, bytes.byteOffset, bytes.length >>> 2);
  for (let i = 0; i < words.length; i++) words[i] = rng.next();
}

function flipBits(hash: Uint8Array, k: number, rng: Rng): void {
  for (let i = 0; i < k; i++) {
    const bit = rng.below(256);
    hash[bit >> 3] ^= 1 << (bit & 7);
  }
}

function randomHash(rng: Rng): Uint8Array {
  const h = new Uint8Array(32);
  fillRandom(h, rng);
  return h;
}

/** Half near-duplicates (a stored hash with 0..31 flips), half uniform random. */
function makeQueries(hashes: Uint8Array, n: number, count: number, rng: Rng): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    if (i % 2 === 0) {
      const e = rng.below(n);
      const q = hashes.slice(e * 32, e * 32 + 32);
      flipBits(q, rng.below(32), rng);
      out.push(q);
    } else {
      out.push(randomHash(rng));
    }
  }
  return out;
}

function percentiles(times: Float64Array): { p50: number; p99: number } {
  const sorted = Float64Array.from(times).sort();
  const at = (p: number): number => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
  return { p50: at(0.5), p99: at(0.99) };
}

let sink = 0;
function timeEach(queries: readonly Uint8Array[], run: (q: Uint8Array, i: number) => number): { p50: number; p99: number } {
  for (let i = 0; i < WARMUP; i++) sink += run(queries[i % queries.length], i);
  const times = new Float64Array(queries.length);
  for (let i = 0; i < queries.length; i++) {
    const t0 = performance.now();
    sink += run(queries[i], i);
    times[i] = performance.now() - t0;
  }
  return percentiles(times);
}

function label(n: number): string {
  if (n >= 1_000_000 && n % 1_000_000 === 0) return `${n / 1_000_000}M`;
  if (n >= 1000 && n % 1000 === 0) return `${n / 1000}k`;
  return String(n);
}

function gcNow(): void {
  try {
    setFlagsFromString('--expose-gc');
    (runInNewContext('gc') as () => void)();
  } catch {
    // No gc available: memory figures from heap deltas get noisier, nothing else changes.
  }
}

function sequentialIds(n: number): Uint32Array {
  const ids = new Uint32Array(n);
  for (let i = 0; i < n; i++) ids[i] = i;
  return ids;
}

export async function benchPdqIndex(sizes: number[] = [100_000, 1_000_000, 10_000_000]): Promise<BenchLine[]> {
  const lines: BenchLine[] = [];
  const push = (name: string, value: number, unit: string): void => {
    lines.push({ name, value: Math.round(value * 1e4) / 1e4, unit });
  };
  const rng = new Rng(0x1234567);
  let mbPerMillion: number | null = null;

  for (const n of sizes) {
    const at = label(n);
    let hashes: Uint8Array | null = new Uint8Array(n * 32);
    fillRandom(hashes, rng);
    let ids: Uint32Array | null = sequentialIds(n);
    gcNow();
    const t0 = performance.now();
    let index: PdqIndex | null = PdqIndex.build(hashes, ids);
    const buildS = (performance.now() - t0) / 1000;
    push(`pdq_index_build_s_at_${at}`, buildS, 's');
    const mb = index.memoryBytes() / 1e6 / (n / 1e6);
    push(`pdq_index_mb_per_million_at_${at}`, mb, 'MB');
    if (n === 1_000_000 || mbPerMillion === null) mbPerMillion = mb;

    const queries = makeQueries(hashes, n, QUERIES, rng);
    const idx = index;
    const single = timeEach(queries, (q) => idx.search(q, 31).length);
    push(`pdq_lookup_p50_ms_at_${at}`, single.p50, 'ms');
    push(`pdq_lookup_p99_ms_at_${at}`, single.p99, 'ms');

    if (n === 1_000_000) {
      // 8 variants per lookup: the query plus 7 random hashes (other dihedral transforms of a real
      // image are, to the index, unrelated hashes).
      const variants = queries.map((q) => [q, ...Array.from({ length: 7 }, () => randomHash(rng))]);
      const many = timeEach(queries, (_q, i) => idx.searchMany(variants[i % variants.length], 31).length);
      push(`pdq_lookup_8variants_p50_ms_at_${at}`, many.p50, 'ms');
      push(`pdq_lookup_8variants_p99_ms_at_${at}`, many.p99, 'ms');

      // Single remove(id) (an O(n) scan) and removeEntry(hash, id) (through the index).
      for (let i = 0; i < 3; i++) sink += idx.remove(rng.below(n)); // warm-up
      let t = performance.now();
      const removes = 20;
      for (let i = 0; i < removes; i++) sink += idx.remove(rng.below(n));
      push(`pdq_remove_ms_at_${at}`, (performance.now() - t) / removes, 'ms');
      t = performance.now();
      for (let i = 0; i < 1000; i++) {
        const e = rng.below(n);
        sink += idx.removeEntry(hashes.subarray(e * 32, e * 32 + 32), e);
      }
      push(`pdq_remove_entry_ms_at_${at}`, (performance.now() - t) / 1000, 'ms');

      // Incremental adds, merges included (amortised).
      const incremental = new PdqIndex();
      const one = new Uint8Array(32);
      t = performance.now();
      for (let i = 0; i < n; i++) {
        one.set(hashes.subarray(i * 32, i * 32 + 32));
        incremental.add(one, i);
      }
      push(`pdq_add_us_amortised_at_${at}`, ((performance.now() - t) * 1000) / n, 'us');
      const inc = timeEach(queries, (q) => incremental.search(q, 31).length);
      push(`pdq_lookup_p50_ms_at_${at}_after_incremental_adds`, inc.p50, 'ms');
    }
    index = null;
    hashes = null;
    ids = null;
    gcNow();
  }
  if (mbPerMillion !== null) push('pdq_index_mb_per_million', mbPerMillion, 'MB');

  if (sizes.includes(1_000_000)) {
    // Skewed data: 4096 random centres, each stored hash a centre with 20..40 bits flipped; queries
    // again half near-duplicates of stored hashes, half random.
    const n = 1_000_000;
    const centres = new Uint8Array(4096 * 32);
    fillRandom(centres, rng);
    const hashes = new Uint8Array(n * 32);
    for (let i = 0; i < n; i++) {
      const c = rng.below(4096);
      const h = hashes.subarray(i * 32, i * 32 + 32);
      h.set(centres.subarray(c * 32, c * 32 + 32));
      flipBits(h, 20 + rng.below(21), rng);
    }
    const index = PdqIndex.build(hashes, sequentialIds(n));
    const queries = makeQueries(hashes, n, QUERIES, rng);
    let matches = 0;
    const clustered = timeEach(queries, (q) => {
      const found = index.search(q, 31).length;
      matches += found;
      return found;
    });
    push('pdq_lookup_p50_ms_at_1M_clustered', clustered.p50, 'ms');
    push('pdq_lookup_p99_ms_at_1M_clustered', clustered.p99, 'ms');
    push('pdq_matches_per_lookup_at_1M_clustered', matches / (QUERIES + WARMUP), 'ids');
  }
  if (sink === 0.5) console.log(sink); // keep results observable
  return lines;
}

export async function benchSha256Index(n = 1_000_000): Promise<BenchLine[]> {
  const lines: BenchLine[] = [];
  const rng = new Rng(0x7654321);
  const digests = new Uint8Array(n * 32);
  fillRandom(digests, rng);
  const at = label(n);

  gcNow();
  const index = new Sha256Index();
  let t = performance.now();
  for (let i = 0; i < n; i++) index.add(digests.subarray(i * 32, i * 32 + 32), i);
  lines.push({ name: `sha256_index_add_us_at_${at}`, value: ((performance.now() - t) * 1000) / n, unit: 'us' });
  lines.push({ name: `sha256_index_bytes_per_digest_at_${at}`, value: index.memoryBytes() / n, unit: 'B' });
  t = performance.now();
  let found = 0;
  for (let i = 0; i < n; i++) found += index.get(digests.subarray(i * 32, i * 32 + 32)).length;
  lines.push({ name: `sha256_index_get_us_at_${at}`, value: ((performance.now() - t) * 1000) / n, unit: 'us' });
  if (found !== n) throw new Error(`sha256 index lost digests: ${found} of ${n}`);

  // The obvious alternative, for comparison: hex keys in a Map<string, number[]>.
  gcNow();
  const before = process.memoryUsage().heapUsed;
  const map = new Map<string, number[]>();
  for (let i = 0; i < n; i++) map.set(Buffer.from(digests.buffer, i * 32, 32).toString('hex'), [i]);
  gcNow();
  const mapBytes = process.memoryUsage().heapUsed - before;
  lines.push({ name: `sha256_map_hex_bytes_per_digest_at_${at}`, value: mapBytes / n, unit: 'B' });
  if (map.size !== n) throw new Error('unexpected map size');
  return lines.map((l) => ({ ...l, value: Math.round(l.value * 1e3) / 1e3 }));
}

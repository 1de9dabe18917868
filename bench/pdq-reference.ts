// Vouch's hashing against Meta's C++ PDQ reference hasher (`pdq-photo-hasher` from ThreatExchange's
// pdq/cpp, built as docs/benchmarks.md says), when PDQ_REFERENCE_BIN names it; skipped otherwise.
// One corpus for both: the 24 generated 1024x768 JPEGs of the throughput figure plus the real
// JPEG photos of test/fixtures/pdq (its RGBA PNG stops the reference: it takes 1 or 3 channels),
// as files, since the reference reads files.
// - Rates, for the 1024x768 JPEGs and the photos apart: our warm pool (one thread per core, reading
//   the files, 8 dihedral PDQs + pHash + SHA-256 each) against the reference run as one process per
//   core on a share of the files each (one PDQ per image; its start is amortised over the share).
//   Three alternating rounds, medians reported, so a load change hits both sides alike. Also the
//   reference with --pdqdih (8 PDQs, as we do).
// - Agreement: the PDQ distance between the two on every image (max, p50, p95), and every image
//   outside PDQ's cross-implementation rule (distance <= 10 where both qualities are >= 80) listed.
import { spawn } from 'node:child_process';
import { readdir, rm, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HashPool } from '../server/scanning/hash-pool.js';
import { DEFAULT_IMAGE_LIMITS, hexHammingDistance } from '../shared/hashing/index.js';
import { tempDir } from '../test/helpers/services.js';
import { photoLikeJpeg } from './hashing.js';
import { percentile, round, type BenchResult } from './result.js';

const FIXTURES = fileURLToPath(new URL('../../test/fixtures/pdq/', import.meta.url));
/** PDQ's rule for "the same hash" across implementations (decoders and rounding differ). */
const SAME_HASH_DISTANCE = 10;
const SAME_HASH_QUALITY = 80;
/** Passes over the corpus per timed round, and rounds per side. */
const PASSES = 6;
const ROUNDS = 3;

interface PdqLine {
  file: string;
  pdq: string;
  quality: number;
}

/** Runs the reference on `files`; returns its lines in order (it prints `hash,quality,file`). */
async function runReference(bin: string, files: readonly string[], extraArgs: readonly string[] = []): Promise<PdqLine[]> {
  const child = spawn(bin, [...extraArgs, ...files], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  });
  if (code !== 0) throw new Error(`${bin} exited ${code}: ${stderr.slice(-500)}`);
  const out: PdqLine[] = [];
  for (const line of stdout.split('\n')) {
    const m = /^([0-9a-f]{64}),(\d+),(.+)$/.exec(line);
    if (m) out.push({ file: m[3], pdq: m[1], quality: Number(m[2]) });
  }
  return out;
}

/** Images per second of `processes` reference processes sharing `files` (each image once). */
async function referenceRate(bin: string, files: readonly string[], processes: number, extraArgs: readonly string[] = []): Promise<number> {
  const shares = Array.from({ length: processes }, (_, p) => files.filter((_, i) => i % processes === p));
  const started = performance.now();
  const outputs = await Promise.all(shares.map((share) => runReference(bin, share, extraArgs)));
  const seconds = (performance.now() - started) / 1000;
  // --pdqdih prints 8 lines an image.
  const hashed = outputs.reduce((n, o) => n + o.length, 0);
  const perImage = extraArgs.includes('--pdqdih') ? 8 : 1;
  if (hashed !== files.length * perImage) throw new Error(`the reference printed ${hashed} hashes for ${files.length} images`);
  return files.length / seconds;
}

/** Images per second of the warm pool on `files`, 2 x threads in flight. */
async function poolRate(pool: HashPool, files: readonly string[]): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: pool.threads * 2 }, async () => {
      while (next < files.length) {
        const outcome = await pool.hashFile(files[next++]);
        if (!outcome.ok) throw new Error(outcome.message);
      }
    }),
  );
  return files.length / ((performance.now() - started) / 1000);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export async function benchPdqReference(): Promise<BenchResult[]> {
  const bin = process.env.PDQ_REFERENCE_BIN;
  if (!bin) {
    console.error('# hash_vs_reference: skipped (set PDQ_REFERENCE_BIN to the C++ pdq-photo-hasher; docs/benchmarks.md says how to build it)');
    return [];
  }
  const dir = tempDir('vouch-bench-pdqref-');
  const cores = availableParallelism();
  const pool = new HashPool(DEFAULT_IMAGE_LIMITS, cores);
  try {
    const generated = await Promise.all(
      Array.from({ length: 24 }, async (_, i) => {
        const path = join(dir, `photo-like-${100 + i}.jpg`);
        await writeFile(path, await photoLikeJpeg(100 + i));
        return path;
      }),
    );
    const fixtures = (await readdir(FIXTURES)).filter((f) => /\.jpe?g$/i.test(f)).sort().map((f) => join(FIXTURES, f));
    const corpus = [...generated, ...fixtures];

    // Agreement, image by image.
    const reference = new Map((await runReference(bin, corpus)).map((line) => [line.file, line]));
    const distances: number[] = [];
    let outsideRule = 0;
    for (const file of corpus) {
      const ours = await pool.hashFile(file);
      const theirs = reference.get(file);
      if (!ours.ok || !theirs) throw new Error(`${file}: ${ours.ok ? 'the reference printed no hash' : ours.message}`);
      const d = hexHammingDistance(ours.hashes.pdq, theirs.pdq);
      distances.push(d);
      if (d <= SAME_HASH_DISTANCE) continue;
      const ruled = ours.hashes.pdqQuality >= SAME_HASH_QUALITY && theirs.quality >= SAME_HASH_QUALITY;
      if (ruled) outsideRule++;
      const name = file.slice(file.lastIndexOf('/') + 1);
      console.error(`# pdq vs reference: ${name} distance ${d}, quality ${ours.hashes.pdqQuality} (ours) / ${theirs.quality}${ruled ? '' : ' (quality < 80: the rule does not apply)'}`);
    }
    distances.sort((a, b) => a - b);

    // Rates, alternating rounds on the same files, for each part of the corpus apart: the 1024x768
    // JPEGs (the figure; exactly 2x the normalised size) and the photos (1600x1004 and
    // 256x256), whose sizes favour different decoders.
    await poolRate(pool, corpus.concat(corpus)); // warm every worker
    const rates = async (files: readonly string[]) => {
      const timed = Array.from({ length: PASSES }, () => files).flat();
      const ours: number[] = [];
      const theirs: number[] = [];
      const theirsDihedral: number[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        ours.push(await poolRate(pool, timed));
        theirs.push(await referenceRate(bin, timed, cores));
        theirsDihedral.push(await referenceRate(bin, timed, cores, ['--pdqdih']));
      }
      return { ours: median(ours), theirs: median(theirs), theirsDihedral: median(theirsDihedral) };
    };
    const big = await rates(generated);
    const photos = await rates(fixtures);
    return [
      { name: 'hash_pool_img_per_s_1024x768', value: round(big.ours, 1), unit: 'img/s' },
      { name: 'pdq_reference_img_per_s_1024x768', value: round(big.theirs, 1), unit: 'img/s' },
      { name: 'pdq_reference_dihedral_img_per_s_1024x768', value: round(big.theirsDihedral, 1), unit: 'img/s' },
      { name: 'hash_vs_reference_ratio', value: round(big.ours / big.theirs, 2), unit: 'x' },
      { name: 'hash_pool_img_per_s_fixture_photos', value: round(photos.ours, 1), unit: 'img/s' },
      { name: 'pdq_reference_img_per_s_fixture_photos', value: round(photos.theirs, 1), unit: 'img/s' },
      { name: 'hash_vs_reference_ratio_fixture_photos', value: round(photos.ours / photos.theirs, 2), unit: 'x' },
      { name: 'pdq_reference_processes', value: cores, unit: 'processes' },
      { name: 'pdq_distance_vs_reference_max', value: distances[distances.length - 1], unit: 'bits' },
      { name: 'pdq_distance_vs_reference_p50', value: percentile(distances, 0.5), unit: 'bits' },
      { name: 'pdq_distance_vs_reference_p95', value: percentile(distances, 0.95), unit: 'bits' },
      { name: 'pdq_vs_reference_outside_rule', value: outsideRule, unit: 'images' },
      { name: 'pdq_reference_corpus_images', value: corpus.length, unit: 'images' },
    ];
  } finally {
    await pool.close();
    await rm(dir, { recursive: true, force: true });
  }
}

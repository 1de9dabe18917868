// Whole-machine hashing throughput: the worker pool that `vouch scan` and the API use, on every
// core, decode included; and the imghash package on the same images in the same run, for the ratio.
import { availableParallelism } from 'node:os';
import imghash from 'imghash';
import { HashPool } from '../server/scanning/hash-pool.js';
import { DEFAULT_IMAGE_LIMITS } from '../shared/hashing/index.js';
import { photoLikeJpeg } from './hashing.js';
import { round, type BenchResult } from './result.js';

async function throughput(total: number, concurrency: number, job: (i: number) => Promise<unknown>): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) await job(next++);
    }),
  );
  return total / ((performance.now() - started) / 1000);
}

export async function benchHashThroughput(): Promise<BenchResult[]> {
  const images = await Promise.all(Array.from({ length: 24 }, (_, i) => photoLikeJpeg(100 + i)));
  const cores = availableParallelism();
  const pool = new HashPool(DEFAULT_IMAGE_LIMITS, cores);
  try {
    const hash = async (i: number) => {
      const outcome = await pool.hashBytes(images[i % images.length]);
      if (!outcome.ok) throw new Error(outcome.message);
    };
    await throughput(cores * 8, cores * 2, hash); // warm the workers
    const vouch = await throughput(600, cores * 2, hash);
    const other = async (i: number) => imghash.hash(images[i % images.length], 8, 'hex');
    await throughput(8, cores, other);
    const imghashRate = await throughput(80, cores * 2, other);
    return [
      { name: 'hash_jpeg_1024x768_img_per_s', value: round(vouch, 1), unit: 'img/s' },
      { name: 'imghash_img_per_s', value: round(imghashRate, 1), unit: 'img/s' },
      { name: 'hash_vs_imghash_ratio', value: round(vouch / imghashRate, 2), unit: 'x' },
      { name: 'hash_threads', value: cores, unit: 'threads' },
    ];
  } finally {
    await pool.close();
  }
}

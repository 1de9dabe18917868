/**
 * Single-thread cost of hashing one image: decode + normalise (sharp, libvips pinned to one
 * thread) + PDQ + pHash-64 + SHA-256, on a generated 1024x768 JPEG (quality 85) with photo-like
 * content: smooth shading, hard-edged shapes and sensor-like grain (JPEG cost depends on detail;
 * a flat test card would flatter the decoder).
 */

import sharp from 'sharp';
import { decodeNormalized, hashImage, hashImageWithDihedral, pdqHash, phash64 } from '../shared/hashing/index.js';

import { percentile, type BenchResult } from './result.js';
import { photoLikeRgb } from '../test/helpers/images.js';



async function timeIt(runs: number, f: () => unknown): Promise<number[]> {
  for (let i = 0; i < Math.max(3, runs >> 3); i++) await f(); // warm up JIT and libvips
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await f();
    samples.push(performance.now() - t0);
  }
  return samples.sort((a, b) => a - b);
}

/** A generated 1024x768 JPEG (quality 85), different for each seed. */
export function photoLikeJpeg(seed: number, width = 1024, height = 768): Promise<Buffer> {
  return sharp(photoLikeRgb(width, height, seed), { raw: { width, height, channels: 3 } }).jpeg({ quality: 85 }).toBuffer();
}

export async function benchHashing(): Promise<BenchResult[]> {
  const jpeg = await photoLikeJpeg(2024);

  // One libvips worker thread, and no libvips operation cache (it would otherwise recognise the
  // same input and skip work). Both are process-wide: restore them afterwards.
  const prevConcurrency = sharp.concurrency();
  const prevCache = sharp.cache();
  sharp.concurrency(1);
  sharp.cache(false);
  try {
    const RUNS = 60;
    const full = await timeIt(RUNS, () => hashImage(jpeg));
    const dihedral = await timeIt(RUNS, () => hashImageWithDihedral(jpeg));
    const decode = await timeIt(RUNS, () => decodeNormalized(jpeg));
    const img = await decodeNormalized(jpeg);
    const pdq = await timeIt(RUNS * 4, () => pdqHash(img.luma, img.width, img.height));
    const ph = await timeIt(RUNS * 4, () => phash64(img.luma, img.width, img.height));
    const r = (x: number) => Math.round(x * 1000) / 1000;
    return [
      { name: 'hash_jpeg_1024x768_single_thread_ms', value: r(percentile(full, 0.5)), unit: 'ms' },
      { name: 'hash_jpeg_1024x768_single_thread_p95_ms', value: r(percentile(full, 0.95)), unit: 'ms' },
      { name: 'hash_jpeg_1024x768_with_dihedral_single_thread_ms', value: r(percentile(dihedral, 0.5)), unit: 'ms' },
      { name: 'decode_normalize_jpeg_1024x768_single_thread_ms', value: r(percentile(decode, 0.5)), unit: 'ms' },
      { name: `pdq_luma_${img.width}x${img.height}_ms`, value: r(percentile(pdq, 0.5)), unit: 'ms' },
      { name: `phash64_luma_${img.width}x${img.height}_ms`, value: r(percentile(ph, 0.5)), unit: 'ms' },
      { name: 'bench_jpeg_bytes', value: jpeg.length, unit: 'bytes' },
    ];
  } finally {
    sharp.concurrency(prevConcurrency);
    sharp.cache({ memory: prevCache.memory.max, files: prevCache.files.max, items: prevCache.items.max });
  }
}

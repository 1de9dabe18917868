/**
 * Single-thread cost of hashing one image: decode + normalise (sharp, libvips pinned to one
 * thread) + PDQ + pHash-64 + SHA-256, on a generated 1024x768 JPEG (quality 85) with photo-like
 * content: smooth shading, hard-edged shapes and sensor-like grain (JPEG cost depends on detail;
 * a flat test card would flatter the decoder).
 */

import sharp from 'sharp';
import { decodeNormalized, hashImage, hashImageWithDihedral, pdqHash, phash64 } from '../shared/hashing/index.js';

import { percentile, type BenchResult } from './result.js';

/**
 * Deterministic photo-like RGB: gradients, waves, discs, grain. Kept apart from the tests' image
 * generator on purpose: the figures in docs/benchmarks.md were measured on exactly these images.
 */
export function photoLikeRgb(width: number, height: number, seed: number): Buffer {
  let s = seed >>> 0 || 1;
  const rnd = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296;
  const waves = Array.from({ length: 10 }, () => ({
    fx: (rnd() - 0.5) * 0.04, fy: (rnd() - 0.5) * 0.04, ph: rnd() * 6.3, amp: 10 + rnd() * 30,
    ch: [rnd(), rnd(), rnd()],
  }));
  const discs = Array.from({ length: 12 }, () => ({
    x: rnd() * width, y: rnd() * height, r: (0.03 + rnd() * 0.15) * Math.min(width, height),
    c: [rnd() * 255, rnd() * 255, rnd() * 255],
  }));
  const out = Buffer.alloc(width * height * 3);
  const v = [0, 0, 0];
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      v[0] = 100 + (80 * x) / width;
      v[1] = 90 + (60 * y) / height;
      v[2] = 120;
      for (const w of waves) {
        const a = w.amp * Math.sin(w.fx * x + w.fy * y + w.ph);
        for (let c = 0; c < 3; c++) v[c] += a * w.ch[c];
      }
      for (const d of discs) {
        const dx = x - d.x;
        const dy = y - d.y;
        if (dx * dx + dy * dy < d.r * d.r) for (let c = 0; c < 3; c++) v[c] = 0.3 * v[c] + 0.7 * d.c[c];
      }
      const grain = (rnd() - 0.5) * 30;
      for (let c = 0; c < 3; c++) out[(y * width + x) * 3 + c] = Math.max(0, Math.min(255, Math.round(v[c] + grain + (rnd() - 0.5) * 12)));
    }
  }
  return out;
}


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

/**
 * pHash-64, the classic DCT perceptual hash (Zauner 2010, pHash.org):
 *   luminance -> 32x32 area average -> 2-D DCT-II -> the 8x8 lowest frequencies excluding the DC
 *   row and column (frequencies 1..8 on each axis) -> bit = coefficient > median.
 *
 * Why next to PDQ: it only looks at the coarsest structure (periods of 4+ of 32 cells), so a small
 * crop or border, which shifts PDQ's finer 16x16 frequencies, barely moves it. DC is skipped
 * because it is overall brightness, nearly always above the median and so a wasted bit.
 *
 * Bit k = 8*u + v for vertical frequency u+1 and horizontal frequency v+1; bits are packed
 * most-significant first, so the hex reads row by row.
 */

import { bytesToHex, hexToBytes } from './pdq.js';

export const PHASH64_BYTES = 8;
const SIZE = 32;
const BAND = 8;

/** DCT-II basis for frequencies 1..8 over 32 samples (unnormalised: each kept coefficient gets
 *  the same factor, which cannot change its rank against the median). */
const BASIS = (() => {
  const m = new Float64Array(BAND * SIZE);
  for (let u = 0; u < BAND; u++) {
    for (let x = 0; x < SIZE; x++) m[u * SIZE + x] = Math.cos((Math.PI * (u + 1) * (2 * x + 1)) / (2 * SIZE));
  }
  return m;
})();

const small = new Float64Array(SIZE * SIZE);
const band = new Float64Array(BAND * SIZE);
const coeffs = new Float64Array(BAND * BAND);
const sorted = new Float64Array(BAND * BAND);
let rowCells = new Float64Array(512 * SIZE);

/**
 * Cell o of an axis of n pixels covers [o, o+1) * n/32. Its mean is: first pixel p0 weighted by
 * its covered part, whole pixels p0+1 .. p1-1, last pixel p1 by its covered part, all divided by
 * n/32 (when the cell lies inside one pixel, p0 = p1 and it is that pixel's value).
 */
interface Cells {
  p0: Int32Array;
  p1: Int32Array;
  w0: Float64Array;
  w1: Float64Array;
  /** 32 / n: 1 / (cell length in pixels). */
  inv: number;
}

function cells(n: number): Cells {
  const p0 = new Int32Array(SIZE);
  const p1 = new Int32Array(SIZE);
  const w0 = new Float64Array(SIZE);
  const w1 = new Float64Array(SIZE);
  for (let o = 0; o < SIZE; o++) {
    const start = (o * n) / SIZE;
    const end = o === SIZE - 1 ? n : ((o + 1) * n) / SIZE;
    p0[o] = Math.floor(start);
    p1[o] = Math.floor(end);
    if (p0[o] === p1[o]) {
      w0[o] = end - start; // the cell lies inside one pixel
    } else {
      w0[o] = p0[o] + 1 - start;
      w1[o] = end - p1[o]; // 0 when the cell ends on a pixel edge (then p1 is not read)
    }
  }
  return { p0, p1, w0, w1, inv: SIZE / n };
}

const cellCache = new Map<number, Cells>();
function cachedCells(n: number): Cells {
  let c = cellCache.get(n);
  if (c === undefined) {
    if (cellCache.size >= 256) cellCache.clear();
    c = cells(n);
    cellCache.set(n, c);
  }
  return c;
}

/**
 * Exact area average to 32x32 (partial pixels weighted by their overlap; also fine for inputs
 * smaller than 32). Along rows first, summing each cell's whole pixels with four independent
 * accumulators (read-only, no dependency chain: the fastest form for V8), then down the columns
 * of the h x 32 intermediate.
 */
function resizeTo32(luma: Float32Array, w: number, h: number): void {
  const cx = cachedCells(w);
  const cy = cachedCells(h);
  if (rowCells.length < h * SIZE) rowCells = new Float64Array(h * SIZE);
  const tmp = rowCells;
  for (let y = 0; y < h; y++) {
    const row = y * w;
    for (let o = 0; o < SIZE; o++) {
      const a = cx.p0[o];
      const b = cx.p1[o];
      let s = cx.w0[o] * luma[row + a];
      if (b > a) {
        if (cx.w1[o] > 0) s += cx.w1[o] * luma[row + b];
        let s0 = 0;
        let s1 = 0;
        let s2 = 0;
        let s3 = 0;
        let k = row + a + 1;
        const e = row + b;
        for (; k + 3 < e; k += 4) {
          s0 += luma[k];
          s1 += luma[k + 1];
          s2 += luma[k + 2];
          s3 += luma[k + 3];
        }
        for (; k < e; k++) s0 += luma[k];
        s += s0 + s1 + s2 + s3;
      }
      tmp[y * SIZE + o] = s * cx.inv;
    }
  }
  small.fill(0);
  for (let o = 0; o < SIZE; o++) {
    const a = cy.p0[o];
    const b = cy.p1[o];
    const out = o * SIZE;
    for (let y = a; y <= b && y < h; y++) {
      const wgt = (y === a ? cy.w0[o] : y === b ? cy.w1[o] : 1) * cy.inv;
      if (wgt === 0) continue;
      const r = y * SIZE;
      for (let j = 0; j < SIZE; j++) small[out + j] += wgt * tmp[r + j];
    }
  }
}

/** pHash-64 of a luminance image (width x height, row-major). */
export function phash64(luma: Float32Array, width: number, height: number): Uint8Array {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new RangeError(`invalid image size ${width}x${height}`);
  }
  if (luma.length < width * height) {
    throw new RangeError(`luminance buffer has ${luma.length} values, expected ${width * height}`);
  }
  resizeTo32(luma, width, height);

  // band = B . X (8 x 32), then coeffs = band . B^T (8 x 8).
  band.fill(0);
  for (let u = 0; u < BAND; u++) {
    for (let y = 0; y < SIZE; y++) {
      const b = BASIS[u * SIZE + y];
      const row = y * SIZE;
      const out = u * SIZE;
      for (let x = 0; x < SIZE; x++) band[out + x] += b * small[row + x];
    }
  }
  for (let u = 0; u < BAND; u++) {
    for (let v = 0; v < BAND; v++) {
      let s = 0;
      for (let x = 0; x < SIZE; x++) s += band[u * SIZE + x] * BASIS[v * SIZE + x];
      coeffs[u * BAND + v] = s;
    }
  }

  // Median of 64 = mean of the two middle values, so exactly 32 bits are set when values differ.
  sorted.set(coeffs);
  sorted.sort();
  const median = (sorted[31] + sorted[32]) / 2;
  const hash = new Uint8Array(PHASH64_BYTES);
  for (let k = 0; k < 64; k++) {
    if (coeffs[k] > median) hash[k >> 3] |= 0x80 >> (k & 7);
  }
  return hash;
}

export function phashToHex(hash: Uint8Array): string {
  if (hash.length !== PHASH64_BYTES) throw new TypeError(`pHash-64 must be 8 bytes, got ${hash.length}`);
  return bytesToHex(hash);
}

export function phashFromHex(hex: string): Uint8Array {
  return hexToBytes(hex, PHASH64_BYTES);
}

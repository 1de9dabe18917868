/**
 * PDQ, Meta's 256-bit perceptual hash, written from the published algorithm
 * (pdqhash-2017-10-09.pdf and the ThreatExchange reference implementations).
 *
 *   luminance -> Jarosz filter (2 x (box along rows, box along columns)) -> decimate to 64x64
 *   -> DCT rows/columns 1..16 (16x16) -> bit = coefficient > median; quality from 64x64 gradients.
 *
 * Interoperability: hashes are exchanged with peers and compared with lists made by other PDQ
 * implementations, so everything observable follows the reference: the window sizes, the edge
 * handling of the box filter, the decimation sample points, the lower-median threshold, the bit
 * numbering and the hex order. Float rounding differs (we sum in doubles, the C++ in floats),
 * which moves at most a few bits on near-median coefficients.
 *
 * Speed: the blur is only evaluated where the decimation samples it (see "Downsampling"), the
 * DCT matrix is precomputed and only the 16x16 coefficients kept are computed; scratch buffers
 * are typed arrays reused between calls (the functions are synchronous, so sharing module-level
 * scratch space is safe).
 */

export const PDQ_HASH_BYTES = 32;

/** The eight dihedral transforms, in the reference order (dih_bridge-1 .. dih_bridge-8). */
export const PDQ_DIHEDRAL_TRANSFORMS = [
  'original',
  'rotate90',
  'rotate180',
  'rotate270',
  'flipX',
  'flipY',
  'flipPlus1',
  'flipMinus1',
] as const;
export type PdqDihedralTransform = (typeof PDQ_DIHEDRAL_TRANSFORMS)[number];

export interface PdqResult {
  /** 32 bytes in hex order: byte 0 is the high byte of reference word 15. */
  hash: Uint8Array;
  /** 0..100; the reference treats < 50 as too featureless to match on. */
  quality: number;
}

export interface PdqDihedralResult {
  quality: number;
  hashes: Record<PdqDihedralTransform, Uint8Array>;
}

/** Images smaller than this on either side hash to all zeros with quality 0 (as the reference). */
const MIN_HASHABLE_DIM = 5;

// ---------------------------------------------------------------------------------------------
// DCT matrix, 16 x 64: row i is frequency i+1 (the DC row is skipped, it carries no structure).
const DCT = (() => {
  const m = new Float64Array(16 * 64);
  const scale = Math.sqrt(2 / 64);
  for (let i = 0; i < 16; i++) {
    for (let j = 0; j < 64; j++) {
      m[i * 64 + j] = scale * Math.cos((Math.PI / 2 / 64) * (i + 1) * (2 * j + 1));
    }
  }
  return m;
})();

// ---------------------------------------------------------------------------------------------
// Downsampling. The reference blurs the whole image with two Jarosz passes (box along rows, box
// along columns, twice) and then keeps one pixel per 64x64 cell. Both passes are separable and
// linear, and edge normalisation depends only on the position along one axis, so the value kept
// for cell (k, m) is sum_y wy_k(y) * sum_x wx_m(x) * luma(y, x), with per-axis weight vectors of
// at most 2*window-1 taps. We precompute those weights (a few hundred numbers) and never filter
// the full image: 64 x 7 multiply-adds per image row (at 512 px) instead of 4 full-image passes,
// and no full-size scratch buffer. Same result as the reference up to float rounding.

interface AxisWeights {
  /** First input index of each of the 64 samples; start + stride <= n. */
  start: Int32Array;
  /** weights[k * stride + t] applies to input start[k] + t (zero-padded to `stride` taps, so
   *  the inner loops have a fixed length). */
  weights: Float64Array;
  stride: number;
}

/** Reference window size: one pass covers half a decimated cell, rounded up. */
function jaroszWindow(oldDim: number, newDim: number): number {
  return Math.floor((oldDim + 2 * newDim - 1) / (2 * newDim));
}

/**
 * Weights of "box, box, then sample" along one axis of length n (>= MIN_HASHABLE_DIM), as the
 * reference does it: a box of `win` samples at position i covers [i - (win - half), i + half - 1]
 * with half = floor((win + 2) / 2), clipped to the image and divided by the samples inside;
 * sample k is taken at floor((k + 0.5) * n / 64), the cell centre rounded down.
 *
 * `mirrored` gives the weights for the axis reversed (x -> n-1-x), in original coordinates. Even
 * windows and the rounded-down sample points make the reference 1-2 px asymmetric, so a mirrored
 * image does not simply have a mirrored downsample; see pdqDihedral.
 */
function axisWeights(n: number, mirrored: boolean): AxisWeights {
  const win = jaroszWindow(n, 64);
  const half = (win + 2) >> 1;
  const before = win - half;
  const after = half - 1;
  const stride = 2 * win - 1; // support of two boxes; <= n for n >= 1
  const start = new Int32Array(64);
  const weights = new Float64Array(64 * stride);
  for (let k = 0; k < 64; k++) {
    const s = Math.floor(((k + 0.5) * n) / 64);
    const lo2 = Math.max(0, s - before);
    const hi2 = Math.min(n - 1, s + after);
    const first = Math.min(Math.max(0, lo2 - before), n - stride);
    const base = k * stride;
    for (let c = lo2; c <= hi2; c++) {
      const lo1 = Math.max(0, c - before);
      const hi1 = Math.min(n - 1, c + after);
      const wgt = 1 / ((hi2 - lo2 + 1) * (hi1 - lo1 + 1));
      for (let x = lo1; x <= hi1; x++) weights[base + x - first] += wgt;
    }
    if (mirrored) {
      start[k] = n - stride - first;
      weights.subarray(base, base + stride).reverse();
    } else {
      start[k] = first;
    }
  }
  return { start, weights, stride };
}

// Scratch space, reused between calls (the functions are synchronous).
const MAX_SCRATCH_ROWS = 4096;
let rowsNormal = new Float64Array(512 * 64);
let rowsMirrored = new Float64Array(512 * 64);
let rowNeeded = new Uint8Array(512);
const buf64 = new Float32Array(64 * 64);
const buf16x64 = new Float64Array(16 * 64);
const dct16 = new Float64Array(256);
const sorted16 = new Float64Array(256);

/** Marks the rows any vertical sample reads. */
function markNeededRows(h: number, wy: AxisWeights, wyMirrored: AxisWeights | null): Uint8Array {
  if (rowNeeded.length < h) rowNeeded = new Uint8Array(h);
  const need = rowNeeded;
  need.fill(0, 0, h);
  for (const a of wyMirrored ? [wy, wyMirrored] : [wy]) {
    for (let k = 0; k < 64; k++) need.fill(1, a.start[k], a.start[k] + a.stride);
  }
  return need;
}

/**
 * Horizontal stage: out[y * 64 + m] = sum_t wx_m(t) * luma(y, start_m + t), for needed rows.
 * This is the hot loop (~64 x 7 multiply-adds per row); the usual tap counts are unrolled, which
 * V8 runs about twice as fast as the generic loop.
 */
function horizontal(luma: Float32Array, w: number, h: number, wx: AxisWeights, need: Uint8Array, out: Float64Array): void {
  const { start, weights: g, stride } = wx;
  for (let y = 0; y < h; y++) {
    if (need[y] === 0) continue;
    const row = y * w;
    const o = y * 64;
    if (stride === 7) {
      for (let m = 0, b = 0; m < 64; m++, b += 7) {
        const p = row + start[m];
        out[o + m] =
          g[b] * luma[p] + g[b + 1] * luma[p + 1] + g[b + 2] * luma[p + 2] + g[b + 3] * luma[p + 3] +
          g[b + 4] * luma[p + 4] + g[b + 5] * luma[p + 5] + g[b + 6] * luma[p + 6];
      }
    } else if (stride === 5) {
      for (let m = 0, b = 0; m < 64; m++, b += 5) {
        const p = row + start[m];
        out[o + m] =
          g[b] * luma[p] + g[b + 1] * luma[p + 1] + g[b + 2] * luma[p + 2] + g[b + 3] * luma[p + 3] +
          g[b + 4] * luma[p + 4];
      }
    } else {
      for (let m = 0, b = 0; m < 64; m++, b += stride) {
        const p = row + start[m];
        let s = 0;
        for (let t = 0; t < stride; t++) s += g[b + t] * luma[p + t];
        out[o + m] = s;
      }
    }
  }
}

/** Vertical stage into the 64x64 buffer (float32, as the reference stores it). */
function vertical(rows: Float64Array, wy: AxisWeights, out: Float32Array): void {
  const { start, weights, stride } = wy;
  const acc = acc64;
  for (let k = 0; k < 64; k++) {
    acc.fill(0);
    const wb = k * stride;
    for (let t = 0; t < stride; t++) {
      const wgt = weights[wb + t];
      if (wgt === 0) continue;
      const r = (start[k] + t) * 64;
      for (let m = 0; m < 64; m++) acc[m] += wgt * rows[r + m];
    }
    out.set(acc, k * 64);
  }
}
const acc64 = new Float64Array(64);

function rowScratch(which: 0 | 1, h: number): Float64Array {
  const cur = which === 0 ? rowsNormal : rowsMirrored;
  if (cur.length >= h * 64) return cur;
  const next = new Float64Array(h * 64);
  if (h <= MAX_SCRATCH_ROWS) {
    if (which === 0) rowsNormal = next;
    else rowsMirrored = next;
  }
  return next;
}

// Weights depend only on (length, mirrored) and normalised images mostly share a few sizes.
const weightCache = new Map<number, AxisWeights>();
function cachedAxisWeights(n: number, mirrored: boolean): AxisWeights {
  const key = n * 2 + (mirrored ? 1 : 0);
  let a = weightCache.get(key);
  if (a === undefined) {
    if (weightCache.size >= 256) weightCache.clear();
    a = axisWeights(n, mirrored);
    weightCache.set(key, a);
  }
  return a;
}

/** Reference quality heuristic: count of significant gradients in the 64x64 image, / 90, <= 100. */
function qualityOf64(a: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < 63; i++) {
    for (let j = 0; j < 64; j++) {
      sum += Math.abs(Math.trunc(((a[i * 64 + j] - a[(i + 1) * 64 + j]) * 100) / 255));
    }
  }
  for (let i = 0; i < 64; i++) {
    for (let j = 0; j < 63; j++) {
      sum += Math.abs(Math.trunc(((a[i * 64 + j] - a[i * 64 + j + 1]) * 100) / 255));
    }
  }
  const q = Math.floor(sum / 90);
  return q > 100 ? 100 : q;
}

/** 16x16 = D . A . D^T, D the 16x64 DCT matrix (only the 256 coefficients PDQ keeps). */
function dct64To16(a: Float32Array, out: Float64Array): void {
  const t = buf16x64;
  t.fill(0);
  // T = D A, walking A row by row so the inner loop is contiguous.
  for (let i = 0; i < 16; i++) {
    const trow = i * 64;
    for (let k = 0; k < 64; k++) {
      const d = DCT[i * 64 + k];
      const arow = k * 64;
      for (let j = 0; j < 64; j++) t[trow + j] += d * a[arow + j];
    }
  }
  // B = T D^T
  for (let i = 0; i < 16; i++) {
    for (let j = 0; j < 16; j++) {
      let s = 0;
      const trow = i * 64;
      const drow = j * 64;
      for (let k = 0; k < 64; k++) s += t[trow + k] * DCT[drow + k];
      out[i * 16 + j] = s;
    }
  }
}

/** Bit k = row*16 + col is set when the coefficient is above the median. The reference's median
 *  (Torben's) is the lower one, element 127 of 256 sorted, so ~128 bits are set. With
 *  `transposed`, hashes the transposed coefficients (the DCT of the transposed image). */
function bitsFrom16(coeffs: Float64Array, transposed: boolean): Uint8Array {
  sorted16.set(coeffs);
  sorted16.sort();
  const median = sorted16[127];
  const hash = new Uint8Array(PDQ_HASH_BYTES);
  const si = transposed ? 1 : 16; // step to the next row i
  const sj = transposed ? 16 : 1; // step to the next column j
  for (let i = 0; i < 16; i++) {
    let word = 0;
    for (let j = 0; j < 16; j++) {
      if (coeffs[i * si + j * sj] > median) word |= 1 << j;
    }
    // Reference word i (bit j = column j) is printed at position 15 - i, big-endian.
    hash[2 * (15 - i)] = word >>> 8;
    hash[2 * (15 - i) + 1] = word & 0xff;
  }
  return hash;
}

function checkInput(luma: Float32Array, width: number, height: number): boolean {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 0 || height < 0) {
    throw new RangeError(`invalid image size ${width}x${height}`);
  }
  if (luma.length < width * height) {
    throw new RangeError(`luminance buffer has ${luma.length} values, expected ${width * height}`);
  }
  return width >= MIN_HASHABLE_DIM && height >= MIN_HASHABLE_DIM;
}

/** PDQ of a luminance image (width x height, row-major, values 0..255). */
export function pdqHash(luma: Float32Array, width: number, height: number): PdqResult {
  if (!checkInput(luma, width, height)) return { hash: new Uint8Array(PDQ_HASH_BYTES), quality: 0 };
  const wx = cachedAxisWeights(width, false);
  const wy = cachedAxisWeights(height, false);
  const rows = rowScratch(0, height);
  horizontal(luma, width, height, wx, markNeededRows(height, wy, null), rows);
  vertical(rows, wy, buf64);
  const quality = qualityOf64(buf64);
  dct64To16(buf64, dct16);
  return { hash: bitsFrom16(dct16, false), quality };
}

/**
 * The hash of the image and the hashes its 7 rotations/mirrors would have (`rotate90` is the
 * hash of the image turned 90 degrees counter-clockwise, `flipX` mirrored top-bottom, `flipY`
 * left-right, `flipPlus1` transposed, `flipMinus1` anti-transposed; the reference's names and
 * order). Indexing all 8 lets one lookup find rotated and mirrored copies.
 *
 * The reference derives all 8 from one DCT by sign flips and transposition. Transposition is
 * exact, but the sign flips assume the downsample commutes with mirroring, and PDQ's even box
 * windows and rounded-down sample points break that by 1-2 px: on Meta's own dih_bridge test set
 * that costs 14-16 bits on 4 of the 7 variants. Mirroring the downsampling weights instead costs
 * one more horizontal stage and three more vertical stages and DCTs (~0.1 ms), and gives exactly
 * the hash `pdqHash` computes for the transformed image (4-8 bits from the reference there).
 */
export function pdqDihedral(luma: Float32Array, width: number, height: number): PdqDihedralResult {
  const hashes = {} as Record<PdqDihedralTransform, Uint8Array>;
  if (!checkInput(luma, width, height)) {
    for (const t of PDQ_DIHEDRAL_TRANSFORMS) hashes[t] = new Uint8Array(PDQ_HASH_BYTES);
    return { quality: 0, hashes };
  }
  const wx = cachedAxisWeights(width, false);
  const wxMirrored = cachedAxisWeights(width, true);
  const wy = cachedAxisWeights(height, false);
  const wyMirrored = cachedAxisWeights(height, true);
  const need = markNeededRows(height, wy, wyMirrored);
  const rows = rowScratch(0, height);
  const rowsLR = rowScratch(1, height);
  horizontal(luma, width, height, wx, need, rows);
  horizontal(luma, width, height, wxMirrored, need, rowsLR);

  // [horizontal result, vertical weights, name, name of its transpose]
  const variants: Array<[Float64Array, AxisWeights, PdqDihedralTransform, PdqDihedralTransform]> = [
    [rows, wy, 'original', 'flipPlus1'],
    [rowsLR, wy, 'flipY', 'rotate90'],
    [rows, wyMirrored, 'flipX', 'rotate270'],
    [rowsLR, wyMirrored, 'rotate180', 'flipMinus1'],
  ];
  let quality = 0;
  for (const [r, v, plain, transposed] of variants) {
    vertical(r, v, buf64);
    if (plain === 'original') quality = qualityOf64(buf64);
    dct64To16(buf64, dct16);
    hashes[plain] = bitsFrom16(dct16, false);
    hashes[transposed] = bitsFrom16(dct16, true);
  }
  return { quality, hashes };
}

// ---------------------------------------------------------------------------------------------
// Hex and distance.

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** Lower-case hex of any byte string (for PDQ: the reference order, word 15 first). */
export function bytesToHex(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i++) s += HEX[bytes[i]];
  return s;
}

/** Parses hex of an exact byte length; throws on anything else (no silent truncation). */
export function hexToBytes(hex: string, byteLength: number): Uint8Array {
  if (typeof hex !== 'string' || hex.length !== byteLength * 2 || !/^[0-9a-fA-F]*$/.test(hex)) {
    throw new TypeError(`expected ${byteLength * 2} hex characters, got ${JSON.stringify(String(hex).slice(0, 80))}`);
  }
  const out = new Uint8Array(byteLength);
  for (let i = 0; i < byteLength; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function pdqToHex(hash: Uint8Array): string {
  if (hash.length !== PDQ_HASH_BYTES) throw new TypeError(`PDQ hash must be 32 bytes, got ${hash.length}`);
  return bytesToHex(hash);
}

export function pdqFromHex(hex: string): Uint8Array {
  return hexToBytes(hex, PDQ_HASH_BYTES);
}

function popcount32(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  x = (x + (x >>> 4)) & 0x0f0f0f0f;
  return Math.imul(x, 0x01010101) >>> 24;
}

/** Number of differing bits between two equal-length hashes (PDQ: 0..256, pHash-64: 0..64). */
export function hammingDistance(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) throw new RangeError(`hash lengths differ: ${a.length} vs ${b.length}`);
  let d = 0;
  let i = 0;
  for (const end = a.length & ~3; i < end; i += 4) {
    const x = (a[i] | (a[i + 1] << 8) | (a[i + 2] << 16) | (a[i + 3] << 24)) ^
      (b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24));
    d += popcount32(x);
  }
  for (; i < a.length; i++) d += popcount32(a[i] ^ b[i]);
  return d;
}

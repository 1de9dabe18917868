// White-box PDQ near-collisions for the adversarial tests (issue 12): perturb a harmless image
// until the product's own pipeline hashes it within d bits of a chosen PDQ.
//
// PDQ's bits are "16x16 DCT coefficient of the 64x64 downsample > their median". Those
// coefficients are a linear function of the luminance, and the DCT rows are orthonormal, so a
// wanted change dC of the coefficients is the 64x64 change D^T dC D. Evaluated as a continuous
// sum of cosines at full size it is a smooth, band-limited picture that the downsample passes
// almost unchanged; added to R, G and B alike it changes the luminance by exactly that much
// (the BT.601 weights sum to 1). Clipping to 0..255, PNG rounding and the moving median leave a
// residue, so the generator re-hashes and repeats. pHash-64 thresholds the same lowest
// frequencies, so the same step can steer it too (targetPhash64).

import sharp from 'sharp';
import { decodeNormalized, hashImageWithDihedral, pdqFromHex, phashFromHex } from '../../shared/hashing/index.js';
import { hammingDistance } from '../../shared/hashing/pdq.js';

export interface CollisionOptions {
  /** Stop once the crafted image's PDQ is at most this many bits from the target. */
  maxDistance: number;
  /** Give up after this many perturbation rounds (the closest image so far is returned). */
  maxRounds: number;
  /** How far past the median a moved coefficient is put, in grey levels of the cosine pattern
   *  that moves it (default 0.25); larger converges in fewer rounds and changes the picture more. */
  marginGreyLevels?: number;
  /** Also move pHash-64 towards this hash (hex, as ImageHashes.phash64): the attacker who knows
   *  the decider wants a second hash to agree. */
  targetPhash64?: string;
  /** With targetPhash64: also stop only once pHash-64 is this close (default 0). */
  maxPhashDistance?: number;
}

export interface CollisionResult {
  /** The crafted image, PNG, at the source's size. */
  bytes: Buffer;
  /** Its hashes through the server's pipeline (hashImageWithDihedral). */
  pdq: string;
  pdqQuality: number;
  phash64: string;
  /** PDQ Hamming distance to the target (the closest any round reached). */
  distance: number;
  /** pHash-64 Hamming distance to `targetPhash64`, when one was given. */
  phashDistance?: number;
  /** Perturbation rounds applied to reach `bytes`. */
  rounds: number;
  /** Whether `distance <= maxDistance` (and, with a pHash target, `phashDistance <= maxPhashDistance`). */
  reached: boolean;
  /** How much the picture changed, on its 8-bit RGB values: PSNR (dB) and mean absolute difference. */
  psnrDb: number;
  meanAbsDiff: number;
}

const DCT_ROWS = 16;
const CELLS = 64;
const DEFAULT_MARGIN_GREY_LEVELS = 0.25;
/** A 64x64 pattern a * basis_i(k) * basis_j(m) of amplitude a grey levels has coefficient 32 a. */
const COEFFICIENT_PER_GREY_LEVEL = CELLS / 2;
const PHASH_CELLS = 32;
const PHASH_BAND = 8;
/** pHash's basis is unnormalised cosines over 32 cells: the same pattern has coefficient 256 a
 *  there, so a PDQ coefficient change d moves pHash's coefficient of that frequency by ~8 d. */
const PHASH_COEFFICIENT_PER_GREY_LEVEL = (PHASH_CELLS / 2) ** 2;
const PHASH_PER_PDQ_COEFFICIENT = PHASH_COEFFICIENT_PER_GREY_LEVEL / COEFFICIENT_PER_GREY_LEVEL;
/** How far (in margins) pHash's pivot is set off PDQ's where the target's bits disagree; with 4,
 *  24 of 28 trial collisions (7 photos x 4 sources) met both radii, 15 with none. */
const PHASH_PIVOT_OFFSET_MARGINS = 4;

/** The DCT basis PDQ keeps: frequency i+1 (i < 16) over 64 cells, orthonormal, at a continuous
 *  cell position t (cell centres are t = 0..63). */
function dctBasis(i: number, t: number): number {
  return Math.sqrt(2 / CELLS) * Math.cos((Math.PI / 2 / CELLS) * (i + 1) * (2 * t + 1));
}

/** PDQ's box filter along one line, as the reference defines it: window `win`, covering
 *  [i - (win - half), i + half - 1] with half = floor((win + 2) / 2), clipped, averaged. */
function box(line: Float64Array, win: number): Float64Array {
  const n = line.length;
  const half = (win + 2) >> 1;
  const prefix = new Float64Array(n + 1);
  for (let i = 0; i < n; i++) prefix[i + 1] = prefix[i] + line[i];
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const lo = Math.max(0, i - (win - half));
    const hi = Math.min(n - 1, i + half - 1);
    out[i] = (prefix[hi + 1] - prefix[lo]) / (hi - lo + 1);
  }
  return out;
}

/** Box twice along a line of n samples, then PDQ's 64 sample points floor((k + 0.5) n / 64). */
function jaroszSample(line: Float64Array): Float64Array {
  const n = line.length;
  const win = Math.floor((n + 2 * CELLS - 1) / (2 * CELLS));
  const blurred = box(box(line, win), win);
  return Float64Array.from({ length: CELLS }, (_, k) => blurred[Math.floor(((k + 0.5) * n) / CELLS)]);
}

/**
 * The 16x16 coefficients PDQ thresholds, row-major (row = vertical frequency), recomputed here
 * from the normalised luminance by a plain transcription of the algorithm (shared/hashing/pdq.ts
 * keeps them internal): Jarosz downsample to 64x64, then D A D^T.
 */
export function pdqCoefficients(luma: Float32Array, width: number, height: number): Float64Array {
  const rows = new Float64Array(height * CELLS); // each row filtered and sampled horizontally
  for (let y = 0; y < height; y++) {
    rows.set(jaroszSample(Float64Array.from(luma.subarray(y * width, (y + 1) * width))), y * CELLS);
  }
  const a = new Float64Array(CELLS * CELLS);
  for (let m = 0; m < CELLS; m++) {
    const column = Float64Array.from({ length: height }, (_, y) => rows[y * CELLS + m]);
    const sampled = jaroszSample(column);
    for (let k = 0; k < CELLS; k++) a[k * CELLS + m] = sampled[k];
  }
  const coeffs = new Float64Array(DCT_ROWS * DCT_ROWS);
  for (let i = 0; i < DCT_ROWS; i++) {
    for (let j = 0; j < DCT_ROWS; j++) {
      let s = 0;
      for (let k = 0; k < CELLS; k++) {
        let r = 0;
        for (let m = 0; m < CELLS; m++) r += a[k * CELLS + m] * dctBasis(j, m);
        s += dctBasis(i, k) * r;
      }
      coeffs[i * DCT_ROWS + j] = s;
    }
  }
  return coeffs;
}

/** Area-average weights along an axis of n pixels: cell o covers [o, o + 1) * n / 32. */
function areaWeights(n: number): Float64Array {
  const w = new Float64Array(PHASH_CELLS * n);
  const cell = n / PHASH_CELLS;
  for (let o = 0; o < PHASH_CELLS; o++) {
    for (let p = Math.floor(o * cell); p < Math.min(n, Math.ceil((o + 1) * cell)); p++) {
      w[o * n + p] = (Math.min(p + 1, (o + 1) * cell) - Math.max(p, o * cell)) / cell;
    }
  }
  return w;
}

/** pHash-64's 8x8 coefficients (row = vertical frequency), transcribed from shared/hashing/phash.ts:
 *  32x32 area average, unnormalised DCT-II frequencies 1..8. */
export function phashCoefficients(luma: Float32Array, width: number, height: number): Float64Array {
  const wx = areaWeights(width);
  const wy = areaWeights(height);
  const rows = new Float64Array(height * PHASH_CELLS);
  for (let y = 0; y < height; y++) {
    for (let o = 0; o < PHASH_CELLS; o++) {
      let s = 0;
      for (let x = 0; x < width; x++) s += wx[o * width + x] * luma[y * width + x];
      rows[y * PHASH_CELLS + o] = s;
    }
  }
  const small = new Float64Array(PHASH_CELLS * PHASH_CELLS);
  for (let o = 0; o < PHASH_CELLS; o++) {
    for (let y = 0; y < height; y++) {
      const wgt = wy[o * height + y];
      if (wgt !== 0) for (let m = 0; m < PHASH_CELLS; m++) small[o * PHASH_CELLS + m] += wgt * rows[y * PHASH_CELLS + m];
    }
  }
  const basis = (u: number, x: number) => Math.cos((Math.PI * (u + 1) * (2 * x + 1)) / (2 * PHASH_CELLS));
  const coeffs = new Float64Array(PHASH_BAND * PHASH_BAND);
  for (let u = 0; u < PHASH_BAND; u++) {
    for (let v = 0; v < PHASH_BAND; v++) {
      let s = 0;
      for (let y = 0; y < PHASH_CELLS; y++) {
        for (let x = 0; x < PHASH_CELLS; x++) s += small[y * PHASH_CELLS + x] * basis(u, y) * basis(v, x);
      }
      coeffs[u * PHASH_BAND + v] = s;
    }
  }
  return coeffs;
}

/** Bit k = 8u + v of a pHash-64, packed most-significant first. */
export function phashBit(hash: Uint8Array, k: number): boolean {
  return (hash[k >> 3] & (0x80 >> (k & 7))) !== 0;
}

/** Bit (row i, column j) of a PDQ hash: reference word i is stored at bytes 2 (15 - i), big-endian. */
export function pdqBit(hash: Uint8Array, i: number, j: number): boolean {
  const word = (hash[2 * (15 - i)] << 8) | hash[2 * (15 - i) + 1];
  return ((word >>> j) & 1) === 1;
}

/** PDQ's threshold: the lower median, element 127 of the 256 sorted. */
export function lowerMedian(coeffs: Float64Array): number {
  return Float64Array.from(coeffs).sort()[(coeffs.length >> 1) - 1];
}

/** Adds the luminance change whose PDQ coefficients are `delta` (16x16) to every channel of a
 *  width x height RGB image, evaluating the cosines at each pixel's position in 64-cell units. */
function addBandLimited(rgb: Float32Array, width: number, height: number, delta: Float64Array): void {
  const basisX = new Float64Array(width * DCT_ROWS);
  for (let x = 0; x < width; x++) {
    for (let j = 0; j < DCT_ROWS; j++) basisX[x * DCT_ROWS + j] = dctBasis(j, ((x + 0.5) * CELLS) / width - 0.5);
  }
  const rowWeights = new Float64Array(DCT_ROWS);
  for (let y = 0; y < height; y++) {
    const t = ((y + 0.5) * CELLS) / height - 0.5;
    rowWeights.fill(0);
    for (let i = 0; i < DCT_ROWS; i++) {
      const b = dctBasis(i, t);
      for (let j = 0; j < DCT_ROWS; j++) rowWeights[j] += b * delta[i * DCT_ROWS + j];
    }
    for (let x = 0; x < width; x++) {
      let v = 0;
      for (let j = 0; j < DCT_ROWS; j++) v += rowWeights[j] * basisX[x * DCT_ROWS + j];
      const p = 3 * (y * width + x);
      for (let c = 0; c < 3; c++) rgb[p + c] = Math.min(255, Math.max(0, rgb[p + c] + v));
    }
  }
}

async function decodeRgb(bytes: Buffer): Promise<{ rgb: Float32Array; width: number; height: number }> {
  const { data, info } = await sharp(bytes)
    .autoOrient()
    .flatten({ background: '#ffffff' })
    .toColourspace('srgb')
    .removeAlpha()
    .raw({ depth: 'uchar' })
    .toBuffer({ resolveWithObject: true });
  return { rgb: Float32Array.from(data), width: info.width, height: info.height };
}

function encodePng(rgb: Float32Array, width: number, height: number): Promise<Buffer> {
  const bytes = Buffer.alloc(rgb.length);
  for (let i = 0; i < rgb.length; i++) bytes[i] = Math.round(rgb[i]);
  return sharp(bytes, { raw: { width, height, channels: 3 } }).png().toBuffer();
}

/** PSNR (dB; Infinity when identical) and mean absolute difference of two equal-size 8-bit images. */
export async function pictureChange(a: Buffer, b: Buffer): Promise<{ psnrDb: number; meanAbsDiff: number }> {
  const [x, y] = await Promise.all([decodeRgb(a), decodeRgb(b)]);
  if (x.width !== y.width || x.height !== y.height) {
    throw new RangeError(`images differ in size: ${x.width}x${x.height} vs ${y.width}x${y.height}`);
  }
  let sq = 0;
  let abs = 0;
  for (let i = 0; i < x.rgb.length; i++) {
    const d = x.rgb[i] - y.rgb[i];
    sq += d * d;
    abs += Math.abs(d);
  }
  const mse = sq / x.rgb.length;
  return { psnrDb: mse === 0 ? Infinity : 10 * Math.log10((255 * 255) / mse), meanAbsDiff: abs / x.rgb.length };
}

/**
 * Crafts an image that looks like `source` and whose PDQ (hex, as ImageHashes.pdq) is within
 * `maxDistance` bits of `targetPdq`. Each round moves every coefficient on the wrong side of the
 * median (or within the margin of it) to `margin` past it; the margin grows when a round does
 * not get closer. With `targetPhash64`, pHash-64's coefficients (the same lowest frequencies)
 * are moved across their own median in the same step. Returns the closest image found,
 * `reached: false` if none was close enough.
 */
export async function craftCollision(source: Buffer, targetPdq: string, opts: CollisionOptions): Promise<CollisionResult> {
  const target = pdqFromHex(targetPdq);
  const targetPhash = opts.targetPhash64 === undefined ? undefined : phashFromHex(opts.targetPhash64);
  if (!Number.isInteger(opts.maxDistance) || opts.maxDistance < 0) throw new RangeError(`maxDistance must be a non-negative integer`);
  if (!Number.isInteger(opts.maxRounds) || opts.maxRounds < 0) throw new RangeError(`maxRounds must be a non-negative integer`);
  const maxPhashDistance = opts.maxPhashDistance ?? 0;
  if (!Number.isInteger(maxPhashDistance) || maxPhashDistance < 0) throw new RangeError(`maxPhashDistance must be a non-negative integer`);
  const closeEnough = (distance: number, phashDistance: number | undefined) =>
    distance <= opts.maxDistance && (phashDistance === undefined || phashDistance <= maxPhashDistance);
  let margin = (opts.marginGreyLevels ?? DEFAULT_MARGIN_GREY_LEVELS) * COEFFICIENT_PER_GREY_LEVEL;

  const { rgb, width, height } = await decodeRgb(source);
  let bytes = await encodePng(rgb, width, height);
  let best: { bytes: Buffer; distance: number; phashDistance?: number; rounds: number; pdq: string; pdqQuality: number; phash64: string } | undefined;
  for (let round = 0; ; round++) {
    const hashes = await hashImageWithDihedral(bytes);
    const distance = hammingDistance(pdqFromHex(hashes.pdq), target);
    const phashDistance = targetPhash === undefined ? undefined : hammingDistance(phashFromHex(hashes.phash64), targetPhash);
    // With a pHash target, both distances count (PDQ first: it is the one that must be reached).
    const score = distance * 64 + (phashDistance ?? 0);
    const improved = best === undefined || score < best.distance * 64 + (best.phashDistance ?? 0);
    if (improved) best = { bytes, distance, phashDistance, rounds: round, pdq: hashes.pdq, pdqQuality: hashes.pdqQuality, phash64: hashes.phash64 };
    else margin *= 1.5;
    if (closeEnough(distance, phashDistance) || round === opts.maxRounds) break;

    const normalized = await decodeNormalized(bytes);
    const coeffs = pdqCoefficients(normalized.luma, normalized.width, normalized.height);
    const median = lowerMedian(coeffs);
    // Each coefficient's move is the smallest that puts it on the target's side of the median
    // by the margin. With a pHash target, pHash's coefficient of the same frequency (~8x PDQ's)
    // must also land on its side of a pivot by a margin. The pivot is PDQ's median, scaled, and
    // offset where the target's bits say the two medians differ (a PDQ 1 that is a pHash 0 sits
    // between PDQ's median and a higher pHash median); pushing pHash's 32 ones above it and 32
    // zeros below makes it pHash's median. Where both cannot be met, PDQ wins.
    const phash = targetPhash && phashCoefficients(normalized.luma, normalized.width, normalized.height);
    const phashMargin = (margin / COEFFICIENT_PER_GREY_LEVEL) * PHASH_COEFFICIENT_PER_GREY_LEVEL;
    let phashPivot = median * PHASH_PER_PDQ_COEFFICIENT;
    if (targetPhash) {
      let higher = 0;
      for (let p = 0; p < PHASH_BAND * PHASH_BAND; p++) {
        const pdqUp = pdqBit(target, Math.floor(p / PHASH_BAND), p % PHASH_BAND);
        if (pdqUp !== phashBit(targetPhash, p)) higher += pdqUp ? 1 : -1;
      }
      phashPivot += Math.sign(higher) * PHASH_PIVOT_OFFSET_MARGINS * phashMargin;
    }
    const delta = new Float64Array(coeffs.length);
    for (let i = 0; i < DCT_ROWS; i++) {
      for (let j = 0; j < DCT_ROWS; j++) {
        const k = i * DCT_ROWS + j;
        const need = pdqBit(target, i, j) ? median + margin - coeffs[k] : median - margin - coeffs[k];
        let [lo, hi] = pdqBit(target, i, j) ? [need, Infinity] : [-Infinity, need];
        if (phash && targetPhash && i < PHASH_BAND && j < PHASH_BAND) {
          const p = i * PHASH_BAND + j;
          const up = phashBit(targetPhash, p);
          const needP = ((up ? phashPivot + phashMargin : phashPivot - phashMargin) - phash[p]) / PHASH_PER_PDQ_COEFFICIENT;
          const [pLo, pHi] = up ? [Math.max(lo, needP), hi] : [lo, Math.min(hi, needP)];
          if (pLo <= pHi) [lo, hi] = [pLo, pHi];
        }
        delta[k] = Math.min(hi, Math.max(lo, 0));
      }
    }
    addBandLimited(rgb, width, height, delta);
    bytes = await encodePng(rgb, width, height);
  }
  const change = await pictureChange(source, best!.bytes);
  return { ...best!, reached: closeEnough(best!.distance, best!.phashDistance), ...change };
}

/** A striped gradient (diagonal colour ramp under soft horizontal stripes): a harmless picture
 *  that nobody would mistake for a photo of a bridge. */
export function stripedGradientPng(width = 480, height = 360): Promise<Buffer> {
  const rgb = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const t = (x / width + y / height) / 2;
      const stripe = 40 * Math.sin((2 * Math.PI * y) / (height / 6));
      const p = 3 * (y * width + x);
      rgb[p] = Math.round(60 + 150 * t + stripe);
      rgb[p + 1] = Math.round(120 + stripe);
      rgb[p + 2] = Math.round(200 - 150 * t + stripe);
    }
  }
  return sharp(rgb, { raw: { width, height, channels: 3 } }).png().toBuffer();
}

// White-box PDQ near-collisions for the adversarial tests (issue 12): perturb a harmless image
// until the product's own pipeline hashes it within d bits of a chosen PDQ.
//
// PDQ's bits are "16x16 DCT coefficient of the 64x64 downsample > their median". Those
// coefficients are a linear function of the luminance, and the DCT rows are orthonormal, so a
// wanted change dC of the coefficients is the 64x64 change D^T dC D. Evaluated as a continuous
// sum of cosines at full size it is a smooth, band-limited picture that the downsample passes
// almost unchanged; added to R, G and B alike it changes the luminance by exactly that much
// (the BT.601 weights sum to 1). Clipping to 0..255, PNG rounding and the moving median leave a
// residue, so the generator re-hashes and repeats.

import sharp from 'sharp';
import { decodeNormalized, hashImageWithDihedral, pdqFromHex } from '../../shared/hashing/index.js';
import { hammingDistance } from '../../shared/hashing/pdq.js';

export interface CollisionOptions {
  /** Stop once the crafted image's PDQ is at most this many bits from the target. */
  maxDistance: number;
  /** Give up after this many perturbation rounds (the closest image so far is returned). */
  maxRounds: number;
  /** How far past the median a moved coefficient is put, in grey levels of the cosine pattern
   *  that moves it (default 0.25); larger converges in fewer rounds and changes the picture more. */
  marginGreyLevels?: number;
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
  /** Perturbation rounds applied to reach `bytes`. */
  rounds: number;
  /** Whether `distance <= maxDistance`. */
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
 * not get closer. Returns the closest image found, `reached: false` if none was close enough.
 */
export async function craftCollision(source: Buffer, targetPdq: string, opts: CollisionOptions): Promise<CollisionResult> {
  const target = pdqFromHex(targetPdq);
  if (!Number.isInteger(opts.maxDistance) || opts.maxDistance < 0) throw new RangeError(`maxDistance must be a non-negative integer`);
  if (!Number.isInteger(opts.maxRounds) || opts.maxRounds < 0) throw new RangeError(`maxRounds must be a non-negative integer`);
  let margin = (opts.marginGreyLevels ?? DEFAULT_MARGIN_GREY_LEVELS) * COEFFICIENT_PER_GREY_LEVEL;

  const { rgb, width, height } = await decodeRgb(source);
  let bytes = await encodePng(rgb, width, height);
  let best: { bytes: Buffer; distance: number; rounds: number; pdq: string; pdqQuality: number; phash64: string } | undefined;
  for (let round = 0; ; round++) {
    const hashes = await hashImageWithDihedral(bytes);
    const distance = hammingDistance(pdqFromHex(hashes.pdq), target);
    const improved = best === undefined || distance < best.distance;
    if (improved) best = { bytes, distance, rounds: round, pdq: hashes.pdq, pdqQuality: hashes.pdqQuality, phash64: hashes.phash64 };
    else margin *= 1.5;
    if (distance <= opts.maxDistance || round === opts.maxRounds) break;

    const normalized = await decodeNormalized(bytes);
    const coeffs = pdqCoefficients(normalized.luma, normalized.width, normalized.height);
    const median = lowerMedian(coeffs);
    const delta = new Float64Array(coeffs.length);
    for (let i = 0; i < DCT_ROWS; i++) {
      for (let j = 0; j < DCT_ROWS; j++) {
        const k = i * DCT_ROWS + j;
        const wanted = pdqBit(target, i, j) ? median + margin : median - margin;
        if (pdqBit(target, i, j) ? coeffs[k] < wanted : coeffs[k] > wanted) delta[k] = wanted - coeffs[k];
      }
    }
    addBandLimited(rgb, width, height, delta);
    bytes = await encodePng(rgb, width, height);
  }
  const change = await pictureChange(source, best!.bytes);
  return { ...best!, reached: best!.distance <= opts.maxDistance, ...change };
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

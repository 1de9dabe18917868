import sharp from 'sharp';
import { photoLikeRgb } from '../helpers/images.js';
import { seededRandom } from '../helpers/random.js';
import { afterAll, describe, expect, it } from 'vitest';
import {
  PHASH64_BYTES,
  decodeNormalized,
  hammingDistance,
  hashImage,
  hexHammingDistance,
  phash64,
  phashFromHex,
  phashToHex,
} from '../../shared/hashing/index.js';

const report: string[] = [];
afterAll(() => {
  if (report.length > 0) console.log(`pHash-64 figures:\n  ${report.join('\n  ')}`);
});



const png = (rgb: Buffer, width: number, height: number) => sharp(rgb, { raw: { width, height, channels: 3 } }).png().toBuffer();

const popcount = (h: Uint8Array) => hammingDistance(h, new Uint8Array(h.length));

describe('pHash-64', () => {
  it('is 64 bits, half of them set, written as 16 hex chars', () => {
    const rnd = seededRandom(1);
    const l = Float32Array.from({ length: 200 * 150 }, () => rnd() * 255);
    const h = phash64(l, 200, 150);
    expect(h.length).toBe(PHASH64_BYTES);
    expect(popcount(h)).toBe(32);
    expect(phashToHex(h)).toMatch(/^[0-9a-f]{16}$/);
    expect(phashFromHex(phashToHex(h))).toEqual(h);
  });

  it('area-averages to 32x32: an image of 2x2 or 3x3 blocks hashes like its 32x32 version', () => {
    const rnd = seededRandom(2);
    const small = Float32Array.from({ length: 32 * 32 }, () => rnd() * 255);
    for (const k of [2, 3]) {
      const n = 32 * k;
      const big = new Float32Array(n * n);
      for (let y = 0; y < n; y++) for (let x = 0; x < n; x++) big[y * n + x] = small[Math.floor(y / k) * 32 + Math.floor(x / k)];
      expect(phash64(big, n, n)).toEqual(phash64(small, 32, 32));
    }
    // Non-integer ratios and inputs smaller than 32 work too.
    expect(popcount(phash64(Float32Array.from({ length: 45 * 17 }, () => rnd() * 255), 45, 17))).toBe(32);
    expect(popcount(phash64(Float32Array.from({ length: 7 * 5 }, (_, i) => i), 7, 5))).toBeLessThanOrEqual(32);
  });

  it.each([[512, 384], [100, 77], [45, 17], [7, 5], [33, 32]])('equals a literal implementation at %ix%i', (w, h) => {
    const rnd = seededRandom(w * 31 + h);
    const l = Float32Array.from({ length: w * h }, () => rnd() * 255);
    // Literal: area average by pixel/cell overlap, full 32x32 DCT-II, frequencies 1..8, median.
    const small = new Float64Array(32 * 32);
    const overlap = (i: number, n: number, o: number) => Math.max(0, Math.min(i + 1, ((o + 1) * n) / 32) - Math.max(i, (o * n) / 32));
    for (let oy = 0; oy < 32; oy++) {
      for (let ox = 0; ox < 32; ox++) {
        let s = 0;
        for (let y = Math.floor((oy * h) / 32); y < Math.min(h, Math.ceil(((oy + 1) * h) / 32)); y++) {
          for (let x = Math.floor((ox * w) / 32); x < Math.min(w, Math.ceil(((ox + 1) * w) / 32)); x++) {
            s += overlap(y, h, oy) * overlap(x, w, ox) * l[y * w + x];
          }
        }
        small[oy * 32 + ox] = s / ((w / 32) * (h / 32));
      }
    }
    const coef: number[] = [];
    for (let u = 1; u <= 8; u++) {
      for (let v = 1; v <= 8; v++) {
        let s = 0;
        for (let y = 0; y < 32; y++) {
          for (let x = 0; x < 32; x++) s += small[y * 32 + x] * Math.cos((Math.PI * u * (2 * y + 1)) / 64) * Math.cos((Math.PI * v * (2 * x + 1)) / 64);
        }
        coef.push(s);
      }
    }
    const sorted = [...coef].sort((a, b) => a - b);
    const median = (sorted[31] + sorted[32]) / 2;
    const bits = coef.map((c) => (c > median ? '1' : '0')).join('');
    const hex = Array.from({ length: 16 }, (_, i) => parseInt(bits.slice(4 * i, 4 * i + 4), 2).toString(16)).join('');
    expect(phashToHex(phash64(l, w, h))).toBe(hex);
  });

  it('follows the pHash bit layout: bit k = 8u+v for frequencies (u+1, v+1), most significant first', () => {
    // The DCT basis function of frequency (1, 1) over the 32x32 cells: coefficient (u=0, v=0) is
    // the one large value, so bit 0 (the top bit of the first hex digit) is set; its negation
    // clears exactly that bit among the large ones.
    const basis = (sign: number) => {
      const l = new Float32Array(64 * 64);
      const c = (i: number) => Math.cos((Math.PI * (2 * Math.floor(i / 2) + 1)) / 64);
      for (let y = 0; y < 64; y++) for (let x = 0; x < 64; x++) l[y * 64 + x] = 128 + sign * 100 * c(x) * c(y);
      return phash64(l, 64, 64);
    };
    expect(basis(1)[0] & 0x80).toBe(0x80);
    expect(basis(-1)[0] & 0x80).toBe(0);
  });

  it('tolerates small crops better than PDQ (5% crop of generated images)', async () => {
    const W = 800;
    const H = 600;
    const lines: string[] = [];
    let phashSum = 0;
    let pdqSum = 0;
    for (const seed of [1, 2, 3, 4]) {
      const original = await png(photoLikeRgb(W, H, seed), W, H);
      // 5% off the width and height, centred (2.5% each side).
      const cropped = await sharp(original)
        .extract({ left: W * 0.025, top: H * 0.025, width: W * 0.95, height: H * 0.95 })
        .png()
        .toBuffer();
      const [a, b] = await Promise.all([hashImage(original), hashImage(cropped)]);
      const dp = hexHammingDistance(a.phash64, b.phash64);
      const dq = hexHammingDistance(a.pdq, b.pdq);
      lines.push(`seed ${seed}: pHash ${dp}/64, PDQ ${dq}/256`);
      expect(dp, `seed ${seed}`).toBeLessThanOrEqual(12);
      phashSum += dp / 64;
      pdqSum += dq / 256;
    }
    report.push(`5% centred crop: ${lines.join('; ')}`);
    // Relative to hash length, pHash moves less than PDQ under cropping.
    expect(phashSum).toBeLessThan(pdqSum);
  });

  it('survives recompression and rescaling, and separates unrelated images', async () => {
    const W = 640;
    const H = 480;
    const original = await png(photoLikeRgb(W, H, 11), W, H);
    const jpeg = await sharp(original).resize(320).jpeg({ quality: 60 }).toBuffer();
    const unrelated = await png(photoLikeRgb(W, H, 12), W, H);
    const [a, b, c] = await Promise.all([hashImage(original), hashImage(jpeg), hashImage(unrelated)]);
    const near = hexHammingDistance(a.phash64, b.phash64);
    const far = hexHammingDistance(a.phash64, c.phash64);
    report.push(`half-size JPEG q60: ${near}/64; unrelated image: ${far}/64`);
    expect(near).toBeLessThanOrEqual(4);
    expect(far).toBeGreaterThanOrEqual(16);
  });

  it('is computed from the normalised luminance', async () => {
    const bytes = await png(photoLikeRgb(300, 200, 5), 300, 200);
    const n = await decodeNormalized(bytes);
    expect((await hashImage(bytes)).phash64).toBe(phashToHex(phash64(n.luma, n.width, n.height)));
  });

  it('validates input and hex', () => {
    expect(() => phash64(new Float32Array(4), 0, 4)).toThrow(RangeError);
    expect(() => phash64(new Float32Array(4), 4, 4)).toThrow(RangeError);
    expect(() => phashFromHex('0'.repeat(15))).toThrow(TypeError);
    expect(() => phashFromHex('z'.repeat(16))).toThrow(TypeError);
    expect(() => phashToHex(new Uint8Array(32))).toThrow(TypeError);
    expect(phashToHex(phashFromHex('0123456789ABCDEF'))).toBe('0123456789abcdef');
  });
});

// Generated test images: deterministic, photo-like enough for perceptual hashes (smooth shapes
// plus texture), and nothing but synthetic pixels.
import { deflateSync, crc32 } from 'node:zlib';
import sharp from 'sharp';
import { seededRandom } from './random.js';

/** Raw RGB pixels: soft coloured discs on a gradient, a periodic texture and light noise: enough
 * structure for a PDQ quality well above the matching floor of 50. */
export function syntheticPixels(seed: number, width: number, height: number): Buffer {
  const random = seededRandom(seed);
  const discs = Array.from({ length: 16 }, () => ({
    x: random() * width,
    y: random() * height,
    r: (0.05 + random() * 0.2) * Math.min(width, height),
    c: [random() * 255, random() * 255, random() * 255],
  }));
  const g0 = [random() * 255, random() * 255, random() * 255];
  const g1 = [random() * 255, random() * 255, random() * 255];
  const fx = (2 + random() * 6) * (2 * Math.PI) / width;
  const fy = (2 + random() * 6) * (2 * Math.PI) / height;
  const out = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const t = (x + y) / (width + height);
      let rgb = [0, 1, 2].map((k) => g0[k] * (1 - t) + g1[k] * t);
      for (const d of discs) {
        const dist = Math.hypot(x - d.x, y - d.y);
        const w = Math.max(0, Math.min(1, (d.r - dist) / (0.15 * d.r)));
        if (w > 0) rgb = rgb.map((v, k) => v * (1 - w) + d.c[k] * w);
      }
      const noise = (random() - 0.5) * 12 + 25 * Math.sin(x * fx) * Math.sin(y * fy);
      const i = (y * width + x) * 3;
      out[i] = rgb[0] + noise;
      out[i + 1] = rgb[1] + noise;
      out[i + 2] = rgb[2] + noise;
    }
  }
  return out;
}

/** Photo-like RGB: smooth waves, hard-edged discs and strong grain; deterministic for a seed. */
export function photoLikeRgb(width: number, height: number, seed: number): Buffer {
  const rnd = seededRandom(seed);
  const waves = Array.from({ length: 10 }, () => ({
    fx: (rnd() - 0.5) * 0.05, fy: (rnd() - 0.5) * 0.05, ph: rnd() * 6.3, amp: 10 + rnd() * 30,
    ch: [rnd(), rnd(), rnd()],
  }));
  const discs = Array.from({ length: 6 }, () => ({
    x: rnd() * width, y: rnd() * height, r: (0.05 + rnd() * 0.2) * Math.min(width, height),
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
        if (Math.hypot(x - d.x, y - d.y) < d.r) for (let c = 0; c < 3; c++) v[c] = 0.3 * v[c] + 0.7 * d.c[c];
      }
      for (let c = 0; c < 3; c++) out[(y * width + x) * 3 + c] = Math.max(0, Math.min(255, Math.round(v[c] + (rnd() - 0.5) * 40)));
    }
  }
  return out;
}

export async function syntheticJpeg(seed: number, width = 640, height = 480, quality = 85): Promise<Buffer> {
  return sharp(syntheticPixels(seed, width, height), { raw: { width, height, channels: 3 } }).jpeg({ quality }).toBuffer();
}

export async function syntheticPng(seed: number, width = 320, height = 240): Promise<Buffer> {
  return sharp(syntheticPixels(seed, width, height), { raw: { width, height, channels: 3 } }).png().toBuffer();
}

/** A valid PNG signature and IHDR claiming the given size, with no pixel data: a decompression bomb's header. */
export function pngHeaderOnly(width: number, height: number): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([length, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  const idat = deflateSync(Buffer.alloc(1024));
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', idat), chunk('IEND', Buffer.alloc(0))]);
}

import { readFile } from 'node:fs/promises';
import { crc32, deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import {
  CorruptImageError,
  DEFAULT_IMAGE_LIMITS,
  EmptyImageError,
  ImageRejectedError,
  ImageTooLargeError,
  TooManyFramesError,
  TooManyPixelsError,
  UnsupportedFormatError,
  decodeNormalized,
  hashImage,
  type ImageLimits,
  type ImageRejectionCode,
} from '../../shared/hashing/index.js';

const PDQ_DATA = new URL('../fixtures/pdq/', import.meta.url);

/** Runs `f` and returns the ImageRejectedError it throws (failing if it throws anything else). */
async function rejection(f: () => Promise<unknown>): Promise<ImageRejectedError> {
  try {
    await f();
  } catch (err) {
    expect(err).toBeInstanceOf(ImageRejectedError);
    return err as ImageRejectedError;
  }
  throw new Error('expected the image to be refused');
}

async function expectRefused(bytes: Buffer, code: ImageRejectionCode, limits?: ImageLimits): Promise<ImageRejectedError> {
  const err = await rejection(() => hashImage(bytes, limits));
  expect(err.code, err.message).toBe(code);
  return err;
}

/** A PNG chunk: length, type, data, CRC-32 of type + data. */
function pngChunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}

/** A PNG whose IHDR declares width x height RGB; the IDAT holds only a little zlib data (a real
 *  bomb would hold a few MB of deflated zeros; the header is all the pipeline may look at). */
function pngClaiming(width: number, height: number, idat = deflateSync(Buffer.alloc(1024))): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // colour type RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', idat),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

/** An animated GIF of `n` 2x2 frames alternating black and white (identical consecutive frames
 *  would be merged by the encoder). */
async function animatedGif(n: number): Promise<Buffer> {
  const [black, white] = await Promise.all(
    [0, 255].map((v) => sharp({ create: { width: 2, height: 2, channels: 3, background: { r: v, g: v, b: v } } }).png().toBuffer()),
  );
  const frames = Array.from({ length: n }, (_, i) => (i & 1 ? white : black));
  return sharp(frames, { join: { animated: true } }).gif().toBuffer();
}

const solidPng = (width: number, height: number) =>
  sharp({ create: { width, height, channels: 3, background: '#808080' } }).png().toBuffer();

describe('image limits and refusals', () => {
  it('has documented defaults', () => {
    expect(DEFAULT_IMAGE_LIMITS).toEqual({ maxBytes: 50 * 1024 * 1024, maxPixels: 100_000_000, maxFrames: 1000 });
    expect(Object.isFrozen(DEFAULT_IMAGE_LIMITS)).toBe(true);
  });

  it('refuses zero bytes as empty', async () => {
    const err = await expectRefused(Buffer.alloc(0), 'empty');
    expect(err).toBeInstanceOf(EmptyImageError);
    expect(err.name).toBe('EmptyImageError');
  });

  it('refuses input over maxBytes before parsing it', async () => {
    const err = await expectRefused(Buffer.alloc(2000), 'too_large', { ...DEFAULT_IMAGE_LIMITS, maxBytes: 1000 });
    expect(err).toBeInstanceOf(ImageTooLargeError);
    expect(err.message).toBe('image is 2000 bytes, limit 1000');
    // The default limit: one byte over 50 MiB (zeros, which are no image at all: size comes first).
    await expectRefused(Buffer.alloc(DEFAULT_IMAGE_LIMITS.maxBytes + 1), 'too_large');
  });

  it('refuses random bytes as unsupported_format', async () => {
    let s = 12345;
    const noise = Buffer.from(Array.from({ length: 4096 }, () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) >>> 24));
    const err = await expectRefused(noise, 'unsupported_format');
    expect(err).toBeInstanceOf(UnsupportedFormatError);
  });

  it('refuses formats sharp can read but Vouch does not accept (SVG)', async () => {
    const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><rect width="64" height="64" fill="red"/></svg>');
    const err = await expectRefused(svg, 'unsupported_format');
    expect((err as UnsupportedFormatError).format).toBe('svg');
    expect(err.message).toBe("image format 'svg' is not accepted");
  });

  it('refuses a truncated JPEG as corrupt', async () => {
    const jpeg = await readFile(new URL('dih_bridge-1-original.jpg', PDQ_DATA));
    const err = await expectRefused(jpeg.subarray(0, jpeg.length >> 1), 'corrupt');
    expect(err).toBeInstanceOf(CorruptImageError);
    expect(err.message).toMatch(/premature end/i);
    // Cut inside the header: also corrupt.
    await expectRefused(jpeg.subarray(0, 300), 'corrupt');
  });

  it('refuses a PNG with a broken data stream as corrupt', async () => {
    await expectRefused(pngClaiming(64, 64, Buffer.from('not a zlib stream')), 'corrupt');
    await expectRefused(pngClaiming(64, 64), 'corrupt'); // too little pixel data for 64x64
  });

  it('refuses a 50000x50000 PNG bomb from its header, without allocating', async () => {
    const bomb = pngClaiming(50000, 50000);
    expect(bomb.length).toBeLessThan(200);
    const err = await expectRefused(bomb, 'too_many_pixels');
    expect(err).toBeInstanceOf(TooManyPixelsError);
    expect(err.message).toBe('image is 50000x50000 = 2500000000 pixels, limit 100000000');
    expect(err).toMatchObject({ width: 50000, height: 50000, pixels: 2_500_000_000, limit: 100_000_000 });

    // Decoding it would take 7.5 GB; refusing it repeatedly must not grow the process.
    const before = process.memoryUsage().rss;
    let peak = before;
    for (let i = 0; i < 50; i++) {
      await rejection(() => decodeNormalized(bomb, DEFAULT_IMAGE_LIMITS));
      peak = Math.max(peak, process.memoryUsage().rss);
    }
    const growthMb = (peak - before) / 2 ** 20;
    console.log(`RSS growth while refusing the PNG bomb 50 times: ${growthMb.toFixed(1)} MB`);
    expect(growthMb).toBeLessThan(300);
  });

  it('applies maxPixels per frame, at the boundary', async () => {
    const limits = { ...DEFAULT_IMAGE_LIMITS, maxPixels: 100 * 100 };
    await expect(hashImage(await solidPng(100, 100), limits)).resolves.toMatchObject({ width: 100, height: 100 });
    const err = await expectRefused(await solidPng(101, 100), 'too_many_pixels', limits);
    expect(err.message).toBe('image is 101x100 = 10100 pixels, limit 10000');
  });

  it('refuses an animated GIF with more frames than the limit', async () => {
    const gif = await animatedGif(DEFAULT_IMAGE_LIMITS.maxFrames + 1);
    expect((await sharp(gif).metadata()).pages).toBe(1001);
    const err = await expectRefused(gif, 'too_many_frames');
    expect(err).toBeInstanceOf(TooManyFramesError);
    expect(err.message).toBe('image has 1001 frames, limit 1000');
    // Under a higher limit it is hashed (by its first frame).
    const h = await hashImage(gif, { ...DEFAULT_IMAGE_LIMITS, maxFrames: 2000 });
    expect([h.width, h.height]).toEqual([2, 2]);
  });

  it('accepts an animation at the frame limit', async () => {
    const gif = await animatedGif(5);
    await expect(hashImage(gif, { ...DEFAULT_IMAGE_LIMITS, maxFrames: 5 })).resolves.toMatchObject({ width: 2, height: 2 });
    await expectRefused(gif, 'too_many_frames', { ...DEFAULT_IMAGE_LIMITS, maxFrames: 4 });
  });

  it('rejects nonsensical limits as a programming error', async () => {
    const png = await solidPng(8, 8);
    for (const bad of [{ maxBytes: 0 }, { maxPixels: -1 }, { maxFrames: 1.5 }, { maxBytes: Number.NaN }]) {
      await expect(decodeNormalized(png, { ...DEFAULT_IMAGE_LIMITS, ...bad })).rejects.toThrow(RangeError);
    }
  });

  it('gives every refusal a stable code', () => {
    const all: ImageRejectedError[] = [
      new EmptyImageError(),
      new ImageTooLargeError(10, 5),
      new TooManyPixelsError(3, 4, 10),
      new TooManyFramesError(7, 6),
      new UnsupportedFormatError(undefined),
      new CorruptImageError('x'),
    ];
    expect(all.map((e) => e.code)).toEqual(['empty', 'too_large', 'too_many_pixels', 'too_many_frames', 'unsupported_format', 'corrupt']);
    for (const e of all) {
      expect(e).toBeInstanceOf(Error);
      expect(e.name).toBe(e.constructor.name);
    }
  });
});

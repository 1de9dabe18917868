// The image-scaling attack on nearest-neighbour decimation (test/unit/image-scaling-attack.test.ts,
// and the PDQ reference bench, which runs it against Meta's C++ hasher).
import sharp from 'sharp';
import { pdqHash, pdqToHex } from '../../shared/hashing/index.js';

/** The reference's working size: it squashes anything larger to 512x512 before hashing. */
const DECIMATED = 512;

/** `bytes` as 8-bit RGB pixels of exactly width x height. */
export const rgbAt = async (bytes: Buffer, width: number, height: number): Promise<Buffer> =>
  sharp(bytes).resize(width, height, { fit: 'fill' }).removeAlpha().raw().toBuffer();

/** Column (or row) that CImg's nearest-neighbour resize from `size` to 512 reads for output `i`. */
const sampled = (i: number, size: number) => Math.floor((i * size) / DECIMATED);

/** `visible` with `hidden`'s pixels written where nearest-neighbour decimation to 512x512 samples. */
export function plantForNearestNeighbour(visible: Buffer, hidden: Buffer, width: number, height: number): Buffer {
  const crafted = Buffer.from(visible);
  for (let y = 0; y < DECIMATED; y++) {
    const row = sampled(y, height);
    for (let x = 0; x < DECIMATED; x++) {
      const p = (row * width + sampled(x, width)) * 3;
      hidden.copy(crafted, p, p, p + 3);
    }
  }
  return crafted;
}

/** PDQ as a nearest-neighbour hasher computes it: the sampled 512x512 pixels, BT.601 luma. */
export function nearestNeighbourPdq(rgb: Buffer, width: number, height: number): string {
  const luma = new Float32Array(DECIMATED * DECIMATED);
  for (let y = 0; y < DECIMATED; y++) {
    for (let x = 0; x < DECIMATED; x++) {
      const p = (sampled(y, height) * width + sampled(x, width)) * 3;
      luma[y * DECIMATED + x] = 0.299 * rgb[p] + 0.587 * rgb[p + 1] + 0.114 * rgb[p + 2];
    }
  }
  return pdqToHex(pdqHash(luma, DECIMATED, DECIMATED).hash);
}


// The image-scaling attack on nearest-neighbour decimation (test/unit/image-scaling-attack.test.ts,
// and the PDQ reference bench, which runs it against Meta's C++ hasher).
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { PROJECT_ROOT } from '../../server/config/paths.js';
import { pdqHash, pdqToHex } from '../../shared/hashing/index.js';

/** The reference's working size: it squashes anything larger to 512x512 before hashing. */
const DECIMATED = 512;

/** `bytes` as 8-bit RGB pixels of exactly width x height. */
const rgbAt = async (bytes: Buffer, width: number, height: number): Promise<Buffer> =>
  sharp(bytes).resize(width, height, { fit: 'fill' }).removeAlpha().raw().toBuffer();

// From the project root: this module also runs compiled, from dist/ (the reference bench).
const fixture = (name: string) => readFile(join(PROJECT_ROOT, 'test/fixtures/pdq', name));

/** The two reference photos of the attack, as RGB pixels of width x height: the one a person is to
 *  see (the bridge) and the one planted (a labelme photo), 130 bits apart in PDQ. */
export async function attackPhotos(width: number, height: number): Promise<{ visible: Buffer; hidden: Buffer }> {
  const [visible, hidden] = await Promise.all(
    ['dih_bridge-1-original.jpg', 'labelme-subset_q2821.jpg'].map(async (name) => rgbAt(await fixture(name), width, height)),
  );
  return { visible, hidden };
}

/** `visible` with `hidden`'s pixels at (dx + k·stride, dy + l·stride): what a point-sampling shrink
 *  by `stride` at that offset reads. */
export function plantOnGrid(visible: Buffer, hidden: Buffer, width: number, height: number, stride: number, dx: number, dy: number): Buffer {
  const crafted = Buffer.from(visible);
  for (let y = dy; y < height; y += stride) {
    for (let x = dx; x < width; x += stride) hidden.copy(crafted, (y * width + x) * 3, (y * width + x) * 3, (y * width + x) * 3 + 3);
  }
  return crafted;
}

/** Column (or row) that CImg's nearest-neighbour resize from `size` to `to` reads for output `i`. */
const sampled = (i: number, size: number, to: number) => Math.floor((i * size) / to);

/** `visible` with `hidden`'s pixels written where a nearest-neighbour shrink to `to` x `to` samples
 *  (512: the PDQ reference's squash; 224: a classifier's input). */
export function plantForNearestNeighbour(visible: Buffer, hidden: Buffer, width: number, height: number, to = DECIMATED): Buffer {
  const crafted = Buffer.from(visible);
  for (let y = 0; y < to; y++) {
    const row = sampled(y, height, to);
    for (let x = 0; x < to; x++) {
      const p = (row * width + sampled(x, width, to)) * 3;
      hidden.copy(crafted, p, p, p + 3);
    }
  }
  return crafted;
}

/** The `to` x `to` RGB pixels a nearest-neighbour shrink reads. */
export function nearestNeighbourShrink(rgb: Buffer, width: number, height: number, to: number): Buffer {
  const out = Buffer.alloc(to * to * 3);
  for (let y = 0; y < to; y++) {
    for (let x = 0; x < to; x++) {
      const p = (sampled(y, height, to) * width + sampled(x, width, to)) * 3;
      rgb.copy(out, (y * to + x) * 3, p, p + 3);
    }
  }
  return out;
}

/** PDQ as a nearest-neighbour hasher computes it: the sampled 512x512 pixels, BT.601 luma. */
export function nearestNeighbourPdq(rgb: Buffer, width: number, height: number): string {
  const small = nearestNeighbourShrink(rgb, width, height, DECIMATED);
  const luma = new Float32Array(DECIMATED * DECIMATED);
  for (let i = 0; i < luma.length; i++) luma[i] = 0.299 * small[3 * i] + 0.587 * small[3 * i + 1] + 0.114 * small[3 * i + 2];
  return pdqToHex(pdqHash(luma, DECIMATED, DECIMATED).hash);
}

// The image-scaling attack (Xiao et al., USENIX Security 2019; Quiring et al., 2020) against the
// normalisation. A hasher that decimates by nearest neighbour, as Meta's C++ PDQ reference does
// (CImg's default `resize` to 512x512), reads only the pixels it samples: an uploader who writes a
// second picture into exactly those pixels has the hasher see that picture, while a person sees the
// first. Vouch shrinks with filters that weigh every pixel (JPEG DCT scaling, libvips' box shrink,
// Lanczos-3), so the planted picture cannot take over the hash (decision 20).
import { readFile } from 'node:fs/promises';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { hashImage, hexHammingDistance } from '../../shared/hashing/index.js';
import { nearestNeighbourPdq, plantForNearestNeighbour as plant, rgbAt } from '../helpers/image-scaling-attack.js';

const fixture = (name: string) => readFile(new URL(`../fixtures/pdq/${name}`, import.meta.url));
/** Vouch's match radius for PDQ (decisions 2 and 15): within it, two images are the same picture. */
const MATCH_RADIUS = 31;
const png = (rgb: Buffer, width: number, height: number) => sharp(rgb, { raw: { width, height, channels: 3 } }).png().toBuffer();

describe('image-scaling attack on the normalisation', () => {
  // A phone photo's size, where the planted pixels are 2 % of the image, and a smaller one (8 %).
  it.each([
    [4032, 3024],
    [2048, 1536],
  ])('a picture planted in the pixels nearest-neighbour decimation reads does not take over the hash (%i x %i)', async (width, height) => {
    const visible = await rgbAt(await fixture('dih_bridge-1-original.jpg'), width, height);
    const hidden = await rgbAt(await fixture('labelme-subset_q2821.jpg'), width, height);
    const crafted = plant(visible, hidden, width, height);

    // The attack is real: a nearest-neighbour hasher sees the hidden picture and not the visible one.
    expect(hexHammingDistance(nearestNeighbourPdq(crafted, width, height), nearestNeighbourPdq(hidden, width, height))).toBe(0);
    expect(hexHammingDistance(nearestNeighbourPdq(crafted, width, height), nearestNeighbourPdq(visible, width, height))).toBeGreaterThan(MATCH_RADIUS);

    // Vouch hashes what a person sees.
    const [ofCrafted, ofVisible, ofHidden] = await Promise.all([crafted, visible, hidden].map(async (rgb) => (await hashImage(await png(rgb, width, height))).pdq));
    expect(hexHammingDistance(ofCrafted, ofVisible)).toBeLessThanOrEqual(10);
    expect(hexHammingDistance(ofCrafted, ofHidden)).toBeGreaterThan(MATCH_RADIUS);
  });

  // An attacker who knows the decimator reads its pixels, whichever they are: at 4x (2048 x 1536 to
  // 512 x 384) a nearest-neighbour shrink reads one pixel in each 4 x 4 block, at one of 16 offsets.
  it('no offset of a 1-in-16 pixel grid takes the hash over (what any 4x point-sampling decimator reads)', async () => {
    const [width, height, stride] = [2048, 1536, 4];
    const visible = await rgbAt(await fixture('dih_bridge-1-original.jpg'), width, height);
    const hidden = await rgbAt(await fixture('labelme-subset_q2821.jpg'), width, height);
    const ofVisible = (await hashImage(await png(visible, width, height))).pdq;
    const ofHidden = (await hashImage(await png(hidden, width, height))).pdq;
    for (let dy = 0; dy < stride; dy++) {
      for (let dx = 0; dx < stride; dx++) {
        const crafted = Buffer.from(visible);
        for (let y = dy; y < height; y += stride) {
          for (let x = dx; x < width; x += stride) hidden.copy(crafted, (y * width + x) * 3, (y * width + x) * 3, (y * width + x) * 3 + 3);
        }
        const ofCrafted = (await hashImage(await png(crafted, width, height))).pdq;
        expect({ dx, dy, toVisible: hexHammingDistance(ofCrafted, ofVisible) <= 10, toHidden: hexHammingDistance(ofCrafted, ofHidden) > MATCH_RADIUS }).toEqual({ dx, dy, toVisible: true, toHidden: true });
      }
    }
  });

  // At 2x the reference's squash reads a third of the pixels: the crafted image is a visible blend
  // of both, and our hash (34 bits from the visible photo's) matches neither.
  it('at 1024 x 768, with a third of the pixels planted, the hash is still not the hidden picture\'s', async () => {
    const [width, height] = [1024, 768];
    const visible = await rgbAt(await fixture('dih_bridge-1-original.jpg'), width, height);
    const hidden = await rgbAt(await fixture('labelme-subset_q2821.jpg'), width, height);
    const crafted = plant(visible, hidden, width, height);
    expect(hexHammingDistance(nearestNeighbourPdq(crafted, width, height), nearestNeighbourPdq(hidden, width, height))).toBe(0);
    const ofCrafted = (await hashImage(await png(crafted, width, height))).pdq;
    const ofHidden = (await hashImage(await png(hidden, width, height))).pdq;
    expect(hexHammingDistance(ofCrafted, ofHidden)).toBeGreaterThan(MATCH_RADIUS);
  });
});

// The image-scaling attack (Xiao et al., USENIX Security 2019; Quiring et al., 2020) against the
// normalisation. A hasher that decimates by nearest neighbour, as Meta's C++ PDQ reference does
// (CImg's default `resize` to 512x512), reads only the pixels it samples: an uploader who writes a
// second picture into exactly those pixels has the hasher see that picture, while a person sees the
// first. Vouch shrinks with filters that weigh every pixel (JPEG DCT scaling, libvips' box shrink,
// Lanczos-3), so the planted picture cannot take over the hash (decision 20), nor reach a
// classifier through the scanner's resize (docs/scanner.md).
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { hashImage, hexHammingDistance } from '../../shared/hashing/index.js';
import { BUNDLED_MODELS, defaultModelConfig, type BundledModel } from '../../server/scanning/classifiers/default-model.js';
import { onnxClassifierConfigSchema, preprocessInto } from '../../server/scanning/classifiers/onnx.js';
import { decodeForClassifier } from '../../server/scanning/scanner.js';
import { attackPhotos, nearestNeighbourPdq, nearestNeighbourShrink, plantForNearestNeighbour as plant, plantOnGrid } from '../helpers/image-scaling-attack.js';

/** Vouch's match radius for PDQ (decisions 2 and 15): within it, two images are the same picture. */
const MATCH_RADIUS = 31;
const png = (rgb: Buffer, width: number, height: number) => sharp(rgb, { raw: { width, height, channels: 3 } }).png().toBuffer();

describe('image-scaling attack on the normalisation', () => {
  // A phone photo's size, where the planted pixels are 2 % of the image, and a smaller one (8 %).
  it.each([
    [4032, 3024],
    [2048, 1536],
  ])('a picture planted in the pixels nearest-neighbour decimation reads does not take over the hash (%i x %i)', async (width, height) => {
    const { visible, hidden } = await attackPhotos(width, height);
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
    const { visible, hidden } = await attackPhotos(width, height);
    const ofVisible = (await hashImage(await png(visible, width, height))).pdq;
    const ofHidden = (await hashImage(await png(hidden, width, height))).pdq;
    for (let dy = 0; dy < stride; dy++) {
      for (let dx = 0; dx < stride; dx++) {
        const crafted = plantOnGrid(visible, hidden, width, height, stride, dx, dy);
        const ofCrafted = (await hashImage(await png(crafted, width, height))).pdq;
        expect({ dx, dy, toVisible: hexHammingDistance(ofCrafted, ofVisible) <= 10, toHidden: hexHammingDistance(ofCrafted, ofHidden) > MATCH_RADIUS }).toEqual({ dx, dy, toVisible: true, toHidden: true });
      }
    }
  });

  // At 2x the reference's squash reads a third of the pixels: the crafted image is a visible blend
  // of both, and our hash (34 bits from the visible photo's) matches neither.
  it('at 1024 x 768, with a third of the pixels planted, the hash is still not the hidden picture\'s', async () => {
    const [width, height] = [1024, 768];
    const { visible, hidden } = await attackPhotos(width, height);
    const crafted = plant(visible, hidden, width, height);
    expect(hexHammingDistance(nearestNeighbourPdq(crafted, width, height), nearestNeighbourPdq(hidden, width, height))).toBe(0);
    const ofCrafted = (await hashImage(await png(crafted, width, height))).pdq;
    const ofHidden = (await hashImage(await png(hidden, width, height))).pdq;
    expect(hexHammingDistance(ofCrafted, ofHidden)).toBeGreaterThan(MATCH_RADIUS);
  });
});

// The attack's first target (Xiao et al.) was a classifier's input resize: a picture planted for a
// nearest-neighbour shrink to the model's size is what such a model classifies. The scanner's
// decode and the classifier's resize both weigh every pixel, so each bundled model is fed the
// picture a person sees.
describe('image-scaling attack on the classifier input', () => {
  const meanAbsoluteDifference = (a: Float32Array, b: Float32Array) => a.reduce((sum, v, i) => sum + Math.abs(v - b[i]), 0) / a.length;
  const modelInputOf = (model: BundledModel) => {
    const size = BUNDLED_MODELS[model].size;
    const settings = onnxClassifierConfigSchema.parse({
      ...defaultModelConfig({ inputName: 'input', outputName: 'output', inputShape: [size, size, 3] }, 'test', model),
      model: 'unused.onnx',
    });
    return async (rgb: Buffer, width: number, height: number) => {
      const tensor = new Float32Array(size * size * 3);
      await preprocessInto(await decodeForClassifier(await png(rgb, width, height)), settings, tensor, 0);
      return tensor;
    };
  };

  it('a phone photo planted for a nearest-neighbour shrink to 224 x 224 reaches the default model as the visible picture', async () => {
    const size = BUNDLED_MODELS.default.size;
    const [width, height] = [4032, 3024];
    const { visible, hidden } = await attackPhotos(width, height);
    const crafted = plant(visible, hidden, width, height, size);
    // The attack is real: a nearest-neighbour shrink to the model's input reads only the hidden picture.
    expect(nearestNeighbourShrink(crafted, width, height, size).equals(nearestNeighbourShrink(hidden, width, height, size))).toBe(true);
    const modelInput = modelInputOf('default');
    const [ofCrafted, ofVisible, ofHidden] = await Promise.all([crafted, visible, hidden].map((rgb) => modelInput(rgb, width, height)));
    const apart = meanAbsoluteDifference(ofVisible, ofHidden);
    expect(meanAbsoluteDifference(ofCrafted, ofVisible)).toBeLessThan(0.1 * apart);
    expect(meanAbsoluteDifference(ofCrafted, ofHidden)).toBeGreaterThan(0.9 * apart);
  });

  // Whatever pixels a point-sampling resize would read: an image `stride` times the model's size
  // (kept whole by the scanner's decode, which stops at 1024) shrinks by exactly `stride`, so such a
  // resize reads one pixel of each stride x stride block, at one of stride^2 offsets.
  it.each(Object.keys(BUNDLED_MODELS) as BundledModel[])('no offset of a point-sampling grid reaches the %s model', async (model) => {
    const size = BUNDLED_MODELS[model].size;
    const stride = Math.floor(1024 / size);
    const side = size * stride;
    const { visible, hidden } = await attackPhotos(side, side);
    const modelInput = modelInputOf(model);
    const [ofVisible, ofHidden] = await Promise.all([visible, hidden].map((rgb) => modelInput(rgb, side, side)));
    const apart = meanAbsoluteDifference(ofVisible, ofHidden);
    for (let dy = 0; dy < stride; dy++) {
      for (let dx = 0; dx < stride; dx++) {
        const crafted = plantOnGrid(visible, hidden, side, side, stride, dx, dy);
        const towardHidden = 1 - meanAbsoluteDifference(await modelInput(crafted, side, side), ofHidden) / apart;
        // A point sampler would put this at 1; weighing every pixel keeps it near 1 / stride^2.
        expect({ dx, dy, nearVisible: towardHidden < 2 / stride ** 2 }).toEqual({ dx, dy, nearVisible: true });
      }
    }
  });
});

/**
 * Match radii (issue 12): how far benign edits move PDQ and pHash-64, how close unrelated images
 * come, and how far a crafted PDQ collision lands from its target's pHash-64. The strict PDQ
 * radius and the pHash-64 agreement radius are picked from these distributions.
 *
 * Images: the distinct reference photos in test/fixtures/pdq (the bridge once; its rotations are
 * the dihedral index's business) and a generated set (two generators, alternating, landscape and
 * portrait, fixed seeds), each stored as a quality-90 JPEG "original". Every benign edit is
 * hashed through the server's pipeline (hashImage) and compared with its original's hashes;
 * edits other than the quality ones are saved as quality-90 JPEG, as a re-upload would be.
 */

import { readFile } from 'node:fs/promises';
import sharp, { type Sharp } from 'sharp';
import { hashImage, hexHammingDistance, type ImageHashes } from '../shared/hashing/index.js';
import { photoLikeRgb, syntheticPixels } from '../test/helpers/images.js';
import { craftCollision, stripedGradientPng } from '../test/helpers/pdq-collision.js';
import { percentile, round, type BenchResult } from './result.js';

// Run from dist/bench (npm run bench); the fixtures are not copied into dist.
const FIXTURES = new URL('../../test/fixtures/pdq/', import.meta.url);
const REFERENCE_PHOTOS = [
  'dih_bridge-1-original.jpg',
  'labelme-subset_q0003.jpg',
  'labelme-subset_q0004.jpg',
  'labelme-subset_q0122.jpg',
  'labelme-subset_q0291.jpg',
  'labelme-subset_q0746.jpg',
  'labelme-subset_q1050.jpg',
  'labelme-subset_q2821.jpg',
  'pen-and-coaster.png',
];
const GENERATED_IMAGES = 300;
const COLLISION_SOURCES = 6;
const COLLISION_MAX_DISTANCE = 8;

const jpeg90 = (s: Sharp) => s.jpeg({ quality: 90 }).toBuffer();

/** A line of text across the picture: white capitals with a black outline, as memes have. Its
 *  length is fixed relative to the width (textLength), whatever font the machine has. */
function textSvg(width: number, height: number, fill: string, stroke: string): Buffer {
  const size = Math.round(height * 0.6);
  return Buffer.from(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">` +
      `<text x="${Math.round(width * 0.05)}" y="${Math.round(height * 0.75)}" textLength="${Math.round(width * 0.9)}" ` +
      `lengthAdjust="spacingAndGlyphs" font-family="sans-serif" font-weight="bold" font-size="${size}" ` +
      `fill="${fill}" stroke="${stroke}" stroke-width="${Math.max(1, Math.round(size / 20))}">WHEN THE BUILD PASSES</text></svg>`,
  );
}

type Transform = (img: Buffer, width: number, height: number) => Promise<Buffer>;

function centredCrop(fraction: number): Transform {
  return (img, w, h) => {
    const width = Math.round(w * (1 - fraction));
    const height = Math.round(h * (1 - fraction));
    return jpeg90(sharp(img).extract({ left: (w - width) >> 1, top: (h - height) >> 1, width, height }));
  };
}

/** The benign edits, named as the figures are. Crops keep the centre (the fraction is taken off
 *  each dimension, half on each side). */
const TRANSFORMS: Record<string, Transform> = {
  resize_50pct: (img, w) => jpeg90(sharp(img).resize({ width: Math.round(w * 0.5) })),
  resize_30pct: (img, w) => jpeg90(sharp(img).resize({ width: Math.round(w * 0.3) })),
  resize_300px: (img) => jpeg90(sharp(img).resize({ width: 300, height: 300, fit: 'inside' })),
  resize_300px_jpeg70: (img) => sharp(img).resize({ width: 300, height: 300, fit: 'inside' }).jpeg({ quality: 70 }).toBuffer(),
  jpeg_q90: (img) => sharp(img).jpeg({ quality: 90 }).toBuffer(),
  jpeg_q70: (img) => sharp(img).jpeg({ quality: 70 }).toBuffer(),
  jpeg_q50: (img) => sharp(img).jpeg({ quality: 50 }).toBuffer(),
  crop_5pct: centredCrop(0.05),
  crop_10pct: centredCrop(0.1),
  text_overlay: (img, w, h) =>
    jpeg90(sharp(img).composite([{ input: textSvg(w, Math.round(h * 0.15), 'white', 'black'), top: Math.round(h * 0.03), left: 0 }])),
  caption_bar: async (img, w, h) => {
    const bar = Math.round(h * 0.15);
    const extended = await sharp(img).extend({ bottom: bar, background: '#ffffff' }).png().toBuffer();
    return jpeg90(sharp(extended).composite([{ input: textSvg(w, bar, 'black', 'none'), top: h, left: 0 }]));
  },
  brightness_plus10pct: (img) => jpeg90(sharp(img).modulate({ brightness: 1.1 })),
  brightness_minus10pct: (img) => jpeg90(sharp(img).modulate({ brightness: 0.9 })),
};

interface Original {
  bytes: Buffer;
  width: number;
  height: number;
  hashes: ImageHashes;
}

async function original(bytes: Buffer): Promise<Original> {
  const meta = await sharp(bytes).metadata();
  return { bytes, width: meta.width, height: meta.height, hashes: await hashImage(bytes) };
}

async function generatedSet(): Promise<Original[]> {
  const out: Original[] = [];
  for (let i = 0; i < GENERATED_IMAGES; i++) {
    const [width, height] = i % 4 < 2 ? [480, 360] : [360, 480];
    const rgb = i % 2 === 0 ? syntheticPixels(1000 + i, width, height) : photoLikeRgb(width, height, 1000 + i);
    out.push(await original(await jpeg90(sharp(rgb, { raw: { width, height, channels: 3 } }))));
  }
  return out;
}

function distribution(prefix: string, values: number[], unit = 'bits'): BenchResult[] {
  const sorted = [...values].sort((a, b) => a - b);
  return [
    ['min', sorted[0]],
    ['p50', percentile(sorted, 0.5)],
    ['p95', percentile(sorted, 0.95)],
    ['p99', percentile(sorted, 0.99)],
    ['max', sorted[sorted.length - 1]],
  ].map(([stat, value]) => ({ name: `${prefix}_${stat}`, value: round(value as number), unit }));
}

/** The smallest radius holding `share` of the benign distances, capped so that no unrelated pair
 *  measured comes within twice the radius: a radius the unrelated minimum clears with room. */
function recommend(benign: number[], unrelatedMin: number, share: number): number {
  const covering = percentile([...benign].sort((a, b) => a - b), share);
  return Math.min(covering, Math.floor(unrelatedMin / 2));
}

export async function benchPdqRadius(): Promise<BenchResult[]> {
  const photos = await Promise.all(REFERENCE_PHOTOS.map(async (f) => original(await readFile(new URL(f, FIXTURES)))));
  const generated = await generatedSet();
  const all = [...photos, ...generated];
  const results: BenchResult[] = [
    { name: 'radius_reference_photos', value: photos.length, unit: 'images' },
    { name: 'radius_generated_images', value: generated.length, unit: 'images' },
  ];

  const benignPdq: number[] = [];
  const benignPhash: number[] = [];
  for (const [name, transform] of Object.entries(TRANSFORMS)) {
    const pdq: number[] = [];
    const ph: number[] = [];
    for (const img of all) {
      const edited = await hashImage(await transform(img.bytes, img.width, img.height));
      pdq.push(hexHammingDistance(edited.pdq, img.hashes.pdq));
      ph.push(hexHammingDistance(edited.phash64, img.hashes.phash64));
    }
    benignPdq.push(...pdq);
    benignPhash.push(...ph);
    results.push(...distribution(`radius_pdq_benign_${name}`, pdq), ...distribution(`radius_phash_benign_${name}`, ph));
  }
  results.push(...distribution('radius_pdq_benign_all', benignPdq), ...distribution('radius_phash_benign_all', benignPhash));

  const unrelatedPdq: number[] = [];
  const unrelatedPhash: number[] = [];
  const photoPairsPdq: number[] = [];
  for (let a = 0; a < all.length; a++) {
    for (let b = a + 1; b < all.length; b++) {
      const d = hexHammingDistance(all[a].hashes.pdq, all[b].hashes.pdq);
      unrelatedPdq.push(d);
      unrelatedPhash.push(hexHammingDistance(all[a].hashes.phash64, all[b].hashes.phash64));
      if (b < photos.length) photoPairsPdq.push(d);
    }
  }
  results.push(
    { name: 'radius_unrelated_pairs', value: unrelatedPdq.length, unit: 'pairs' },
    ...distribution('radius_pdq_unrelated', unrelatedPdq),
    ...distribution('radius_phash_unrelated', unrelatedPhash),
    ...distribution('radius_pdq_unrelated_photos_only', photoPairsPdq),
  );

  // Crafted collisions: generated sources pushed within COLLISION_MAX_DISTANCE of each photo's PDQ.
  const sources = [await stripedGradientPng(), ...generated.slice(0, COLLISION_SOURCES - 1).map((g) => g.bytes)];
  const collisionPdq: number[] = [];
  const collisionPhash: number[] = [];
  const collisionPsnr: number[] = [];
  const collisionRounds: number[] = [];
  let missed = 0;
  for (const source of sources) {
    for (const target of photos) {
      const crafted = await craftCollision(source, target.hashes.pdq, { maxDistance: COLLISION_MAX_DISTANCE, maxRounds: 10 });
      if (!crafted.reached) missed++;
      collisionPdq.push(crafted.distance);
      collisionPhash.push(hexHammingDistance(crafted.phash64, target.hashes.phash64));
      collisionPsnr.push(crafted.psnrDb);
      collisionRounds.push(crafted.rounds);
    }
  }
  results.push(
    { name: 'collision_attempts', value: collisionPdq.length, unit: 'images' },
    { name: 'collision_missed', value: missed, unit: 'images' },
    ...distribution('collision_pdq_to_target', collisionPdq),
    ...distribution('collision_phash_to_target', collisionPhash),
    ...distribution('collision_psnr_vs_source', collisionPsnr, 'dB'),
    ...distribution('collision_rounds', collisionRounds, 'rounds'),
  );

  const unrelatedPdqMin = Math.min(...unrelatedPdq);
  const unrelatedPhashMin = Math.min(...unrelatedPhash);
  results.push(
    { name: 'strict_pdq_radius_recommended', value: recommend(benignPdq, unrelatedPdqMin, 0.95), unit: 'bits' },
    { name: 'phash_radius_recommended', value: recommend(benignPhash, unrelatedPhashMin, 0.95), unit: 'bits' },
  );
  return results;
}

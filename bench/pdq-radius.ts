/**
 * Match radii (issue 12): how far benign edits move PDQ and pHash-64, how close unrelated images
 * come, and how far a crafted PDQ collision lands from its target's pHash-64. The strict PDQ
 * radius and the pHash-64 agreement radius are picked from these distributions.
 *
 * Images: the distinct reference photos in test/fixtures/pdq (the bridge once; its rotations are
 * the dihedral index's business) and a generated set (two generators, alternating, landscape and
 * portrait, 640x480, fixed seeds), each stored as a quality-90 JPEG "original". Every benign edit is
 * hashed through the server's pipeline (hashImage) and compared with its original's hashes;
 * edits other than the quality ones are saved as quality-90 JPEG, as a re-upload would be.
 * Images of PDQ quality below 50 are left out (counted), as PDQ says not to match on them.
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
const COLLISION_SOURCES = 8;
const COLLISION_MAX_DISTANCE = 8;
const MIN_PDQ_QUALITY = 50;

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
  resize_300px: (img) => jpeg90(sharp(img).resize({ width: 300, height: 300, fit: 'inside', withoutEnlargement: true })),
  resize_300px_jpeg70: (img) => sharp(img).resize({ width: 300, height: 300, fit: 'inside', withoutEnlargement: true }).jpeg({ quality: 70 }).toBuffer(),
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
    const [width, height] = i % 4 < 2 ? [640, 480] : [480, 640];
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

/** Edits PDQ is meant to survive; the others (crops, text, caption bars) move the 16x16
 *  frequencies by design and are measured to show how far out they land. */
const MILD = /^(resize|jpeg|brightness)_/;

/** The smallest radius holding `share` of the distances, capped so that the closest unrelated
 *  pair measured is at least twice as far: a radius the unrelated minimum clears with room. */
function recommend(benign: number[], unrelatedMin: number, share: number): number {
  return Math.min(percentile([...benign].sort((a, b) => a - b), share), Math.floor(unrelatedMin / 2));
}

interface Pair {
  pdq: number;
  phash: number;
}

export async function benchPdqRadius(): Promise<BenchResult[]> {
  // PDQ's own rule: below quality 50 an image is too featureless to match on, so its distances
  // say nothing about a radius (the matcher should not use its hash at all).
  const usable = (images: Original[]) => images.filter((img) => img.hashes.pdqQuality >= MIN_PDQ_QUALITY);
  const allPhotos = await Promise.all(REFERENCE_PHOTOS.map(async (f) => original(await readFile(new URL(f, FIXTURES)))));
  const allGenerated = await generatedSet();
  const photos = usable(allPhotos);
  const generated = usable(allGenerated);
  const all = [...photos, ...generated];
  const results: BenchResult[] = [
    { name: 'radius_reference_photos', value: photos.length, unit: 'images' },
    { name: 'radius_reference_photos_below_quality_50', value: allPhotos.length - photos.length, unit: 'images' },
    { name: 'radius_generated_images', value: generated.length, unit: 'images' },
    { name: 'radius_generated_images_below_quality_50', value: allGenerated.length - generated.length, unit: 'images' },
  ];

  // Benign edits: each original against its edited copy, per edit and per image set.
  const mild: Pair[] = [];
  const everyEdit: Pair[] = [];
  for (const [name, transform] of Object.entries(TRANSFORMS)) {
    for (const [set, images] of [['photos', photos], ['generated', generated]] as const) {
      const pairs: Pair[] = [];
      for (const img of images) {
        const edited = await hashImage(await transform(img.bytes, img.width, img.height));
        pairs.push({ pdq: hexHammingDistance(edited.pdq, img.hashes.pdq), phash: hexHammingDistance(edited.phash64, img.hashes.phash64) });
      }
      if (MILD.test(name)) mild.push(...pairs);
      everyEdit.push(...pairs);
      results.push(
        ...distribution(`radius_pdq_benign_${name}_${set}`, pairs.map((p) => p.pdq)),
        ...distribution(`radius_phash_benign_${name}_${set}`, pairs.map((p) => p.phash)),
      );
    }
  }
  results.push(
    ...distribution('radius_pdq_benign_mild', mild.map((p) => p.pdq)),
    ...distribution('radius_phash_benign_mild', mild.map((p) => p.phash)),
    ...distribution('radius_pdq_benign_every_edit', everyEdit.map((p) => p.pdq)),
    ...distribution('radius_phash_benign_every_edit', everyEdit.map((p) => p.phash)),
  );

  // Unrelated: every pair of distinct originals.
  const unrelated: Pair[] = [];
  const photoPairsPdq: number[] = [];
  for (let a = 0; a < all.length; a++) {
    for (let b = a + 1; b < all.length; b++) {
      const pdq = hexHammingDistance(all[a].hashes.pdq, all[b].hashes.pdq);
      unrelated.push({ pdq, phash: hexHammingDistance(all[a].hashes.phash64, all[b].hashes.phash64) });
      if (b < photos.length) photoPairsPdq.push(pdq);
    }
  }
  results.push(
    { name: 'radius_unrelated_pairs', value: unrelated.length, unit: 'pairs' },
    ...distribution('radius_pdq_unrelated', unrelated.map((p) => p.pdq)),
    ...distribution('radius_phash_unrelated', unrelated.map((p) => p.phash)),
    ...distribution('radius_pdq_unrelated_photos_only', photoPairsPdq),
  );

  // The strict PDQ radius from the mild edits; the pHash radius from those mild edits it admits.
  const unrelatedPdqMin = Math.min(...unrelated.map((p) => p.pdq));
  const unrelatedPhashMin = Math.min(...unrelated.map((p) => p.phash));
  const strictPdq = recommend(mild.map((p) => p.pdq), unrelatedPdqMin, 0.95);
  const admitted = mild.filter((p) => p.pdq <= strictPdq);
  const phashRadius = recommend(admitted.map((p) => p.phash), unrelatedPhashMin, 0.99);
  results.push(
    ...distribution('radius_phash_benign_mild_within_strict_pdq', admitted.map((p) => p.phash)),
    { name: 'radius_benign_mild_within_both', value: round(mild.filter((p) => p.pdq <= strictPdq && p.phash <= phashRadius).length / mild.length), unit: 'ratio' },
    { name: 'radius_benign_every_edit_within_both', value: round(everyEdit.filter((p) => p.pdq <= strictPdq && p.phash <= phashRadius).length / everyEdit.length), unit: 'ratio' },
    { name: 'radius_unrelated_within_strict_pdq', value: unrelated.filter((p) => p.pdq <= strictPdq).length, unit: 'pairs' },
    { name: 'radius_unrelated_within_pdq_31', value: unrelated.filter((p) => p.pdq <= 31).length, unit: 'pairs' },
    { name: 'radius_unrelated_within_phash_radius', value: unrelated.filter((p) => p.phash <= phashRadius).length, unit: 'pairs' },
  );

  // Crafted collisions: generated sources pushed within COLLISION_MAX_DISTANCE of each photo's
  // PDQ; how often their pHash-64 then also agrees with the photo's, the striped gradient (little
  // structure of its own) apart from the photo-like sources. `collision_missed` counts PDQ only.
  const sources: Array<[string, Buffer]> = [
    ['striped', await stripedGradientPng()],
    ...generated.slice(0, COLLISION_SOURCES).map((g): [string, Buffer] => ['generated', g.bytes]),
  ];
  // "steered": the attacker who knows pHash-64 must agree too and moves its coefficients as well.
  const crafted: Array<{ source: string; pdq: number; phash: number; psnr: number; rounds: number; reached: boolean }> = [];
  for (const [source, bytes] of sources) {
    for (const target of photos) {
      for (const steered of [false, true]) {
        const c = await craftCollision(bytes, target.hashes.pdq, {
          maxDistance: COLLISION_MAX_DISTANCE,
          maxRounds: 10,
          ...(steered ? { targetPhash64: target.hashes.phash64, maxPhashDistance: phashRadius } : {}),
        });
        const phash = hexHammingDistance(c.phash64, target.hashes.phash64);
        crafted.push({ source: steered ? `${source}_steered` : source, pdq: c.distance, phash, psnr: c.psnrDb, rounds: c.rounds, reached: c.distance <= COLLISION_MAX_DISTANCE });
      }
    }
  }
  results.push(
    { name: 'collision_attempts', value: crafted.length, unit: 'images' },
    { name: 'collision_missed', value: crafted.filter((c) => !c.reached).length, unit: 'images' },
    ...distribution('collision_pdq_to_target', crafted.map((c) => c.pdq)),
    ...distribution('collision_rounds', crafted.map((c) => c.rounds), 'rounds'),
  );
  for (const source of ['striped', 'generated', 'striped_steered', 'generated_steered']) {
    const some = crafted.filter((c) => c.source === source);
    results.push(
      ...distribution(`collision_${source}_phash_to_target`, some.map((c) => c.phash)),
      ...distribution(`collision_${source}_psnr_vs_source`, some.map((c) => c.psnr), 'dB'),
      { name: `collision_${source}_within_both_radii`, value: some.filter((c) => c.pdq <= strictPdq && c.phash <= phashRadius).length, unit: 'images' },
      { name: `collision_${source}_attempts`, value: some.length, unit: 'images' },
    );
  }

  results.push(
    { name: 'strict_pdq_radius_recommended', value: strictPdq, unit: 'bits' },
    { name: 'phash_radius_recommended', value: phashRadius, unit: 'bits' },
  );
  return results;
}

// The PDQ collision generator (issue 12's adversarial suite): it must really collide through the
// server's own pipeline, keep the picture, and say so honestly when it gives up. The figures it
// reaches are printed; docs/benchmarks.md ("Match radii") has the same over many targets.
import { readFile } from 'node:fs/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeNormalized, hashImage, hashImageWithDihedral, hexHammingDistance, pdqFromHex, phashFromHex } from '../../shared/hashing/index.js';
import { syntheticPng } from '../helpers/images.js';
import {
  craftCollision,
  lowerMedian,
  pdqBit,
  pdqCoefficients,
  phashBit,
  phashCoefficients,
  stripedGradientPng,
} from '../helpers/pdq-collision.js';

// The radii `npm run bench -- pdq-radius` recommends (docs/benchmarks.md, "Match radii").
const STRICT_PDQ_RADIUS = 18;
const PHASH_RADIUS = 4;

const bridgeBytes = () => readFile(new URL('../fixtures/pdq/dih_bridge-1-original.jpg', import.meta.url));

const report: string[] = [];
afterAll(() => {
  if (report.length > 0) console.log(`PDQ collisions:\n  ${report.join('\n  ')}`);
});

/** Bits where the helper's transcriptions of PDQ and pHash-64 disagree with the product's hashes. */
async function modelDisagreement(bytes: Buffer): Promise<{ pdq: number; phash: number }> {
  const img = await decodeNormalized(bytes);
  const hashes = await hashImage(bytes);
  const coeffs = pdqCoefficients(img.luma, img.width, img.height);
  const median = lowerMedian(coeffs);
  const pdq = pdqFromHex(hashes.pdq);
  let pdqDiffering = 0;
  for (let i = 0; i < 16; i++) {
    for (let j = 0; j < 16; j++) if (coeffs[i * 16 + j] > median !== pdqBit(pdq, i, j)) pdqDiffering++;
  }
  const p = phashCoefficients(img.luma, img.width, img.height);
  const sorted = Float64Array.from(p).sort();
  const phashMedian = (sorted[31] + sorted[32]) / 2;
  const phash = phashFromHex(hashes.phash64);
  let phashDiffering = 0;
  for (let k = 0; k < 64; k++) if (p[k] > phashMedian !== phashBit(phash, k)) phashDiffering++;
  return { pdq: pdqDiffering, phash: phashDiffering };
}

describe('PDQ collision generator', () => {
  it("models PDQ's and pHash-64's coefficients as the product computes them (float rounding apart)", async () => {
    for (const bytes of [await bridgeBytes(), await stripedGradientPng()]) {
      const { pdq, phash } = await modelDisagreement(bytes);
      expect(pdq).toBeLessThanOrEqual(2);
      expect(phash).toBeLessThanOrEqual(2);
    }
  });

  it("brings a striped gradient within the strict radius of the bridge photo's PDQ, still plainly the gradient", async () => {
    const bridge = await hashImage(await bridgeBytes());
    const source = await stripedGradientPng();
    const before = await hashImage(source);
    expect(hexHammingDistance(before.pdq, bridge.pdq)).toBeGreaterThan(100); // unrelated to start with

    const crafted = await craftCollision(source, bridge.pdq, { maxDistance: STRICT_PDQ_RADIUS, maxRounds: 10 });
    // Hashed again here, by the function the server's hash worker calls.
    const hashes = await hashImageWithDihedral(crafted.bytes);
    const distance = hexHammingDistance(hashes.pdq, bridge.pdq);
    expect(crafted.reached).toBe(true);
    expect(distance).toBe(crafted.distance);
    expect(distance).toBeLessThanOrEqual(STRICT_PDQ_RADIUS);
    expect(hashes.pdqQuality).toBeGreaterThanOrEqual(50); // a hash the matcher uses
    expect(crafted.psnrDb).toBeGreaterThan(35);

    // The finding that matters to the decider: pHash-64 thresholds the same lowest frequencies as
    // PDQ's top-left 8x8 coefficients, so this collision agrees on pHash-64 as well. A second
    // hash of that kind does not make "allow" need the same image.
    const phashToBridge = hexHammingDistance(hashes.phash64, bridge.phash64);
    const phashToSource = hexHammingDistance(hashes.phash64, before.phash64);
    expect(phashToBridge).toBeLessThanOrEqual(PHASH_RADIUS);
    expect(phashToSource).toBeGreaterThan(PHASH_RADIUS);
    report.push(
      `striped gradient -> dih_bridge-1: PDQ ${distance} bits after ${crafted.rounds} round(s), quality ${hashes.pdqQuality}, ` +
        `PSNR ${crafted.psnrDb.toFixed(1)} dB, mean |diff| ${crafted.meanAbsDiff.toFixed(2)}; pHash-64 ${phashToBridge} bits from the bridge's, ${phashToSource} from the source's`,
    );
  });

  it('brings a busier, photo-like picture there too, at a visible but bounded cost', async () => {
    const bridge = await hashImage(await bridgeBytes());
    const source = await syntheticPng(7, 480, 360);
    const crafted = await craftCollision(source, bridge.pdq, { maxDistance: STRICT_PDQ_RADIUS, maxRounds: 10 });
    const hashes = await hashImageWithDihedral(crafted.bytes);
    expect(crafted.reached).toBe(true);
    expect(hexHammingDistance(hashes.pdq, bridge.pdq)).toBeLessThanOrEqual(STRICT_PDQ_RADIUS);
    expect(crafted.psnrDb).toBeGreaterThan(15);
    report.push(
      `photo-like seed 7 -> dih_bridge-1: PDQ ${crafted.distance} bits after ${crafted.rounds} round(s), PSNR ${crafted.psnrDb.toFixed(1)} dB, ` +
        `mean |diff| ${crafted.meanAbsDiff.toFixed(2)}; pHash-64 ${hexHammingDistance(hashes.phash64, bridge.phash64)} bits from the bridge's`,
    );
  });

  it('steers pHash-64 too when told to: a photo-like picture passes both checks', async () => {
    const bridge = await hashImage(await bridgeBytes());
    const source = await syntheticPng(7, 480, 360);
    const crafted = await craftCollision(source, bridge.pdq, {
      maxDistance: STRICT_PDQ_RADIUS,
      maxRounds: 10,
      targetPhash64: bridge.phash64,
      maxPhashDistance: PHASH_RADIUS,
    });
    const hashes = await hashImageWithDihedral(crafted.bytes);
    expect(crafted.reached).toBe(true);
    expect(hexHammingDistance(hashes.pdq, bridge.pdq)).toBeLessThanOrEqual(STRICT_PDQ_RADIUS);
    expect(hexHammingDistance(hashes.phash64, bridge.phash64)).toBeLessThanOrEqual(PHASH_RADIUS);
    expect(crafted.phashDistance).toBe(hexHammingDistance(hashes.phash64, bridge.phash64));
    expect(crafted.psnrDb).toBeGreaterThan(15);
    report.push(
      `photo-like seed 7 -> dih_bridge-1, steering pHash too: PDQ ${crafted.distance}, pHash-64 ${crafted.phashDistance} bits ` +
        `after ${crafted.rounds} round(s), PSNR ${crafted.psnrDb.toFixed(1)} dB`,
    );
  });

  it('returns the closest image and reached: false when it runs out of rounds', async () => {
    const bridge = await hashImage(await bridgeBytes());
    const source = await stripedGradientPng();
    const crafted = await craftCollision(source, bridge.pdq, { maxDistance: 0, maxRounds: 0 });
    expect(crafted.reached).toBe(false);
    expect(crafted.rounds).toBe(0);
    expect(crafted.distance).toBe(hexHammingDistance((await hashImage(source)).pdq, bridge.pdq));
    expect(crafted.psnrDb).toBe(Infinity);
  });

  it('refuses a malformed target or options', async () => {
    const source = await stripedGradientPng(64, 48);
    await expect(craftCollision(source, 'not-a-hash', { maxDistance: 8, maxRounds: 1 })).rejects.toThrow(TypeError);
    await expect(craftCollision(source, '0'.repeat(64), { maxDistance: -1, maxRounds: 1 })).rejects.toThrow(RangeError);
    await expect(craftCollision(source, '0'.repeat(64), { maxDistance: 8, maxRounds: 1.5 })).rejects.toThrow(RangeError);
    await expect(craftCollision(source, '0'.repeat(64), { maxDistance: 8, maxRounds: 1, targetPhash64: 'zz' })).rejects.toThrow(TypeError);
    await expect(
      craftCollision(source, '0'.repeat(64), { maxDistance: 8, maxRounds: 1, targetPhash64: '0'.repeat(16), maxPhashDistance: -2 }),
    ).rejects.toThrow(RangeError);
  });
});

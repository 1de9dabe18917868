// The pure part of vPDQ: the frame list's wire form and strict parser, and HMA's match rule
// (query-match and compared-match percentages over distinct good frames within distance 31).
import { describe, expect, it } from 'vitest';
import {
  VPDQ_DEFAULTS,
  VPDQ_MAX_FRAMES,
  VpdqFormatError,
  encodeVpdq,
  formatVpdqFrame,
  matchVpdq,
  parseVpdq,
  type VpdqFrame,
} from '../../shared/hashing/index.js';
import { seededRandom } from '../helpers/random.js';

function randomPdq(random: () => number): string {
  return Array.from({ length: 64 }, () => Math.floor(random() * 16).toString(16)).join('');
}

/** The hash with its first `bits` bits flipped. */
function flipBits(pdq: string, bits: number): string {
  const bytes = Buffer.from(pdq, 'hex');
  for (let i = 0; i < bits; i++) bytes[i >> 3] ^= 0x80 >> (i & 7);
  return bytes.toString('hex');
}

function frames(pdqs: string[], quality = 100): VpdqFrame[] {
  return pdqs.map((pdq, k) => ({ pdq, quality, seconds: k }));
}

describe('vPDQ frame list wire form', () => {
  const random = seededRandom(17);
  const sample = frames([randomPdq(random), randomPdq(random), randomPdq(random)]);

  it("writes python-threatexchange's compact feature string and reads it back", () => {
    const wire = encodeVpdq([{ ...sample[0], quality: 87, seconds: 2.5 }]);
    expect(wire).toEqual([`${sample[0].pdq},87,2.500`]);
    expect(parseVpdq(wire)).toEqual([{ pdq: sample[0].pdq, quality: 87, seconds: 2.5 }]);
    expect(parseVpdq(encodeVpdq(sample))).toEqual(sample);
    expect(parseVpdq([`${sample[0].pdq},100,0`, `${sample[1].pdq},0,12.3`])).toEqual([
      { pdq: sample[0].pdq, quality: 100, seconds: 0 },
      { pdq: sample[1].pdq, quality: 0, seconds: 12.3 },
    ]);
  });

  it('refuses anything but 1..VPDQ_MAX_FRAMES canonical frame strings in time order', () => {
    const h = sample[0].pdq;
    const bad: unknown[] = [
      undefined,
      'not an array',
      { 0: `${h},100,0` },
      [],
      [42],
      [`${h.toUpperCase()},100,0`],
      [`${h.slice(2)},100,0`],
      [`${h}0,100,0`],
      [`${h},101,0`],
      [`${h},-1,0`],
      [`${h},050,0`],
      [`${h},100,-1`],
      [`${h},100,1e3`],
      [`${h},100,1.2345`],
      [`${h},100,01`],
      [`${h},100,0,extra`],
      [`${h},100`],
      [` ${h},100,0`],
      [`${h},100,0\n`],
      [`${h},100,3`, `${h},100,2`],
      Array.from({ length: VPDQ_MAX_FRAMES + 1 }, (_, k) => `${h},100,${k}`),
    ];
    for (const value of bad) expect(() => parseVpdq(value), JSON.stringify(value)?.slice(0, 120)).toThrow(VpdqFormatError);
    expect(parseVpdq(Array.from({ length: VPDQ_MAX_FRAMES }, (_, k) => `${h},100,${k}`))).toHaveLength(VPDQ_MAX_FRAMES);
  });

  it('refuses to write a frame out of range', () => {
    expect(() => formatVpdqFrame({ ...sample[0], pdq: 'ab' })).toThrow(RangeError);
    expect(() => formatVpdqFrame({ ...sample[0], quality: 100.5 })).toThrow(RangeError);
    expect(() => formatVpdqFrame({ ...sample[0], seconds: -0.001 })).toThrow(RangeError);
    expect(() => formatVpdqFrame({ ...sample[0], seconds: Number.NaN })).toThrow(RangeError);
    expect(() => encodeVpdq(Array.from({ length: VPDQ_MAX_FRAMES + 1 }, () => sample[0]))).toThrow(RangeError);
  });
});

describe("vPDQ matching (HMA's rule)", () => {
  const random = seededRandom(31);
  const known = Array.from({ length: 10 }, () => randomPdq(random));

  it("starts from HMA's defaults: distance 31, quality 50, query 80 %, compared 0 %", () => {
    expect(VPDQ_DEFAULTS).toEqual({ distance: 31, minQuality: 50, queryMatchPercent: 80, comparedMatchPercent: 0 });
  });

  it('counts a frame within distance 31 (inclusive) as found, 32 as not', () => {
    const at31 = matchVpdq(frames([flipBits(known[0], 31)]), frames([known[0]]));
    expect(at31).toEqual({ queryMatchPercent: 100, comparedMatchPercent: 100, isMatch: true });
    const at32 = matchVpdq(frames([flipBits(known[0], 32)]), frames([known[0]]));
    expect(at32).toEqual({ queryMatchPercent: 0, comparedMatchPercent: 0, isMatch: false });
  });

  it('gives query-match and compared-match percentages over distinct frames: a clip matches, padding does not', () => {
    // The query is 4 frames of the known 10 (a clip): 100 % of the query, 40 % of the known video.
    const clip = frames(known.slice(3, 7).map((h) => flipBits(h, 5)));
    expect(matchVpdq(clip, frames(known))).toEqual({ queryMatchPercent: 100, comparedMatchPercent: 40, isMatch: true });
    // Reversed, the known video is mostly unmatched: 40 % of the query is below 80 %.
    expect(matchVpdq(frames(known), clip)).toEqual({ queryMatchPercent: 40, comparedMatchPercent: 100, isMatch: false });
    // The compared threshold is a policy choice: 50 % of the known video required refuses the clip.
    expect(matchVpdq(clip, frames(known), { comparedMatchPercent: 50 }).isMatch).toBe(false);
    // Exactly at the threshold matches (>=): 8 of 10 query frames known.
    const padded = frames([...known.slice(0, 8), randomPdq(random), randomPdq(random)]);
    expect(matchVpdq(padded, frames(known))).toMatchObject({ queryMatchPercent: 80, isMatch: true });
  });

  it('counts a repeated hash once (a still video is one frame) and leaves frames below quality 50 out', () => {
    const still = frames(Array.from({ length: 30 }, () => known[0]));
    const oneOfTwo = frames([known[0], randomPdq(random)]);
    expect(matchVpdq(still, oneOfTwo)).toEqual({ queryMatchPercent: 100, comparedMatchPercent: 50, isMatch: true });
    // 30 repeats of one unknown frame against 1 known frame: still 50 %, not 97 %.
    expect(matchVpdq(frames([known[1], ...Array.from({ length: 30 }, () => known[9])]), frames([known[1], known[2]])).queryMatchPercent).toBe(50);
    const lowQuality = [...frames([known[0]]), ...frames([known[5], known[6], known[7]], 49)];
    expect(matchVpdq(lowQuality, frames([known[0]]))).toEqual({ queryMatchPercent: 100, comparedMatchPercent: 100, isMatch: true });
  });

  it('matches nothing when either side has no good frame', () => {
    expect(matchVpdq(frames([known[0]], 10), frames([known[0]]))).toEqual({ queryMatchPercent: 0, comparedMatchPercent: 0, isMatch: false });
    expect(matchVpdq([], frames([known[0]])).isMatch).toBe(false);
    expect(matchVpdq(frames([known[0]]), [], { queryMatchPercent: 0 }).isMatch).toBe(false);
  });
});

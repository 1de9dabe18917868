/**
 * What deciding about a video costs at lookup, against a store of video verdicts holding 1M frame
 * hashes (3,334 five-minute videos at 1 fps, random PDQs of quality 100, indexed as vPDQ frames):
 *  - vpdq_lookup_ms_5min_vs_1M_frames: Matcher.match for a 5-minute upload (300 frames, 240 of
 *    them a known video's with 4 bits flipped each, 60 unseen), every frame searched at PDQ's
 *    radius in the frame index, median of 20 runs;
 *  - vpdq_rule_ms_5min_per_candidate: the decider's video rule on one candidate (matchVpdq, 300
 *    frames against 300).
 * No database: the index and the rule are what grows with the store; the verdict rows read for
 *  the few candidates are the same as for an image.
 */
import { Matcher, type QueryHash } from '../server/matching/matcher.js';
import { matchVpdq, type VpdqFrame } from '../shared/hashing/vpdq.js';
import { round, type BenchResult } from './result.js';

const FRAMES = 1_000_000;
const PER_VIDEO = 300;

function prng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => (s = (Math.imul(s ^ (s >>> 15), 2246822519) + 0x9e3779b9) >>> 0);
}

function randomDigest(next: () => number): Uint8Array {
  const d = new Uint8Array(32);
  for (let i = 0; i < 32; i += 4) new DataView(d.buffer).setUint32(i, next());
  return d;
}

const hex = (d: Uint8Array) => Buffer.from(d).toString('hex');

export async function benchVideoLookup(): Promise<BenchResult[]> {
  const next = prng(17);
  const matcher = new Matcher();
  const build = matcher.rebuild();
  const known: Uint8Array[] = [];
  for (let i = 0; i < FRAMES; i++) {
    const digest = randomDigest(next);
    if (i < PER_VIDEO) known.push(digest);
    build.push(Math.floor(i / PER_VIDEO) + 1, { algorithm: 'vpdq', digest, quality: 100 });
  }
  build.finish();
  // The upload: 240 of the first video's frames, each 4 bits away, and 60 frames never seen.
  const upload: Uint8Array[] = known.slice(0, 240).map((d) => {
    const copy = Uint8Array.from(d);
    for (const bit of [3, 77, 150, 201]) copy[bit >> 3] ^= 1 << (bit & 7);
    return copy;
  });
  for (let i = 0; i < 60; i++) upload.push(randomDigest(next));
  const query = { hashes: upload.map((digest): QueryHash => ({ algorithm: 'vpdq', digest, quality: 100 })) };
  const hits = matcher.match(query);
  if (hits.length !== 1 || hits[0].verdictId !== 1) throw new Error(`expected one candidate (video 1), got ${hits.length}`);
  const times: number[] = [];
  for (let i = 0; i < 20; i++) {
    const t0 = performance.now();
    matcher.match(query);
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  const frame = (d: Uint8Array, k: number): VpdqFrame => ({ pdq: hex(d), quality: 100, seconds: k });
  const q = upload.map(frame);
  const c = known.map(frame);
  if (!matchVpdq(q, c).isMatch) throw new Error('the upload should match video 1 by HMA\'s rule');
  const t0 = performance.now();
  for (let i = 0; i < 20; i++) matchVpdq(q, c);
  const ruleMs = (performance.now() - t0) / 20;
  return [
    { name: 'vpdq_lookup_ms_5min_vs_1M_frames', value: round(times[10], 1), unit: 'ms' },
    { name: 'vpdq_rule_ms_5min_per_candidate', value: round(ruleMs, 2), unit: 'ms' },
  ];
}

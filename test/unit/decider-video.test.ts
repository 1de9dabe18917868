// The decider's video rule (decision 22): a frame hit on a known video counts only when HMA's
// shares hold between the two frame lists at the policy's percentages; a frame of a video meeting
// an image verdict, or an image meeting a video's frame, is judged at PDQ's tiers. The verdict
// store and the trust engine are stand-ins here (plain objects with the two members the decider
// reads); the integration test video-intake.test.ts runs the same rule on real servers.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Decider } from '../../server/verdicts/decider.js';
import type { VerdictMatch } from '../../server/verdicts/index.js';
import { DEFAULT_POLICY, parsePolicy, type Policy } from '../../server/trust/decide.js';
import { Matcher, queryOf } from '../../server/matching/matcher.js';
import { frameSubjects, videoSubjects } from '../../shared/algorithms/index.js';
import type { VpdqFrame } from '../../shared/hashing/vpdq.js';
import { standInDecider, verdictMatch } from '../helpers/decider.js';

const PEER = 'https://peer.example/actor';
const frames = (n: number, seed = 0): VpdqFrame[] =>
  Array.from({ length: n }, (_, i) => ({ pdq: randomBytes(32).toString('hex'), quality: 90 + ((i + seed) % 10), seconds: i }));

const decider = (policy: Policy = DEFAULT_POLICY): Decider => standInDecider('https://us.example/actor', policy);

/** A peer's human `sexual` verdict about a video with these frames, matched through one of them. */
function videoVerdict(known: VpdqFrame[], matchedBy = 'vpdq'): VerdictMatch {
  const subjects = videoSubjects({ sha256: randomBytes(32).toString('hex'), md5: randomBytes(16).toString('hex'), frames: known });
  return verdictMatch({ issuer: PEER, subjects, label: 'sexual', matchedBy });
}

const query = (video: VpdqFrame[]) => queryOf(videoSubjects({ sha256: randomBytes(32).toString('hex'), md5: randomBytes(16).toString('hex'), frames: video }));

describe('the decider and vPDQ matches', () => {
  const known = frames(10);

  it('blocks on a peer verdict when the upload is mostly the known video (HMA: 80 % of its frames)', () => {
    const upload = [...known.slice(0, 8), ...frames(2, 3)];
    const d = decider().decideFrom([videoVerdict(known)], query(upload));
    expect(d.outcome).toBe('block');
    expect(d.explanation.top[0]).toMatchObject({ issuer: PEER, tier: 'strict', sameImage: false });
  });

  it('drops the match when too few of the upload\'s frames are the known video\'s', () => {
    const upload = [...known.slice(0, 7), ...frames(3, 5)];
    const d = decider().decideFrom([videoVerdict(known)], query(upload));
    expect(d.outcome).toBe('unknown');
    expect(d.explanation.verdicts).toMatchObject({ peer: 0 });
  });

  it('takes the shares from the policy', () => {
    const upload = [...known.slice(0, 7), ...frames(3, 5)];
    const lenient = parsePolicy({ ...DEFAULT_POLICY, video: { queryMatchPercent: 70, comparedMatchPercent: 0 } });
    expect(decider(lenient).decideFrom([videoVerdict(known)], query(upload)).outcome).toBe('block');
    // A clip of 2 of the 10 known frames is all the known video's (100 %) but 20 % of it.
    const clip = known.slice(0, 2);
    expect(decider().decideFrom([videoVerdict(known)], query(clip)).outcome).toBe('block');
    const whole = parsePolicy({ ...DEFAULT_POLICY, video: { queryMatchPercent: 80, comparedMatchPercent: 50 } });
    expect(decider(whole).decideFrom([videoVerdict(known)], query(clip)).outcome).toBe('unknown');
  });

  it('an image matching a frame of a known video is judged as that frame\'s match', () => {
    const image = queryOf([{ algorithm: 'pdq', digest: known[4].pdq, quality: 99 }]);
    expect(decider().decideFrom([videoVerdict(known)], image).outcome).toBe('block');
  });

  it('never allows a video on ok verdicts matched by frames: only the same file is the same video', () => {
    const ok = (n: number): VerdictMatch => ({ ...videoVerdict(known), uri: `https://peer.example/verdicts/ok-${n}`, label: 'ok', method: 'human' });
    const d = decider().decideFrom([ok(1), ok(2), ok(3)], query(known));
    expect(d.outcome).not.toBe('allow');
    expect(d.explanation.top.every((c) => !c.sameImage)).toBe(true);
  });

  it('stores a frame list as one subject per distinct frame, at its first time, with its best quality', () => {
    const f = frames(2);
    const repeated = [f[0], { ...f[0], quality: 100, seconds: 5 }, f[1]].map((x, i) => ({ ...x, seconds: [0, 5, 6][i] }));
    expect(frameSubjects(repeated)).toEqual([
      { algorithm: 'vpdq', digest: f[0].pdq, quality: 100, seconds: 0 },
      { algorithm: 'vpdq', digest: f[1].pdq, quality: f[1].quality, seconds: 6 },
    ]);
  });
});

// A hostile peer chooses every frame of its verdict and every quality it claims; our uploads' frames
// and their qualities are ours. These pin what one such verdict can reach.
describe('hostile frame lists', () => {
  const known = frames(10);
  /** What the matcher indexes of a verdict's subjects, as the verdict store feeds it. */
  const indexed = (subjects: ReturnType<typeof videoSubjects>) =>
    subjects.map((s) => ({ algorithm: s.algorithm, digest: Buffer.from(s.digest, 'hex'), quality: s.quality ?? null }));

  it('1,800 copies of one image\'s PDQ are one index entry, and match a video only when mostly that image', () => {
    const popular = frames(1)[0];
    const copies = Array.from({ length: 1800 }, (_, i) => ({ ...popular, seconds: i }));
    const verdict = videoVerdict(copies);
    const matcher = new Matcher();
    matcher.add(verdict.id, indexed(verdict.subjects));
    expect(matcher.size.vpdq).toBe(1);
    // A video showing the image for one second among nine others: a candidate, not a match.
    expect(decider().decideFrom([verdict], query([popular, ...frames(9, 1)])).outcome).toBe('unknown');
    // A video that is that image throughout is judged as a verdict on the image would judge it.
    expect(decider().decideFrom([verdict], query([popular, { ...popular, seconds: 1 }])).outcome).toBe('block');
  });

  it('a claimed quality does not make blank frames match: a mostly blank upload is judged by its own good frames', () => {
    // The attacker lists near-flat frames' PDQs at quality 100; we hash those frames at quality 0.
    // Counted at the claimed quality they would be 4 of the upload's 5 distinct frames (80 %).
    const blank = frames(4, 7).map((f) => ({ ...f, quality: 100 }));
    const verdict = videoVerdict([...blank, ...frames(3, 2)]);
    const matcher = new Matcher();
    matcher.add(verdict.id, indexed(verdict.subjects));
    const ownGood = frames(1, 4)[0];
    const upload = [...blank.map((f, i) => ({ ...f, quality: 0, seconds: i })), { ...ownGood, seconds: 4 }];
    expect(matcher.match(query(upload))).toEqual([]);
    // Even handed the verdict, HMA's share counts our good frame only: 0 of 1.
    expect(decider().decideFrom([verdict], query(upload)).outcome).toBe('unknown');
    // An upload with no good frame at all matches no video.
    expect(decider().decideFrom([verdict], query(upload.slice(0, 4))).outcome).toBe('unknown');
  });

  it('an image meeting a frame of ok verdicts is never allowed, even where near-duplicates may allow', () => {
    const policy = parsePolicy({ ...DEFAULT_POLICY, match: { ...DEFAULT_POLICY.match, nearDuplicateAllows: true } });
    const ok = (n: number): VerdictMatch => ({ ...videoVerdict(known), uri: `https://peer.example/verdicts/ok-${n}`, label: 'ok', method: 'human' });
    const image = queryOf([
      { algorithm: 'pdq', digest: known[2].pdq, quality: 99 },
      { algorithm: 'phash64', digest: randomBytes(8).toString('hex') },
    ]);
    const d = decider(policy).decideFrom([ok(1), ok(2), ok(3)], image);
    expect(d.outcome).not.toBe('allow');
    expect(d.explanation.top.every((c) => !c.sameImage)).toBe(true);
  });
});

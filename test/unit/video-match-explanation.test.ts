// A video matched through a verdict about another video: the decider holds the match to HMA's
// shares (policy.video) and the explanation shows them, in `vouch explain` and the console. The
// verdict store and the trust engine are stand-ins (test/helpers/decider.ts).
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { VerdictMatch } from '../../server/verdicts/index.js';
import { queryOf } from '../../server/matching/matcher.js';
import { formatExplanation } from '../../server/cli/explain.js';
import { explanationHtml } from '../../server/console/verdict-pages.js';
import { standInDecider, verdictMatch } from '../helpers/decider.js';

const US = 'https://us.example/actor';
const PEER = 'https://peer.example/actor';
const frame = () => randomBytes(32).toString('hex');
const shared = Array.from({ length: 5 }, frame);
const theirsOnly = Array.from({ length: 5 }, frame);

function verdictAbout(frames: string[], issuer: string): VerdictMatch {
  const subjects = frames.map((digest) => ({ algorithm: 'vpdq', digest, quality: 90 }));
  return verdictMatch({ issuer, local: issuer === US, subjects, label: 'csam', matchedBy: 'vpdq' });
}

function decide(ours: string[], verdict: VerdictMatch) {
  return standInDecider(US).decideFrom([verdict], queryOf(ours.map((digest) => ({ algorithm: 'vpdq', digest, quality: 90 }))));
}

describe('video-to-video matches in explanations', () => {
  it('shows the shares of frames matched each way, in the explanation, the CLI text and the console', () => {
    // All 5 of our frames are in their 10-frame video: 100 % of ours, 50 % of theirs.
    const { explanation } = decide(shared, verdictAbout([...shared, ...theirsOnly], PEER));
    expect(explanation.top).toHaveLength(1);
    expect(explanation.top[0].videoMatch).toEqual({ queryMatchPercent: 100, comparedMatchPercent: 50 });
    expect(formatExplanation(explanation)).toContain("video match: 100.0% of this video's frames, 50.0% of that one's");
    expect(explanationHtml(explanation).toString()).toContain("video match: 100.0% of this video's frames, 50.0% of that one's");
  });

  it('our own verdict about another video shows the shares where it decides', () => {
    const { explanation } = decide([...shared, theirsOnly[0]], verdictAbout(shared, US));
    expect(explanation.decidedBy).toBe('local');
    // 5 of our 6 frames (83.3 %) are theirs, all 5 of theirs are ours.
    expect(explanation.localVerdict?.videoMatch).toEqual({ queryMatchPercent: 83.3, comparedMatchPercent: 100 });
    expect(formatExplanation(explanation)).toContain("video match: 83.3% of this video's frames, 100.0% of that one's");
  });

  it('a video sharing too few frames with the verdict\'s is no match, and an image or exact match shows no shares', () => {
    // 2 of our 5 frames: 40 %, under the policy's 80 %.
    const few = decide([...shared.slice(0, 2), ...Array.from({ length: 3 }, frame)], verdictAbout(shared, PEER));
    expect(few.explanation.top).toHaveLength(0);
    expect(few.outcome).toBe('unknown');
    const exact = standInDecider(US).decideFrom(
      [{ ...verdictAbout([], PEER), subjects: [{ algorithm: 'md5', digest: 'ab'.repeat(16) }], matchedBy: 'md5' }],
      queryOf([{ algorithm: 'md5', digest: 'ab'.repeat(16) }]),
    );
    expect(exact.explanation.top[0].videoMatch).toBeUndefined();
    expect(formatExplanation(exact.explanation)).not.toContain('video match');
  });
});

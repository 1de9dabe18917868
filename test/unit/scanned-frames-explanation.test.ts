// The frames behind our scanner's verdict about a video travel from the verdict into the decision's
// explanation and are shown by `vouch explain` and the console. The verdict store and the trust
// engine are stand-ins (test/helpers/decider.ts).
import { describe, expect, it } from 'vitest';
import type { VerdictMatch } from '../../server/verdicts/index.js';
import type { ScannedFrames } from '../../server/trust/decide.js';
import { queryOf } from '../../server/matching/matcher.js';
import { formatExplanation } from '../../server/cli/explain.js';
import { explanationHtml } from '../../server/console/verdict-pages.js';
import { standInDecider, verdictMatch } from '../helpers/decider.js';

const US = 'https://us.example/actor';
const SHA = 'ab'.repeat(32);
const SCANNED: ScannedFrames = {
  sampled: 8,
  frames: [
    { seconds: 3.5, label: 'sexual', confidence: 0.95 },
    { seconds: 4.5, label: 'sexual', confidence: 0.61 },
  ],
};

function scannerVerdict(scannedFrames?: ScannedFrames): VerdictMatch {
  return verdictMatch({
    issuer: US,
    local: true,
    subjects: [{ algorithm: 'sha256', digest: SHA }],
    label: 'sexual',
    confidence: 0.95,
    method: 'classifier',
    classifier: 'test-mean-colour@1',
    source: 'scanner:decision-1',
    ...(scannedFrames ? { scannedFrames } : {}),
  });
}

const decide = (verdict: VerdictMatch) => standInDecider(US).decideFrom([verdict], queryOf([{ algorithm: 'sha256', digest: SHA }]));

describe('scanned frames in explanations', () => {
  it('a video verdict of our scanner names its frames in the explanation, the CLI text and the console', () => {
    const { explanation } = decide(scannerVerdict(SCANNED));
    expect(explanation.top[0].scannedFrames).toEqual(SCANNED);
    const text = formatExplanation(explanation);
    expect(text).toContain('frames behind it (of 8 sampled): 3.5 s sexual 0.950, 4.5 s sexual 0.610');
    const page = explanationHtml(explanation).toString();
    expect(page).toContain('frames behind it (of 8 sampled): 3.5 s sexual 0.95, 4.5 s sexual 0.61');
  });

  it('an image verdict has none', () => {
    const { explanation } = decide(scannerVerdict());
    expect(explanation.top[0].scannedFrames).toBeUndefined();
    expect(formatExplanation(explanation)).not.toContain('frames behind it');
    expect(explanationHtml(explanation).toString()).not.toContain('scanned-frames');
  });
});

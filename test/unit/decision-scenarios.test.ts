// The adversarial decision scenarios of decision 15 (docs/decisions/0015-closest-evidence-first.md),
// one test per row, under the default policy and the bundled models' names. BIG is a peer trusted
// 0.9 in both polarities; `me` is this instance. Rows that involve federation run again between
// real servers in test/integration/adversarial.test.ts.
import { describe, expect, it } from 'vitest';
import { decide, DEFAULT_POLICY, parsePolicy, STRICT_PDQ_RADIUS, type MatchedVerdict, type WeightFn } from '../../server/trust/decide.js';

const MOBILENET = { name: 'nsfwjs-mobilenet-v2', version: 'nsfwjs-4.3.0' };
const INCEPTION = { name: 'nsfwjs-inception-v3', version: 'nsfwjs-4.3.0' };
const GORE_NET = { name: 'gore-net', version: '1' };

let serial = 0;
function v(fields: Partial<MatchedVerdict> & Pick<MatchedVerdict, 'issuer' | 'label'>): MatchedVerdict {
  const local = fields.issuer === 'me';
  return {
    uri: `${fields.issuer}/verdicts/${++serial}`,
    local,
    confidence: 0.9,
    method: 'classifier',
    distance: 0,
    matchedBy: 'sha256',
    published: '2026-01-01T00:00:00Z',
    ...fields,
  };
}
/** A perceptual match at `distance` bits, with or without pHash-64 agreeing. */
const near = (distance: number, secondHashAgrees = false) => ({ distance, matchedBy: 'pdq' as const, secondHashAgrees });

const weights: WeightFn = (issuer) => ({ weight: { BIG: 0.9, C: 0.9, R: 0.9 }[issuer] ?? 0 });
const run = (verdicts: MatchedVerdict[]) => decide(verdicts, weights, DEFAULT_POLICY, { self: 'me' });

describe('decision 15: closest evidence first', () => {
  it('1. a near-duplicate scanned ok here never overrides a trusted human csam on the exact file (the reported case)', () => {
    const d = run([
      v({ issuer: 'BIG', label: 'ok', classifier: MOBILENET }),
      v({ issuer: 'BIG', label: 'ok', classifier: INCEPTION }),
      v({ issuer: 'BIG', label: 'csam', method: 'human', confidence: 1 }),
      v({ issuer: 'me', label: 'ok', classifier: MOBILENET, ...near(14) }),
    ]);
    expect(d).toMatchObject({ outcome: 'block', label: 'csam', scan: false });
    // BIG's human outranks BIG's own scanner; our looser ok cannot argue against the exact csam.
    const notes = Object.fromEntries(d.explanation.top.map((t) => [`${t.issuer} ${t.method} ${t.classifier}`, t.notCounted ?? 'counted']));
    expect(notes).toMatchObject({
      'BIG classifier nsfwjs-mobilenet-v2@nsfwjs-4.3.0': 'outranked-by-own-human',
      'me classifier nsfwjs-mobilenet-v2@nsfwjs-4.3.0': 'looser-than-evidence',
    });
  });

  it('1b. ...nor does one at the strict radius', () => {
    const d = run([v({ issuer: 'BIG', label: 'csam', method: 'human', confidence: 1 }), v({ issuer: 'me', label: 'ok', classifier: MOBILENET, ...near(4, true) })]);
    expect(d.outcome).toBe('block');
  });

  it('2. a crafted image near an allowed one is not allowed without a scan; only the exact file is the same image', () => {
    const crafted = [v({ issuer: 'BIG', label: 'ok', classifier: MOBILENET, ...near(2) }), v({ issuer: 'BIG', label: 'ok', classifier: INCEPTION, ...near(2) })];
    expect(run(crafted)).toMatchObject({ outcome: 'unknown', scan: true });
    // pHash-64 agreeing too does not make it the same image by default: a PDQ collision drags
    // pHash-64 along (docs/benchmarks.md, "Match radii").
    const bothHashes = crafted.map((x) => ({ ...x, secondHashAgrees: true }));
    expect(run(bothHashes)).toMatchObject({ outcome: 'unknown', scan: true });
    expect(run(crafted.map((x) => ({ ...x, distance: 0, matchedBy: 'sha256' as const })))).toMatchObject({ outcome: 'allow', scan: false });
    // A policy that accepts near-duplicates on two hashes allows there, and never beyond the strict radius.
    const lenient = parsePolicy({ ...DEFAULT_POLICY, match: { ...DEFAULT_POLICY.match, nearDuplicateAllows: true } });
    expect(decide(bothHashes, weights, lenient).outcome).toBe('allow');
    expect(decide(crafted, weights, lenient).outcome).toBe('unknown');
    expect(decide(bothHashes.map((x) => ({ ...x, distance: STRICT_PDQ_RADIUS + 1 })), weights, lenient).outcome).toBe('unknown');
  });

  it('3. a crafted image near a blocked hash is blocked (blocks keep the wide radius)...', () => {
    expect(run([v({ issuer: 'BIG', label: 'csam', method: 'human', confidence: 1, ...near(8) })])).toMatchObject({ outcome: 'block', label: 'csam' });
  });

  it('3b. ...and once our scanner called the crafted file ok, it goes to a human, fail-closed for csam', () => {
    const d = run([v({ issuer: 'BIG', label: 'csam', method: 'human', confidence: 1, ...near(8) }), v({ issuer: 'me', label: 'ok', classifier: MOBILENET })]);
    expect(d).toMatchObject({ outcome: 'review', label: 'csam', scan: false });
  });

  it('4. a classifier’s ok counts only against what it can see: adult-content models do not clear gore', () => {
    const d = run([
      v({ issuer: 'C', label: 'gore', classifier: GORE_NET }),
      v({ issuer: 'BIG', label: 'ok', classifier: MOBILENET }),
      v({ issuer: 'BIG', label: 'ok', classifier: INCEPTION }),
    ]);
    expect(d).toMatchObject({ outcome: 'block', label: 'gore' });
    expect(d.explanation.labels.find((l) => l.label === 'gore')).toMatchObject({ s: 0, cannotSee: ['nsfwjs-inception-v3@nsfwjs-4.3.0', 'nsfwjs-mobilenet-v2@nsfwjs-4.3.0'] });
    // With nobody suspecting gore, the same two models allow: gore is not a label the default policy asks an allow to clear.
    expect(run([v({ issuer: 'BIG', label: 'ok', classifier: MOBILENET }), v({ issuer: 'BIG', label: 'ok', classifier: INCEPTION })]).outcome).toBe('allow');
    // A classifier the policy does not know sees nothing: its ok counts for no label.
    const unknownModel = run([v({ issuer: 'BIG', label: 'ok', classifier: { name: 'mystery', version: '1' } }), v({ issuer: 'C', label: 'ok', classifier: MOBILENET })]);
    expect(unknownModel.outcome).toBe('unknown');
  });

  it('5. one issuer speaks once: its human ok outranks its own classifier’s flag', () => {
    const d = run([
      v({ issuer: 'BIG', label: 'sexual', classifier: MOBILENET, confidence: 0.95 }),
      v({ issuer: 'BIG', label: 'ok', method: 'human', confidence: 1 }),
      v({ issuer: 'C', label: 'ok', classifier: INCEPTION }),
    ]);
    expect(d).toMatchObject({ outcome: 'allow', label: 'ok' });
    expect(d.explanation.labels.find((l) => l.label === 'sexual')!.r).toBe(0);
  });

  it('6. consensus verdicts relay either side at their tier: a relayed human csam on the exact file beats looser oks; a relayed ok against a human csam is a dispute', () => {
    const relayedCsam = v({ issuer: 'R', label: 'csam', method: 'consensus', basis: [{ issuer: 'C', method: 'human', contribution: 1 }] });
    const looseOks = [v({ issuer: 'BIG', label: 'ok', classifier: MOBILENET, ...near(14) }), v({ issuer: 'BIG', label: 'ok', classifier: INCEPTION, ...near(14) })];
    expect(run([relayedCsam, ...looseOks])).toMatchObject({ outcome: 'block', label: 'csam' });
    const relayedOk = v({ issuer: 'R', label: 'ok', method: 'consensus', basis: [{ issuer: 'C', method: 'human', contribution: 1 }] });
    expect(run([relayedOk, v({ issuer: 'BIG', label: 'csam', method: 'human', confidence: 1 })])).toMatchObject({ outcome: 'review', label: 'csam' });
  });

  it('7. expiry or retraction mid-way: what is left decides; a looser scan of ours never allows the original', () => {
    const ours = v({ issuer: 'me', label: 'ok', classifier: MOBILENET, ...near(14) });
    // BIG's human csam expired or was retracted (the store leaves it out): our looser scan alone cannot allow.
    expect(run([ours])).toMatchObject({ outcome: 'unknown', scan: true });
  });

  it('8. our moderator decides at exact or strict match, but closer contrary evidence sends it to a human', () => {
    // Our moderator's ok decides on the same image only: near it, it is evidence, and allow needs the same image.
    const ourOkNear = v({ issuer: 'me', label: 'ok', method: 'human', confidence: 1, ...near(6) });
    expect(run([ourOkNear])).toMatchObject({ outcome: 'unknown', scan: true });
    const ourOkRotated = v({ issuer: 'me', label: 'ok', method: 'human', confidence: 1, ...near(0) });
    expect(run([ourOkRotated]).outcome).toBe('unknown');
    // Our moderator's csam decides at the strict radius, unless a trusted human ok on the exact file contests it.
    const ourCsamNear = v({ issuer: 'me', label: 'csam', method: 'human', confidence: 1, ...near(6) });
    expect(run([ourCsamNear])).toMatchObject({ outcome: 'block', explanation: { decidedBy: 'local' } });
    expect(run([ourCsamNear, v({ issuer: 'BIG', label: 'ok', method: 'human', confidence: 1 })])).toMatchObject({ outcome: 'review', label: 'csam' });
    // Our ok on the exact file, against closer evidence? None is closer than exact: ours decides.
    expect(run([v({ issuer: 'me', label: 'ok', method: 'human', confidence: 1 }), v({ issuer: 'BIG', label: 'csam', method: 'human', confidence: 1, ...near(3) })]).outcome).toBe('allow');
    // At the same tier ours wins (our moderator looked at this very file).
    const ourOkExact = v({ issuer: 'me', label: 'ok', method: 'human', confidence: 1 });
    expect(run([ourOkExact, v({ issuer: 'BIG', label: 'csam', method: 'human', confidence: 1 })])).toMatchObject({ outcome: 'allow' });
    // Our list's csam decides at the strict radius; a trusted human ok on the exact file contests it.
    const ourList = v({ issuer: 'me', label: 'csam', method: 'hashlist', confidence: 1, ...near(5) });
    expect(run([ourList])).toMatchObject({ outcome: 'block', explanation: { decidedBy: 'local' } });
    expect(run([ourList, v({ issuer: 'BIG', label: 'ok', method: 'human', confidence: 1 })])).toMatchObject({ outcome: 'review' });
  });

  it('9. our moderators further out are evidence at full weight, not a decision', () => {
    // Beyond the strict radius: r = 1 × (1 − 20/31) = 0.35, short of a block alone; a scan decides.
    const far = v({ issuer: 'me', label: 'csam', method: 'human', confidence: 1, ...near(STRICT_PDQ_RADIUS + 2) });
    const alone = run([far]);
    expect(alone).toMatchObject({ outcome: 'unknown', scan: true, explanation: { decidedBy: 'evidence' } });
    expect(alone.explanation.labels.find((l) => l.label === 'csam')!.r).toBeCloseTo(1 - 20 / 31, 3);
    // ...and with a trusted peer's classifier agreeing, the two together block.
    expect(run([far, v({ issuer: 'BIG', label: 'csam', confidence: 0.5, ...near(STRICT_PDQ_RADIUS + 2) })]).outcome).toBe('block');
  });

  it('10. our own scan is not repeated: once our scanner classified this very file, an undecided outcome asks no scan', () => {
    const one = run([v({ issuer: 'me', label: 'ok', classifier: MOBILENET })]);
    expect(one).toMatchObject({ outcome: 'unknown', scan: false });
    const two = run([v({ issuer: 'me', label: 'ok', classifier: MOBILENET }), v({ issuer: 'me', label: 'ok', classifier: INCEPTION })]);
    expect(two).toMatchObject({ outcome: 'allow', explanation: { decidedBy: 'evidence' } });
    expect(run([v({ issuer: 'me', label: 'sexual', classifier: MOBILENET })])).toMatchObject({ outcome: 'block', label: 'sexual' });
  });
});

import { describe, expect, it } from 'vitest';
import {
  labelsAtStake,
  DECISION_LABELS,
  DEFAULT_POLICY,
  betaOpinion,
  decide as decideWithPolicy,
  match,
  parsePolicy,
  policyHash,
  policySchema,
  type MatchedVerdict,
  type PeerWeight,
  type Policy,
  type WeightFn,
} from '../../server/trust/decide.js';

let serial = 0;
function verdict(fields: Partial<MatchedVerdict> & Pick<MatchedVerdict, 'issuer' | 'label'>): MatchedVerdict {
  serial++;
  return {
    uri: `${fields.issuer}/verdicts/${serial}`,
    local: false,
    confidence: 1,
    method: 'human',
    distance: 0,
    // Distance 0 here means the exact file unless a test says otherwise.
    matchedBy: (fields.distance ?? 0) === 0 ? 'sha256' : 'pdq',
    published: '2025-01-01T00:00:00Z',
    ...fields,
  };
}

/**
 * The rules under test, with every classifier the verdicts name seeing every label unless the test
 * gives its own policy (classifier scopes have tests of their own).
 */
function decide(verdicts: readonly MatchedVerdict[], weight: WeightFn, policy?: Policy, options?: Parameters<typeof decideWithPolicy>[3]) {
  if (policy) return decideWithPolicy(verdicts, weight, policy, options);
  const names = verdicts.flatMap((v) => [v.classifier?.name, ...(v.basis ?? []).map((b) => b.classifier?.name)]).filter((n): n is string => n !== undefined);
  const scopes = Object.fromEntries(names.map((n) => [n, [...DECISION_LABELS]]));
  return decideWithPolicy(verdicts, weight, parsePolicy({ ...DEFAULT_POLICY, classifierScopes: scopes }), options);
}

const classifier = (name: string, version = '1') => ({ name, version });

/** A weight table: issuer -> weight (both polarities, every label) unless given per polarity. */
function table(weights: Record<string, number | { abuse: number; ok: number }>): WeightFn {
  return (issuer, polarity): PeerWeight => {
    const w = weights[issuer];
    if (w === undefined) return { weight: 0 };
    const weight = typeof w === 'number' ? w : w[polarity];
    return { weight, paths: [{ via: [issuer], contribution: weight }] };
  };
}

const evidence = (d: ReturnType<typeof decide>, label: string) => d.explanation.labels.find((l) => l.label === label)!;

describe('match(distance)', () => {
  it('is 1 for identical hashes, falls linearly, and is 0 at the threshold and beyond', () => {
    expect(match(0)).toBe(1);
    expect(match(31)).toBe(0);
    expect(match(40)).toBe(0);
    expect(match(15.5)).toBeCloseTo(0.5, 10);
    expect(match(10, 20)).toBeCloseTo(0.5, 10);
    expect(match(-3)).toBe(1);
    expect(match(Number.NaN)).toBe(0);
  });

  it('scales a verdict’s contribution, and a verdict at the threshold counts for nothing', () => {
    const w = table({ a: 1 });
    const near = decide([verdict({ issuer: 'a', label: 'csam', distance: 15.5 })], w);
    expect(evidence(near, 'csam').r).toBeCloseTo(0.5, 3);
    const far = decide([verdict({ issuer: 'a', label: 'csam', distance: 31 })], w);
    expect(far.outcome).toBe('unknown');
    expect(far.explanation.verdicts).toEqual({ local: 0, peer: 0, ignored: 1 });
  });
});

describe('Beta combination', () => {
  it('is the textbook (r+1)/(r+s+2) with prior weight 2', () => {
    expect(betaOpinion(3, 1, 2)).toEqual({ p: 4 / 6, u: 2 / 6 });
    const policy = parsePolicy({ ...DEFAULT_POLICY, priorWeight: 2 });
    const d = decide([verdict({ issuer: 'a', label: 'gore', confidence: 0.5 })], table({ a: 1 }), policy);
    expect(evidence(d, 'gore').p).toBeCloseTo(1.5 / 2.5, 4);
    expect(evidence(d, 'gore').u).toBeCloseTo(2 / 2.5, 4);
    // ...under which one verdict can never reach a 0.7 block threshold: hence W = 0.3 by default.
    expect(d.outcome).toBe('unknown');
  });
});

describe('thresholds', () => {
  it('blocks on one trusted peer’s classifier verdict (0.9 × 0.9 ≥ minEvidence) and names the label', () => {
    const d = decide([verdict({ issuer: 'a', label: 'sexual', confidence: 0.9, method: 'classifier', classifier: classifier('nsfw') })], table({ a: 0.9 }));
    expect(d).toMatchObject({ outcome: 'block', label: 'sexual', scan: false });
    expect(evidence(d, 'sexual').r).toBeCloseTo(0.81, 4);
  });

  it('does not block below minEvidence, nor below blockProbability', () => {
    const weak = decide([verdict({ issuer: 'a', label: 'csam', confidence: 0.9 })], table({ a: 0.5 })); // r = 0.45
    expect(weak).toMatchObject({ outcome: 'unknown', scan: true, label: null });
    const policy = parsePolicy({ ...DEFAULT_POLICY, labels: { ...DEFAULT_POLICY.labels, csam: { blockProbability: 0.95, minEvidence: 0.5 } } });
    const strict = decide([verdict({ issuer: 'a', label: 'csam', confidence: 0.9 })], table({ a: 0.9 }), policy);
    expect(strict.outcome).toBe('unknown');
    expect(decide([verdict({ issuer: 'a', label: 'csam', confidence: 0.9 })], table({ a: 0.9 })).outcome).toBe('block');
  });

  it('reports the most severe blocking label', () => {
    const w = table({ a: 0.9, b: 0.9 });
    const d = decide([verdict({ issuer: 'a', label: 'spam' }), verdict({ issuer: 'b', label: 'csam' })], w);
    expect(d.label).toBe('csam');
  });

  it('allows only with more evidence and two independent classifiers or a human', () => {
    const w = table({ a: 0.9, b: 0.9, c: 0.9 });
    const ok = (issuer: string, name: string) =>
      verdict({ issuer, label: 'ok', confidence: 0.9, method: 'classifier', classifier: classifier(name) });
    expect(decide([ok('a', 'nsfw')], w).outcome).toBe('unknown'); // one classifier: s = 0.81 < 1
    const two = decide([ok('a', 'nsfw'), ok('b', 'clip')], w);
    expect(two).toMatchObject({ outcome: 'allow', label: 'ok', scan: false });
    expect(evidence(two, 'csam')).toMatchObject({ okClassifiers: 2, okHuman: false });
    // Versions are different classifiers.
    expect(decide([ok('a', 'nsfw'), verdict({ issuer: 'b', label: 'ok', confidence: 0.9, method: 'classifier', classifier: classifier('nsfw', '2') })], w).outcome).toBe('allow');
    // One human ok is not evidence enough (0.855 < 1); a human and a classifier are.
    expect(decide([verdict({ issuer: 'a', label: 'ok', confidence: 0.95 })], w).outcome).toBe('unknown');
    expect(decide([verdict({ issuer: 'a', label: 'ok', confidence: 0.95 }), ok('b', 'nsfw')], w).outcome).toBe('allow');
    // Enough evidence but only from hash lists: not independent classifiers, no human.
    const lists = [verdict({ issuer: 'a', label: 'ok', method: 'hashlist' }), verdict({ issuer: 'b', label: 'ok', method: 'hashlist' })];
    const d = decide(lists, w);
    expect(d.outcome).toBe('unknown');
    expect(d.explanation.reason).toMatch(/0 independent classifier\(s\) < 2 and no human/);
  });

  it('weighs ok claims with the trust in ok claims, not in abuse flags', () => {
    const w = table({ a: { abuse: 0.9, ok: 0.1 }, b: { abuse: 0.9, ok: 0.1 } });
    const d = decide([verdict({ issuer: 'a', label: 'ok' }), verdict({ issuer: 'b', label: 'ok' })], w);
    expect(evidence(d, 'csam').s).toBeCloseTo(0.2, 4);
    expect(d.outcome).toBe('unknown');
  });

  it('ignores peers with no trust path', () => {
    const d = decide([verdict({ issuer: 'stranger', label: 'csam' })], table({}));
    expect(d.outcome).toBe('unknown');
    expect(d.explanation.reason).toMatch(/none counted/);
  });
});

describe('de-duplication', () => {
  const w = table(Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`peer${i}`, 0.9])));

  it('counts ten instances reporting the same classifier’s ok as one', () => {
    const tenSame = Array.from({ length: 10 }, (_, i) =>
      verdict({ issuer: `peer${i}`, label: 'ok', confidence: 0.9, method: 'classifier', classifier: classifier('nsfw') }),
    );
    const d = decide(tenSame, w);
    expect(evidence(d, 'csam').s).toBeCloseTo(0.81, 4);
    expect(evidence(d, 'csam').okClassifiers).toBe(1);
    expect(d.outcome).toBe('unknown');
    expect(d.explanation.top.filter((t) => t.deduplicated)).toHaveLength(9);
    expect(d.explanation.top[0]).toMatchObject({ deduplicated: false, classifier: 'nsfw@1' });
    expect(d.explanation.top[1].repeatOf).toBe(d.explanation.top[0].uri);
  });

  it('keeps the strongest instance of a classifier on each side', () => {
    const runs = [0.5, 0.9, 0.7].map((confidence, i) =>
      verdict({ issuer: `peer${i}`, label: 'gore', confidence, method: 'classifier', classifier: classifier('gore-net') }),
    );
    const d = decide(runs, w);
    expect(evidence(d, 'gore').r).toBeCloseTo(0.81, 4);
    expect(d.explanation.top.filter((t) => !t.deduplicated).map((t) => t.uri)).toEqual([runs[1].uri]);
    expect(d.explanation.top.filter((t) => t.deduplicated).every((t) => t.repeatOf === runs[1].uri)).toBe(true);
  });

  it('counts the same classifier once on each side', () => {
    const c = classifier('nsfw');
    const d = decide(
      [
        verdict({ issuer: 'peer0', label: 'sexual', confidence: 0.9, method: 'classifier', classifier: c }),
        verdict({ issuer: 'peer1', label: 'sexual', confidence: 0.9, method: 'classifier', classifier: c }),
        verdict({ issuer: 'peer2', label: 'ok', confidence: 0.9, method: 'classifier', classifier: c }),
        verdict({ issuer: 'peer3', label: 'ok', confidence: 0.9, method: 'classifier', classifier: c }),
      ],
      w,
    );
    expect(evidence(d, 'sexual')).toMatchObject({ r: 0.81, s: 0.81 });
    expect(d.outcome).toBe('review');
  });

  it('counts each instance’s human review separately, and one instance’s repeats once', () => {
    const humans = Array.from({ length: 10 }, (_, i) => verdict({ issuer: `peer${i}`, label: 'ok', confidence: 0.9 }));
    const d = decide(humans, w);
    expect(evidence(d, 'csam').s).toBeCloseTo(8.1, 4);
    expect(d.outcome).toBe('allow');
    const repeats = Array.from({ length: 5 }, () => verdict({ issuer: 'peer0', label: 'hate', confidence: 0.9 }));
    expect(evidence(decide(repeats, w), 'hate').r).toBeCloseTo(0.81, 4);
  });

  it('counts hash lists and consensus verdicts per issuer', () => {
    const d = decide(
      [
        verdict({ issuer: 'peer0', label: 'csam', method: 'hashlist', confidence: 0.5 }),
        verdict({ issuer: 'peer1', label: 'csam', method: 'hashlist', confidence: 0.5 }),
        verdict({ issuer: 'peer1', label: 'csam', method: 'consensus', confidence: 0.5 }),
      ],
      w,
    );
    expect(evidence(d, 'csam').r).toBeCloseTo(1.35, 4);
  });
});

describe('disputes', () => {
  const w = table({ a: 0.9, b: 0.9, c: 0.9 });

  it('sends a label with ≥ 20 % of the evidence on each side to review, before block and allow', () => {
    const d = decide(
      [
        verdict({ issuer: 'a', label: 'csam' }),
        verdict({ issuer: 'b', label: 'csam' }),
        verdict({ issuer: 'c', label: 'ok', confidence: 0.6 }),
      ],
      w,
    ); // r = 1.8, s = 0.54: 23 %
    expect(d).toMatchObject({ outcome: 'review', label: 'csam', scan: true });
    expect(d.explanation.reason).toMatch(/disputed/);
  });

  it('blocks when the other side holds less than 20 %', () => {
    const d = decide(
      [verdict({ issuer: 'a', label: 'csam' }), verdict({ issuer: 'b', label: 'csam' }), verdict({ issuer: 'c', label: 'ok', confidence: 0.4 })],
      w,
    ); // s = 0.36: 17 %
    expect(d.outcome).toBe('block');
  });

  it('is not a dispute below minReviewEvidence', () => {
    const d = decide([verdict({ issuer: 'a', label: 'spam', confidence: 0.2 }), verdict({ issuer: 'b', label: 'ok', confidence: 0.2 })], w);
    expect(d.outcome).toBe('unknown');
  });
});

describe('labels at stake (which failMode applies to undecided media)', () => {
  it('are the disputed label of a review and every label peers flagged, however weakly', () => {
    const weak = decide(
      [verdict({ issuer: 'a', label: 'csam', confidence: 0.2 }), verdict({ issuer: 'b', label: 'spam', confidence: 0.9 })],
      table({ a: 0.5, b: 0.5 }),
    );
    expect(weak.outcome).toBe('unknown');
    // csam carries less evidence than spam here, and is still at stake.
    expect(labelsAtStake(weak).sort()).toEqual(['csam', 'spam']);
    expect(labelsAtStake(decide([], table({})))).toEqual([]);
    const okOnly = decide([verdict({ issuer: 'a', label: 'ok', confidence: 0.9 })], table({ a: 0.5 }));
    expect(labelsAtStake(okOnly)).toEqual([]);
    expect(labelsAtStake({ label: 'gore', explanation: { labels: [] } })).toEqual(['gore']);
  });
});

describe('local verdicts first', () => {
  const w = table({ a: 0.9, b: 0.9, c: 0.9 });
  const peersSayOk = [
    verdict({ issuer: 'a', label: 'ok', method: 'classifier', classifier: classifier('x') }),
    verdict({ issuer: 'b', label: 'ok', method: 'classifier', classifier: classifier('y') }),
    verdict({ issuer: 'c', label: 'ok' }),
  ];

  it('a local block beats any number of peers’ ok, and says so', () => {
    const mine = verdict({ issuer: 'me', local: true, label: 'csam', method: 'hashlist', confidence: 0.6 });
    const d = decide([...peersSayOk, mine], w);
    expect(d).toMatchObject({ outcome: 'block', label: 'csam', scan: false });
    expect(d.explanation.decidedBy).toBe('local');
    expect(d.explanation.localVerdict?.uri).toBe(mine.uri);
    expect(d.explanation.reason).toMatch(/^block: our own hashlist verdict 'csam' at exact match/);
    // Peers' evidence is still shown.
    expect(evidence(d, 'csam').s).toBeGreaterThan(1);
  });

  it('the newest local verdict decides (a moderator overturning the scanner)', () => {
    const scanner = verdict({ issuer: 'me', local: true, label: 'sexual', method: 'classifier', classifier: classifier('nsfw'), published: '2025-01-01T00:00:00Z' });
    const moderator = verdict({ issuer: 'me', local: true, label: 'ok', method: 'human', published: new Date('2025-01-02T00:00:00Z') });
    expect(decide([moderator, scanner], w)).toMatchObject({ outcome: 'allow', label: 'ok' });
    const again = verdict({ issuer: 'me', local: true, label: 'sexual', method: 'human', published: '2025-01-03T00:00:00Z' });
    expect(decide([moderator, scanner, again], w)).toMatchObject({ outcome: 'block', label: 'sexual' });
  });

  it('a local ok allows even against peers’ abuse flags', () => {
    const d = decide([verdict({ issuer: 'a', label: 'csam' }), verdict({ issuer: 'me', local: true, label: 'ok' })], w);
    expect(d).toMatchObject({ outcome: 'allow', label: 'ok' });
  });

  it('a local verdict beyond the distance threshold does not count', () => {
    const d = decide([verdict({ issuer: 'me', local: true, label: 'csam', distance: 31 })], w);
    expect(d.outcome).toBe('unknown');
  });
});

describe('sybils (trusted T 0.9, low-trust L 0.2, 50 sybils behind L sharing δ·0.2)', () => {
  // Stand-in for the trust-flow weights: L passes on at most δ = 0.5 of its weight, split across
  // the 50 sybils it vouches for, so each gets 0.5 × 0.2 / 50 = 0.002 (total 0.1 ≤ δ/(1−δ) × 0.2).
  const SYBILS = 50;
  const sybilWeight = (0.5 * 0.2) / SYBILS;
  const weights: Record<string, number> = { T: 0.9, T2: 0.9, L: 0.2 };
  for (let i = 0; i < SYBILS; i++) weights[`sybil${i}`] = sybilWeight;
  const w: WeightFn = (issuer, polarity) => {
    const weight = weights[issuer] ?? 0;
    return { weight, paths: issuer.startsWith('sybil') ? [{ via: ['L', issuer], contribution: weight }] : [{ via: [issuer], contribution: weight }] };
  };
  const tCsam = verdict({ issuer: 'T', label: 'csam', method: 'human', confidence: 0.95 });
  const sybilHumans = Array.from({ length: SYBILS }, (_, i) => verdict({ issuer: `sybil${i}`, label: 'ok', method: 'human' }));
  const sybilClassifiers = Array.from({ length: SYBILS }, (_, i) =>
    verdict({ issuer: `sybil${i}`, label: 'ok', method: 'classifier', classifier: classifier(`fake-model-${i}`) }),
  );

  it('(a) 50 sybils asserting ok as humans do not unblock a hash T marked csam', () => {
    const d = decide([tCsam, ...sybilHumans], w);
    expect(d).toMatchObject({ outcome: 'block', label: 'csam' });
    expect(evidence(d, 'csam').s).toBeCloseTo(0.1, 6);
    expect(d.explanation.top[0]).toMatchObject({ issuer: 'T', contribution: 0.855 });
    expect(d.explanation.top).toHaveLength(10);
    expect(d.explanation.omitted).toBe(41);
  });

  it('(a) ...nor as 50 different classifiers', () => {
    const d = decide([tCsam, ...sybilClassifiers], w);
    expect(d).toMatchObject({ outcome: 'block', label: 'csam' });
    expect(evidence(d, 'csam').okClassifiers).toBe(50);
  });

  it('(a) a swarm ten times larger weighs no more (the flow splits L’s share)', () => {
    const many = 500;
    const wMany: WeightFn = (issuer) => ({ weight: issuer === 'T' ? 0.9 : (0.5 * 0.2) / many });
    const swarm = Array.from({ length: many }, (_, i) => verdict({ issuer: `s${i}`, label: 'ok' }));
    const d = decide([tCsam, ...swarm], wMany);
    expect(d.outcome).toBe('block');
    expect(evidence(d, 'csam').s).toBeCloseTo(0.1, 6);
  });

  it('(a) with L itself also saying ok, the hash goes to review — never allow', () => {
    const d = decide([tCsam, ...sybilHumans, verdict({ issuer: 'L', label: 'ok' })], w);
    expect(d.outcome).toBe('review');
  });

  it('(b) T flipping to ok while another trusted peer keeps csam gives review, not allow', () => {
    const tOk = verdict({ issuer: 'T', label: 'ok', method: 'human', confidence: 0.95 });
    const t2Csam = verdict({ issuer: 'T2', label: 'csam', method: 'human', confidence: 0.95 });
    const d = decide([tOk, t2Csam, ...sybilHumans, ...sybilClassifiers], w);
    expect(d).toMatchObject({ outcome: 'review', label: 'csam', scan: true });
    expect(evidence(d, 'csam').p).toBeGreaterThan(DEFAULT_POLICY.allow.maxAbuseProbability);
  });

  it('(c) ten instances reporting the same classifier’s ok count as one', () => {
    const ten = Array.from({ length: 10 }, (_, i) =>
      verdict({ issuer: i === 0 ? 'T' : `sybil${i}`, label: 'ok', confidence: 0.9, method: 'classifier', classifier: classifier('nsfw') }),
    );
    const tenTrusted: WeightFn = () => ({ weight: 0.9 });
    const d = decide(ten, tenTrusted);
    expect(evidence(d, 'csam')).toMatchObject({ s: 0.81, okClassifiers: 1 });
    expect(d.outcome).toBe('unknown');
    expect(decide([tCsam, ...ten], tenTrusted).outcome).toBe('review'); // 0.855 vs 0.81
  });
});

describe('re-attestation (consensus verdicts with a basis)', () => {
  const nsfw = classifier('nsfw');
  const clip = classifier('clip');
  const source = (issuer: string, c: { name: string; version: string }, contribution: number) =>
    ({ issuer, method: 'classifier', classifier: c, contribution }) as const;
  const consensus = (issuer: string, label: MatchedVerdict['label'], basis: MatchedVerdict['basis']) =>
    verdict({ issuer, label, method: 'consensus', confidence: 0.9, basis });

  it('a peer decided by its peers re-attests with what it counted; we count it at our weight in it', () => {
    // R follows S (weight 0.8), which ran two models; R decides allow and its basis names both.
    const atR = decide(
      [
        verdict({ issuer: 'S', label: 'ok', method: 'classifier', classifier: nsfw, confidence: 0.9 }),
        verdict({ issuer: 'S', label: 'ok', method: 'classifier', classifier: clip, confidence: 0.9 }),
      ],
      table({ S: 0.8 }),
    );
    expect(atR.outcome).toBe('allow');
    expect(atR.basis).toEqual([source('S', nsfw, 0.72), source('S', clip, 0.72)]);
    // We follow R only (0.9): each relayed source counts 0.9 × 0.72, and as its classifier.
    const atUs = decide([consensus('R', 'ok', atR.basis)], table({ R: 0.9 }));
    expect(evidence(atUs, 'csam')).toMatchObject({ s: 1.296, okClassifiers: 2 });
    expect(atUs.outcome).toBe('allow');
    expect(atUs.explanation.top[0]).toMatchObject({ issuer: 'R', method: 'consensus', relays: { issuer: 'S', classifier: 'nsfw@1' }, contribution: 0.648 });
    // Relayed sources are not relayed again: a chain would make a retraction chase a loop.
    expect(atUs.basis).toEqual([]);
  });

  it('a relayed classifier is the same classifier: it counts once with the original, at the stronger', () => {
    const direct = verdict({ issuer: 'S', label: 'ok', method: 'classifier', classifier: nsfw, confidence: 0.9 });
    const d = decide([direct, consensus('R', 'ok', [source('S', nsfw, 0.72)])], table({ S: 0.5, R: 0.9 }));
    // 0.5 × 0.9 = 0.45 direct against 0.9 × 0.72 = 0.648 relayed: one classifier, 0.648.
    expect(evidence(d, 'csam')).toMatchObject({ s: 0.648, okClassifiers: 1 });
    // Ten relayers of the same run still count once.
    const ten = Array.from({ length: 10 }, (_, i) => consensus(`R${i}`, 'ok', [source('S', nsfw, 0.72)]));
    expect(evidence(decide(ten, () => ({ weight: 0.9 })), 'csam')).toMatchObject({ s: 0.648, okClassifiers: 1 });
  });

  it('ignores our own verdicts echoed back, and our own consensus verdicts', () => {
    const echo = consensus('R', 'ok', [source('me', nsfw, 0.9), source('me', clip, 0.9)]);
    const d = decide([echo], table({ R: 1 }), DEFAULT_POLICY, { self: 'me' });
    expect(d.outcome).toBe('unknown');
    expect(evidence(d, 'csam').s).toBe(0);
    const mine = verdict({ issuer: 'me', local: true, label: 'ok', method: 'consensus', confidence: 0.9 });
    const d2 = decide([mine], table({}), DEFAULT_POLICY, { self: 'me' });
    expect(d2).toMatchObject({ outcome: 'unknown', explanation: { decidedBy: 'evidence', verdicts: { local: 0, ignored: 1 } } });
  });

  it('one relayer counts at most issuerCap × its weight, however many sources it names', () => {
    const fake = Array.from({ length: 20 }, (_, i) => source(`sybil${i}`, classifier(`fake-${i}`), 1));
    const d = decide([consensus('L', 'ok', fake)], table({ L: 0.2 }));
    expect(evidence(d, 'csam').s).toBeCloseTo(2 * 0.2, 6);
    expect(d.explanation.top.every((t) => t.capped)).toBe(true);
    // ...so against a trusted peer's csam (0.855) it can ask for a review (0.4 is 32 %), never allow;
    // without the cap it would have weighed 20 × 0.2 = 4.
    const tCsam = verdict({ issuer: 'T', label: 'csam', method: 'human', confidence: 0.95 });
    expect(decide([tCsam, consensus('L', 'ok', fake)], table({ T: 0.9, L: 0.2 })).outcome).toBe('review');
    expect(decide([tCsam, consensus('L', 'ok', fake.slice(0, 1))], table({ T: 0.9, L: 0.1 })).outcome).toBe('block');
    // The same cap holds for one peer naming many classifiers of its own.
    const many = Array.from({ length: 20 }, (_, i) => verdict({ issuer: 'L', label: 'ok', method: 'classifier', classifier: classifier(`m${i}`) }));
    expect(evidence(decide(many, table({ L: 0.2 })), 'csam').s).toBeCloseTo(0.4, 6);
  });

  it('a capped relay never displaces the originals it copies, and the basis names the originals', () => {
    // Four peers' classifiers say sexual (0.8 each); R relays the same four at 1 each, capped to 2 × 0.9.
    const models = [0, 1, 2, 3].map((i) => classifier(`c${i}`));
    const originals = models.map((c, i) => verdict({ issuer: `P${i}`, label: 'sexual', method: 'classifier', classifier: c, confidence: 0.8 }));
    const relay = consensus('R', 'sexual', models.map((c, i) => source(`P${i}`, c, 1)));
    const weights = table({ P0: 1, P1: 1, P2: 1, P3: 1, R: 0.9, H: 1 });
    const humanOk = verdict({ issuer: 'H', label: 'ok', confidence: 0.6 });
    const without = decide([...originals, humanOk], weights);
    const withRelay = decide([...originals, relay, humanOk], weights);
    expect(without).toMatchObject({ outcome: 'block', label: 'sexual' });
    expect(withRelay).toMatchObject({ outcome: 'block', label: 'sexual' });
    expect(evidence(withRelay, 'sexual').r).toBeCloseTo(3.2, 6);
    expect(withRelay.basis.map((b) => b.issuer).sort()).toEqual(['P0', 'P1', 'P2', 'P3']);
    // When a relay does win a group, the basis still names the original we hold for it.
    const weak = verdict({ issuer: 'P0', label: 'ok', method: 'classifier', classifier: nsfw, confidence: 0.9 });
    const strong = consensus('R', 'ok', [source('S', nsfw, 0.9), source('S', clip, 0.9)]);
    const d = decide([weak, strong], table({ P0: 0.5, R: 1 }));
    expect(d.outcome).toBe('allow');
    expect(d.basis).toEqual([source('P0', nsfw, 0.45)]);
  });

  it('names at most 16 sources, the strongest', () => {
    const humans = Array.from({ length: 20 }, (_, i) => verdict({ issuer: `h${i}`, label: 'ok', confidence: 0.5 + i / 100 }));
    const d = decide(humans, () => ({ weight: 1 }));
    expect(d.outcome).toBe('allow');
    expect(d.basis).toHaveLength(16);
    expect(d.basis[0]).toMatchObject({ issuer: 'h19', contribution: 0.69 });
    expect(d.basis.at(-1)).toMatchObject({ issuer: 'h4' });
  });

  it('a block decided by peers re-attests the block’s evidence; a local decision re-attests nothing', () => {
    const d = decide([verdict({ issuer: 'T', label: 'csam', method: 'human', confidence: 0.95 })], table({ T: 0.9 }));
    expect(d).toMatchObject({ outcome: 'block', basis: [{ issuer: 'T', method: 'human', classifier: null, contribution: 0.855 }] });
    const atUs = decide([consensus('R', 'csam', d.basis)], table({ R: 0.8 }));
    expect(atUs).toMatchObject({ outcome: 'block', label: 'csam' });
    const local = decide([verdict({ issuer: 'me', local: true, label: 'csam' })], table({}));
    expect(local.basis).toEqual([]);
  });

  it('expires with the earliest of the verdicts counted on the deciding side, relays included', () => {
    const soon = '2031-01-01T00:00:00.000Z';
    const later = '2032-01-01T00:00:00.000Z';
    const s1 = verdict({ issuer: 'S', label: 'ok', method: 'classifier', classifier: nsfw, confidence: 0.9, expires: later });
    const relay = { ...consensus('R', 'ok', [source('Q', clip, 0.9)]), expires: new Date(soon) };
    const d = decide([s1, relay], table({ S: 0.9, R: 0.9 }));
    expect(d.outcome).toBe('allow');
    expect(d.expires?.toISOString()).toBe(soon);
    // What lost or was not counted does not shorten it; with nothing expiring, neither does it.
    const lost = verdict({ issuer: 'X', label: 'spam', confidence: 0.1, expires: '2030-01-01T00:00:00Z' });
    expect(decide([s1, relay, lost], table({ S: 0.9, R: 0.9, X: 0.5 })).expires?.toISOString()).toBe(soon);
    expect(decide([s1, { ...relay, expires: null }], table({ S: 0.9, R: 0.9 })).expires?.toISOString()).toBe(later);
    expect(decide([{ ...s1, expires: undefined }, { ...relay, expires: null }], table({ S: 0.9, R: 0.9 })).expires).toBeNull();
    // An allow holds for every label it clears, each with its own ok-side weights: a verdict that
    // counts for one label only still bounds it (here S's ok counts for sexual, where T's alone would do too).
    const perLabel: WeightFn = (issuer, _polarity, label) => ({ weight: issuer === 'T' || label === 'sexual' ? 1 : 0 });
    const t = verdict({ issuer: 'T', label: 'ok' });
    const s = verdict({ issuer: 'S', label: 'ok', expires: soon });
    const both = decide([t, s], perLabel);
    expect(both).toMatchObject({ outcome: 'allow' });
    expect(both.expires?.toISOString()).toBe(soon);
    // No basis (undecided, or decided by a local verdict): no expiry.
    expect(decide([s1], table({ S: 0.9 })).expires).toBeNull();
  });

  it('a consensus verdict without a basis counts once per issuer, as before', () => {
    const d = decide([verdict({ issuer: 'R', label: 'ok', method: 'consensus', confidence: 0.9 })], table({ R: 1 }));
    expect(evidence(d, 'csam')).toMatchObject({ s: 0.9, okClassifiers: 0 });
  });
});

describe('explanation', () => {
  it('is compact, JSON-serialisable and carries the policy version and hash', () => {
    const w = table(Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`p${i}`, 0.8])));
    const verdicts = Array.from({ length: 30 }, (_, i) =>
      verdict({ issuer: `p${i}`, label: i % 3 === 0 ? 'ok' : 'sexual', confidence: 0.9, method: 'classifier', classifier: classifier(`m${i % 4}`), distance: i }),
    );
    const d = decide(verdicts, w, DEFAULT_POLICY);
    const json = JSON.stringify(d.explanation);
    expect(JSON.parse(json)).toEqual(d.explanation);
    expect(json.length).toBeLessThan(6000);
    expect(d.explanation.top.length).toBeLessThanOrEqual(10);
    expect(d.explanation.policy).toEqual({ version: 'default-2', hash: policyHash(DEFAULT_POLICY) });
    expect(d.explanation.labels.map((l) => l.label)).toEqual(['csam', 'sexual', 'gore', 'hate', 'spam']);
    expect(d.explanation.thresholds.allow).toEqual(DEFAULT_POLICY.allow);
    const first = d.explanation.top[0];
    expect(Object.keys(first)).toEqual(
      expect.arrayContaining(['uri', 'issuer', 'label', 'confidence', 'method', 'classifier', 'distance', 'match', 'weight', 'contribution', 'paths', 'deduplicated']),
    );
  });
});

describe('policy', () => {
  it('accepts the default policy and hashes equal policies equally, whatever the key order', () => {
    expect(policySchema.parse(DEFAULT_POLICY)).toEqual(DEFAULT_POLICY);
    const reordered = JSON.parse(JSON.stringify(Object.fromEntries(Object.entries(DEFAULT_POLICY).reverse()))) as Policy;
    expect(Object.keys(reordered)[0]).toBe('failMode');
    expect(policyHash(reordered)).toBe(policyHash(DEFAULT_POLICY));
    expect(policyHash(DEFAULT_POLICY)).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(policyHash(parsePolicy({ ...DEFAULT_POLICY, disputedShare: 0.25 }))).not.toBe(policyHash(DEFAULT_POLICY));
    expect(Object.isFrozen(DEFAULT_POLICY.labels.csam)).toBe(true);
  });

  it('fills in the trust, spot-check, fail-mode, match, classifier-scope and allow-label fields of policies recorded before they existed', () => {
    const { trust: _t, spotCheckShare: _s, failMode: _f, match: _m, classifierScopes: _c, ...older } = DEFAULT_POLICY;
    const { labels: _l, ...olderAllow } = DEFAULT_POLICY.allow;
    expect(parsePolicy({ ...older, allow: olderAllow })).toEqual(DEFAULT_POLICY);
    // A policy written under decision 15 but before nearDuplicateAllows existed.
    expect(parsePolicy({ ...DEFAULT_POLICY, match: { strictRadius: 18, phashRadius: 4 } }).match.nearDuplicateAllows).toBe(false);
    expect(() => parsePolicy({ ...DEFAULT_POLICY, classifierScopes: { x: ['violence'] } })).toThrow(/classifierScopes/);
    expect(() => parsePolicy({ ...DEFAULT_POLICY, match: { ...DEFAULT_POLICY.match, strictRadius: 40 } })).toThrow(/strictRadius/);
    expect(() => parsePolicy({ ...DEFAULT_POLICY, trust: { delta: 1, hops: 3 } })).toThrow(/delta/);
    expect(() => parsePolicy({ ...DEFAULT_POLICY, failMode: { default: 'maybe' } })).toThrow(/failMode/);
  });

  it.each([
    ['a probability above 1', { labels: { ...DEFAULT_POLICY.labels, csam: { blockProbability: 1.2, minEvidence: 0.5 } } }],
    ['a block threshold that favours ok', { labels: { ...DEFAULT_POLICY.labels, spam: { blockProbability: 0.4, minEvidence: 0.5 } } }],
    ['an allow bar at or above 0.5', { allow: { ...DEFAULT_POLICY.allow, maxAbuseProbability: 0.5 } }],
    ['requireIndependent 0', { allow: { ...DEFAULT_POLICY.allow, requireIndependent: 0 } }],
    ['a disputed share above a half', { disputedShare: 0.6 }],
    ['negative evidence', { minReviewEvidence: -1 }],
    ['a fractional distance', { distanceThreshold: 3.5 }],
    ['a zero prior', { priorWeight: 0 }],
    ['an unknown key (a typo)', { disputedShares: 0.2 }],
    ['a missing label', { labels: { csam: DEFAULT_POLICY.labels.csam } }],
    ['an empty version', { version: '' }],
  ])('refuses %s', (_name, change) => {
    expect(policySchema.safeParse({ ...DEFAULT_POLICY, ...change }).success).toBe(false);
    expect(() => parsePolicy({ ...DEFAULT_POLICY, ...change })).toThrow();
  });

  it('refuses infinities', () => {
    expect(policySchema.safeParse({ ...DEFAULT_POLICY, minReviewEvidence: Number.POSITIVE_INFINITY }).success).toBe(false);
  });
});

describe('federation simulation (small)', () => {
  it('runs the real decide() across instances without a wrong decision, scanning less than naive', async () => {
    const { simulate, DEFAULT_SIM } = await import('../../bench/federation-sim.js');
    const everyone = { followsMin: 9, followsMax: 9 };
    const s = simulate({ ...DEFAULT_SIM, instances: 10, posts: 2_000, uniqueImages: 200, ...everyone, scanWithAll: true });
    expect(s.decisions).toBe(2_000);
    expect(s.wrong).toBe(0);
    expect(s.scans).toBeLessThan(s.naivePairs);
    expect(s.scans / s.uniqueImages).toBeLessThan(1.5);
  });
});

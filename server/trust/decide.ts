// The decision engine: turns the verdicts matching one image into `block`, `allow`, `review` or
// `unknown`, with an explanation. Pure functions: no database, no network, no clock. Peer weights
// come in as a function (the trust-flow engine computes them); the policy is data (policySchema).
//
// Rules (ARCHITECTURE.md, "Trust and decision"):
// 1. Local verdicts (own moderators, own scanner, imported hash lists) win: the newest one that
//    matches decides (a label other than `ok` blocks, `ok` allows).
// 2. Otherwise, for each abuse label L, evidence FOR (r) sums `weight(issuer,'abuse',L) × confidence
//    × match(distance)` over peer verdicts labelled L, and evidence AGAINST (s) sums
//    `weight(issuer,'ok',L) × confidence × match(distance)` over peer `ok` verdicts. On each side one
//    classifier (name + version) counts once, however many instances ran it (its strongest
//    contribution is kept); human reviews, hash lists and consensus verdicts count once per issuer.
//    A consensus verdict that names its basis (the classifier runs, human reviews and hash lists its
//    issuer counted) counts as those sources instead, each at the re-attester's weight × what the
//    re-attester counted it for, and is de-duplicated with them (decision 13). One issuer's
//    counted evidence on a side is capped at `issuerCap` × its weight.
// 3. Beta reputation with prior weight W (Jøsang): p = (r + W/2) / (r + s + W), u = W / (r + s + W).
//    W = 2 is the textbook p = (r+1)/(r+s+2); see DEFAULT_POLICY.priorWeight for why ours is smaller.
// 4. review (disputed) beats block, which beats allow; anything else is unknown. review and unknown
//    ask for a local scan.
import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';
import { z } from 'zod';
import { LABELS, type Label, type Method } from '../../shared/vocab/verdict.js';
import { MAX_BASIS } from '../../shared/vocab/objects.js';
import { MAX_PDQ_DISTANCE } from '../matching/matcher.js';

/** Every label but `ok`: the labels a decision weighs evidence for. Most severe first. */
export type AbuseLabel = Exclude<Label, 'ok'>;
export const DECISION_LABELS: readonly AbuseLabel[] = Object.freeze(LABELS.filter((l): l is AbuseLabel => l !== 'ok'));

export type Outcome = 'block' | 'allow' | 'review' | 'unknown';
export type Polarity = 'abuse' | 'ok';

/** One source a consensus verdict rests on, as its issuer counted it. Never itself a consensus. */
export interface BasisSource {
  /** Who issued the verdict counted. */
  issuer: string;
  method: Exclude<Method, 'consensus'>;
  classifier?: { name: string; version: string } | null;
  /** What the re-attester counted it for: its weight × confidence × match, 0..1. */
  contribution: number;
}

/** One verdict matching the image being decided. The store should leave out retracted, superseded and expired ones. */
export interface MatchedVerdict {
  uri: string;
  issuer: string;
  /** Issued by this instance (own moderators, own scanner, imported hash lists). */
  local: boolean;
  label: Label;
  /** 0..1; values outside are clamped. */
  confidence: number;
  method: Method;
  classifier?: { name: string; version: string } | null;
  /** Hamming distance between the image's hash and the verdict's (0 for an exact SHA-256 match). */
  distance: number;
  /** ISO 8601 text or a Date. */
  published: string | Date;
  /** Consensus verdicts: the sources their issuer decided on (ignored for other methods). */
  basis?: readonly BasisSource[] | null;
  /** When the verdict stops counting (ISO 8601 text or a Date); none: until retracted. */
  expires?: string | Date | null;
}

export interface TrustPath {
  /** Issuers from the first direct peer to the issuer itself. */
  via: string[];
  contribution: number;
}

export interface PeerWeight {
  /** 0..1; values outside are clamped, NaN counts as 0. */
  weight: number;
  paths?: TrustPath[];
}

/** The effective trust in `issuer`'s verdicts of one polarity about `label` (for `ok`, the label it argues against). */
export type WeightFn = (issuer: string, polarity: Polarity, label: AbuseLabel) => PeerWeight;

// ---------------------------------------------------------------------------------------------
// Policy

const evidenceAmount = z.number().min(0).max(1000);
const labelPolicySchema = z.strictObject({
  /** Block when p(label) reaches this. Above 0.5: below it the evidence would favour `ok`. */
  blockProbability: z.number().gt(0.5).max(1),
  /** ...and the evidence FOR (r) reaches this. */
  minEvidence: evidenceAmount,
});

/** A decision policy document, as the admin sends it (unknown keys are refused, so typos show). */
export const policySchema = z.strictObject({
  /** Free-form; recorded in every explanation together with the policy's hash. */
  version: z.string().min(1).max(100),
  labels: z.strictObject({
    csam: labelPolicySchema,
    sexual: labelPolicySchema,
    gore: labelPolicySchema,
    hate: labelPolicySchema,
    spam: labelPolicySchema,
  }),
  allow: z.strictObject({
    /** For every abuse label, p must be at most this (below 0.5, so no image can both block and allow). */
    maxAbuseProbability: z.number().min(0).lt(0.5),
    /** For every abuse label, the `ok` evidence s must reach this. */
    minEvidence: evidenceAmount,
    /** Distinct classifiers (name + version) needed on the `ok` side when no human said `ok`. */
    requireIndependent: z.number().int().min(1).max(10),
  }),
  /** A label is disputed when each side holds at least this share of r + s. */
  disputedShare: z.number().gt(0).max(0.5),
  /** ...and r + s reaches this (so a whisper of low-trust evidence on both sides is not a dispute). */
  minReviewEvidence: evidenceAmount,
  /** match(d) = 1 - d / distanceThreshold, clamped to 0..1. */
  distanceThreshold: z.number().int().min(1).max(256),
  /** Beta prior weight W: how much evidence the "don't know" prior is worth. 2 is textbook. */
  priorWeight: z.number().gt(0).max(100),
  // The fields below steer what happens around a decision, not the decision itself; they default
  // so that policies recorded before they existed still parse.
  /** Trust flow: each peer passes on at most `delta` of its weight, over at most `hops` hops. */
  trust: z.strictObject({ delta: z.number().min(0).lt(1), hops: z.number().int().min(0).max(10) }).default({ delta: 0.5, hops: 3 }),
  /**
   * One issuer's counted evidence on a side is at most this × its weight: however many classifier
   * names one peer reports, or sources one consensus verdict relays, it weighs at most this many
   * full verdicts.
   */
  issuerCap: z.number().min(1).max(100).default(2),
  /** Re-attest: publish a `consensus` verdict (with its basis) when peers' verdicts decided. */
  reattest: z.boolean().default(true),
  /**
   * A scan nobody waits on (no upload hook or ?wait=1 holding a request) starts this many seconds
   * late, and only if peers' verdicts have not decided meanwhile; 0 scans at once.
   */
  deferScanSeconds: z.number().int().min(0).max(3_600).default(30),
  /** Share of peer-decided media re-scanned anyway (catches a peer that builds trust, then flips). */
  spotCheckShare: z.number().min(0).max(1).default(0.02),
  /**
   * No decision in time (no scanner, or it is slow): accept (`open`) or refuse (`closed`); per
   * label at stake (see labelsAtStake; closed if any of them is), `default` for media nobody suspected.
   */
  failMode: z
    .strictObject({
      default: z.enum(['open', 'closed']),
      labels: z.partialRecord(z.enum(['csam', 'sexual', 'gore', 'hate', 'spam']), z.enum(['open', 'closed'])).default({}),
    })
    .default({ default: 'open', labels: { csam: 'closed' } }),
  /** Days quarantined media is kept at least; absent: VOUCH_QUARANTINE_RETENTION_DAYS. */
  quarantineRetentionDays: z.number().int().min(0).max(36_500).optional(),
});

export type LabelPolicy = z.infer<typeof labelPolicySchema>;
export type Policy = z.infer<typeof policySchema>;

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/**
 * The default policy, and why each number is what it is. One unit of evidence is one verdict of
 * confidence 1, from a peer of weight 1, about an identical hash.
 */
export const DEFAULT_POLICY: Policy = deepFreeze({
  version: 'default-1',
  labels: {
    // CSAM: the lowest bar. Letting it through is the worst harm there is, and a false positive
    // costs little: blocked media is quarantined (kept, encrypted), never deleted, and reviewable.
    // minEvidence 0.5: one classifier verdict of confidence 0.9 from a peer of weight 0.6 (0.54)
    // is enough, and so is one human verdict from any peer trusted at 0.55 or more.
    csam: { blockProbability: 0.7, minEvidence: 0.5 },
    // Other abuse labels: a stricter probability (a false positive hides lawful posts), same
    // evidence floor, so that one trusted peer's scan spares everyone else theirs.
    sexual: { blockProbability: 0.8, minEvidence: 0.5 },
    gore: { blockProbability: 0.8, minEvidence: 0.5 },
    hate: { blockProbability: 0.8, minEvidence: 0.5 },
    spam: { blockProbability: 0.8, minEvidence: 0.5 },
  },
  // Allow is the stricter bar (a wrong allow lets abuse through): at most 20 % abuse probability,
  // twice the evidence a block needs (one verdict never suffices: 1 × 0.9 × 1 = 0.9 < 1), and at
  // least two independent classifiers or a human, since one model's blind spot is every copy's.
  allow: { maxAbuseProbability: 0.2, minEvidence: 1.0, requireIndependent: 2 },
  // A side with a fifth of the evidence is no outlier: scan locally and ask a human.
  disputedShare: 0.2,
  // A dispute worth a human needs as much evidence as a block does.
  minReviewEvidence: 0.5,
  // The matcher's PDQ radius (MAX_PDQ_DISTANCE): a match at 31 bits counts for 1/31 of an exact one.
  distanceThreshold: MAX_PDQ_DISTANCE,
  // W = 2 (the textbook prior) treats one verdict like one coin toss: a single fully trusted,
  // fully confident verdict would only reach p = 2/3, no block threshold above could ever be met by
  // one peer, and allow (p <= 0.2 needs s >= 3 with W = 2) would need more classifiers than exist.
  // A verdict is stronger evidence than a coin toss; with W = 0.3, r >= 0.5 alone gives p >= 0.81,
  // so with no opposition minEvidence is what binds, and blockProbability is what limits how much
  // opposition a block tolerates (about 30 % of the evidence for csam, 20 % for the rest).
  priorWeight: 0.3,
  trust: { delta: 0.5, hops: 3 },
  // 2: a scanner running two models publishes two verdicts, and both should count; a peer naming
  // ten classifiers (or relaying ten sources) should not count ten times its trust.
  issuerCap: 2,
  // Re-attesting lets a peer's judgement reach instances that follow us but not it (decision 13).
  reattest: true,
  // 30 s: a federated copy usually arrives before the verdict of the instance that scanned it
  // (verdicts reach followers within seconds: verdict_propagation_p95_s), and nobody is waiting.
  deferScanSeconds: 30,
  // 2 %: a peer that flips is caught within a few dozen of its verdicts, for a small extra load.
  spotCheckShare: 0.02,
  // Undecided media is let through (most of it is harmless and blocking it stops the service),
  // except when peers are already split on CSAM: then it waits for a human.
  failMode: { default: 'open', labels: { csam: 'closed' } },
});

/**
 * The abuse labels at stake in an undecided outcome, for the policy's `failMode`: the disputed
 * label of a `review`, and every abuse label any counted peer verdict flagged, however weakly.
 * Empty when nobody suspected anything.
 */
export function labelsAtStake(decision: { label: string | null; explanation: Pick<Explanation, 'labels'> }): AbuseLabel[] {
  const labels = new Set<AbuseLabel>();
  if (decision.label && decision.label !== 'ok') labels.add(decision.label as AbuseLabel);
  for (const evidence of decision.explanation.labels) if (evidence.r > 0) labels.add(evidence.label);
  return [...labels];
}

/** Validates a policy document (throws a ZodError naming every bad field) and freezes it. */
export function parsePolicy(doc: unknown): Policy {
  return deepFreeze(policySchema.parse(doc));
}

const hashes = new WeakMap<object, string>();

/** `sha256:` + hex SHA-256 of the policy's JCS (RFC 8785) form: equal policies hash equal. */
export function policyHash(policy: Policy): string {
  let hash = hashes.get(policy);
  if (hash === undefined) {
    const text = canonicalize(policy);
    if (text === undefined) throw new TypeError('policy cannot be canonicalized');
    hash = `sha256:${createHash('sha256').update(text, 'utf8').digest('hex')}`;
    if (Object.isFrozen(policy)) hashes.set(policy, hash);
  }
  return hash;
}

// ---------------------------------------------------------------------------------------------
// Evidence arithmetic

/** How much a match at Hamming distance `distance` counts: 1 when identical, 0 at the threshold. */
export function match(distance: number, threshold: number = DEFAULT_POLICY.distanceThreshold): number {
  if (Number.isNaN(distance)) return 0;
  const m = 1 - distance / threshold;
  return m <= 0 ? 0 : m >= 1 ? 1 : m;
}

/** Beta-reputation opinion from evidence for (r) and against (s). */
export function betaOpinion(r: number, s: number, priorWeight: number = DEFAULT_POLICY.priorWeight): { p: number; u: number } {
  const total = r + s + priorWeight;
  return { p: (r + priorWeight / 2) / total, u: priorWeight / total };
}

// ---------------------------------------------------------------------------------------------
// Decision and explanation

export interface LabelEvidence {
  label: AbuseLabel;
  /** Evidence for the label. */
  r: number;
  /** Evidence for `ok`, weighted by trust in `ok` claims about this label. */
  s: number;
  p: number;
  u: number;
  blockProbability: number;
  minEvidence: number;
  /** Distinct classifiers counted on the `ok` side, and whether a human `ok` counted. */
  okClassifiers: number;
  okHuman: boolean;
}

export interface ContributionExplanation {
  uri: string;
  issuer: string;
  label: Label;
  confidence: number;
  method: Method;
  classifier: string | null;
  distance: number;
  match: number;
  /** For `ok` verdicts, the weight and contribution against the explanation's focus label. */
  weight: number;
  contribution: number;
  paths?: TrustPath[];
  /** A source a consensus verdict relays (its contribution is the relayer's weight × what the relayer counted). */
  relays?: { issuer: string; method: Method; classifier: string | null };
  /** The issuer's evidence on this side reached `issuerCap` × its weight, and was scaled down to it. */
  capped?: boolean;
  /** Not counted: a repeat (same classifier, or same issuer and method) of `repeatOf`, which counted. */
  deduplicated: boolean;
  repeatOf?: string;
}

export interface LocalVerdictExplanation {
  uri: string;
  issuer: string;
  label: Label;
  confidence: number;
  method: Method;
  classifier: string | null;
  distance: number;
  published: string;
}

export interface Explanation {
  outcome: Outcome;
  label: Label | null;
  /** One readable sentence. */
  reason: string;
  decidedBy: 'local' | 'peers';
  /** The local verdict that decided, when one did. */
  localVerdict?: LocalVerdictExplanation;
  /** The label the `top` contributions of `ok` verdicts are reported against. */
  focus: AbuseLabel;
  labels: LabelEvidence[];
  thresholds: Pick<Policy, 'allow' | 'disputedShare' | 'minReviewEvidence' | 'distanceThreshold' | 'priorWeight'>;
  verdicts: { local: number; peer: number; ignored: number };
  /** Up to 10 peer verdicts: counted ones by contribution, then de-duplicated ones. */
  top: ContributionExplanation[];
  omitted: number;
  policy: { version: string; hash: string };
}

export interface Decision {
  outcome: Outcome;
  /** block/review: the deciding abuse label; allow: `ok`; unknown: null. A local verdict gives its own label. */
  label: Label | null;
  /** Scan locally: true for unknown and review (spot checks are the caller's random draw). */
  scan: boolean;
  explanation: Explanation;
  /**
   * A block or allow decided by peers: the peer verdicts counted on the deciding side, to
   * re-attest with (relayed sources left out: see asBasis). Empty otherwise.
   */
  basis: BasisSource[];
  /**
   * With a basis: the earliest expiry among the verdicts the deciding side rests on (those it names
   * and the relays that counted), when the decision may stop holding; a consensus verdict expires
   * with it. Null otherwise.
   */
  expires: Date | null;
}

export interface DecideOptions {
  /** Our own issuer id: sources of ours that peers relay back are ignored (no echo). */
  self?: string;
}

const TOP = 10;
const MAX_PATHS = 3;
const METHOD_RANK: Record<Method, number> = { human: 3, hashlist: 2, consensus: 1, classifier: 0 };

const round = (x: number) => Math.round(x * 10_000) / 10_000;
const fmt = (x: number) => String(Math.round(x * 1000) / 1000);

function clamp01(x: number): number {
  return x > 0 ? (x < 1 ? x : 1) : 0; // NaN -> 0
}

function timeOf(published: string | Date): number {
  const t = typeof published === 'string' ? Date.parse(published) : published.getTime();
  return Number.isNaN(t) ? -Infinity : t;
}

function classifierText(v: MatchedVerdict): string | null {
  return v.classifier ? `${v.classifier.name}@${v.classifier.version}` : null;
}

/** Who a source's evidence belongs to: one classifier across issuers, anything else per issuer. */
function groupOf(source: { issuer: string; method: Method; classifier?: { name: string; version: string } | null }): string {
  if (source.method === 'classifier' && source.classifier) return `c\u0000${source.classifier.name}\u0000${source.classifier.version}`;
  return `${source.method}\u0000${source.issuer}`;
}

/** One peer entry's contribution to one label's side. */
interface Entry {
  peer: Peer;
  weight: number;
  paths: TrustPath[] | undefined;
  contribution: number;
  capped: boolean;
  /** The entry its group counted, when that is not this one. */
  repeatOf: Entry | undefined;
}

interface LabelWork {
  evidence: LabelEvidence;
  /** Per peer entry, for entries on this label's sides. */
  entries: Map<Peer, Entry>;
  /** Per side, for each counted group, the strongest verdict held from its own issuer (if any). */
  counted: { abuse: Entry[]; ok: Entry[] };
  /** Per side, the entry each counted group counted (a relay where it was the strongest). */
  winners: { abuse: Entry[]; ok: Entry[] };
}

/** A peer verdict as counted: itself, or (consensus with a basis) one of the sources it relays. */
interface Peer {
  v: MatchedVerdict;
  strength: number; // confidence × match, or (relayed) the relayer's count × match
  m: number;
  group: string;
  relays: BasisSource | undefined;
}

const BASIS_METHODS: ReadonlySet<string> = new Set(['classifier', 'human', 'hashlist']);

function sumSide(
  peers: Peer[],
  polarity: Polarity,
  label: AbuseLabel,
  weight: WeightFn,
  issuerCap: number,
  entries: Map<Peer, Entry>,
): { total: number; classifiers: number; human: boolean; counted: Entry[]; winners: Entry[] } {
  const mine: Entry[] = [];
  const byIssuer = new Map<string, Entry[]>();
  for (const peer of peers) {
    let list = byIssuer.get(peer.v.issuer);
    if (list === undefined) byIssuer.set(peer.v.issuer, (list = []));
    const w = list[0] ?? weight(peer.v.issuer, polarity, label);
    const wt = clamp01(w.weight);
    const entry: Entry = { peer, weight: wt, paths: w.paths, contribution: wt * peer.strength, capped: false, repeatOf: undefined };
    entries.set(peer, entry);
    mine.push(entry);
    list.push(entry);
  }
  // The cap, before de-duplication (so a capped relay never displaces an original it copies):
  // one issuer's entries, one per group, weigh at most issuerCap × its weight on this side.
  for (const list of byIssuer.values()) {
    const strongest = new Map<string, number>();
    for (const e of list) strongest.set(e.peer.group, Math.max(strongest.get(e.peer.group) ?? 0, e.contribution));
    const sum = [...strongest.values()].reduce((a, c) => a + c, 0);
    const limit = issuerCap * list[0].weight;
    if (sum > limit) {
      for (const e of list) {
        e.contribution *= limit / sum;
        e.capped = true;
      }
    }
  }
  // The strongest contribution of a group counts; ties go to the first given. `original` is the
  // strongest verdict we hold from its own issuer: what a re-attestation of ours may name.
  const best = new Map<string, Entry>();
  const original = new Map<string, Entry>();
  for (const entry of mine) {
    const held = best.get(entry.peer.group);
    if (held === undefined || entry.contribution > held.contribution) best.set(entry.peer.group, entry);
    const own = original.get(entry.peer.group);
    if (entry.peer.relays === undefined && (own === undefined || entry.contribution > own.contribution)) original.set(entry.peer.group, entry);
  }
  for (const entry of mine) {
    const counted = best.get(entry.peer.group)!;
    if (counted !== entry) entry.repeatOf = counted;
  }
  let total = 0;
  let classifiers = 0;
  let human = false;
  for (const [group, entry] of best) {
    total += entry.contribution;
    if (entry.contribution > 0) {
      if (group.startsWith('c\u0000')) classifiers++;
      else if (group.startsWith('human\u0000')) human = true;
    }
  }
  const winners = [...best.values()].filter((e) => e.contribution > 0);
  return { total, classifiers, human, counted: winners.flatMap((e) => original.get(e.peer.group) ?? []), winners };
}

/**
 * A verdict held from its own issuer as a basis source. What a peer's consensus relayed is not
 * relayed again, so a retraction never has to chase a loop (decision 13).
 */
function asBasis(entry: Entry): BasisSource | undefined {
  const { v } = entry.peer;
  if (!BASIS_METHODS.has(v.method) || !(entry.contribution > 0)) return undefined;
  return { issuer: v.issuer, method: v.method as BasisSource['method'], classifier: v.classifier ?? null, contribution: round(entry.contribution) };
}


/**
 * Decides what to do with one image, given every verdict that matches it.
 *
 * @param verdicts the matching verdicts (local and peers'), retracted and superseded ones left out
 * @param weight   effective trust per issuer, polarity and label (peers with no path: weight 0)
 * @param policy   thresholds (validated with policySchema); DEFAULT_POLICY when left out
 */
export function decide(verdicts: readonly MatchedVerdict[], weight: WeightFn, policy: Policy = DEFAULT_POLICY, options: DecideOptions = {}): Decision {
  const threshold = policy.distanceThreshold;
  let ignored = 0;
  let localCount = 0;
  let newestLocal: MatchedVerdict | undefined;
  let newestLocalTime = -Infinity;
  const okPeers: Peer[] = [];
  const abusePeers = new Map<AbuseLabel, Peer[]>();

  verdicts.forEach((v) => {
    const m = match(v.distance, threshold);
    const strength = clamp01(v.confidence) * m;
    if (!(strength > 0)) {
      ignored++;
      return;
    }
    // Our own consensus verdicts restate what peers said: outputs of this function, never inputs.
    if (v.local && v.method === 'consensus') {
      ignored++;
      return;
    }
    if (v.local) {
      localCount++;
      const t = timeOf(v.published);
      if (newestLocal === undefined || t > newestLocalTime || (t === newestLocalTime && localBeats(v, newestLocal))) {
        newestLocal = v;
        newestLocalTime = t;
      }
      return;
    }
    const side = v.label === 'ok' ? okPeers : (abusePeers.get(v.label) ?? abusePeers.set(v.label, []).get(v.label)!);
    if (v.method === 'consensus' && v.basis && v.basis.length > 0) {
      // Relayed sources count as themselves, at the relayer's weight × what the relayer counted.
      for (const source of v.basis) {
        if (source.issuer === options.self || !BASIS_METHODS.has(source.method)) continue; // our own, echoed back
        const relayed = clamp01(source.contribution) * m;
        if (relayed > 0) side.push({ v, strength: relayed, m, group: groupOf(source), relays: source });
      }
    } else side.push({ v, strength, m, group: groupOf(v), relays: undefined });
  });

  const work: LabelWork[] = DECISION_LABELS.map((label) => {
    const entries = new Map<Peer, Entry>();
    const forSide = sumSide(abusePeers.get(label) ?? [], 'abuse', label, weight, policy.issuerCap, entries);
    const okSide = sumSide(okPeers, 'ok', label, weight, policy.issuerCap, entries);
    const r = forSide.total;
    const s = okSide.total;
    const { p, u } = betaOpinion(r, s, policy.priorWeight);
    const lp = policy.labels[label];
    return {
      entries,
      counted: { abuse: forSide.counted, ok: okSide.counted },
      winners: { abuse: forSide.winners, ok: okSide.winners },
      evidence: {
        label,
        r,
        s,
        p,
        u,
        blockProbability: lp.blockProbability,
        minEvidence: lp.minEvidence,
        okClassifiers: okSide.classifiers,
        okHuman: okSide.human,
      },
    };
  });

  let outcome: Outcome;
  let label: Label | null;
  let focus: LabelWork;
  let reason: string;
  let localVerdict: LocalVerdictExplanation | undefined;

  const disputed = work.find(({ evidence: e }) => {
    const total = e.r + e.s;
    return total > 0 && total >= policy.minReviewEvidence && e.r >= policy.disputedShare * total && e.s >= policy.disputedShare * total;
  });
  const blocking = work.find(({ evidence: e }) => e.r > 0 && e.p >= e.blockProbability && e.r >= e.minEvidence);
  // The label nearest to blocking: the one an allow must clear by the narrowest margin.
  const leading = work.reduce((a, b) => (b.evidence.p > a.evidence.p ? b : a));

  if (newestLocal !== undefined) {
    const v: MatchedVerdict = newestLocal;
    outcome = v.label === 'ok' ? 'allow' : 'block';
    label = v.label;
    focus = v.label === 'ok' ? leading : work.find((w) => w.evidence.label === v.label)!;
    localVerdict = {
      uri: v.uri,
      issuer: v.issuer,
      label: v.label,
      confidence: v.confidence,
      method: v.method,
      classifier: classifierText(v),
      distance: v.distance,
      published: typeof v.published === 'string' ? v.published : v.published.toISOString(),
    };
    reason =
      `${outcome}: local verdicts win; the newest of ${localCount} (${v.method}${v.classifier ? ` ${localVerdict.classifier}` : ''}, ` +
      `${localVerdict.published}) says '${v.label}'`;
  } else if (disputed !== undefined) {
    const e = disputed.evidence;
    outcome = 'review';
    label = e.label;
    focus = disputed;
    reason =
      `review: '${e.label}' is disputed: r=${fmt(e.r)} s=${fmt(e.s)}, each side >= ${policy.disputedShare * 100}% ` +
      `of ${fmt(e.r + e.s)} (>= ${policy.minReviewEvidence}); scan locally and ask a human`;
  } else if (blocking !== undefined) {
    const e = blocking.evidence;
    outcome = 'block';
    label = e.label;
    focus = blocking;
    reason = `block: '${e.label}' p=${fmt(e.p)} >= ${e.blockProbability} with evidence r=${fmt(e.r)} >= ${e.minEvidence} (s=${fmt(e.s)})`;
  } else {
    const { maxAbuseProbability, minEvidence, requireIndependent } = policy.allow;
    const gaps = (e: LabelEvidence): string[] => {
      const why: string[] = [];
      if (e.p > maxAbuseProbability) why.push(`p=${fmt(e.p)} > ${maxAbuseProbability}`);
      if (e.s < minEvidence) why.push(`ok evidence ${fmt(e.s)} < ${minEvidence}`);
      if (!e.okHuman && e.okClassifiers < requireIndependent) why.push(`${e.okClassifiers} independent classifier(s) < ${requireIndependent} and no human`);
      return why;
    };
    const fails = ({ evidence: e }: LabelWork) =>
      e.p > maxAbuseProbability || e.s < minEvidence || (!e.okHuman && e.okClassifiers < requireIndependent);
    const failing = work.filter(fails);
    focus = leading;
    if (failing.length === 0) {
      outcome = 'allow';
      label = 'ok';
      const e = leading.evidence;
      reason =
        `allow: every abuse label p <= ${maxAbuseProbability} (highest '${e.label}' ${fmt(e.p)}), ok evidence >= ${minEvidence}, ` +
        `${e.okHuman ? 'a human said ok' : `${e.okClassifiers} independent classifiers`}`;
    } else {
      outcome = 'unknown';
      label = null;
      const peerCount = verdicts.length - localCount - ignored;
      if (peerCount === 0) reason = 'unknown: no matching verdict from a peer';
      else if (work.every(({ evidence: e }) => e.r === 0 && e.s === 0)) reason = `unknown: ${peerCount} matching peer verdict(s), none from a trusted peer`;
      else {
        const worst = failing.includes(leading) ? leading : failing[0];
        const more = failing.length > 1 ? `; ${failing.length - 1} more label(s)` : '';
        reason = `unknown: not enough to block (no label reaches its threshold) nor to allow ('${worst.evidence.label}': ${gaps(worst.evidence).join(', ')}${more})`;
      }
    }
  }

  // Top contributions: every peer verdict once, reported against the focus label when it is `ok`.
  const rows: ContributionExplanation[] = [];
  const push = (peer: Peer, entry: Entry | undefined) => {
    if (entry === undefined) return;
    const v = peer.v;
    const relays = peer.relays;
    const row: ContributionExplanation = {
      uri: v.uri,
      issuer: v.issuer,
      label: v.label,
      confidence: v.confidence,
      method: v.method,
      classifier: classifierText(v),
      distance: v.distance,
      match: round(peer.m),
      weight: round(entry.weight),
      contribution: round(entry.contribution),
      deduplicated: entry.repeatOf !== undefined,
    };
    if (relays) row.relays = { issuer: relays.issuer, method: relays.method, classifier: relays.classifier ? `${relays.classifier.name}@${relays.classifier.version}` : null };
    if (entry.capped) row.capped = true;
    if (entry.paths && entry.paths.length > 0) {
      row.paths = entry.paths.slice(0, MAX_PATHS).map((p) => ({ via: p.via, contribution: round(p.contribution) }));
    }
    if (entry.repeatOf) row.repeatOf = entry.repeatOf.peer.v.uri;
    rows.push(row);
  };
  for (const list of abusePeers.values()) {
    for (const peer of list) push(peer, work[DECISION_LABELS.indexOf(peer.v.label as AbuseLabel)].entries.get(peer));
  }
  for (const peer of okPeers) push(peer, focus.entries.get(peer));
  rows.sort((a, b) => Number(a.deduplicated) - Number(b.deduplicated) || b.contribution - a.contribution || (a.uri < b.uri ? -1 : 1));

  const explanation: Explanation = {
    outcome,
    label,
    reason,
    decidedBy: localVerdict ? 'local' : 'peers',
    ...(localVerdict ? { localVerdict } : {}),
    focus: focus.evidence.label,
    labels: work.map(({ evidence: e }) => ({ ...e, r: round(e.r), s: round(e.s), p: round(e.p), u: round(e.u) })),
    thresholds: {
      allow: policy.allow,
      disputedShare: policy.disputedShare,
      minReviewEvidence: policy.minReviewEvidence,
      distanceThreshold: policy.distanceThreshold,
      priorWeight: policy.priorWeight,
    },
    verdicts: { local: localCount, peer: verdicts.length - localCount - ignored, ignored },
    top: rows.slice(0, TOP),
    omitted: Math.max(0, rows.length - TOP),
    policy: { version: policy.version, hash: policyHash(policy) },
  };
  let basis: BasisSource[] = [];
  let expires: Date | null = null;
  if (localVerdict === undefined && (outcome === 'allow' || outcome === 'block')) {
    const side = outcome === 'allow' ? 'ok' : 'abuse';
    basis = focus.counted[side]
      .map(asBasis)
      .filter((b): b is BasisSource => b !== undefined)
      .sort((a, b) => b.contribution - a.contribution)
      .slice(0, MAX_BASIS);
    // An allow holds for every label, each with its own ok-side weights: what any of them rests on.
    const restsOn = (outcome === 'allow' ? work : [focus]).flatMap((w) => [...w.counted[side], ...w.winners[side]]);
    if (basis.length > 0) expires = earliestExpiry(restsOn);
  }
  return { outcome, label, scan: outcome === 'unknown' || outcome === 'review', explanation, basis, expires };
}

function earliestExpiry(counted: readonly Entry[]): Date | null {
  let earliest = Infinity;
  for (const { peer } of counted) {
    const t = peer.v.expires ? timeOf(peer.v.expires) : NaN;
    if (Number.isFinite(t) && t < earliest) earliest = t; // an unreadable expiry hides no other
  }
  return Number.isFinite(earliest) ? new Date(earliest) : null;
}

/** Tie-break between local verdicts published at the same instant: humans first, then abuse over ok. */
function localBeats(a: MatchedVerdict, b: MatchedVerdict): boolean {
  const rank = METHOD_RANK[a.method] - METHOD_RANK[b.method];
  if (rank !== 0) return rank > 0;
  return a.label !== 'ok' && b.label === 'ok';
}

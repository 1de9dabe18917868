// The decision engine: turns the verdicts matching one image into `block`, `allow`, `review` or
// `unknown`, with an explanation. Pure functions: no database, no network, no clock. Peer weights
// come in as a function (the trust-flow engine computes them); the policy is data (policySchema).
// Only the decider (server/verdicts/decider.ts) calls it in the server.
//
// Rules (docs/architecture.md, "Decision rules"; decision 15 and its scenario table):
// 1. Closest evidence first. Every matching verdict sits in a match tier: `exact` (SHA-256), `strict`
//    (PDQ within policy.match.strictRadius) or `similar` (PDQ up to the matcher's radius). Perceptual
//    hashes admit crafted near-collisions, so a weaker match never overrides a trusted human verdict
//    at a stronger one: when they conflict the outcome is `review`.
// 2. Our own moderators' verdicts and imported hash lists decide at exact or strict match (the
//    closest, then the newest; an `ok` only on the same image), unless closer evidence contradicts
//    them (review). Otherwise they are evidence at full weight, like our own classifiers: our
//    scanner is a classifier like anyone's.
// 3. Otherwise, for each abuse label L, evidence FOR (r) sums `weight × confidence × match(distance)`
//    over verdicts labelled L at any tier (blocks keep the wide radius: a false block is quarantined
//    and reviewable), and evidence AGAINST (s) sums the same over `ok` verdicts that can see L (a
//    classifier's `ok` counts only against the labels policy.classifierScopes says it assesses) and
//    match no more loosely than the closest evidence for L. On each side one classifier (name +
//    version) counts once, however many instances ran it; human reviews, hash lists and consensus
//    verdicts count once per issuer; an issuer's human verdict outranks its own classifier verdicts
//    matched no more closely. A consensus verdict that names its basis counts as those sources
//    (decision 13). One issuer's counted evidence on a side is capped at `issuerCap` × its weight.
// 4. Beta reputation with prior weight W (Jøsang): p = (r + W/2) / (r + s + W), u = W / (r + s + W).
// 5. review (disputed, or a conflict across tiers) beats block, which beats allow; anything else is
//    unknown. Allow needs the same image: only `ok` evidence at exact SHA-256 (or, where the policy
//    turns on match.nearDuplicateAllows, at the strict radius with pHash-64 agreeing) counts towards
//    it, for every label the policy names and every label with any evidence for it. review and
//    unknown ask for a scan, unless our own scanner has already classified this very file.
import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';
import { z } from 'zod';
import { LABELS, type Label, type Method } from '../../shared/vocab/verdict.js';
import { MAX_BASIS } from '../../shared/vocab/objects.js';
import { ALGORITHM_REGISTRY, type AlgorithmRegistry, type MatchTier } from '../../shared/algorithms/index.js';
import { VPDQ_DEFAULTS } from '../../shared/hashing/vpdq.js';

/** Every label but `ok`: the labels a decision weighs evidence for. Most severe first. */
export type AbuseLabel = Exclude<Label, 'ok'>;
export const DECISION_LABELS: readonly AbuseLabel[] = Object.freeze(LABELS.filter((l): l is AbuseLabel => l !== 'ok'));

export type Outcome = 'block' | 'allow' | 'review' | 'unknown';
export type Polarity = 'abuse' | 'ok';

/** How closely a verdict's hashes match the media's, closest first (see rule 1); each algorithm says which of its matches sits where. */
export type { MatchTier };
const TIER_RANK: Record<MatchTier, number> = { exact: 0, strict: 1, similar: 2 };

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
/**
 * What our scanner saw of a video (local evidence kept with its verdict, never federated): how many
 * frames it sampled and the frames that drove the verdict, strongest first (docs/scanner.md).
 */
export interface ScannedFrames {
  sampled: number;
  frames: Array<{ seconds: number; label: Label; confidence: number }>;
}

/**
 * A match between two videos' frame lists (vPDQ, HMA's rule): the share of the media's good frames
 * found in the verdict's video, and the reverse, 0..100 (docs/video.md, "Matching").
 */
export interface VideoMatchShares {
  queryMatchPercent: number;
  comparedMatchPercent: number;
}

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
  /**
   * The algorithm whose subject matched (shared/algorithms): its `tier` places the match (rule 1).
   * Absent, a near-duplicate match at `distance`.
   */
  matchedBy?: string;
  /** A near-duplicate match whose verdict also names a second hash (PDQ's pHash-64) within policy.match.phashRadius of the media's. */
  secondHashAgrees?: boolean;
  /** ISO 8601 text or a Date. */
  published: string | Date;
  /** Consensus verdicts: the sources their issuer decided on (ignored for other methods). */
  basis?: readonly BasisSource[] | null;
  /** When the verdict stops counting (ISO 8601 text or a Date); none: until retracted. */
  expires?: string | Date | null;
  /** Our scanner's verdict about a video: the frames behind it (shown in the explanation). */
  scannedFrames?: ScannedFrames | null;
  /** A video matched through a verdict about another video: HMA's shares that let the match count. */
  videoMatch?: VideoMatchShares;
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

/**
 * PDQ distance up to which a match is a near-duplicate (rule 1): 95 % of mild benign edits
 * (resizes, JPEG recompression, brightness) of the reference photos and a generated set fall
 * within it; no unrelated pair of 46,971 came closer than 94 (docs/benchmarks.md, "Match radii").
 */
export const STRICT_PDQ_RADIUS = 18;
/** pHash-64 distance within which pHash-64 agrees: 99 % of those mild edits (same measurements). */
export const PHASH_RADIUS = 4;

/**
 * The bundled adult-content models see `sexual`, and `csam` as far as "not sexual" argues against
 * it (Vouch's `csam` is sexual content involving a minor; the models cannot tell age, so they never
 * say `csam`). Nothing about gore, hate or spam. Decision 15.
 */
const BUNDLED_CLASSIFIER_SCOPES: Record<string, Array<'csam' | 'sexual' | 'gore' | 'hate' | 'spam'>> = {
  'nsfwjs-mobilenet-v2': ['sexual', 'csam'],
  'nsfwjs-inception-v3': ['sexual', 'csam'],
};
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
    /**
     * The labels an allow must clear with `ok` evidence that can see them; a label with any
     * evidence for it must be cleared too. (Older policies: csam and sexual, what the bundled models see.)
     */
    labels: z.array(z.enum(['csam', 'sexual', 'gore', 'hate', 'spam'])).max(5).default(['csam', 'sexual']),
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
  /**
   * Match tiers (rule 1): PDQ within `strictRadius` is a near-duplicate. `nearDuplicateAllows`:
   * `ok` evidence there counts towards allow when pHash-64 agrees within `phashRadius` too; off by
   * default, since pHash-64 reads the same low frequencies as PDQ and a crafted PDQ collision
   * drags it along (docs/benchmarks.md, "Match radii"). Older policies get the defaults.
   */
  match: z
    .strictObject({
      strictRadius: z.number().int().min(0).max(ALGORITHM_REGISTRY.widestRadius),
      phashRadius: z.number().int().min(0).max(32),
      nearDuplicateAllows: z.boolean().default(false),
    })
    .default({ strictRadius: STRICT_PDQ_RADIUS, phashRadius: PHASH_RADIUS, nearDuplicateAllows: false }),
  /**
   * Video-to-video matches by frame lists (vPDQ), HMA's rule: the shares of the query's and the
   * known video's distinct good frames that match the other's (0..100) must reach these; a frame
   * of a video matching an image is judged at PDQ's tiers instead. Older policies get HMA's defaults.
   */
  video: z
    .strictObject({
      queryMatchPercent: z.number().min(0).max(100),
      comparedMatchPercent: z.number().min(0).max(100),
    })
    .default({ queryMatchPercent: VPDQ_DEFAULTS.queryMatchPercent, comparedMatchPercent: VPDQ_DEFAULTS.comparedMatchPercent }),
  /**
   * The labels each classifier (by name) can see: its `ok` is evidence only against those. Kept by
   * the receiving instance, not taken from the issuer (a lying peer would claim to see everything);
   * a classifier not named here sees nothing, so its `ok` counts for no label.
   */
  classifierScopes: z
    .record(z.string().min(1).max(200), z.array(z.enum(['csam', 'sexual', 'gore', 'hate', 'spam'])).max(5))
    .refine((r) => Object.keys(r).length <= 100, 'at most 100 classifiers')
    .default(BUNDLED_CLASSIFIER_SCOPES),
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
  version: 'default-2',
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
  // The labels an allow must clear: those the bundled models can see (an allow for gore, hate or
  // spam would need a classifier or a human that sees them; a flag for any of them must be cleared).
  allow: { labels: ['csam', 'sexual'], maxAbuseProbability: 0.2, minEvidence: 1.0, requireIndependent: 2 },
  // A side with a fifth of the evidence is no outlier: scan locally and ask a human.
  disputedShare: 0.2,
  // A dispute worth a human needs as much evidence as a block does.
  minReviewEvidence: 0.5,
  // The matcher's widest radius (PDQ's 31 bits): a match at 31 bits counts for 1/31 of an exact one.
  distanceThreshold: ALGORITHM_REGISTRY.widestRadius,
  // W = 2 (the textbook prior) treats one verdict like one coin toss: a single fully trusted,
  // fully confident verdict would only reach p = 2/3, no block threshold above could ever be met by
  // one peer, and allow (p <= 0.2 needs s >= 3 with W = 2) would need more classifiers than exist.
  // A verdict is stronger evidence than a coin toss; with W = 0.3, r >= 0.5 alone gives p >= 0.81,
  // so with no opposition minEvidence is what binds, and blockProbability is what limits how much
  // opposition a block tolerates (about 30 % of the evidence for csam, 20 % for the rest).
  priorWeight: 0.3,
  // Allow needs the exact file: a crafted PDQ collision drags pHash-64 along, so near-duplicates
  // are scanned rather than allowed on two hashes (docs/benchmarks.md, "Match radii").
  match: { strictRadius: STRICT_PDQ_RADIUS, phashRadius: PHASH_RADIUS, nearDuplicateAllows: false },
  // HMA's defaults: 80 % of the upload's frames within PDQ's radius of the known video's, and any
  // share of the known video's (0 %), so that a clip cut from a known video matches it.
  video: { queryMatchPercent: VPDQ_DEFAULTS.queryMatchPercent, comparedMatchPercent: VPDQ_DEFAULTS.comparedMatchPercent },
  classifierScopes: BUNDLED_CLASSIFIER_SCOPES,
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
  /**
   * Evidence for `ok` from verdicts that can see this label and match no more loosely than the
   * closest evidence for it, weighted by trust in `ok` claims about this label.
   */
  s: number;
  p: number;
  u: number;
  blockProbability: number;
  minEvidence: number;
  /** The `ok` evidence on the same image (see ContributionExplanation.sameImage): what an allow counts. */
  sameImageOk: number;
  /** Distinct classifiers counted in `sameImageOk`, and whether a human (or list) `ok` counted there. */
  okClassifiers: number;
  okHuman: boolean;
  /** The closest match tier of the evidence for this label; null when there is none. */
  closestTier: MatchTier | null;
  /** Classifiers whose `ok` matched but cannot see this label (policy.classifierScopes). */
  cannotSee: string[];
}

export interface ContributionExplanation {
  uri: string;
  issuer: string;
  /** Ours (our moderators, lists and scanner count at full weight). */
  local: boolean;
  label: Label;
  confidence: number;
  method: Method;
  classifier: string | null;
  distance: number;
  tier: MatchTier;
  /** The exact file (or, with match.nearDuplicateAllows, strict with pHash-64 agreeing): an `ok` here may count towards allow. */
  sameImage: boolean;
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
  /** Our scanner's verdict about a video: the frames behind it. */
  scannedFrames?: ScannedFrames;
  /** A verdict about another video: the shares of frames matched each way. */
  videoMatch?: VideoMatchShares;
  /**
   * Why an `ok` did not count against the focus label: its issuer's own human verdict outranks it,
   * it matches more loosely than the evidence for the label, or its classifier cannot see the label.
   */
  notCounted?: 'outranked-by-own-human' | 'looser-than-evidence' | 'cannot-see-label';
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
  /** Our scanner's verdict about a video: the frames behind it. */
  scannedFrames?: ScannedFrames;
  /** A verdict about another video: the shares of frames matched each way. */
  videoMatch?: VideoMatchShares;
}

export interface Explanation {
  outcome: Outcome;
  label: Label | null;
  /** One readable sentence. */
  reason: string;
  /**
   * `local`: our own moderators or lists decided (rule 2); `peers`: evidence decided with peers'
   * verdicts on the deciding side (re-attested, spot-checked); `evidence`: anything else (our own
   * scanner alone, or nothing decided).
   */
  decidedBy: 'local' | 'peers' | 'evidence';
  /** The local verdict that decided, when one did. */
  localVerdict?: LocalVerdictExplanation;
  /** The label the `top` contributions of `ok` verdicts are reported against. */
  focus: AbuseLabel;
  labels: LabelEvidence[];
  thresholds: Pick<Policy, 'allow' | 'disputedShare' | 'minReviewEvidence' | 'distanceThreshold' | 'priorWeight' | 'match'>;
  verdicts: { local: number; peer: number; ignored: number };
  /** Up to 10 verdicts (the one that decided aside): counted ones by contribution, then those not counted. */
  top: ContributionExplanation[];
  omitted: number;
  policy: { version: string; hash: string };
}

export interface Decision {
  outcome: Outcome;
  /** block/review: the deciding abuse label; allow: `ok`; unknown: null. A local verdict gives its own label. */
  label: Label | null;
  /**
   * Scan locally: true for unknown and review unless our own scanner already classified this very
   * file (spot checks are the caller's random draw).
   */
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
  /** The algorithms `matchedBy` names. Default: this build's registry. */
  registry?: AlgorithmRegistry;
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

function sourceText(source: BasisSource): string {
  return source.classifier ? `${source.classifier.name}@${source.classifier.version}` : source.method;
}

/** Who a source's evidence belongs to: one classifier across issuers, anything else per issuer. */
function groupOf(source: { issuer: string; method: Method; classifier?: { name: string; version: string } | null }): string {
  if (source.method === 'classifier' && source.classifier) return `c\u0000${source.classifier.name}\u0000${source.classifier.version}`;
  return `${source.method}\u0000${source.issuer}`;
}

/** One counted entry's contribution to one label's side. */
interface Entry {
  peer: Peer;
  weight: number;
  paths: TrustPath[] | undefined;
  contribution: number;
  capped: boolean;
  /** The entry its group counted, when that is not this one. */
  repeatOf: Entry | undefined;
}

interface SideSum {
  total: number;
  classifiers: number;
  human: boolean;
  /** For each counted group, the strongest verdict held from its own issuer (if any). */
  counted: Entry[];
  /** The entry each counted group counted (a relay where it was the strongest). */
  winners: Entry[];
}

interface LabelWork {
  evidence: LabelEvidence;
  /** Per entry, for entries on this label's sides (the ok side as the dispute and p see it). */
  entries: Map<Peer, Entry>;
  abuse: SideSum;
  /** ok evidence on the same image: what an allow counts. */
  sameImage: SideSum;
  /** The closest tier of the evidence for this label (rank), Infinity when there is none. */
  closestAbuse: number;
  /** The closest tier of a trusted human (or hash list) `ok` that can see this label (rank). */
  closestHumanOk: number;
}

/** A verdict as counted: itself, or (consensus with a basis) one of the sources it relays. */
interface Peer {
  v: MatchedVerdict;
  strength: number; // confidence × match, or (relayed) the relayer's count × match
  m: number;
  tier: MatchTier;
  /** The exact file (or, with match.nearDuplicateAllows, strict with pHash-64 agreeing): `ok` here can count towards allow. */
  sameImage: boolean;
  group: string;
  relays: BasisSource | undefined;
}

const BASIS_METHODS: ReadonlySet<string> = new Set(['classifier', 'human', 'hashlist']);
const FULL_TRUST: PeerWeight = { weight: 1 };

/** The method of what an entry counts: the relayed source's, or the verdict's own. */
const methodOf = (peer: Peer): Method => peer.relays?.method ?? peer.v.method;
const sourceIssuer = (peer: Peer): string => peer.relays?.issuer ?? peer.v.issuer;
const isHumanGrade = (method: Method) => method === 'human' || method === 'hashlist';

function sumSide(
  peers: readonly Peer[],
  polarity: Polarity,
  label: AbuseLabel,
  weight: WeightFn,
  issuerCap: number,
  entries: Map<Peer, Entry>,
): SideSum {
  const mine: Entry[] = [];
  const byIssuer = new Map<string, Entry[]>();
  for (const peer of peers) {
    let list = byIssuer.get(peer.v.issuer);
    if (list === undefined) byIssuer.set(peer.v.issuer, (list = []));
    // Our own verdicts count at full weight: our moderators, our lists, our scanner.
    const w = peer.v.local ? FULL_TRUST : (list[0] ?? weight(peer.v.issuer, polarity, label));
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
      else if (methodOf(entry.peer) === 'human') human = true;
    }
  }
  const winners = [...best.values()].filter((e) => e.contribution > 0);
  return { total, classifiers, human, counted: winners.flatMap((e) => original.get(e.peer.group) ?? []), winners };
}

/**
 * A peer's verdict held from its own issuer as a basis source (ours are published as they are).
 * What a peer's consensus relayed is not relayed again, so a retraction never has to chase a loop
 * (decision 13).
 */
function asBasis(entry: Entry): BasisSource | undefined {
  const { v } = entry.peer;
  if (v.local || !BASIS_METHODS.has(v.method) || !(entry.contribution > 0)) return undefined;
  return { issuer: v.issuer, method: v.method as BasisSource['method'], classifier: v.classifier ?? null, contribution: round(entry.contribution) };
}

function tierOf(v: MatchedVerdict, policy: Policy, registry: AlgorithmRegistry): MatchTier {
  if (v.matchedBy === undefined) return v.distance <= policy.match.strictRadius ? 'strict' : 'similar';
  return registry.get(v.matchedBy).tier(v.distance, policy.match.strictRadius);
}

/** Whether an `ok` from this entry can see `label`: humans and hash lists see all; a classifier what its scope says. */
function canSee(peer: Peer, label: AbuseLabel, policy: Policy): boolean {
  if (methodOf(peer) !== 'classifier') return true;
  const classifier = peer.relays ? peer.relays.classifier : peer.v.classifier;
  return classifier ? (policy.classifierScopes[classifier.name]?.includes(label) ?? false) : false;
}

/**
 * Decides what to do with one image, given every verdict that matches it.
 *
 * @param verdicts the matching verdicts (local and peers'), retracted, superseded and expired ones left out
 * @param weight   effective trust per issuer, polarity and label (peers with no path: weight 0)
 * @param policy   thresholds (validated with policySchema); DEFAULT_POLICY when left out
 */
export function decide(verdicts: readonly MatchedVerdict[], weight: WeightFn, policy: Policy = DEFAULT_POLICY, options: DecideOptions = {}): Decision {
  const threshold = policy.distanceThreshold;
  let ignored = 0;
  let localCount = 0;
  let ownScanOfThisFile = false;
  const counted: Peer[] = [];

  for (const v of verdicts) {
    const m = match(v.distance, threshold);
    const strength = clamp01(v.confidence) * m;
    // Our own consensus verdicts restate what peers said: outputs of this function, never inputs.
    if (!(strength > 0) || (v.local && v.method === 'consensus')) {
      ignored++;
      continue;
    }
    const tier = tierOf(v, policy, options.registry ?? ALGORITHM_REGISTRY);
    const sameImage = tier === 'exact' || (policy.match.nearDuplicateAllows && tier === 'strict' && v.secondHashAgrees === true);
    if (v.local) {
      localCount++;
      if (v.method === 'classifier' && tier === 'exact') ownScanOfThisFile = true;
    }
    if (v.method === 'consensus' && v.basis && v.basis.length > 0) {
      // Relayed sources count as themselves, at the relayer's weight × what the relayer counted.
      for (const source of v.basis) {
        if (source.issuer === options.self || !BASIS_METHODS.has(source.method)) continue; // our own, echoed back
        const relayed = clamp01(source.contribution) * m;
        if (relayed > 0) counted.push({ v, strength: relayed, m, tier, sameImage, group: groupOf(source), relays: source });
      }
    } else counted.push({ v, strength, m, tier, sameImage, group: groupOf(v), relays: undefined });
  }

  // One issuer speaks once: its human review (or list) outranks its own classifier runs matched no
  // more closely; the peer reviewed its scanner.
  const humanTier = new Map<string, number>();
  for (const peer of counted) {
    if (!isHumanGrade(methodOf(peer))) continue;
    const key = sourceIssuer(peer);
    humanTier.set(key, Math.min(humanTier.get(key) ?? Infinity, TIER_RANK[peer.tier]));
  }
  const outranked = new Set<Peer>();
  for (const peer of counted) {
    if (methodOf(peer) === 'classifier' && TIER_RANK[peer.tier] >= (humanTier.get(sourceIssuer(peer)) ?? Infinity)) outranked.add(peer);
  }
  const live = counted.filter((p) => !outranked.has(p));

  // Rule 2: our own moderators and lists at exact or strict match, the closest, then the newest;
  // an `ok` only on the same image (an allow always needs it).
  let authority: Peer | undefined;
  for (const peer of live) {
    if (!peer.v.local || !isHumanGrade(peer.v.method) || peer.tier === 'similar' || (peer.v.label === 'ok' && !peer.sameImage)) continue;
    if (authority === undefined || authorityBeats(peer, authority)) authority = peer;
  }

  const okPeers = live.filter((p) => p.v.label === 'ok' && p !== authority);
  const work: LabelWork[] = DECISION_LABELS.map((label) => {
    const entries = new Map<Peer, Entry>();
    const abusePeers = live.filter((p) => p.v.label === label && p !== authority);
    const abuse = sumSide(abusePeers, 'abuse', label, weight, policy.issuerCap, entries);
    const closestAbuse = Math.min(...abuse.winners.map((e) => TIER_RANK[e.peer.tier]));
    // An ok that matches more loosely than the closest evidence for the label cannot argue against it.
    const seeing = okPeers.filter((p) => canSee(p, label, policy));
    const ok = sumSide(seeing.filter((p) => TIER_RANK[p.tier] <= closestAbuse), 'ok', label, weight, policy.issuerCap, entries);
    const sameImage = sumSide(seeing.filter((p) => p.sameImage), 'ok', label, weight, policy.issuerCap, new Map());
    const humanOk = ok.winners.filter((e) => isHumanGrade(methodOf(e.peer)));
    const { p, u } = betaOpinion(abuse.total, ok.total, policy.priorWeight);
    const lp = policy.labels[label];
    const blind = okPeers.filter((q) => !canSee(q, label, policy)).map((q) => (q.relays ? sourceText(q.relays) : (classifierText(q.v) ?? q.v.method)));
    return {
      entries,
      abuse,
      sameImage,
      closestAbuse,
      closestHumanOk: Math.min(...humanOk.map((e) => TIER_RANK[e.peer.tier])),
      evidence: {
        label,
        r: abuse.total,
        s: ok.total,
        p,
        u,
        blockProbability: lp.blockProbability,
        minEvidence: lp.minEvidence,
        sameImageOk: sameImage.total,
        okClassifiers: sameImage.classifiers,
        okHuman: sameImage.human,
        closestTier: Number.isFinite(closestAbuse) ? TIERS[closestAbuse] : null,
        cannotSee: [...new Set(blind)].sort(),
      },
    };
  });

  let outcome: Outcome;
  let label: Label | null;
  let focus: LabelWork;
  let reason: string;
  let localVerdict: LocalVerdictExplanation | undefined;
  const leading = work.reduce((a, b) => (b.evidence.p > a.evidence.p ? b : a));
  const tierName = (rank: number) => TIERS[rank];

  if (authority !== undefined) {
    const v = authority.v;
    const rank = TIER_RANK[authority.tier];
    localVerdict = {
      uri: v.uri,
      issuer: v.issuer,
      label: v.label,
      confidence: v.confidence,
      method: v.method,
      classifier: classifierText(v),
      distance: v.distance,
      published: typeof v.published === 'string' ? v.published : v.published.toISOString(),
      ...(v.scannedFrames ? { scannedFrames: v.scannedFrames } : {}),
      ...(v.videoMatch ? { videoMatch: v.videoMatch } : {}),
    };
    const own = `our own ${v.method} verdict '${v.label}' at ${authority.tier} match (${localVerdict.published})`;
    if (v.label === 'ok') {
      // Closer evidence for any label contradicts our ok: a human must look (rule 1).
      const contested = work.find((w) => w.closestAbuse < rank);
      focus = contested ?? leading;
      if (contested) {
        outcome = 'review';
        label = contested.evidence.label;
        reason = `review: ${own} is contradicted by '${contested.evidence.label}' evidence at a closer ${tierName(contested.closestAbuse)} match; a human must look`;
      } else {
        outcome = 'allow';
        label = 'ok';
        reason = `allow: ${own} decides; no evidence against it matches more closely`;
      }
    } else {
      focus = work.find((w) => w.evidence.label === v.label)!;
      const contested = focus.closestHumanOk < rank;
      outcome = contested ? 'review' : 'block';
      label = v.label;
      reason = contested
        ? `review: ${own} is contradicted by a trusted human 'ok' at a closer ${tierName(focus.closestHumanOk)} match; a human must look`
        : `block: ${own} decides`;
    }
  } else {
    const disputed = work.find(({ evidence: e }) => {
      const total = e.r + e.s;
      return total > 0 && total >= policy.minReviewEvidence && e.r >= policy.disputedShare * total && e.s >= policy.disputedShare * total;
    });
    const blocking = work.find(({ evidence: e }) => e.r > 0 && e.p >= e.blockProbability && e.r >= e.minEvidence);
    if (disputed !== undefined) {
      const e = disputed.evidence;
      outcome = 'review';
      label = e.label;
      focus = disputed;
      reason =
        `review: '${e.label}' is disputed: r=${fmt(e.r)} s=${fmt(e.s)}, each side >= ${policy.disputedShare * 100}% ` +
        `of ${fmt(e.r + e.s)} (>= ${policy.minReviewEvidence}); scan locally and ask a human`;
    } else if (blocking !== undefined && blocking.closestHumanOk < blocking.closestAbuse) {
      // The evidence would block, but a trusted human said ok about a closer match (rule 1).
      const e = blocking.evidence;
      outcome = 'review';
      label = e.label;
      focus = blocking;
      reason =
        `review: '${e.label}' evidence (r=${fmt(e.r)}) matches at ${tierName(blocking.closestAbuse)} at best, ` +
        `but a trusted human said 'ok' at a closer ${tierName(blocking.closestHumanOk)} match; a human must look`;
    } else if (blocking !== undefined) {
      const e = blocking.evidence;
      outcome = 'block';
      label = e.label;
      focus = blocking;
      reason = `block: '${e.label}' p=${fmt(e.p)} >= ${e.blockProbability} with evidence r=${fmt(e.r)} >= ${e.minEvidence} (s=${fmt(e.s)})`;
    } else {
      const { maxAbuseProbability, minEvidence, requireIndependent } = policy.allow;
      const mustClear = work.filter(({ evidence: e }) => policy.allow.labels.includes(e.label) || e.r > 0);
      const gaps = (e: LabelEvidence): string[] => {
        const why: string[] = [];
        if (e.p > maxAbuseProbability) why.push(`p=${fmt(e.p)} > ${maxAbuseProbability}`);
        if (e.sameImageOk < minEvidence) why.push(`ok evidence on the same image ${fmt(e.sameImageOk)} < ${minEvidence}`);
        if (!e.okHuman && e.okClassifiers < requireIndependent) why.push(`${e.okClassifiers} independent classifier(s) < ${requireIndependent} and no human`);
        return why;
      };
      const failing = mustClear.filter(({ evidence: e }) => gaps(e).length > 0);
      const hardest = mustClear.reduce<LabelWork | undefined>((a, b) => (a === undefined || b.evidence.p > a.evidence.p ? b : a), undefined) ?? leading;
      focus = failing.includes(leading) ? leading : (failing[0] ?? hardest);
      if (failing.length === 0 && mustClear.length > 0) {
        outcome = 'allow';
        label = 'ok';
        const e = hardest.evidence;
        reason =
          `allow: ${mustClear.map((w) => `'${w.evidence.label}'`).join(', ')} cleared on the same image: p <= ${maxAbuseProbability} ` +
          `(highest '${e.label}' ${fmt(e.p)}), ok evidence >= ${minEvidence}, ${e.okHuman ? 'a human said ok' : `${e.okClassifiers} independent classifiers`}`;
      } else {
        outcome = 'unknown';
        label = null;
        if (live.length === 0) reason = 'unknown: no matching verdict';
        else if (work.every(({ evidence: e }) => e.r === 0 && e.s === 0 && e.sameImageOk === 0)) reason = `unknown: ${live.length} matching verdict(s), none counted (untrusted, or unable to see the labels at stake)`;
        else {
          const worst = focus.evidence;
          const more = failing.length > 1 ? `; ${failing.length - 1} more label(s)` : '';
          reason = `unknown: not enough to block (no label reaches its threshold) nor to allow ('${worst.label}': ${gaps(worst).join(', ')}${more})`;
        }
      }
    }
  }

  // Top contributions: every counted verdict once, reported against the focus label when it is `ok`.
  const rows: ContributionExplanation[] = [];
  const push = (peer: Peer, entry: Entry | undefined, note?: ContributionExplanation['notCounted']) => {
    const v = peer.v;
    const relays = peer.relays;
    const row: ContributionExplanation = {
      uri: v.uri,
      issuer: v.issuer,
      local: v.local,
      label: v.label,
      confidence: v.confidence,
      method: v.method,
      classifier: classifierText(v),
      distance: v.distance,
      tier: peer.tier,
      sameImage: peer.sameImage,
      match: round(peer.m),
      weight: round(entry?.weight ?? 0),
      contribution: round(entry?.contribution ?? 0),
      deduplicated: entry?.repeatOf !== undefined,
    };
    if (note) row.notCounted = note;
    if (relays) row.relays = { issuer: relays.issuer, method: relays.method, classifier: relays.classifier ? sourceText(relays) : null };
    if (entry?.capped) row.capped = true;
    if (v.scannedFrames) row.scannedFrames = v.scannedFrames;
    if (v.videoMatch) row.videoMatch = v.videoMatch;
    if (entry?.paths && entry.paths.length > 0) {
      row.paths = entry.paths.slice(0, MAX_PATHS).map((p) => ({ via: p.via, contribution: round(p.contribution) }));
    }
    if (entry?.repeatOf) row.repeatOf = entry.repeatOf.peer.v.uri;
    rows.push(row);
  };
  for (const peer of counted) {
    if (peer === authority) continue;
    if (outranked.has(peer)) push(peer, undefined, 'outranked-by-own-human');
    else if (peer.v.label !== 'ok') push(peer, work[DECISION_LABELS.indexOf(peer.v.label as AbuseLabel)].entries.get(peer));
    else {
      const entry = focus.entries.get(peer);
      push(peer, entry, entry ? undefined : canSee(peer, focus.evidence.label, policy) ? 'looser-than-evidence' : 'cannot-see-label');
    }
  }
  rows.sort((a, b) => Number(a.deduplicated) - Number(b.deduplicated) || b.contribution - a.contribution || (a.uri < b.uri ? -1 : 1));

  const explanation: Explanation = {
    outcome,
    label,
    reason,
    decidedBy: authority ? 'local' : 'evidence',
    ...(localVerdict ? { localVerdict } : {}),
    focus: focus.evidence.label,
    labels: work.map(({ evidence: e }) => ({ ...e, r: round(e.r), s: round(e.s), p: round(e.p), u: round(e.u), sameImageOk: round(e.sameImageOk) })),
    thresholds: {
      allow: policy.allow,
      disputedShare: policy.disputedShare,
      minReviewEvidence: policy.minReviewEvidence,
      distanceThreshold: policy.distanceThreshold,
      priorWeight: policy.priorWeight,
      match: policy.match,
    },
    verdicts: { local: localCount, peer: verdicts.length - localCount - ignored, ignored },
    top: rows.slice(0, TOP),
    omitted: Math.max(0, rows.length - TOP),
    policy: { version: policy.version, hash: policyHash(policy) },
  };
  let basis: BasisSource[] = [];
  let expires: Date | null = null;
  if (authority === undefined && (outcome === 'allow' || outcome === 'block')) {
    const sides = outcome === 'allow' ? work.filter((w) => policy.allow.labels.includes(w.evidence.label) || w.evidence.r > 0).map((w) => w.sameImage) : [focus.abuse];
    const deciding = outcome === 'allow' ? focus.sameImage : focus.abuse;
    if (deciding.winners.some((e) => !e.peer.v.local)) explanation.decidedBy = 'peers';
    basis = deciding.counted
      .map(asBasis)
      .filter((b): b is BasisSource => b !== undefined)
      .sort((a, b) => b.contribution - a.contribution)
      .slice(0, MAX_BASIS);
    // An allow holds for every label it cleared, each with its own ok-side weights: what any of them rests on.
    if (basis.length > 0) expires = earliestExpiry(sides.flatMap((side) => [...side.counted, ...side.winners]));
  }
  const undecided = outcome === 'unknown' || outcome === 'review';
  return { outcome, label, scan: undecided && !ownScanOfThisFile, explanation, basis, expires };
}

const TIERS: readonly MatchTier[] = ['exact', 'strict', 'similar'];

function earliestExpiry(counted: readonly Entry[]): Date | null {
  let earliest = Infinity;
  for (const { peer } of counted) {
    const t = peer.v.expires ? timeOf(peer.v.expires) : NaN;
    if (Number.isFinite(t) && t < earliest) earliest = t; // an unreadable expiry hides no other
  }
  return Number.isFinite(earliest) ? new Date(earliest) : null;
}

/** Between our own human or list verdicts: the closer match, then the newer, then humans first, then abuse over ok. */
function authorityBeats(a: Peer, b: Peer): boolean {
  const tier = TIER_RANK[b.tier] - TIER_RANK[a.tier];
  if (tier !== 0) return tier > 0;
  const time = timeOf(a.v.published) - timeOf(b.v.published);
  if (time !== 0) return time > 0;
  const rank = METHOD_RANK[a.v.method] - METHOD_RANK[b.v.method];
  if (rank !== 0) return rank > 0;
  return a.v.label !== 'ok' && b.v.label === 'ok';
}

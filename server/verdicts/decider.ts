// The decider: the one place that answers "what do we decide about media with these hashes now".
// It looks the hashes up, brings in the trust engine's weights and the policy, checks every
// near-duplicate match's second hash (PDQ's pHash-64, as the algorithm registry names it) against
// the media's (what policy.match.nearDuplicateAllows relies on), holds a video's frame matches to
// HMA's video-level rule (policy.video), and runs
// the decision rules (server/trust/decide.ts).
// Intake, the platform hooks, re-attestation, spot checks and the CLI all decide through it, so a
// decision is made one way everywhere and can be recorded, acted on and re-attested as one object.
import { decide, type Decision, type MatchedVerdict, type Policy, type VideoMatchShares } from '../trust/decide.js';
import { matchVpdq, type VpdqFrame } from '../../shared/hashing/vpdq.js';
import type { TrustService } from '../trust/service.js';
import type { MatchQuery } from '../matching/matcher.js';
import { ALGORITHM_REGISTRY } from '../../shared/algorithms/index.js';
import { parseClassifierText } from './objects.js';
import type { VerdictMatch, VerdictService } from './index.js';

/** A decision and the peers whose weights it depended on (every matching peer verdict's issuer). */
export interface Decided extends Decision {
  issuers: string[];
}

/**
 * Whether the verdict of a match by an algorithm with a second hash (`confirmedBy`: PDQ's pHash-64)
 * names one within `radius` of the media's. (Not independent of PDQ against a crafted image:
 * decision 15.)
 */
function secondHashAgrees(m: VerdictMatch, query: Pick<MatchQuery, 'hashes'>, radius: number): boolean {
  if (!ALGORITHM_REGISTRY.has(m.matchedBy)) return false;
  const second = ALGORITHM_REGISTRY.get(m.matchedBy).confirmedBy;
  if (second === undefined) return false;
  const algorithm = ALGORITHM_REGISTRY.get(second);
  const ours = query.hashes.filter((h) => h.algorithm === second);
  return m.subjects.some((s) => {
    if (s.algorithm !== second) return false;
    let theirs: Uint8Array;
    try {
      theirs = algorithm.parse(s.digest);
    } catch {
      return false;
    }
    return ours.some((h) => h.digest.length === theirs.length && algorithm.distance(h.digest, theirs) <= radius);
  });
}

/**
 * Whether a match found through a frame of a frame-list algorithm (vPDQ) is a match of the video:
 * when the media is itself a video (it has frames of that algorithm), HMA's rule must hold between
 * the two frame lists at the policy's shares (policy.video), and the shares are returned for the
 * explanation; a single image matching a frame of a known video counts as the frame's match.
 * Other algorithms' matches always stand. False: the match does not count.
 */
function videoMatchHolds(m: VerdictMatch, query: Pick<MatchQuery, 'hashes'>, policy: Policy): VideoMatchShares | boolean {
  if (!ALGORITHM_REGISTRY.has(m.matchedBy)) return true;
  const algorithm = ALGORITHM_REGISTRY.get(m.matchedBy);
  if (!algorithm.frameList) return true;
  const ours = query.hashes.filter((h) => h.algorithm === algorithm.name);
  if (ours.length === 0) return true;
  const frame = (pdq: string, quality: number | undefined): VpdqFrame => ({ pdq, quality: quality ?? 0, seconds: 0 });
  const theirs = m.subjects.filter((s) => s.algorithm === algorithm.name).map((s) => frame(s.digest, s.quality));
  const result = matchVpdq(
    ours.map((h) => frame(algorithm.format(h.digest), h.quality)),
    theirs,
    { distance: algorithm.maxDistance, minQuality: algorithm.minQuality, ...policy.video },
  );
  if (!result.isMatch) return false;
  // One decimal: what an explanation shows.
  const share = (percent: number) => Math.round(percent * 10) / 10;
  return { queryMatchPercent: share(result.queryMatchPercent), comparedMatchPercent: share(result.comparedMatchPercent) };
}

export class Decider {
  constructor(
    private readonly verdicts: VerdictService,
    private readonly trust: TrustService,
  ) {}

  /** What we decide now about media matching `query` (its second hashes, when given, check near-duplicate matches). */
  async decide(query: MatchQuery): Promise<Decided> {
    return this.decideFrom(await this.verdicts.find(query), query);
  }

  /** The same rules over verdicts already looked up for `query`. */
  decideFrom(matches: readonly VerdictMatch[], query: Pick<MatchQuery, 'hashes'>): Decided {
    const { policy } = this.trust;
    const matched = matches.flatMap((m): MatchedVerdict[] => {
      const video = videoMatchHolds(m, query, policy);
      if (video === false) return [];
      return [{
        uri: m.uri,
        issuer: m.issuer,
        local: m.local,
        label: m.label,
        confidence: m.confidence,
        method: m.method,
        classifier: m.classifier ? parseClassifierText(m.classifier) : null,
        distance: m.distance,
        matchedBy: m.matchedBy,
        secondHashAgrees: secondHashAgrees(m, query, policy.match.phashRadius),
        published: m.published,
        basis: m.basis,
        expires: m.expires,
        scannedFrames: m.scannedFrames,
        ...(typeof video === 'object' ? { videoMatch: video } : {}),
      }];
    });
    const decision = decide(matched, this.trust.weightFn, policy, { self: this.verdicts.issuer });
    return { ...decision, issuers: matches.filter((m) => !m.local).map((m) => m.issuer) };
  }
}

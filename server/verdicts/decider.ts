// The decider: the one place that answers "what do we decide about media with these hashes now".
// It looks the hashes up, brings in the trust engine's weights and the policy, checks every PDQ
// match's pHash-64 against the media's (what policy.match.nearDuplicateAllows relies on), and runs
// the decision rules (server/trust/decide.ts).
// Intake, the platform hooks, re-attestation, spot checks and the CLI all decide through it, so a
// decision is made one way everywhere and can be recorded, acted on and re-attested as one object.
import { decide, type Decision, type MatchedVerdict } from '../trust/decide.js';
import type { TrustService } from '../trust/service.js';
import type { MatchQuery } from '../matching/matcher.js';
import { hammingDistance } from '../../shared/hashing/pdq.js';
import { parseClassifierText } from './objects.js';
import type { VerdictMatch, VerdictService } from './index.js';

/** A decision and the peers whose weights it depended on (every matching peer verdict's issuer). */
export interface Decided extends Decision {
  issuers: string[];
}

/**
 * Whether a PDQ match's verdict names a pHash-64 within `radius` of the media's. (Not independent
 * of PDQ against a crafted image: decision 15.)
 */
function phashAgrees(m: VerdictMatch, phash64: Uint8Array | undefined, radius: number): boolean {
  if (phash64 === undefined || m.matchedBy !== 'pdq') return false;
  return m.subjects.some((s) => s.algorithm === 'phash64' && s.digest.length === 16 && hammingDistance(Buffer.from(s.digest, 'hex'), phash64) <= radius);
}

export class Decider {
  constructor(
    private readonly verdicts: VerdictService,
    private readonly trust: TrustService,
  ) {}

  /** What we decide now about media matching `query` (its pHash-64, when given, checks PDQ matches). */
  async decide(query: MatchQuery): Promise<Decided> {
    return this.decideFrom(await this.verdicts.find(query), query);
  }

  /** The same rules over verdicts already looked up for `query`. */
  decideFrom(matches: readonly VerdictMatch[], query: Pick<MatchQuery, 'phash64'>): Decided {
    const { policy } = this.trust;
    const matched = matches.map(
      (m): MatchedVerdict => ({
        uri: m.uri,
        issuer: m.issuer,
        local: m.local,
        label: m.label,
        confidence: m.confidence,
        method: m.method,
        classifier: m.classifier ? parseClassifierText(m.classifier) : null,
        distance: m.distance,
        matchedBy: m.matchedBy,
        secondHashAgrees: phashAgrees(m, query.phash64, policy.match.phashRadius),
        published: m.published,
        basis: m.basis,
        expires: m.expires,
      }),
    );
    const decision = decide(matched, this.trust.weightFn, policy, { self: this.verdicts.issuer });
    return { ...decision, issuers: matches.filter((m) => !m.local).map((m) => m.issuer) };
  }
}

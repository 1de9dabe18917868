// Re-attestation (decision 13). When peers' verdicts decide about media (block or allow), we
// publish a `consensus` verdict naming the peer verdicts we counted (its basis), so that instances
// that follow us but not those peers can count them at their trust in us. Our consensus follows
// our decision: a new decision that differs retracts or replaces it, and when a peer's verdict
// matching it arrives, changes or is retracted, the media is decided again.
//
// This module is also the one place where stored verdicts become decide()'s input, so that every
// decision ignores our own sources echoed back by peers.
import { decide, type BasisSource, type Decision, type MatchedVerdict } from '../trust/decide.js';
import type { TrustService } from '../trust/service.js';
import type { Logger } from '../config/logger.js';
import type { MatchQuery } from '../matching/matcher.js';
import { parseClassifierText } from './objects.js';
import type { Subject, VerdictMatch, VerdictService } from './index.js';

export function toMatched(m: VerdictMatch): MatchedVerdict {
  return {
    uri: m.uri,
    issuer: m.issuer,
    local: m.local,
    label: m.label,
    confidence: m.confidence,
    method: m.method,
    classifier: m.classifier ? parseClassifierText(m.classifier) : null,
    distance: m.distance,
    published: m.published,
    basis: m.basis,
  };
}

/** How sure the decision is of its label: p for a block, 1 − the highest abuse p for an allow. */
function confidenceOf(decision: Decision): number {
  const labels = decision.explanation.labels;
  const p = decision.outcome === 'block' ? (labels.find((l) => l.label === decision.label)?.p ?? 0) : 1 - Math.max(0, ...labels.map((l) => l.p));
  return Math.round(Math.min(1, Math.max(0, p)) * 10_000) / 10_000;
}

/** The lookup for media with these subjects (rotations and mirrors are not stored: only its own PDQ). */
function queryOf(subjects: readonly Subject[]): MatchQuery {
  const sha256 = subjects.find((s) => s.algorithm === 'sha256');
  const pdq = subjects.filter((s) => s.algorithm === 'pdq');
  return {
    sha256: sha256 ? Buffer.from(sha256.digest, 'hex') : undefined,
    pdq: pdq.length > 0 ? pdq.map((s) => Buffer.from(s.digest, 'hex')) : undefined,
    pdqQuality: pdq.find((s) => s.quality !== undefined)?.quality,
  };
}

/** What a basis names, ignoring the weights: a change here means followers count other sources. */
function basisKey(basis: readonly BasisSource[] | null): string {
  return (basis ?? [])
    .map((b) => `${b.issuer}\u0000${b.method}\u0000${b.classifier ? `${b.classifier.name}@${b.classifier.version}` : ''}`)
    .sort()
    .join('\n');
}

export class Reattestation {
  /** Ids of our live consensus verdicts: a peer verdict that touches none of them costs one lookup. */
  private readonly live = new Set<number>();
  /** One reconciliation per media at a time, keyed by its first subject. */
  private readonly running = new Map<string, Promise<void>>();

  constructor(
    private readonly verdicts: VerdictService,
    private readonly trust: TrustService,
    private readonly logger: Logger,
  ) {}

  /** Loads the ids of our live consensus verdicts; run once at start. */
  async load(): Promise<void> {
    for (const id of await this.verdicts.liveConsensusIds()) this.live.add(id);
  }

  /** What we decide now about media matching `query`. */
  async decide(query: MatchQuery): Promise<Decision> {
    return this.decideFrom(await this.verdicts.find(query));
  }

  private decideFrom(matches: VerdictMatch[]): Decision {
    return decide(matches.map(toMatched), this.trust.weightFn, this.trust.policy, { self: this.verdicts.issuer });
  }

  /**
   * Brings our consensus about the media with these subjects in line with what we decide now from
   * the verdicts matching `query` (decided in turn, so a stale decision is never applied last).
   * Never throws.
   */
  async reconcile(subjects: readonly Subject[], query: MatchQuery = queryOf(subjects)): Promise<void> {
    const key = subjects.find((s) => s.algorithm === 'sha256') ?? subjects[0];
    if (key === undefined) return;
    const id = `${key.algorithm}:${key.digest}`;
    const previous = this.running.get(id) ?? Promise.resolve();
    const next = previous.then(async () => this.reconcileNow(key, subjects, await this.decide(query)));
    const settled = next.catch((err: unknown) => this.logger.error({ err, subject: id }, 're-attestation failed'));
    this.running.set(id, settled);
    await settled;
    if (this.running.get(id) === settled) this.running.delete(id);
  }

  private async reconcileNow(key: Subject, subjects: readonly Subject[], decision: Decision): Promise<void> {
    const want = this.trust.policy.reattest && decision.basis.length > 0 ? decision.label : null;
    const ours = (await this.verdicts.find(queryOf([key]))).filter(
      (m) => m.local && m.method === 'consensus' && m.matchedBy === key.algorithm && m.distance === 0,
    );
    let kept = false;
    for (const verdict of ours) {
      // Kept while it says the same from the same sources; the weights behind it may drift.
      if (!kept && verdict.label === want && basisKey(verdict.basis) === basisKey(decision.basis)) {
        kept = true;
        continue;
      }
      await this.verdicts.retractLocal(verdict.uri);
      this.live.delete(verdict.id);
    }
    if (want !== null && !kept) {
      const issued = await this.verdicts.issue({
        subjects: [...subjects],
        label: want,
        confidence: confidenceOf(decision),
        method: 'consensus',
        basis: decision.basis,
        source: 'consensus',
      });
      this.live.add(issued.id);
    }
  }

  /**
   * Verdicts with these subjects (one list per verdict) arrived, changed or were retracted: decide
   * again about media we re-attested. Never throws.
   */
  async revisit(subjectLists: ReadonlyArray<readonly Subject[]>): Promise<void> {
    if (this.live.size === 0) return;
    // The index alone answers "none of ours" (the inbox's common case) without the database.
    const ids = new Set<number>();
    for (const subjects of subjectLists) {
      if (subjects.length === 0) continue;
      for (const id of this.verdicts.matchIds(queryOf(subjects))) if (this.live.has(id)) ids.add(id);
    }
    if (ids.size === 0) return;
    try {
      for (const ours of (await this.verdicts.byIds([...ids])).values()) await this.reconcile(ours.subjects);
    } catch (err) {
      this.logger.error({ err }, 're-deciding media we re-attested failed');
    }
  }

  /**
   * A follower's pull on miss: our own verdicts about these hashes (hash lists left out: they are
   * not ours to publish). With none, the verdicts we hold about that exact SHA-256 may decide: then
   * we re-attest on demand, about that SHA-256 alone. (The asker chooses the hashes; a consensus
   * pairing its SHA-256 with a PDQ it also chose would let it make us vouch for a pairing.)
   */
  async lookup(hashes: { sha256?: string; pdq?: string }): Promise<Record<string, unknown>[]> {
    const query: MatchQuery = {
      sha256: hashes.sha256 ? Buffer.from(hashes.sha256, 'hex') : undefined,
      pdq: hashes.pdq ? [Buffer.from(hashes.pdq, 'hex')] : undefined,
    };
    let matches = await this.verdicts.find(query);
    const own = () => matches.filter((m) => m.local && m.method !== 'hashlist');
    if (own().length === 0 && hashes.sha256 && this.trust.policy.reattest) {
      const exact: Subject[] = [{ algorithm: 'sha256', digest: hashes.sha256 }];
      if (this.decideFrom(matches.filter((m) => m.matchedBy === 'sha256')).basis.length > 0) {
        await this.reconcile(exact);
        matches = await this.verdicts.find(query);
      }
    }
    return [...(await this.verdicts.documents(own().map((m) => m.id))).values()];
  }
}

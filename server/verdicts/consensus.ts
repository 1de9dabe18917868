// Re-attestation (decision 13). When peers' verdicts decide about media (block or allow), we
// publish a `consensus` verdict naming the peer verdicts we counted (its basis), so that instances
// that follow us but not those peers can count them at their trust in us. Our consensus follows
// our decision: a new decision that differs retracts or replaces it, and when a peer's verdict
// matching it arrives, changes or is retracted, the media is decided again; likewise after a
// change of trust (the consensus verdicts that depended on a peer whose weight changed) or of
// policy (all of them), and when the verdicts it rests on expire (a consensus expires with the
// earliest of them, so followers stop counting it on time too).
//
import { DECISION_LABELS, type BasisSource, type Decision } from '../trust/decide.js';
import type { Decided, Decider } from './decider.js';
import type { TrustChange, TrustService } from '../trust/service.js';
import type { Logger } from '../config/logger.js';
import type { Metrics } from '../config/metrics.js';
import { queryOf, type MatchQuery } from '../matching/matcher.js';
import { MEDIA_KEY_ALGORITHM } from '../../shared/algorithms/index.js';
import type { Subject, VerdictMatch, VerdictService } from './index.js';
import { PerKeySerial } from '../per-key-serial.js';
import { PROCESS_LOCAL, type KeyLock } from '../store/advisory-lock.js';

/** How sure the decision is of its label: p for a block, 1 − the highest abuse p for an allow. */
function confidenceOf(decision: Decision): number {
  const labels = decision.explanation.labels;
  const p = decision.outcome === 'block' ? (labels.find((l) => l.label === decision.label)?.p ?? 0) : 1 - Math.max(0, ...labels.map((l) => l.p));
  return Math.round(Math.min(1, Math.max(0, p)) * 10_000) / 10_000;
}

function timeOrNull(iso: string | null): number | null {
  return iso === null ? null : Date.parse(iso);
}

/** What a basis names, ignoring the weights: a change here means followers count other sources. */
function basisKey(basis: readonly BasisSource[] | null): string {
  return (basis ?? [])
    .map((b) => `${b.issuer}\u0000${b.method}\u0000${b.classifier ? `${b.classifier.name}@${b.classifier.version}` : ''}`)
    .sort()
    .join('\n');
}

/** Longest setTimeout delay Node accepts; later expiries are looked at again after it. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** Expiry re-decisions are batched at least this far apart, so a clock skew cannot spin the timer. */
const MIN_EXPIRY_TIMER_MS = 1_000;
/** Consensus verdicts loaded per page during a full pass. */
const PASS_PAGE = 500;
/** A pass for changes a peer caused starts at least this long after the last pass ended. */
const PEER_PASS_INTERVAL_MS = 60_000;
/** Trust changing while a media is decided: decided again, this many times at most (then passes catch up). */
const MAX_REDECISIONS = 5;

/** What a pass re-decides: every live consensus, or those that depended on a peer whose weight changed. */
export type PassScope = 'all' | 'changed-weights';

interface LiveConsensus {
  /** When it expires (ms), or null. */
  expires: number | null;
  /**
   * The peers whose weights its decision depended on (every matching peer verdict's issuer), as
   * indexes into `Reattestation.issuers`; null for one loaded at start and not decided since.
   */
  issuers: readonly number[] | null;
}

export class Reattestation {
  /** Our live consensus verdicts by id: a peer verdict that touches none of them costs one lookup. */
  private readonly live = new Map<number, LiveConsensus>();
  /** Every issuer a consensus of ours depended on, with its weights when last compared (see changedIssuers). */
  private readonly issuers: Array<{ issuer: string; weights: string }> = [];
  private readonly issuerIndex = new Map<string, number>();
  /** One reconciliation per media at a time, keyed by its first subject. */
  private readonly reconciling = new PerKeySerial<string>();
  private expiryTimer: NodeJS.Timeout | undefined;
  private expiryTimerAt = Infinity;
  /** The full pass in progress, and whether another change asked for one more after it. */
  private pass: Promise<void> | undefined;
  private passAgain: PassScope | undefined;
  /** When the last pass ended (monotonic ms): throttled passes start PEER_PASS_INTERVAL_MS after it at the earliest. */
  private lastPassEnd = -Infinity;
  private laterTimer: NodeJS.Timeout | undefined;
  private closed = false;
  /** Verdict changes seen (every call of `revisit`), for `stamp`. */
  private verdictChanges = 0;

  constructor(
    private readonly verdicts: VerdictService,
    private readonly decider: Decider,
    private readonly trust: TrustService,
    private readonly logger: Logger,
    private readonly metrics?: Metrics,
    /** The lookup media we have seen was first decided with (its rotations and mirrors included). */
    private readonly mediaQuery?: (sha256: string) => Promise<MatchQuery | undefined>,
    /**
     * Serialises reconciling one media across server processes sharing the database: two would
     * each see no consensus of ours and both issue one.
     */
    private readonly crossProcess: KeyLock = PROCESS_LOCAL,
  ) {}

  /** How many consensus verdicts of ours are live. */
  get liveCount(): number {
    return this.live.size;
  }

  /** Loads our live consensus verdicts and watches their expiry; run once at start. */
  async load(): Promise<void> {
    for (const { id, expires } of await this.verdicts.liveConsensus()) this.track(id, expires, null);
  }

  /**
   * Verdicts another server process changed (the change feed): its consensus verdicts are tracked
   * here too (expiry, passes after a change of trust or policy), its retracted ones dropped.
   */
  async follow(ids: readonly number[]): Promise<void> {
    for (const { id, expires, retracted } of await this.verdicts.consensusAmong(ids)) {
      if (retracted) this.live.delete(id);
      else if (!this.live.has(id)) this.track(id, expires, null);
    }
  }

  /** Stops the timers and waits for a pass in progress, which stops before its next media. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.laterTimer);
    this.laterTimer = undefined;
    clearTimeout(this.expiryTimer);
    this.expiryTimer = undefined;
    this.expiryTimerAt = Infinity;
    await this.pass;
  }

  /**
   * What a decision made now rests on, as far as this process knows: the trust version and the
   * verdict changes seen. Take it before deciding; `reconcile` re-decides when it has moved.
   */
  stamp(): string {
    return `${this.trust.version}:${this.verdictChanges}`;
  }

  /**
   * Brings our consensus about the media with these subjects in line with what we decide now from
   * the verdicts matching `query` (decided in turn, so a stale decision is never applied last; and
   * again if trust changed meanwhile, which a pass already under way may have missed). `decided`,
   * when the caller has just decided from `given`, is applied as it is (one decision per event:
   * what was recorded and acted on is what is re-attested) unless trust or verdicts changed since
   * its `stamp()`, when it would be stale. Never throws: false when it failed (logged).
   */
  async reconcile(subjects: readonly Subject[], given?: MatchQuery, decided?: { decision: Decided; stamp: string }): Promise<boolean> {
    const key = subjects.find((s) => s.algorithm === MEDIA_KEY_ALGORITHM) ?? subjects[0];
    if (key === undefined) return true;
    const id = `${key.algorithm}:${key.digest}`;
    return this.reconciling
      .run(id, () => this.crossProcess.run(`reattest ${id}`, async () => {
        const query = given ?? (key.algorithm === MEDIA_KEY_ALGORITHM ? await this.mediaQuery?.(key.digest) : undefined) ?? queryOf(subjects);
        for (let round = 0; round < MAX_REDECISIONS; round++) {
          const version = this.trust.version;
          const decision = round === 0 && decided?.stamp === this.stamp() ? decided.decision : await this.decider.decide(query);
          await this.reconcileNow(key, subjects, decision, decision.issuers);
          if (this.trust.version === version) break;
        }
        return true;
      }))
      .catch((err: unknown) => {
        this.logger.error({ err, subject: id }, 're-attestation failed');
        return false;
      });
  }

  private async reconcileNow(key: Subject, subjects: readonly Subject[], decision: Decision, issuers: string[]): Promise<void> {
    const want = this.trust.policy.reattest && decision.basis.length > 0 ? decision.label : null;
    // From the store: under the lock, what another process issued for this media is seen.
    const ours = await this.verdicts.liveConsensusWith(key);
    const expires = decision.expires;
    let kept = false;
    for (const verdict of ours) {
      // Kept while it says the same from the same sources; the weights behind it may drift. Its
      // expiry follows what it rests on, so followers stop counting it when we would.
      if (!kept && verdict.label === want && basisKey(verdict.basis) === basisKey(decision.basis)) {
        kept = true;
        if (timeOrNull(verdict.expires) !== (expires?.getTime() ?? null)) {
          await this.verdicts.updateLocal(verdict.uri, { expires, basis: decision.basis, confidence: confidenceOf(decision) });
        }
        this.track(verdict.id, expires, issuers);
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
        expires: expires ?? undefined,
        source: 'consensus',
      });
      this.track(issued.id, expires, issuers);
    }
  }

  /** Counts a consensus verdict as live, re-deciding its media when it expires. */
  private track(id: number, expires: Date | null, issuers: readonly string[] | null): void {
    const at = expires?.getTime() ?? null;
    this.live.set(id, { expires: at, issuers: issuers && [...new Set(issuers.map((issuer) => this.indexOf(issuer)))] });
    if (at !== null && at < this.expiryTimerAt && !this.closed) this.armExpiryTimer(at);
  }

  private indexOf(issuer: string): number {
    let index = this.issuerIndex.get(issuer);
    if (index === undefined) {
      index = this.issuers.push({ issuer, weights: this.weightsOf(issuer) }) - 1;
      this.issuerIndex.set(issuer, index);
    }
    return index;
  }

  /** Every weight decide() may give this issuer (both polarities, each label), as one string. */
  private weightsOf(issuer: string): string {
    return (['abuse', 'ok'] as const).flatMap((polarity) => DECISION_LABELS.map((label) => this.trust.weightsFor(polarity, label).weight(issuer))).join(',');
  }

  /** Issuers whose weights differ from when last compared (the comparison is updated). */
  private changedIssuers(): Set<number> {
    const changed = new Set<number>();
    this.issuers.forEach((entry, index) => {
      const now = this.weightsOf(entry.issuer);
      if (now !== entry.weights) {
        entry.weights = now;
        changed.add(index);
      }
    });
    return changed;
  }

  private armExpiryTimer(at: number): void {
    if (this.closed) return;
    clearTimeout(this.expiryTimer);
    this.expiryTimerAt = at;
    const delay = Math.min(MAX_TIMER_MS, Math.max(MIN_EXPIRY_TIMER_MS, at - Date.now()));
    this.expiryTimer = setTimeout(() => void this.expired(), delay);
    this.expiryTimer.unref();
  }

  /** Re-decides the media of every consensus that has expired, then waits for the next expiry. */
  private async expired(): Promise<void> {
    this.expiryTimer = undefined;
    this.expiryTimerAt = Infinity;
    const now = Date.now();
    const due = [...this.live].filter(([, c]) => c.expires !== null && c.expires <= now).map(([id]) => id);
    await this.redecide(due, 'expiry');
    // One that is still due failed to reconcile (logged): followers ignore it now that it has
    // expired; the next change about its media reconciles it again.
    for (const id of due) {
      const still = this.live.get(id);
      if (still && (still.expires ?? Infinity) <= now) this.live.set(id, { ...still, expires: null });
    }
    let next = Infinity;
    for (const { expires } of this.live.values()) if (expires !== null && expires < next) next = expires;
    if (next < this.expiryTimerAt) this.armExpiryTimer(next);
  }

  /**
   * Trust or policy changed: decides again, in the background, about the media of every live
   * consensus verdict (`all`: the policy changed) or of those that depended on a peer whose weight
   * changed. Changes arriving during a pass are served by one more pass after it.
   */
  private revisitAll(reason: string, scope: PassScope): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (this.pass) {
      this.passAgain = this.passAgain === 'all' ? 'all' : scope;
      return this.pass;
    }
    const run = async () => {
      await null; // let `this.pass` be set before anything below can clear it
      let next: PassScope | undefined = scope;
      try {
        while (next !== undefined && !this.closed) {
          this.passAgain = undefined;
          await this.redecide(this.inScope(next), reason);
          this.lastPassEnd = performance.now();
          next = this.passAgain;
        }
      } catch (err) {
        this.logger.error({ err, reason }, 're-deciding media we re-attested failed');
      } finally {
        // In the same step as the last look at passAgain: a request arriving after it starts a new pass.
        this.pass = undefined;
      }
    };
    this.pass = run();
    return this.pass;
  }

  private inScope(scope: PassScope): number[] {
    const changed = this.changedIssuers(); // updated either way, so the next comparison starts here
    if (scope === 'all') return [...this.live.keys()];
    // One whose peers we do not know yet (loaded at start) may depend on any of them.
    return [...this.live].filter(([, c]) => c.issuers === null || c.issuers.some((i) => changed.has(i))).map(([id]) => id);
  }

  /**
   * Trust or policy changed: the consensus verdicts it may affect are decided again. Changes a
   * peer can cause are throttled; the admin's own take effect at once.
   */
  trustChanged(what: TrustChange): void {
    if (what === 'trust statement' || what === 'penalty') this.revisitAllLater(what);
    else void this.revisitAll(what, what === 'policy' ? 'all' : 'changed-weights');
  }

  /**
   * A change a peer caused (its TrustStatement, or a spot check's penalty of it): the same pass for
   * changed weights, but starting PEER_PASS_INTERVAL_MS after the last one ended at the earliest,
   * so that a peer sending statement after statement cannot keep us busy.
   */
  private revisitAllLater(reason: string): void {
    if (this.laterTimer || this.closed) return;
    const wait = Math.max(0, this.lastPassEnd + PEER_PASS_INTERVAL_MS - performance.now());
    this.laterTimer = setTimeout(() => {
      this.laterTimer = undefined;
      // A pass still running (started by the admin): look again a whole interval after it ends.
      if (this.pass) void this.pass.then(() => this.revisitAllLater(reason));
      else void this.revisitAll(reason, 'changed-weights');
    }, wait);
    this.laterTimer.unref();
  }

  /** Reconciles the media of these consensus verdicts of ours. Never throws. */
  private async redecide(ids: number[], reason: string): Promise<void> {
    if (ids.length === 0) return;
    const started = Date.now();
    try {
      for (let i = 0; i < ids.length && !this.closed; i += PASS_PAGE) {
        const page = ids.slice(i, i + PASS_PAGE);
        const found = await this.verdicts.byIds(page);
        for (const id of page) {
          if (this.closed) break;
          const ours = found.get(id);
          // Retracted by hand meanwhile (or gone): no longer ours to follow.
          if (!ours || ours.retracted) this.live.delete(id);
          else if (!(await this.reconcile(ours.subjects))) this.retryLater(id);
        }
      }
      this.metrics?.consensusRedecided.inc({ reason }, ids.length);
      this.logger.info({ reason, consensus: ids.length, ms: Date.now() - started }, 're-decided media we re-attested');
    } catch (err) {
      this.logger.error({ err, reason }, 're-deciding media we re-attested failed');
      for (const id of ids) this.retryLater(id);
    }
  }

  /** A re-decision failed: its peers count as changed, so a pass soon decides again. */
  private retryLater(id: number): void {
    for (const index of this.live.get(id)?.issuers ?? []) this.issuers[index].weights = ''; // unknown ones are always in scope
    this.revisitAllLater('retry');
  }

  /**
   * Verdicts with these subjects (one list per verdict) arrived, changed or were retracted: decide
   * again about media we re-attested. Never throws.
   */
  async revisit(subjectLists: ReadonlyArray<readonly Subject[]>): Promise<void> {
    this.verdictChanges++;
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
    const query = queryOf(Object.entries(hashes).flatMap(([algorithm, digest]) => (digest === undefined ? [] : [{ algorithm, digest }])));
    let matches = await this.verdicts.find(query);
    const own = () => matches.filter((m) => m.local && m.method !== 'hashlist');
    if (own().length === 0 && hashes.sha256 && this.trust.policy.reattest) {
      const exact: Subject[] = [{ algorithm: MEDIA_KEY_ALGORITHM, digest: hashes.sha256 }];
      if (this.decider.decideFrom(matches.filter((m) => m.matchedBy === MEDIA_KEY_ALGORITHM), { hashes: [] }).basis.length > 0) {
        await this.reconcile(exact);
        matches = await this.verdicts.find(query);
      }
    }
    return [...(await this.verdicts.documents(own().map((m) => m.id))).values()];
  }
}

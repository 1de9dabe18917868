// Group commit for inbox verdicts: verdict activities that arrive while earlier ones are being
// committed are stored together, in one transaction that claims their activity ids with one
// statement and hands their verdicts to the handler at once (which inserts them set-based). A
// commit costs a round trip and a WAL flush whatever it holds, so sharing it is what lets a busy
// inbox keep up. Every activity is answered only after the transaction holding it has committed.
import type { Logger } from '../config/logger.js';
import { isStoreUnavailable, type Db } from '../store/index.js';
import type { VerdictObject } from '../../shared/vocab/objects.js';
import { FederationError } from './peers.js';

/**
 * What a handler does once the transaction it stored into has committed (index, re-decisions).
 * Its synchronous start (the index update) runs in commit order; what it awaits may overlap
 * later transactions.
 */
export type AfterCommit = () => Promise<void>;

/** A peer's verdict as the inbox accepted it: the parsed object, the signed document, its sender. */
export interface InboundVerdict {
  verdict: VerdictObject;
  document: Record<string, unknown>;
  actor: string;
}

/** Stores verdicts inside `trx`; returns the work to do once it has committed. */
export type StoreVerdicts = (verdicts: readonly InboundVerdict[], trx: Db) => Promise<AfterCommit>;

/** What happened to one activity: stored with its claim, or its id was already claimed (a replay). */
export type GroupOutcome = 'applied' | 'replayed';

export interface GroupCommitOptions {
  /** Most activities one transaction holds. */
  maxBatch: number;
  /** Transactions committing at once; what arrives meanwhile waits for the next one. */
  maxInFlight: number;
  /**
   * Most activities waiting for a transaction. Past it an activity is refused at once (503 busy,
   * which its sender retries) instead of waiting without end while the database falls behind.
   */
  maxPending: number;
}

/**
 * One transaction at a time, holding what arrived while the previous one committed: on a machine
 * whose cores the server shares with PostgreSQL, fewer and larger transactions cost less CPU per
 * verdict than two overlapping (measured: docs/benchmarks.md, issue 15). 64 keeps the statement small;
 * 4,096 waiting is a few seconds of the inbox's measured rate.
 */
export const GROUP_COMMIT_DEFAULTS: GroupCommitOptions = { maxBatch: 64, maxInFlight: 1, maxPending: 4_096 };

/**
 * Subject rows one transaction inserts at most: each is 5 bind parameters of the set insert, which
 * PostgreSQL caps at 65,535 a statement and PGlite fails on well below (45,000 failed, measured);
 * a video's verdict alone may carry 1,800 frames.
 */
const MAX_BATCH_SUBJECT_ROWS = 5_000;

/** Subject rows a verdict stores: one per frame of a frame list (at most), one per other subject. */
function subjectRows(item: InboundVerdict): number {
  return item.verdict.subject.reduce((n, s) => n + (s.frames?.length ?? 1), 0);
}

interface Pending {
  activityId: string;
  item: InboundVerdict;
  resolve(outcome: GroupOutcome): void;
  reject(err: unknown): void;
}

/**
 * Records activity ids as received (inbox_seen); returns those it recorded, leaving out ids
 * already recorded. In id order, so that transactions claiming overlapping ids wait on each other
 * instead of deadlocking; an id another open transaction claimed waits for it to end.
 */
export async function claimActivities(db: Db, activities: ReadonlyArray<{ id: string; actor: string }>): Promise<Set<string>> {
  if (activities.length === 0) return new Set();
  const sorted = [...activities].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const rows = await db
    .insertInto('inbox_seen')
    .values(sorted.map(({ id, actor }) => ({ id, actor })))
    .onConflict((oc) => oc.column('id').doNothing())
    .returning('id')
    .execute();
  return new Set(rows.map((r) => r.id));
}

export class VerdictGroupCommit {
  private readonly pending: Pending[] = [];
  private inFlight = 0;
  private scheduled = false;

  constructor(
    private readonly db: Db,
    private readonly store: StoreVerdicts,
    private readonly logger: Logger,
    private readonly options: GroupCommitOptions = GROUP_COMMIT_DEFAULTS,
  ) {}

  /**
   * Stores one verdict activity with its claim; settles once the transaction holding it has
   * committed and the work after it has run. Rejects with what storing it alone would throw
   * (an ownership refusal, a database error), never with another activity's failure.
   */
  submit(activityId: string, item: InboundVerdict): Promise<GroupOutcome> {
    if (this.pending.length >= this.options.maxPending) {
      return Promise.reject(new FederationError(503, 'busy', 'too many activities are waiting to be stored; retry shortly'));
    }
    return new Promise((resolve, reject) => {
      this.pending.push({ activityId, item, resolve, reject });
      this.schedule();
    });
  }

  /**
   * Starts transactions at the end of this turn of the event loop, not at once: requests whose
   * bodies arrived together are verified one after another in one turn, and would otherwise take
   * the free transactions one each and leave the rest to queue behind them.
   */
  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.pump();
    });
  }

  private pump(): void {
    while (this.inFlight < this.options.maxInFlight && this.pending.length > 0) {
      const batch = this.takeBatch();
      this.inFlight++;
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        this.inFlight--;
        this.schedule();
      };
      void this.commit(batch, release).finally(release);
    }
  }

  /**
   * The oldest pending activities, at most maxBatch (and MAX_BATCH_SUBJECT_ROWS), no two with one activity id or one verdict
   * id: a second delivery of an activity, or a second activity about one verdict, waits for the
   * next transaction and then meets the first as committed (a replay, an update), as when alone.
   */
  private takeBatch(): Pending[] {
    const batch: Pending[] = [];
    const activities = new Set<string>();
    const verdicts = new Set<string>();
    let kept = 0;
    let rows = 0;
    for (const entry of this.pending) {
      const weight = subjectRows(entry.item);
      const fits = batch.length === 0 || (batch.length < this.options.maxBatch && rows + weight <= MAX_BATCH_SUBJECT_ROWS);
      const free = fits && !activities.has(entry.activityId) && !verdicts.has(entry.item.verdict.id);
      if (free) {
        rows += weight;
        batch.push(entry);
        activities.add(entry.activityId);
        verdicts.add(entry.item.verdict.id);
      } else {
        this.pending[kept++] = entry;
      }
    }
    this.pending.length = kept;
    return batch;
  }

  /** Commits `batch`; calls `release` once the next transaction may start. */
  private async commit(batch: Pending[], release: () => void): Promise<void> {
    let outcome: { claimed: Set<string>; after: AfterCommit };
    try {
      outcome = await this.db.transaction().execute(async (trx) => {
        const claimed = await claimActivities(trx, batch.map((p) => ({ id: p.activityId, actor: p.item.actor })));
        const after = await this.store(batch.filter((p) => claimed.has(p.activityId)).map((p) => p.item), trx);
        return { claimed, after };
      });
    } catch (err) {
      // One activity's failure (an ownership refusal), a deadlock: each is tried again alone, so
      // only what fails alone is refused. The database out of reach would fail each alone too,
      // after another connection wait apiece: all are answered at once (503), not queued behind.
      if (batch.length === 1 || isStoreUnavailable(err)) for (const p of batch) p.reject(err);
      else await Promise.all(batch.map((p) => this.commitAlone(p)));
      return;
    }
    // The next transaction starts without waiting for the work after this one (a re-decision may
    // take long, and would hold up every peer's deliveries); its synchronous start, the index
    // update, has run by then, so updates of one verdict reach the index in commit order.
    const after = this.afterCommit(outcome.after, batch.length);
    release();
    await after;
    for (const p of batch) p.resolve(outcome.claimed.has(p.activityId) ? 'applied' : 'replayed');
  }

  private async commitAlone(p: Pending): Promise<void> {
    try {
      const outcome = await this.db.transaction().execute(async (trx) => {
        const claimed = await claimActivities(trx, [{ id: p.activityId, actor: p.item.actor }]);
        return claimed.size === 0 ? undefined : this.store([p.item], trx);
      });
      if (outcome) await this.afterCommit(outcome, 1);
      p.resolve(outcome ? 'applied' : 'replayed');
    } catch (err) {
      p.reject(err);
    }
  }

  /** The stored activities stay applied whatever happens here: a failure is logged, not answered. */
  private async afterCommit(after: AfterCommit, activities: number): Promise<void> {
    try {
      await after();
    } catch (err) {
      this.logger.warn({ activities, err: (err as Error).message }, 'stored, but the work after storing it failed');
    }
  }
}

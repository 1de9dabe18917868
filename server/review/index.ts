// The review queue: decisions a human should look at (disputed media, and blocked media that is
// quarantined), and what a moderator does with them. The admin API and the web console both act
// through here, so a review means the same thing whichever way it was made.
import { MEDIA_KEY_ALGORITHM } from '../../shared/algorithms/index.js';
import { sql } from 'kysely';
import type { Db, HourlyCount } from '../store/index.js';
import type { VerdictService } from '../verdicts/index.js';
import type { Quarantine } from '../scanning/quarantine.js';
import { mediaSubjects } from '../scanning/media.js';
import type { Explanation } from '../trust/decide.js';
import type { Label } from '../../shared/vocab/verdict.js';
import { queryOf } from '../matching/matcher.js';

export type ReviewAction = 'confirm' | 'overturn';
export const OUTCOMES = ['block', 'allow', 'review', 'unknown'] as const;
export type Outcome = (typeof OUTCOMES)[number];

export interface ReviewInput {
  action: ReviewAction;
  /** The correct label; required to overturn. */
  label?: Label;
  reason: string;
}

export interface DecisionSummary {
  id: number;
  outcome: string;
  label: string | null;
  source: string | null;
  createdAt: Date;
  reviewedAt: Date | null;
  reviewedBy: string | null;
  reviewOutcome: string | null;
  /** Hex. */
  sha256: string;
  pdq: string | null;
  /** The quarantined copy of the media, when one is held. */
  quarantineId: number | null;
}

export interface DecisionDetail extends DecisionSummary {
  explanation: Explanation;
}

export class ReviewNotFoundError extends Error {}
export class ReviewInputError extends Error {}
export class ReviewConflictError extends Error {}

export interface DecisionQuery {
  outcome?: Outcome;
  /** Only decisions no one has reviewed yet. */
  pending?: boolean;
  /** Only outcomes a human should see: review, and block. */
  queue?: boolean;
  limit?: number;
}

/** Outcomes a human should look at. */
const QUEUED = ['review', 'block'];

const hex = (b: Uint8Array | null) => (b ? Buffer.from(b).toString('hex') : null);

export class ReviewQueue {
  constructor(
    private readonly db: Db,
    private readonly verdicts: VerdictService,
    private readonly quarantine: Quarantine | undefined,
  ) {}

  /** Newest first. */
  async list(query: DecisionQuery = {}): Promise<DecisionSummary[]> {
    let q = this.baseQuery().orderBy('d.id', 'desc').limit(Math.max(1, Math.min(500, query.limit ?? 100)));
    if (query.outcome) q = q.where('d.outcome', '=', query.outcome);
    if (query.queue) q = q.where('d.outcome', 'in', QUEUED);
    if (query.pending) q = q.where('d.reviewed_at', 'is', null);
    // The same media uploaded again is one item: its latest pending decision.
    if (query.queue && query.pending) {
      q = q.where('d.id', '=', (eb) =>
        eb
          .selectFrom('decisions as d2')
          .select((eb2) => eb2.fn.max('d2.id').as('latest'))
          .whereRef('d2.media_id', '=', 'd.media_id')
          .where('d2.outcome', 'in', QUEUED)
          .where('d2.reviewed_at', 'is', null),
      );
    }
    return (await q.execute()).map((r) => this.summary(r));
  }

  async get(id: number): Promise<DecisionDetail | undefined> {
    const row = await this.baseQuery().select('d.explanation').where('d.id', '=', id).executeTakeFirst();
    return row ? { ...this.summary(row), explanation: row.explanation as Explanation } : undefined;
  }

  /** Decisions per hour and outcome since `since` (the health chart). */
  async hourlyOutcomes(since: Date): Promise<HourlyCount[]> {
    const rows = await this.db
      .selectFrom('decisions')
      .select([sql<Date>`date_trunc('hour', created_at)`.as('hour'), 'outcome as key', (eb) => eb.fn.countAll<string>().as('n')])
      .where('created_at', '>=', since)
      .groupBy([sql`date_trunc('hour', created_at)`, 'outcome'])
      .execute();
    return rows.map((r) => ({ hour: new Date(r.hour), key: r.key, n: Number(r.n) }));
  }

  /** Media waiting in the queue (a review or block decision no one has reviewed). */
  async pendingCount(): Promise<number> {
    const row = await this.db
      .selectFrom('decisions')
      .select((eb) => eb.fn.count<string>('media_id').distinct().as('n'))
      .where('reviewed_at', 'is', null)
      .where('outcome', 'in', QUEUED)
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  /**
   * Confirm, or overturn with the correct label. Overturning corrects our own verdict about the
   * media (an Update goes out) or, if we had none, issues a human verdict; overturning to `ok`
   * releases the quarantined copy. Returns the verdict written, if any.
   */
  async review(id: number, input: ReviewInput, actor: string): Promise<{ verdict: string | null }> {
    if (input.action === 'overturn' && !input.label) throw new ReviewInputError('overturning needs the correct label');
    const reason = input.reason.trim();
    if (reason.length < 3) throw new ReviewInputError('give a reason (3 characters at least)');
    const decision = await this.get(id);
    if (!decision) throw new ReviewNotFoundError(`no decision ${id}`);
    // Claim it first: a second moderator, a stale tab or a double submit gets a conflict instead of
    // a second verdict. Only then are the other pending decisions about the same media settled.
    const settled = { reviewed_at: new Date(), reviewed_by: actor, review_outcome: `${input.action}${input.label ? `:${input.label}` : ''}: ${reason}` };
    const claimed = await this.db
      .updateTable('decisions')
      .set(settled)
      .where('id', '=', id)
      .where('reviewed_at', 'is', null)
      .returning('media_id')
      .executeTakeFirst();
    if (!claimed) throw new ReviewConflictError(`decision ${id} was already reviewed by ${decision.reviewedBy ?? 'someone'}`);
    const others = await this.db
      .updateTable('decisions')
      .set(settled)
      .where('media_id', '=', claimed.media_id)
      .where('reviewed_at', 'is', null)
      .returning('id')
      .execute();
    let verdict: string | null = null;
    if (input.action === 'overturn') {
      try {
        verdict = await this.correctVerdict(decision, input.label!, actor);
      } catch (err) {
        // Nothing was published: put the decisions back in the queue.
        const ids = [id, ...others.map((r) => Number(r.id))];
        await this.db.updateTable('decisions').set({ reviewed_at: null, reviewed_by: null, review_outcome: null }).where('id', 'in', ids).execute();
        throw err;
      }
      // After the verdict: a failure here leaves the review done and the copy held (release it by hand).
      if (input.label === 'ok' && decision.quarantineId !== null && this.quarantine) {
        await this.quarantine.release(decision.quarantineId, { actor, reason: `overturned to ok: ${reason}` });
      }
    }
    return { verdict };
  }

  /** Corrects our own verdict about the media (an Update goes out), or issues a human one. */
  private async correctVerdict(decision: DecisionDetail, label: Label, actor: string): Promise<string> {
    const ours = (await this.verdicts.find(queryOf([{ algorithm: MEDIA_KEY_ALGORITHM, digest: decision.sha256 }]))).find((v) => v.local && v.method !== 'hashlist');
    if (ours) return (await this.verdicts.updateLocal(ours.uri, { label, confidence: 1 })).uri;
    // A video's verdict carries its MD5 and vPDQ frames, an image's its PDQ and pHash-64.
    const subjects = (await mediaSubjects(this.db, decision.sha256)) ?? [{ algorithm: MEDIA_KEY_ALGORITHM, digest: decision.sha256 }];
    const issued = await this.verdicts.issue({
      subjects,
      label,
      confidence: 1,
      method: 'human',
      source: `review:${actor}`,
    });
    return issued.uri;
  }

  private baseQuery() {
    return this.db
      .selectFrom('decisions as d')
      .innerJoin('media as m', 'm.id', 'd.media_id')
      .leftJoin('quarantine as q', 'q.sha256', 'm.sha256')
      .select([
        'd.id',
        'd.outcome',
        'd.label',
        'd.source',
        'd.created_at',
        'd.reviewed_at',
        'd.reviewed_by',
        'd.review_outcome',
        'm.sha256',
        'm.pdq',
        'q.id as quarantine_id',
        'q.deleted_at as quarantine_deleted_at',
      ]);
  }

  private summary(r: {
    id: number;
    outcome: string;
    label: string | null;
    source: string | null;
    created_at: Date;
    reviewed_at: Date | null;
    reviewed_by: string | null;
    review_outcome: string | null;
    sha256: Uint8Array;
    pdq: Uint8Array | null;
    quarantine_id: number | null;
    quarantine_deleted_at: Date | null;
  }): DecisionSummary {
    return {
      id: Number(r.id),
      outcome: r.outcome,
      label: r.label,
      source: r.source,
      createdAt: r.created_at,
      reviewedAt: r.reviewed_at,
      reviewedBy: r.reviewed_by,
      reviewOutcome: r.review_outcome,
      sha256: hex(r.sha256)!,
      pdq: hex(r.pdq),
      quarantineId: r.quarantine_id !== null && !r.quarantine_deleted_at ? Number(r.quarantine_id) : null,
    };
  }
}

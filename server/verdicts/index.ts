// Verdicts: the store of what this instance and its peers have said about hashes, and the lookups
// over it. Owns the verdicts and verdict_subjects tables and keeps the matcher in step with them.
import { randomUUID } from 'node:crypto';
import canonicalize from 'canonicalize';
import { sql } from 'kysely';
import { MAX_BIND_PARAMETERS, type Db, type HourlyCount } from '../store/index.js';
import { Matcher, type IndexedSubject, type Match, type MatchQuery } from '../matching/matcher.js';
import type { HashListEntry } from './hash-list.js';
import type { BasisSource, ScannedFrames } from '../trust/decide.js';
import {
  basisFromDocument,
  classifierText,
  indexable,
  parseClassifierText,
  storedSubjects,
  verdictObject,
  VerdictNotFoundError,
  VerdictOwnershipError,
  type Classifier,
  type RemoteVerdict,
  type StoredSubject,
} from './objects.js';

export { VerdictNotFoundError, VerdictOwnershipError, type Classifier } from './objects.js';
import { ALGORITHM_REGISTRY } from '../../shared/algorithms/index.js';
import type { Algorithm, Label, Method } from '../../shared/vocab/verdict.js';
import { activityEntry, loggedActivity } from '../log/entry.js';

type ActivityType = 'Create' | 'Update' | 'Delete';

/**
 * What the verdicts module needs from federation and the transparency log, passed in so that it
 * imports nothing above it. Every activity about our verdicts is recorded in the outbox and
 * appended to the log inside the transaction that changes the verdict; deliveries are queued
 * once it has committed.
 */
export interface VerdictPublisher {
  sign<T extends Record<string, unknown>>(object: T): T & { proof: unknown };
  /** A new activity announcing `object`, not yet recorded. */
  activity(type: ActivityType, object: Record<string, unknown>): Record<string, unknown>;
  /** Records the activity in the outbox inside `trx`, with the index of its log entry. */
  record(trx: Db, activity: Record<string, unknown>, restricted: boolean, logIndex: number): Promise<void>;
  /** After a commit: queues delivery of the recorded activities (never throws; retried later). */
  deliverPending(): void;
  log: {
    /** Appends inside `trx` (entries with their private parts); `announce` after the commit (checkpoint scheduling). */
    appendWithin(
      trx: Db,
      entries: readonly Uint8Array[],
      keys: readonly (string | null)[],
      privateParts: readonly (Uint8Array | null)[],
    ): Promise<{ result: { firstIndex: number }; announce: () => void }>;
    /** Stored entries appended with these keys (the repair pass matches older outbox rows to them). */
    entriesByKey(keys: readonly string[]): Promise<Array<{ index: number; key: string; entry: Uint8Array; private: Uint8Array | null }>>;
  };
}

/** Work done inside the transaction of an issue, update or retraction (storing an Idempotency-Key's answer). */
export type Within = (trx: Db, verdict: Verdict) => Promise<void>;

/** Publishes an activity inside the current issuing transaction. */
type Publish = (type: ActivityType, object: Record<string, unknown>, restricted: boolean) => Promise<void>;

/** One stored subject (a frame list is one per distinct frame): server/verdicts/objects.ts. */
export type Subject = StoredSubject;

export interface NewVerdict {
  subjects: Subject[];
  label: Label;
  confidence: number;
  method: Method;
  classifier?: Classifier;
  /** Consensus verdicts: what we counted (decide()'s basis). */
  basis?: readonly BasisSource[];
  supersedes?: string;
  /** Where a local verdict came from: 'hashlist:partner.csv', 'moderator:alice', ... */
  source?: string;
  published?: Date;
  expires?: Date;
  /** Our scanner's verdict about a video: the frames behind it (kept here, never federated). */
  scannedFrames?: ScannedFrames;
}

export interface Verdict {
  id: number;
  uri: string;
  issuer: string;
  local: boolean;
  subjects: Subject[];
  label: Label;
  confidence: number;
  method: Method;
  classifier: string | null;
  /** Consensus verdicts: the sources their issuer counted; null for other methods. */
  basis: BasisSource[] | null;
  source: string | null;
  published: string;
  expires: string | null;
  supersedes: string | null;
  retracted: string | null;
  /** Our scanner's verdicts about videos: the frames behind them. */
  scannedFrames?: ScannedFrames;
}

export interface VerdictMatch extends Verdict {
  matchedBy: Match['algorithm'];
  distance: number;
}

/** A peer's verdict as federation hands it over: the parsed object, the signed document, its sender. */
export interface ReceivedVerdict {
  verdict: RemoteVerdict;
  document: Record<string, unknown>;
  actor: string;
}

/** A received verdict as stored: its row values and subjects. */
interface RemoteRow {
  uri: string;
  actor: string;
  subjects: Subject[];
  values: {
    label: string;
    confidence: number;
    method: string;
    classifier: string | null;
    published: Date;
    updated: Date | null;
    expires: Date | null;
    supersedes: string | null;
    document: string;
  };
}

const INSERT_BATCH = 1_000;
/** `verdict_subjects` rows per INSERT statement (five bind parameters each). */
const SUBJECT_ROWS_PER_INSERT = Math.floor(MAX_BIND_PARAMETERS / 5);
const LOAD_PAGE = 20_000;
/** Outbox rows the repair pass matches to log entries per read. */
const REPAIR_PAGE = 500;

type VerdictRow = {
  id: number;
  uri: string;
  issuer: string;
  is_local: boolean;
  label: string;
  confidence: number;
  method: string;
  classifier: string | null;
  source: string | null;
  published: Date;
  expires: Date | null;
  supersedes: string | null;
  retracted_at: Date | null;
  scanned_frames: ScannedFrames | null;
  basis: unknown;
};

function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

/** A subject's digest as stored; its algorithm's strict parser refuses anything else (DigestFormatError). */
function toBytes(subject: Subject): Buffer {
  const bytes = ALGORITHM_REGISTRY.parseSubject(subject);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** The algorithms whose subjects the matcher indexes: only their rows are loaded into it. */
const INDEXED_ALGORITHMS = ALGORITHM_REGISTRY.indexed.map((a) => a.name);

export class VerdictService {
  readonly matcher = new Matcher();

  constructor(
    private readonly db: Db,
    /** This instance's actor id; local verdicts are issued under it. */
    private readonly localIssuer: string,
    private readonly publicUrl: string,
    /** Signs and federates what `issue`/`update`/`retractLocal` produce; absent in offline CLI runs. */
    private readonly publisher?: VerdictPublisher,
  ) {}

  private localListener: ((subjects: Subject[][]) => Promise<void>) | undefined;

  /**
   * Called with the subjects of our own verdicts (consensus ones aside) after they are recorded,
   * issued or corrected: media we re-attested then has a verdict of our own to decide it.
   */
  onLocalVerdicts(listener: (subjects: Subject[][]) => Promise<void>): void {
    this.localListener = listener;
  }

  /** This instance's actor id, the issuer of our own verdicts. */
  get issuer(): string {
    return this.localIssuer;
  }

  /** Loads every live subject into the matcher; run once at start. */
  async loadIndex(pageSize = LOAD_PAGE): Promise<void> {
    const builder = this.matcher.rebuild();
    // Keyset pagination over the primary key (verdict_id, algorithm, digest).
    let after: { id: number; algorithm: string; digest: Uint8Array } | undefined;
    for (;;) {
      let query = this.db
        .selectFrom('verdict_subjects as s')
        .innerJoin('verdicts as v', 'v.id', 's.verdict_id')
        .select(['s.verdict_id', 's.algorithm', 's.digest', 's.quality'])
        .where('v.retracted_at', 'is', null)
        .where('s.algorithm', 'in', INDEXED_ALGORITHMS);
      if (after) {
        const key = after;
        query = query.where((eb) =>
          eb(eb.refTuple('s.verdict_id', 's.algorithm', 's.digest'), '>', eb.tuple(key.id, key.algorithm, key.digest)),
        );
      }
      const page = await query.orderBy('s.verdict_id').orderBy('s.algorithm').orderBy('s.digest').limit(pageSize).execute();
      for (const r of page) builder.push(r.verdict_id, { algorithm: r.algorithm, digest: r.digest, quality: r.quality });
      if (page.length < pageSize) break;
      const last = page[page.length - 1];
      after = { id: last.verdict_id, algorithm: last.algorithm, digest: last.digest };
    }
    builder.finish();
  }

  /**
   * Brings the matcher in line with what the store now holds for these verdicts, changed by
   * another process (the change feed): each is dropped and, unless retracted or gone, added again.
   * `resubjected` ones had subjects replaced, so their old entries are found by a scan.
   */
  async syncIndex(ids: readonly number[], resubjected: ReadonlySet<number>): Promise<void> {
    for (let start = 0; start < ids.length; start += INSERT_BATCH) {
      const batch = ids.slice(start, start + INSERT_BATCH);
      const live = await this.db.selectFrom('verdicts').select('id').where('id', 'in', batch).where('retracted_at', 'is', null).execute();
      const subjects = await this.db
        .selectFrom('verdict_subjects')
        .select(['verdict_id', 'algorithm', 'digest', 'quality'])
        .where('verdict_id', 'in', batch)
        .where('algorithm', 'in', INDEXED_ALGORITHMS)
        .execute();
      const byVerdict = new Map<number, IndexedSubject[]>();
      for (const s of subjects) {
        const list = byVerdict.get(s.verdict_id) ?? [];
        list.push({ algorithm: s.algorithm, digest: s.digest, quality: s.quality });
        byVerdict.set(s.verdict_id, list);
      }
      const liveIds = new Set(live.map((r) => r.id));
      for (const id of batch) {
        const held = byVerdict.get(id);
        // Subjects never change without a 'subjects' row, so a verdict with none indexable held none.
        if (resubjected.has(id)) this.matcher.remove(id);
        else if (held) this.matcher.remove(id, held);
        if (liveIds.has(id) && held) this.matcher.add(id, held);
      }
    }
  }

  /** Records local verdicts (a moderator's, an imported hash list's) in batches. */
  async recordLocal(verdicts: NewVerdict[]): Promise<number[]> {
    const ids: number[] = [];
    for (let start = 0; start < verdicts.length; start += INSERT_BATCH) {
      const batch = verdicts.slice(start, start + INSERT_BATCH);
      const subjectBytes = batch.map((v) => v.subjects.map(toBytes));
      const inserted = await this.db.transaction().execute(async (trx) => {
        const rows = await trx
          .insertInto('verdicts')
          .values(
            batch.map((v) => ({
              uri: `${this.publicUrl}/verdicts/${randomUUID()}`,
              issuer: this.localIssuer,
              is_local: true,
              label: v.label,
              confidence: v.confidence,
              method: v.method,
              classifier: v.classifier ? classifierText(v.classifier) : null,
              source: v.source ?? null,
              published: v.published ?? new Date(),
              expires: v.expires ?? null,
              supersedes: null,
              retracted_at: null,
              document: null,
              scanned_frames: v.scannedFrames ? JSON.stringify(v.scannedFrames) : null,
            })),
          )
          .returning('id')
          .execute();
        const subjects = rows.flatMap((row, i) =>
          batch[i].subjects.map((s, j) => ({
            verdict_id: row.id,
            algorithm: s.algorithm,
            digest: subjectBytes[i][j],
            quality: s.quality ?? null,
            seconds: s.seconds ?? null,
          })),
        );
        // Five parameters a row: a few video verdicts (up to 1,800 frame rows each) would pass the limit.
        for (let at = 0; at < subjects.length; at += SUBJECT_ROWS_PER_INSERT) {
          await trx.insertInto('verdict_subjects').values(subjects.slice(at, at + SUBJECT_ROWS_PER_INSERT)).onConflict((oc) => oc.doNothing()).execute();
        }
        return rows.map((r) => r.id);
      });
      inserted.forEach((id, i) =>
        this.matcher.add(
          id,
          batch[i].subjects.map((s, j) => ({ algorithm: s.algorithm, digest: subjectBytes[i][j], quality: s.quality ?? null })),
        ),
      );
      ids.push(...inserted);
    }
    const own = verdicts.filter((v) => v.method !== 'consensus');
    if (own.length > 0) await this.localListener?.(own.map((v) => v.subjects));
    return ids;
  }

  /**
   * Imports a partner's hash list as local `hashlist` verdicts. Idempotent: an entry already held
   * with the same hash and label is skipped, so re-running an import never duplicates.
   */
  async importHashList(entries: HashListEntry[], source: string): Promise<{ imported: number; skipped: number }> {
    const fresh: NewVerdict[] = [];
    const seen = new Set<string>();
    for (let start = 0; start < entries.length; start += INSERT_BATCH) {
      const batch = entries.slice(start, start + INSERT_BATCH);
      const existing = await this.db
        .selectFrom('verdict_subjects as s')
        .innerJoin('verdicts as v', 'v.id', 's.verdict_id')
        .select(['s.algorithm', 's.digest', 'v.label'])
        .where('v.is_local', '=', true)
        .where('v.method', '=', 'hashlist')
        .where('v.retracted_at', 'is', null)
        .where('s.digest', 'in', batch.map((e) => Buffer.from(e.digest, 'hex')))
        .execute();
      for (const row of existing) seen.add(`${row.algorithm}:${toHex(row.digest)}:${row.label}`);
      for (const entry of batch) {
        const key = `${entry.algorithm}:${entry.digest}:${entry.label}`;
        if (seen.has(key)) continue;
        seen.add(key);
        fresh.push({
          subjects: [{ algorithm: entry.algorithm, digest: entry.digest }],
          label: entry.label,
          confidence: entry.confidence,
          method: 'hashlist',
          source,
        });
      }
    }
    await this.recordLocal(fresh);
    return { imported: fresh.length, skipped: entries.length - fresh.length };
  }

  /** Marks a verdict retracted (kept, never deleted) and drops it from the matcher. */
  async retract(id: number): Promise<boolean> {
    const { retracted, unindex } = await this.db.transaction().execute((trx) => this.retractWithin(trx, id));
    unindex();
    return retracted;
  }

  /** Retracts inside `trx`; `unindex` drops it from the matcher once committed. */
  private async retractWithin(trx: Db, id: number): Promise<{ retracted: boolean; unindex: () => void }> {
    const result = await trx.updateTable('verdicts').set({ retracted_at: new Date() }).where('id', '=', id).where('retracted_at', 'is', null).executeTakeFirst();
    const subjects = await this.indexedSubjects(id, trx);
    return { retracted: Number(result.numUpdatedRows) > 0, unindex: () => this.matcher.remove(id, subjects) };
  }

  /** A verdict's subjects as the matcher holds them, so it can drop them without a full scan. */
  private async indexedSubjects(id: number, db: Db = this.db) {
    const rows = await db.selectFrom('verdict_subjects').select(['algorithm', 'digest', 'quality']).where('verdict_id', '=', id).execute();
    return rows.map((r) => ({ algorithm: r.algorithm, digest: r.digest, quality: r.quality }));
  }

  /**
   * Runs `work` in one transaction with every activity it publishes: each is appended to the
   * transparency log and recorded in the outbox in that same transaction, so a verdict, its
   * activity and its log entry commit together or not at all. After the commit: the matcher is
   * updated (`after`), deliveries are queued.
   */
  private async publishing<T>(work: (trx: Db, publish: Publish, after: (fn: () => void) => void) => Promise<T>): Promise<T> {
    const publisher = this.requirePublisher();
    const after: Array<() => void> = [];
    const result = await this.db.transaction().execute(async (trx) => {
      const publish: Publish = async (type, object, restricted) => {
        const activity = publisher.activity(type, object);
        const built = activityEntry(activity);
        const { result: appended, announce } = await publisher.log.appendWithin(trx, [built.entry], [typeof object.id === 'string' ? object.id : null], [built.private]);
        await publisher.record(trx, activity, restricted, appended.firstIndex);
        after.push(announce);
      };
      return work(trx, publish, (fn) => after.push(fn));
    });
    for (const fn of after) fn();
    publisher.deliverPending();
    return result;
  }

  /** One of our verdicts, locked for the rest of `trx` (concurrent changes to it queue up). */
  private async lockedLocal(trx: Db, uri: string): Promise<Verdict | undefined> {
    const row = await trx.selectFrom('verdicts').select('id').where('uri', '=', uri).where('is_local', '=', true).forUpdate().executeTakeFirst();
    return row ? (await this.byIds([row.id], trx)).get(row.id) : undefined;
  }

  /** Retracts one of ours inside a publishing transaction and publishes its Delete with a Tombstone. */
  private async retractPublished(trx: Db, current: Verdict, publish: Publish, after: (fn: () => void) => void): Promise<void> {
    const { retracted, unindex } = await this.retractWithin(trx, current.id);
    if (!retracted) return;
    after(unindex);
    const tombstone = { id: current.uri, type: 'Tombstone', formerType: 'Verdict', deleted: new Date().toISOString() };
    await publish('Delete', tombstone, current.label !== 'ok');
  }

  /**
   * Issues a verdict of our own: stored, signed, logged, indexed, and published to followers, in
   * one transaction. One that supersedes another of ours retracts it in the same transaction (a
   * Delete goes out too, as the protocol asks). `within` runs in that transaction.
   */
  async issue(input: NewVerdict, within?: Within): Promise<Verdict> {
    const publisher = this.requirePublisher();
    const uri = `${this.publicUrl}/verdicts/${randomUUID()}`;
    const published = input.published ?? new Date();
    const document = publisher.sign(
      verdictObject({ ...input, uri, issuer: this.localIssuer, published, updated: undefined, supersedes: input.supersedes }),
    );
    const { verdict, superseded } = await this.publishing(async (trx, publish, after) => {
      const superseded = input.supersedes === undefined ? undefined : await this.lockedLocal(trx, input.supersedes);
      if (input.supersedes !== undefined && !superseded) throw new VerdictNotFoundError(input.supersedes, 'not one of ours to supersede');
      const row = await trx
        .insertInto('verdicts')
        .values({
          uri,
          issuer: this.localIssuer,
          is_local: true,
          label: input.label,
          confidence: input.confidence,
          method: input.method,
          classifier: input.classifier ? classifierText(input.classifier) : null,
          source: input.source ?? null,
          published,
          expires: input.expires ?? null,
          supersedes: input.supersedes ?? null,
          retracted_at: null,
          document: JSON.stringify(document),
          scanned_frames: input.scannedFrames ? JSON.stringify(input.scannedFrames) : null,
        })
        .returning('id')
        .executeTakeFirstOrThrow();
      await this.insertSubjects(trx, row.id, input.subjects);
      await publish('Create', document, input.label !== 'ok');
      after(() => this.matcher.add(row.id, indexable(input.subjects)));
      if (superseded && !superseded.retracted) await this.retractPublished(trx, superseded, publish, after);
      const verdict = (await this.byIds([row.id], trx)).get(row.id)!;
      await within?.(trx, verdict);
      return { verdict, superseded };
    });
    const touched = superseded ? [input.subjects, superseded.subjects] : [input.subjects];
    if (input.method !== 'consensus') await this.localListener?.(touched);
    return verdict;
  }

  /** Corrects one of our verdicts (label, confidence, expiry; a consensus' basis) and publishes an Update, in one transaction. */
  async updateLocal(
    uri: string,
    patch: { label?: Label; confidence?: number; expires?: Date | null; basis?: BasisSource[] },
    within?: Within,
  ): Promise<Verdict> {
    const publisher = this.requirePublisher();
    const { verdict, method, subjects } = await this.publishing(async (trx, publish) => {
      const current = await this.lockedLocal(trx, uri);
      if (!current) throw new VerdictNotFoundError(uri);
      if (current.retracted) throw new VerdictNotFoundError(uri, 'retracted');
      const updated = new Date();
      const next = {
        subjects: current.subjects,
        label: patch.label ?? current.label,
        confidence: patch.confidence ?? current.confidence,
        method: current.method,
        classifier: current.classifier ? parseClassifierText(current.classifier) : undefined,
        basis: current.method === 'consensus' ? (patch.basis ?? current.basis) : null,
        expires: patch.expires === undefined ? (current.expires ? new Date(current.expires) : undefined) : (patch.expires ?? undefined),
        supersedes: current.supersedes ?? undefined,
      };
      const document = publisher.sign(
        verdictObject({ ...next, uri, issuer: this.localIssuer, published: new Date(current.published), updated }),
      );
      await trx
        .updateTable('verdicts')
        .set({ label: next.label, confidence: next.confidence, expires: next.expires ?? null, updated, document: JSON.stringify(document) })
        .where('id', '=', current.id)
        .execute();
      await publish('Update', document, next.label !== 'ok' || current.label !== 'ok');
      const verdict = (await this.byIds([current.id], trx)).get(current.id)!;
      await within?.(trx, verdict);
      return { verdict, method: current.method, subjects: current.subjects };
    });
    if (method !== 'consensus') await this.localListener?.([subjects]);
    return verdict;
  }

  /** Retracts one of our verdicts (kept as evidence) and publishes a Delete with a Tombstone, in one transaction. */
  async retractLocal(uri: string, within?: Within): Promise<void> {
    await this.publishing(async (trx, publish, after) => {
      const current = await this.lockedLocal(trx, uri);
      if (!current) throw new VerdictNotFoundError(uri);
      if (!current.retracted) await this.retractPublished(trx, current, publish, after);
      await within?.(trx, current);
    });
  }

  /**
   * Completes what an older version (publishing in steps, outside one transaction) left half-done
   * when it crashed: verdict activities in the outbox missing from the transparency log are
   * appended, and our published verdicts whose latest activity does not say what the verdict now
   * is (no Create, a correction never announced, a retraction without its Delete) get it. Run at
   * start, before serving; on a consistent store it reads the outbox rows it has not yet matched
   * to their log entry (only older versions' rows) and one query over our verdicts.
   */
  async repairPublications(): Promise<{ logged: number; published: number }> {
    const publisher = this.requirePublisher();
    const prefix = `${this.publicUrl}/verdicts/`;
    let logged = 0;
    for (let after = 0; ; ) {
      const rows = await this.db
        .selectFrom('outbox')
        .select(['seq', 'activity', 'object_id'])
        .where('log_index', 'is', null)
        .where('seq', '>', after)
        .where(sql<boolean>`starts_with(object_id, ${prefix})`)
        .orderBy('seq')
        .limit(REPAIR_PAGE)
        .execute();
      if (rows.length === 0) break;
      after = rows[rows.length - 1].seq;
      const stored = await publisher.log.entriesByKey([...new Set(rows.map((r) => r.object_id!))]);
      const indexOf = new Map(stored.map((e) => [`${e.key}\n${canonicalize(loggedActivity(e.entry, e.private))}`, e.index]));
      for (const row of rows) {
        const entry = canonicalize(row.activity) as string;
        const index = indexOf.get(`${row.object_id}\n${entry}`);
        if (index !== undefined) {
          await this.db.updateTable('outbox').set({ log_index: index }).where('seq', '=', row.seq).execute();
          continue;
        }
        const appended = await this.db.transaction().execute(async (trx) => {
          // Another process starting at the same moment may have logged it already.
          const locked = await trx.selectFrom('outbox').select('log_index').where('seq', '=', row.seq).forUpdate().executeTakeFirstOrThrow();
          if (locked.log_index !== null) return undefined;
          const built = activityEntry(row.activity as Record<string, unknown>);
          const done = await publisher.log.appendWithin(trx, [built.entry], [row.object_id], [built.private]);
          await trx.updateTable('outbox').set({ log_index: done.result.firstIndex }).where('seq', '=', row.seq).execute();
          return done;
        });
        if (!appended) continue;
        appended.announce();
        logged++;
      }
    }
    const stale = await sql<{ uri: string }>`
      SELECT v.uri FROM verdicts v
      LEFT JOIN LATERAL (SELECT o.type, o.activity FROM outbox o WHERE o.object_id = v.uri ORDER BY o.seq DESC LIMIT 1) latest ON true
      WHERE v.is_local AND v.document IS NOT NULL AND (
        latest.type IS NULL
        OR (v.retracted_at IS NULL AND (latest.type = 'Delete' OR latest.activity->'object' <> v.document))
        OR (v.retracted_at IS NOT NULL AND latest.type <> 'Delete'))
      ORDER BY v.id`.execute(this.db);
    let published = 0;
    for (const { uri } of stale.rows) {
      published += await this.publishing(async (trx, publish) => {
        const current = await this.lockedLocal(trx, uri);
        if (!current) return 0;
        const row = await trx.selectFrom('verdicts').select('document').where('id', '=', current.id).executeTakeFirstOrThrow();
        const document = row.document as Record<string, unknown>;
        const activities = await trx.selectFrom('outbox').select(['type', 'activity']).where('object_id', '=', uri).orderBy('seq', 'desc').execute();
        const latest = activities[0];
        const lastLabel = (latest?.activity as { object?: { label?: unknown } } | undefined)?.object?.label;
        const restricted = current.label !== 'ok' || (lastLabel !== undefined && lastLabel !== 'ok');
        let count = 0;
        const announced = latest !== undefined && latest.type !== 'Delete' && canonicalize((latest.activity as { object?: unknown }).object) === canonicalize(document);
        if (!announced && !(current.retracted && latest?.type === 'Delete')) {
          await publish(activities.some((a) => a.type === 'Create') ? 'Update' : 'Create', document, restricted);
          count++;
        }
        if (current.retracted && latest?.type !== 'Delete') {
          const tombstone = { id: uri, type: 'Tombstone', formerType: 'Verdict', deleted: new Date(current.retracted).toISOString() };
          await publish('Delete', tombstone, restricted);
          count++;
        }
        return count;
      });
    }
    return { logged, published };
  }

  /**
   * Stores peers' verdicts (already authenticated by federation) inside the caller's transaction
   * (the inbox's, which also records the activities as received); returns what updates the matcher,
   * to run once that transaction has committed. The verdicts not yet stored, the common case, are
   * inserted with their subjects in one statement; each of the others is checked against the
   * stored copy in turn, as if received alone in the order given: an update or a re-sent create of
   * an object stored under another issuer is refused (the stored owner decides), a retracted one
   * stays retracted, an older version never overwrites a newer one.
   */
  async receiveWithin(trx: Db, received: readonly ReceivedVerdict[]): Promise<() => void> {
    const rows = received.map(({ verdict, document, actor }) => ({
      uri: verdict.id,
      actor,
      subjects: storedSubjects(verdict.subject),
      values: {
        label: verdict.label,
        confidence: verdict.confidence,
        method: verdict.method,
        classifier: verdict.classifier ? classifierText(verdict.classifier) : null,
        published: new Date(verdict.published),
        updated: verdict.updated ? new Date(verdict.updated) : null,
        expires: verdict.expires ? new Date(verdict.expires) : null,
        supersedes: verdict.supersedes ?? null,
        document: JSON.stringify(document),
      },
    }));
    // One row per id in the set insert (its subjects are joined to it by id); a later one with the
    // same id is then an update of the first, handled below.
    const firstOfEach = new Map<string, RemoteRow>();
    for (const row of rows) if (!firstOfEach.has(row.uri)) firstOfEach.set(row.uri, row);
    const created = await this.insertRemote(trx, [...firstOfEach.values()]);
    const index: Array<() => void> = [];
    for (const row of rows) {
      const id = created.get(row.uri);
      if (id !== undefined && firstOfEach.get(row.uri) === row) index.push(() => this.matcher.add(id, indexable(row.subjects)));
      else index.push(await this.receiveStored(trx, row));
    }
    return () => {
      for (const fn of index) fn();
    };
  }

  /** A peer's verdict whose id is already stored: checked against the stored copy, then applied. */
  private async receiveStored(trx: Db, { uri, actor, values, subjects }: RemoteRow): Promise<() => void> {
    const existing = await trx
      .selectFrom('verdicts')
      .select(['id', 'issuer', 'retracted_at', 'published', 'updated'])
      .where('uri', '=', uri)
      .forUpdate()
      .executeTakeFirstOrThrow();
    if (existing.issuer !== actor) throw new VerdictOwnershipError(`${uri} belongs to ${existing.issuer}`);
    const unchanged = () => undefined;
    if (existing.retracted_at) return unchanged; // a retraction is final; a late Create/Update does not revive it
    // Deliveries may arrive out of order: an older version never overwrites a newer one.
    const incomingVersion = (values.updated ?? values.published).getTime();
    if (incomingVersion <= (existing.updated ?? existing.published).getTime()) return unchanged;
    const previous = await this.indexedSubjects(existing.id, trx);
    await trx.updateTable('verdicts').set(values).where('id', '=', existing.id).execute();
    await trx.deleteFrom('verdict_subjects').where('verdict_id', '=', existing.id).execute();
    await this.insertSubjects(trx, existing.id, subjects);
    return () => {
      this.matcher.remove(existing.id, previous);
      this.matcher.add(existing.id, indexable(subjects));
    };
  }

  /**
   * Inserts peers' verdicts (distinct ids) with their subjects in one statement, in id order (so
   * that concurrent inserts of overlapping ids wait on each other rather than deadlock); returns
   * the ids of those inserted by uri, leaving out any already stored.
   */
  private async insertRemote(trx: Db, rows: readonly RemoteRow[]): Promise<Map<string, number>> {
    const created = new Map<string, number>();
    if (rows.length === 0) return created;
    const sorted = [...rows].sort((a, b) => (a.uri < b.uri ? -1 : a.uri > b.uri ? 1 : 0));
    const verdictValues = sql.join(
      sorted.map(({ uri, actor, values: v }) => sql`(${uri}, ${actor}, false, ${`peer:${actor}`}, ${v.label}, ${v.confidence}, ${v.method}, ${v.classifier}, ${v.published}, ${v.updated}, ${v.expires}, ${v.supersedes}, ${v.document}::jsonb)`),
    );
    // Every verdict has at least one subject (the vocabulary's parser insists).
    const subjectValues = sql.join(sorted.flatMap(({ uri, subjects }) => subjects.map((s) => sql`(${uri}, ${s.algorithm}, ${toBytes(s)}::bytea, ${s.quality ?? null}::smallint, ${s.seconds ?? null}::numeric)`)));
    const result = await sql<{ id: number; uri: string }>`
      WITH v AS (
        INSERT INTO verdicts (uri, issuer, is_local, source, label, confidence, method, classifier, published, updated, expires, supersedes, document)
        VALUES ${verdictValues}
        ON CONFLICT (uri) DO NOTHING
        RETURNING id, uri
      ), s AS (
        INSERT INTO verdict_subjects (verdict_id, algorithm, digest, quality, seconds)
        SELECT v.id, x.algorithm, x.digest, x.quality, x.seconds FROM v JOIN (VALUES ${subjectValues}) AS x(uri, algorithm, digest, quality, seconds) ON x.uri = v.uri
        ON CONFLICT DO NOTHING
      )
      SELECT id, uri FROM v`.execute(trx);
    for (const row of result.rows) created.set(row.uri, Number(row.id));
    return created;
  }

  /**
   * Retracts a peer's verdict on its Delete, inside the caller's transaction; only its stored
   * issuer may. Returns what updates the matcher once that transaction has committed.
   */
  async receiveRetractionWithin(trx: Db, uri: string, actor: string): Promise<() => void> {
    const existing = await trx.selectFrom('verdicts').select(['id', 'issuer']).where('uri', '=', uri).executeTakeFirst();
    if (!existing) return () => undefined;
    if (existing.issuer !== actor) throw new VerdictOwnershipError(`${uri} belongs to ${existing.issuer}`);
    return (await this.retractWithin(trx, existing.id)).unindex;
  }

  /** The signed objects of these verdicts, as published (ours, or as a peer sent them). */
  async documents(ids: number[]): Promise<Map<number, Record<string, unknown>>> {
    const out = new Map<number, Record<string, unknown>>();
    if (ids.length === 0) return out;
    const rows = await this.db.selectFrom('verdicts').select(['id', 'document']).where('id', 'in', ids).where('document', 'is not', null).execute();
    for (const r of rows) out.set(r.id, r.document as Record<string, unknown>);
    return out;
  }

  async byUri(uri: string): Promise<Verdict | undefined> {
    const row = await this.db.selectFrom('verdicts').select('id').where('uri', '=', uri).executeTakeFirst();
    return row ? (await this.byIds([row.id])).get(row.id) : undefined;
  }

  private requirePublisher(): VerdictPublisher {
    if (!this.publisher) throw new Error('verdict publishing is not available in this process (run it on the server)');
    return this.publisher;
  }

  private async insertSubjects(trx: Db, verdictId: number, subjects: Subject[]): Promise<void> {
    await trx
      .insertInto('verdict_subjects')
      .values(subjects.map((s) => ({ verdict_id: verdictId, algorithm: s.algorithm, digest: toBytes(s), quality: s.quality ?? null, seconds: s.seconds ?? null })))
      .onConflict((oc) => oc.doNothing())
      .execute();
  }

  /** Ids of the live verdicts matching the query, from the index alone (no database read). */
  matchIds(query: MatchQuery): number[] {
    return this.matcher.match(query).map((m) => m.verdictId);
  }

  /** Live verdicts matching the query, closest first: not retracted, and unless asked, not expired. */
  async find(query: MatchQuery, options: { includeExpired?: boolean } = {}): Promise<VerdictMatch[]> {
    const now = options.includeExpired ? -Infinity : Date.now();
    const matches = this.matcher.match(query);
    if (matches.length === 0) return [];
    const verdicts = await this.byIds(matches.map((m) => m.verdictId));
    return matches.flatMap((m) => {
      const verdict = verdicts.get(m.verdictId);
      const live = verdict && !verdict.retracted && !(verdict.expires && Date.parse(verdict.expires) <= now);
      return live ? [{ ...verdict, matchedBy: m.algorithm, distance: m.distance }] : [];
    });
  }

  /**
   * Every verdict we issued with this `source`, retracted ones included: what one scan issued
   * (`scanner:decision-ID`), so that its result posted again issues nothing twice.
   */
  async localFromSource(source: string): Promise<Verdict[]> {
    const rows = await this.db.selectFrom('verdicts').select('id').where('is_local', '=', true).where('source', '=', source).execute();
    return [...(await this.byIds(rows.map((r) => Number(r.id)))).values()];
  }

  /**
   * Our unretracted consensus verdicts with exactly this subject, read from the store rather than
   * the matcher: one another process has just issued may not have reached this one's matcher yet.
   */
  async liveConsensusWith(subject: Subject): Promise<Verdict[]> {
    const rows = await this.db
      .selectFrom('verdict_subjects as s')
      .innerJoin('verdicts as v', 'v.id', 's.verdict_id')
      .select('v.id')
      .where('s.algorithm', '=', subject.algorithm)
      .where('s.digest', '=', toBytes(subject))
      .where('v.is_local', '=', true)
      .where('v.method', '=', 'consensus')
      .where('v.retracted_at', 'is', null)
      .orderBy('v.id')
      .execute();
    const byId = await this.byIds(rows.map((r) => r.id));
    return rows.flatMap((r) => byId.get(r.id) ?? []);
  }

  /** Our unretracted consensus verdicts (re-attestations), with when each expires. */
  async liveConsensus(): Promise<Array<{ id: number; expires: Date | null }>> {
    const rows = await this.db
      .selectFrom('verdicts')
      .select(['id', 'expires'])
      .where('is_local', '=', true)
      .where('method', '=', 'consensus')
      .where('retracted_at', 'is', null)
      .execute();
    return rows.map((r) => ({ id: Number(r.id), expires: r.expires }));
  }

  /** Which of these verdicts are consensus verdicts of ours, with their expiry and whether retracted. */
  async consensusAmong(ids: readonly number[]): Promise<Array<{ id: number; expires: Date | null; retracted: boolean }>> {
    const out: Array<{ id: number; expires: Date | null; retracted: boolean }> = [];
    for (let start = 0; start < ids.length; start += INSERT_BATCH) {
      const rows = await this.db
        .selectFrom('verdicts')
        .select(['id', 'expires', 'retracted_at'])
        .where('id', 'in', ids.slice(start, start + INSERT_BATCH))
        .where('is_local', '=', true)
        .where('method', '=', 'consensus')
        .execute();
      out.push(...rows.map((r) => ({ id: Number(r.id), expires: r.expires, retracted: r.retracted_at !== null })));
    }
    return out;
  }

  /** Our scanner's verdicts per hour and label since `since` (the health chart). */
  async hourlyScans(since: Date): Promise<HourlyCount[]> {
    const rows = await this.db
      .selectFrom('verdicts')
      .select([sql<Date>`date_trunc('hour', published)`.as('hour'), 'label as key', (eb) => eb.fn.countAll<string>().as('n')])
      .where('is_local', '=', true)
      .where('method', '=', 'classifier')
      .where('published', '>=', since)
      .groupBy([sql`date_trunc('hour', published)`, 'label'])
      .execute();
    return rows.map((r) => ({ hour: new Date(r.hour), key: r.key, n: Number(r.n) }));
  }

  /** Verdicts (live and retracted) by label, issuer and publication time, newest first. */
  async search(filter: { label?: Label; issuer?: string; since?: Date; until?: Date; limit?: number }): Promise<Verdict[]> {
    let q = this.db.selectFrom('verdicts').select('id').orderBy('published', 'desc').orderBy('id', 'desc').limit(Math.min(Math.max(filter.limit ?? 100, 1), 500));
    if (filter.label) q = q.where('label', '=', filter.label);
    if (filter.issuer) q = q.where('issuer', '=', filter.issuer);
    if (filter.since) q = q.where('published', '>=', filter.since);
    if (filter.until) q = q.where('published', '<', filter.until);
    const ids = (await q.execute()).map((r) => r.id);
    const byId = await this.byIds(ids);
    return ids.flatMap((id) => byId.get(id) ?? []);
  }

  async byIds(ids: number[], db: Db = this.db): Promise<Map<number, Verdict>> {
    const out = new Map<number, Verdict>();
    if (ids.length === 0) return out;
    const rows = (await db
      .selectFrom('verdicts')
      .select(['id', 'uri', 'issuer', 'is_local', 'label', 'confidence', 'method', 'classifier', 'source', 'published', 'expires', 'supersedes', 'retracted_at', 'scanned_frames'])
      .select(sql<unknown>`CASE WHEN method = 'consensus' THEN document->'basis' END`.as('basis'))
      .where('id', 'in', ids)
      .execute()) as VerdictRow[];
    const subjects = await db
      .selectFrom('verdict_subjects')
      .select(['verdict_id', 'algorithm', 'digest', 'quality', 'seconds'])
      .where('verdict_id', 'in', ids)
      .execute();
    const byVerdict = new Map<number, Subject[]>();
    for (const s of subjects) {
      const list = byVerdict.get(s.verdict_id) ?? [];
      list.push({
        algorithm: s.algorithm,
        digest: toHex(s.digest),
        ...(s.quality === null ? {} : { quality: s.quality }),
        ...(s.seconds === null ? {} : { seconds: Number(s.seconds) }),
      });
      byVerdict.set(s.verdict_id, list);
    }
    for (const r of rows) {
      out.set(r.id, {
        id: r.id,
        uri: r.uri,
        issuer: r.issuer,
        local: r.is_local,
        subjects: byVerdict.get(r.id) ?? [],
        label: r.label as Label,
        confidence: r.confidence,
        method: r.method as Method,
        classifier: r.classifier,
        basis: basisFromDocument(r.basis),
        source: r.source,
        published: r.published.toISOString(),
        expires: r.expires?.toISOString() ?? null,
        supersedes: r.supersedes,
        retracted: r.retracted_at?.toISOString() ?? null,
        ...(r.scanned_frames ? { scannedFrames: r.scanned_frames } : {}),
      });
    }
    return out;
  }
}

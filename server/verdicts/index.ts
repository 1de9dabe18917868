// Verdicts: the store of what this instance and its peers have said about hashes, and the lookups
// over it. Owns the verdicts and verdict_subjects tables and keeps the matcher in step with them.
import { randomUUID } from 'node:crypto';
import type { Db } from '../store/index.js';
import { Matcher, type Match, type MatchQuery } from '../matching/matcher.js';
import type { HashListEntry } from './hash-list.js';
import { ALGORITHMS, type Algorithm, type Label, type Method } from '../../shared/vocab/verdict.js';

export interface Subject {
  algorithm: Algorithm;
  /** Lower-case hex. */
  digest: string;
  quality?: number;
}

export interface NewVerdict {
  subjects: Subject[];
  label: Label;
  confidence: number;
  method: Method;
  classifier?: string;
  /** Where a local verdict came from: 'hashlist:partner.csv', 'moderator:alice', ... */
  source?: string;
  published?: Date;
  expires?: Date;
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
  source: string | null;
  published: string;
  expires: string | null;
  supersedes: string | null;
  retracted: string | null;
}

export interface VerdictMatch extends Verdict {
  matchedBy: Match['algorithm'];
  distance: number;
}

const INSERT_BATCH = 1_000;
const LOAD_PAGE = 20_000;

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
};

function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

function toBytes(subject: Subject): Buffer {
  const bytes = Buffer.from(subject.digest, 'hex');
  if (bytes.length !== ALGORITHMS[subject.algorithm] || subject.digest.length !== bytes.length * 2) {
    throw new RangeError(`${subject.algorithm} digest must be ${ALGORITHMS[subject.algorithm] * 2} hex characters`);
  }
  return bytes;
}

export class VerdictService {
  readonly matcher = new Matcher();

  constructor(
    private readonly db: Db,
    /** This instance's actor id; local verdicts are issued under it. */
    private readonly localIssuer: string,
    private readonly publicUrl: string,
  ) {}

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
        .where('s.algorithm', 'in', ['pdq', 'sha256']);
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
              classifier: v.classifier ?? null,
              source: v.source ?? null,
              published: v.published ?? new Date(),
              expires: v.expires ?? null,
              supersedes: null,
              retracted_at: null,
              document: null,
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
          })),
        );
        if (subjects.length > 0) {
          await trx.insertInto('verdict_subjects').values(subjects).onConflict((oc) => oc.doNothing()).execute();
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
    const result = await this.db
      .updateTable('verdicts')
      .set({ retracted_at: new Date() })
      .where('id', '=', id)
      .where('retracted_at', 'is', null)
      .executeTakeFirst();
    this.matcher.remove(id);
    return Number(result.numUpdatedRows) > 0;
  }

  /** Live verdicts matching the query, closest first. */
  async find(query: MatchQuery): Promise<VerdictMatch[]> {
    const matches = this.matcher.match(query);
    if (matches.length === 0) return [];
    const verdicts = await this.byIds(matches.map((m) => m.verdictId));
    return matches.flatMap((m) => {
      const verdict = verdicts.get(m.verdictId);
      return verdict && !verdict.retracted ? [{ ...verdict, matchedBy: m.algorithm, distance: m.distance }] : [];
    });
  }

  async byIds(ids: number[]): Promise<Map<number, Verdict>> {
    const out = new Map<number, Verdict>();
    if (ids.length === 0) return out;
    const rows = (await this.db
      .selectFrom('verdicts')
      .select(['id', 'uri', 'issuer', 'is_local', 'label', 'confidence', 'method', 'classifier', 'source', 'published', 'expires', 'supersedes', 'retracted_at'])
      .where('id', 'in', ids)
      .execute()) as VerdictRow[];
    const subjects = await this.db
      .selectFrom('verdict_subjects')
      .select(['verdict_id', 'algorithm', 'digest', 'quality'])
      .where('verdict_id', 'in', ids)
      .execute();
    const byVerdict = new Map<number, Subject[]>();
    for (const s of subjects) {
      const list = byVerdict.get(s.verdict_id) ?? [];
      list.push({ algorithm: s.algorithm as Algorithm, digest: toHex(s.digest), ...(s.quality === null ? {} : { quality: s.quality }) });
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
        source: r.source,
        published: r.published.toISOString(),
        expires: r.expires?.toISOString() ?? null,
        supersedes: r.supersedes,
        retracted: r.retracted_at?.toISOString() ?? null,
      });
    }
    return out;
  }
}

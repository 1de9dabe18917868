// Idempotency-Key on the admin API's writes: a client that lost its answer (a timeout, a crash of
// the server) retries with the same key and gets the first answer back, and nothing is created
// twice. The answer is stored in the very transaction that made the change, so a change and its
// key commit together; a concurrent retry's own insert of the key then fails and its change rolls
// back. Keys are scoped per route (method and path) and expire after a day.
import { createHash } from 'node:crypto';
import type { Request, Response } from 'express';
import type { Db } from '../store/index.js';
import { HttpError } from './errors.js';

/** How long an answer is kept for retries. */
const KEY_TTL_MS = 24 * 3_600_000;
/** Expired keys are deleted at most this often per process. */
const PRUNE_EVERY_MS = 3_600_000;
const KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;

export interface Answer {
  status: number;
  body: unknown;
}

/** Stores the answer inside the transaction of the change (handed to the verdicts module). */
export type RecordAnswer = (trx: Db, answer: Answer) => Promise<void>;

function isKeyConflict(err: unknown): boolean {
  const e = err as { code?: unknown; constraint?: unknown; message?: unknown };
  return e?.code === '23505' && (e.constraint === 'idempotency_keys_pkey' || String(e.message).includes('idempotency_keys'));
}

export class IdempotencyKeys {
  private lastPrune = 0;

  constructor(private readonly db: Db) {}

  /**
   * Runs a write under the request's Idempotency-Key, if it has one: a stored answer is replayed
   * (the write does not run); otherwise `write` runs, given the function that stores its answer in
   * its transaction, and its answer is sent. Without the header `write` runs with no recorder.
   */
  async run(req: Request, res: Response, write: (record: RecordAnswer | undefined) => Promise<Answer>): Promise<void> {
    const header = req.get('idempotency-key');
    if (header === undefined) return send(res, await write(undefined));
    if (!KEY_PATTERN.test(header)) throw new HttpError(400, 'bad_idempotency_key', 'Idempotency-Key must be 1 to 255 visible ASCII characters');
    const scope = `${req.method} ${req.baseUrl}${req.path}`;
    const requestHash = createHash('sha256').update(JSON.stringify(req.body ?? null)).digest('hex');
    this.pruneNow();
    const stored = await this.lookup(scope, header, requestHash);
    if (stored) return send(res, stored, true);
    const record: RecordAnswer = async (trx, answer) => {
      await trx.deleteFrom('idempotency_keys').where('scope', '=', scope).where('key', '=', header).where('expires_at', '<=', new Date()).execute();
      await trx
        .insertInto('idempotency_keys')
        .values({
          scope,
          key: header,
          request_hash: requestHash,
          status: answer.status,
          body: answer.body === undefined ? null : JSON.stringify(answer.body),
          expires_at: new Date(Date.now() + KEY_TTL_MS),
        })
        .execute();
    };
    try {
      return send(res, await write(record));
    } catch (err) {
      // The same key in a concurrent request: its change committed first, ours rolled back.
      if (!isKeyConflict(err)) throw err;
      const first = await this.lookup(scope, header, requestHash);
      if (!first) throw err;
      return send(res, first, true);
    }
  }

  private async lookup(scope: string, key: string, requestHash: string): Promise<Answer | undefined> {
    const row = await this.db
      .selectFrom('idempotency_keys')
      .select(['request_hash', 'status', 'body'])
      .where('scope', '=', scope)
      .where('key', '=', key)
      .where('expires_at', '>', new Date())
      .executeTakeFirst();
    if (!row) return undefined;
    if (row.request_hash !== requestHash) {
      throw new HttpError(422, 'idempotency_key_reused', 'this Idempotency-Key was used for a different request on this route');
    }
    return { status: row.status, body: row.body ?? undefined };
  }

  private pruneNow(): void {
    if (Date.now() - this.lastPrune < PRUNE_EVERY_MS) return;
    this.lastPrune = Date.now();
    // Best effort: an expired key is ignored by lookups and replaced on reuse anyway.
    void this.db.deleteFrom('idempotency_keys').where('expires_at', '<=', new Date()).execute().catch(() => {});
  }
}

function send(res: Response, answer: Answer, replayed = false): void {
  if (replayed) res.set('idempotent-replayed', 'true');
  if (answer.body === undefined) res.status(answer.status).end();
  else res.status(answer.status).json(answer.body);
}

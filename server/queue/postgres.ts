// The queue backend without Redis: jobs are rows of the store's `jobs` table (migrations/0002_jobs.sql),
// on PGlite or PostgreSQL, so a restart loses nothing.
//
// - Workers claim one due job at a time with UPDATE ... WHERE id = (SELECT ... FOR UPDATE SKIP
//   LOCKED LIMIT 1), so several processes on one PostgreSQL server never take the same job. A claim
//   counts an attempt and holds a lease (`locked_until`) that a heartbeat renews while the handler
//   runs; a job whose lease ran out (its worker crashed or was killed) goes back to waiting, or to
//   the dead letters when that was its last attempt. Every worker sweeps for such jobs when it
//   starts and then every half lease.
// - Idle workers poll (pollIntervalMs), sleep no longer than until the next due job, and wake at
//   once on an add, retryDead or a finished handler in this process.
// - Completed jobs are kept, up to keepCompleted per queue (the oldest are pruned), so counts show
//   them and jobId stays idempotent for recent work; dead jobs are kept until retried.
// - All times are the database's clock (now()), never this process's, so replicas agree.
import { randomUUID } from 'node:crypto';
import { sql, type Kysely, type RawBuilder } from 'kysely';
import type { Database } from '../store/schema.js';
import {
  DEFAULTS,
  PermanentJobError,
  RetryLaterError,
  backoffDelay,
  checkJobOptions,
  checkName,
  checkPolicy,
  consoleLogger,
  errorMessage,
  jobJson,
  retryLaterDelay,
  type DeadJob,
  type Job,
  type JobOptions,
  type JobQueue,
  type QueueCounts,
  type QueueLogger,
  type QueuePolicy,
  type Queues,
  type QueuesOptions,
} from './common.js';

type Db = Kysely<Database>;

interface Settings {
  leaseMs: number;
  keepCompleted: number;
  pollIntervalMs: number;
  logger: QueueLogger;
}

/** Rows per INSERT in addBulk (5 parameters a row, far below PostgreSQL's 65535). */
const INSERT_CHUNK = 500;

/** now() + ms, on the database's clock. */
function later(ms: number): RawBuilder<Date> {
  return sql<Date>`now() + ${`${Math.max(0, Math.round(ms))} milliseconds`}::interval`;
}

// Local wake-ups: every queue object of this process over the same database and queue hears an
// add there at once (other processes find it by polling).
const wakers = new WeakMap<Db, Map<string, Set<() => void>>>();

function subscribe(db: Db, queue: string, wake: () => void): () => void {
  let byQueue = wakers.get(db);
  if (!byQueue) wakers.set(db, (byQueue = new Map()));
  let set = byQueue.get(queue);
  if (!set) byQueue.set(queue, (set = new Set()));
  set.add(wake);
  return () => {
    set.delete(wake);
    if (set.size === 0) byQueue.delete(queue);
  };
}

function wakeAll(db: Db, queue: string): void {
  for (const wake of wakers.get(db)?.get(queue) ?? []) wake();
}

export function createPostgresQueues(options: QueuesOptions & { db: Db }): Queues {
  const settings: Settings = {
    leaseMs: options.leaseMs ?? DEFAULTS.leaseMs,
    keepCompleted: options.keepCompleted ?? DEFAULTS.keepCompleted,
    pollIntervalMs: options.pollIntervalMs ?? DEFAULTS.pollIntervalMs,
    logger: options.logger ?? consoleLogger,
  };
  if (!(settings.leaseMs >= 100)) throw new Error('leaseMs must be at least 100');
  if (!(settings.pollIntervalMs >= 1)) throw new Error('pollIntervalMs must be at least 1');
  if (!Number.isInteger(settings.keepCompleted) || settings.keepCompleted < 0) throw new Error('keepCompleted must be an integer >= 0');
  const made = new Set<PostgresQueue<unknown>>();
  let closed = false;
  return {
    queue<T>(name: string, policy: QueuePolicy): JobQueue<T> {
      if (closed) throw new Error('the queues are closed');
      checkName(name, 'queue name');
      checkPolicy(policy);
      const key = options.prefix ? `${options.prefix}:${name}` : name;
      const queue = new PostgresQueue<T>(options.db, key, { ...policy }, settings);
      made.add(queue as PostgresQueue<unknown>);
      return queue;
    },
    async close() {
      closed = true;
      await Promise.all([...made].map((queue) => queue.close()));
    },
  };
}

class PostgresQueue<T> implements JobQueue<T> {
  private worker: Worker<T> | undefined;
  private closed = false;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly db: Db,
    private readonly key: string,
    private readonly policy: QueuePolicy,
    private readonly settings: Settings,
  ) {}

  async add(name: string, data: T, options?: JobOptions): Promise<string> {
    const [id] = await this.insert([{ name, data, options }]);
    return id;
  }

  async addBulk(jobs: Array<{ name: string; data: T; options?: JobOptions }>): Promise<void> {
    await this.insert(jobs);
  }

  private async insert(jobs: Array<{ name: string; data: T; options?: JobOptions }>): Promise<string[]> {
    if (this.closed) throw new Error(`queue ${this.key} is closed`);
    const rows = jobs.map(({ name, data, options }) => {
      if (typeof name !== 'string' || name.length === 0) throw new Error('a job needs a name');
      checkJobOptions(options);
      return {
        queue: this.key,
        id: options?.jobId ?? randomUUID(),
        name,
        data: jobJson(data),
        run_at: later(options?.delayMs ?? 0),
      };
    });
    for (let start = 0; start < rows.length; start += INSERT_CHUNK) {
      await this.db
        .insertInto('jobs')
        .values(rows.slice(start, start + INSERT_CHUNK))
        .onConflict((oc) => oc.columns(['queue', 'id']).doNothing())
        .execute();
    }
    if (rows.length > 0) wakeAll(this.db, this.key);
    return rows.map((row) => row.id);
  }

  process(handler: (job: Job<T>) => Promise<void>, options?: { concurrency?: number }): void {
    if (this.closed) throw new Error(`queue ${this.key} is closed`);
    if (this.worker) throw new Error(`queue ${this.key}: process() was already called on this object`);
    const concurrency = options?.concurrency ?? 1;
    if (!Number.isInteger(concurrency) || concurrency < 1) throw new Error('concurrency must be an integer >= 1');
    this.worker = new Worker(this.db, this.key, this.policy, this.settings, handler, concurrency);
  }

  async counts(): Promise<QueueCounts> {
    const { rows } = await sql<{ state: string; later: boolean; n: number }>`
      SELECT state, run_at > now() AS later, count(*)::int AS n FROM jobs WHERE queue = ${this.key} GROUP BY 1, 2
    `.execute(this.db);
    const counts: QueueCounts = { waiting: 0, active: 0, delayed: 0, dead: 0, completed: 0 };
    for (const { state, later: isLater, n } of rows) {
      if (state === 'waiting') counts[isLater ? 'delayed' : 'waiting'] += Number(n);
      else if (state === 'active' || state === 'dead' || state === 'completed') counts[state] += Number(n);
    }
    return counts;
  }

  async deadLetters(limit: number = DEFAULTS.deadLetterLimit): Promise<DeadJob<T>[]> {
    const rows = await this.db
      .selectFrom('jobs')
      .select(['id', 'name', 'data', 'attempts', 'last_error', 'updated_at'])
      .where('queue', '=', this.key)
      .where('state', '=', 'dead')
      .orderBy('updated_at', 'desc')
      .orderBy('id')
      .limit(Math.max(0, Math.floor(limit)))
      .execute();
    return rows.map((row) => ({
      id: row.id,
      name: row.name,
      data: row.data as T,
      attempts: row.attempts,
      error: row.last_error ?? '',
      failedAt: new Date(row.updated_at),
    }));
  }

  async retryDead(id: string): Promise<boolean> {
    const rows = await this.db
      .updateTable('jobs')
      .set({ state: 'waiting', attempts: 0, run_at: sql`now()`, updated_at: sql`now()` })
      .where('queue', '=', this.key)
      .where('id', '=', id)
      .where('state', '=', 'dead')
      .returning('id')
      .execute();
    if (rows.length > 0) wakeAll(this.db, this.key);
    return rows.length > 0;
  }

  close(): Promise<void> {
    this.closed = true;
    this.closing ??= this.worker?.close() ?? Promise.resolve();
    return this.closing;
  }
}

type Outcome =
  | { kind: 'completed' }
  | { kind: 'retry'; delayMs: number; error: string }
  | { kind: 'later'; delayMs: number; error: string }
  | { kind: 'dead'; error: string };

interface Claimed {
  id: string;
  name: string;
  data: unknown;
  attempts: number;
  token: string;
}

function isPermanent(err: unknown): boolean {
  return err instanceof PermanentJobError || (err instanceof Error && err.name === 'PermanentJobError');
}

function isRetryLater(err: unknown): err is RetryLaterError {
  return err instanceof RetryLaterError || (err instanceof Error && err.name === 'RetryLaterError' && 'delayMs' in err);
}

class Worker<T> {
  private readonly workerId = randomUUID();
  private claims = 0;
  private completions = 0;
  private readonly inFlight = new Map<string, Promise<void>>();
  private stopping = false;
  private woken = false;
  private wakeSleeper: (() => void) | undefined;
  private lastSweep = 0;
  private readonly heartbeat: NodeJS.Timeout;
  private readonly unsubscribe: () => void;
  private readonly loopDone: Promise<void>;

  constructor(
    private readonly db: Db,
    private readonly key: string,
    private readonly policy: QueuePolicy,
    private readonly settings: Settings,
    private readonly handler: (job: Job<T>) => Promise<void>,
    private readonly concurrency: number,
  ) {
    this.unsubscribe = subscribe(db, key, () => this.wake());
    this.heartbeat = setInterval(() => void this.renewLeases(), Math.max(50, Math.floor(settings.leaseMs / 3)));
    this.heartbeat.unref();
    this.loopDone = this.loop();
  }

  private wake(): void {
    this.woken = true;
    this.wakeSleeper?.();
  }

  /** Sleeps up to ms, or less when woken (a wake-up that came while busy is not lost). */
  private sleep(ms: number): Promise<void> {
    if (this.woken || this.stopping) {
      this.woken = false;
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wakeSleeper = undefined;
        this.woken = false;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wakeSleeper = done;
    });
  }

  private async loop(): Promise<void> {
    const { pollIntervalMs, leaseMs, logger } = this.settings;
    while (!this.stopping) {
      try {
        if (Date.now() - this.lastSweep >= leaseMs / 2) {
          await this.recoverExpired();
          this.lastSweep = Date.now();
        }
        if (this.inFlight.size >= this.concurrency) {
          await this.sleep(pollIntervalMs);
          continue;
        }
        const job = await this.claim();
        if (job) {
          this.run(job);
          continue;
        }
        const dueInMs = await this.nextDueInMs();
        await this.sleep(dueInMs === null ? pollIntervalMs : Math.min(pollIntervalMs, Math.max(1, Math.ceil(dueInMs))));
      } catch (err) {
        if (this.stopping) break;
        logger.error({ queue: this.key, err }, 'job queue: polling failed');
        await this.sleep(pollIntervalMs);
      }
    }
  }

  /** Active jobs whose lease ran out go back to waiting, or die if that was their last attempt. */
  private async recoverExpired(): Promise<void> {
    const { rows } = await sql<{ id: string; state: string }>`
      UPDATE jobs SET
        state = CASE WHEN attempts >= ${this.policy.attempts} THEN 'dead' ELSE 'waiting' END,
        last_error = 'lease expired: the worker running attempt ' || attempts || ' stopped',
        run_at = now(), lock_token = NULL, locked_until = NULL, updated_at = now()
      WHERE queue = ${this.key} AND state = 'active' AND locked_until < now()
      RETURNING id, state
    `.execute(this.db);
    if (rows.length > 0) {
      this.settings.logger.warn({ queue: this.key, jobs: rows.map((r) => `${r.id} -> ${r.state}`) }, 'job queue: took back jobs whose worker stopped');
    }
  }

  private async claim(): Promise<Claimed | undefined> {
    const token = `${this.workerId}.${++this.claims}`;
    const { rows } = await sql<Omit<Claimed, 'token'>>`
      UPDATE jobs SET state = 'active', attempts = attempts + 1, lock_token = ${token},
        locked_until = ${later(this.settings.leaseMs)}, updated_at = now()
      WHERE queue = ${this.key} AND state = 'waiting' AND id = (
        SELECT id FROM jobs WHERE queue = ${this.key} AND state = 'waiting' AND run_at <= now()
        ORDER BY run_at LIMIT 1 FOR UPDATE SKIP LOCKED
      )
      RETURNING id, name, data, attempts
    `.execute(this.db);
    return rows[0] ? { ...rows[0], token } : undefined;
  }

  private async nextDueInMs(): Promise<number | null> {
    const { rows } = await sql<{ ms: number | null }>`
      SELECT (extract(epoch FROM min(run_at) - now()) * 1000)::float8 AS ms
      FROM jobs WHERE queue = ${this.key} AND state = 'waiting'
    `.execute(this.db);
    const ms = rows[0]?.ms;
    return ms === null || ms === undefined ? null : Number(ms);
  }

  private run(claimed: Claimed): void {
    const job: Job<T> = { id: claimed.id, name: claimed.name, data: claimed.data as T, attempt: claimed.attempts };
    const running = (async () => {
      let outcome: Outcome;
      try {
        await this.handler(job);
        outcome = { kind: 'completed' };
      } catch (err) {
        outcome = this.classify(err, job.attempt);
      }
      try {
        await this.finish(claimed, outcome);
      } catch (err) {
        // The lease runs out and the job is taken back: at-least-once.
        this.settings.logger.error({ queue: this.key, job: job.id, err }, 'job queue: could not record the outcome of a job');
      }
    })().finally(() => {
      this.inFlight.delete(claimed.token);
      this.wake();
    });
    this.inFlight.set(claimed.token, running);
  }

  private classify(err: unknown, attempt: number): Outcome {
    const error = errorMessage(err);
    if (isPermanent(err)) return { kind: 'dead', error };
    if (isRetryLater(err)) return { kind: 'later', delayMs: retryLaterDelay(err), error };
    if (attempt >= this.policy.attempts) return { kind: 'dead', error };
    return { kind: 'retry', delayMs: backoffDelay(this.policy, attempt), error };
  }

  private async finish(claimed: Claimed, outcome: Outcome): Promise<void> {
    const mine = this.db
      .updateTable('jobs')
      .where('queue', '=', this.key)
      .where('id', '=', claimed.id)
      .where('state', '=', 'active')
      .where('lock_token', '=', claimed.token);
    const released = { lock_token: null, locked_until: null, updated_at: sql<Date>`now()` };
    let rows: Array<{ id: string }>;
    switch (outcome.kind) {
      case 'completed':
        if (this.settings.keepCompleted === 0) {
          rows = await this.db
            .deleteFrom('jobs')
            .where('queue', '=', this.key)
            .where('id', '=', claimed.id)
            .where('lock_token', '=', claimed.token)
            .returning('id')
            .execute();
        } else {
          rows = await mine.set({ ...released, state: 'completed', last_error: null }).returning('id').execute();
          if (++this.completions % Math.max(1, Math.ceil(this.settings.keepCompleted / 10)) === 0) await this.pruneCompleted();
        }
        break;
      case 'retry':
        rows = await mine.set({ ...released, state: 'waiting', run_at: later(outcome.delayMs), last_error: outcome.error }).returning('id').execute();
        break;
      case 'later':
        // Not counted: give back the attempt the claim took.
        rows = await mine
          .set({ ...released, state: 'waiting', attempts: sql<number>`attempts - 1`, run_at: later(outcome.delayMs), last_error: outcome.error })
          .returning('id')
          .execute();
        break;
      case 'dead':
        rows = await mine.set({ ...released, state: 'dead', last_error: outcome.error }).returning('id').execute();
        break;
    }
    if (rows.length === 0) {
      this.settings.logger.warn({ queue: this.key, job: claimed.id }, 'job queue: lost the lease of a job before it finished; it may run again');
    }
  }

  private async pruneCompleted(): Promise<void> {
    await sql`
      DELETE FROM jobs WHERE queue = ${this.key} AND state = 'completed' AND id IN (
        SELECT id FROM jobs WHERE queue = ${this.key} AND state = 'completed'
        ORDER BY updated_at DESC OFFSET ${this.settings.keepCompleted}
      )
    `.execute(this.db);
  }

  private async renewLeases(): Promise<void> {
    const tokens = [...this.inFlight.keys()];
    if (tokens.length === 0) return;
    try {
      await this.db
        .updateTable('jobs')
        .set({ locked_until: later(this.settings.leaseMs) })
        .where('queue', '=', this.key)
        .where('state', '=', 'active')
        .where('lock_token', 'in', tokens)
        .execute();
    } catch (err) {
      this.settings.logger.warn({ queue: this.key, err }, 'job queue: could not renew job leases');
    }
  }

  /** Takes no new job, waits for the handlers in flight (their outcomes recorded), then stops. */
  async close(): Promise<void> {
    this.stopping = true;
    this.wake();
    await this.loopDone;
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight.values()]);
    clearInterval(this.heartbeat);
    this.unsubscribe();
  }
}

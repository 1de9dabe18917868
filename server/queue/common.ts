// Types, errors and helpers shared by the queue backends; the public surface is index.ts.
import type { Kysely } from 'kysely';
import type { Database } from '../store/schema.js';

export interface JobOptions {
  /** Idempotency key: adding an id the queue still holds is a no-op. Any string (URIs too). */
  jobId?: string;
  /** Run no earlier than this many milliseconds from now. */
  delayMs?: number;
}

/** Retries: `attempts` runs in all (1 = no retry); the wait before retry n (n >= 1) is a uniform
 * random value in [0, min(backoffMaxMs, backoffBaseMs * 2^(n-1))) ("full jitter"). */
export interface QueuePolicy {
  attempts: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
}

export interface Job<T> {
  id: string;
  name: string;
  data: T;
  /** 1-based: the first run is attempt 1. RetryLaterError does not advance it. */
  attempt: number;
}

export interface DeadJob<T> {
  id: string;
  name: string;
  data: T;
  /** Attempts counted when it died (1 for a PermanentJobError on the first run). */
  attempts: number;
  /** The message of the last error. */
  error: string;
  failedAt: Date;
}

export interface QueueCounts {
  /** Ready to run now. */
  waiting: number;
  active: number;
  /** Waiting for a time: added with delayMs, backing off before a retry, or RetryLaterError. */
  delayed: number;
  /** Dead letters. */
  dead: number;
  /** Recently completed jobs still kept (a bounded number, see `keepCompleted`). */
  completed: number;
}

export interface JobQueue<T> {
  add(name: string, data: T, options?: JobOptions): Promise<string>;
  addBulk(jobs: Array<{ name: string; data: T; options?: JobOptions }>): Promise<void>;
  /** Starts workers for this queue in this process; call at most once per JobQueue object. */
  process(handler: (job: Job<T>) => Promise<void>, options?: { concurrency?: number }): void;
  counts(): Promise<QueueCounts>;
  /** Dead letters, most recent first (default limit 100). */
  deadLetters(limit?: number): Promise<DeadJob<T>[]>;
  /** Runs a dead job again with fresh attempts; false when no dead job has that id. */
  retryDead(id: string): Promise<boolean>;
  /** Stops taking jobs and waits for the handlers in flight; adding afterwards throws. */
  close(): Promise<void>;
}

/**
 * Thrown by a handler: run the job again after `delayMs` without counting this attempt (the attempt
 * is not the job's fault, e.g. the peer's circuit breaker is open). The job shows as delayed.
 */
export class RetryLaterError extends Error {
  constructor(
    message: string,
    readonly delayMs: number,
  ) {
    super(message);
    this.name = 'RetryLaterError';
  }
}

/** Thrown by a handler: do not retry, dead-letter the job now (e.g. a 4xx answer from the peer). */
export class PermanentJobError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PermanentJobError';
  }
}

/** Where the queues report what they cannot throw to a caller (a pino Logger fits). */
export interface QueueLogger {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface QueuesOptions {
  /** redis:// or rediss:// URL: use BullMQ. Without it the jobs live in `db`. */
  redisUrl?: string;
  /** Required without `redisUrl`; a BullMQ-only process (a scanner node) has no store. */
  db?: Kysely<Database>;
  /** Namespace of the queues (Redis key prefix; prepended to the queue name in the jobs table). */
  prefix?: string;
  logger?: QueueLogger;
  /** How long a claimed job stays claimed without a heartbeat before another worker may take it
   * back (a crashed worker's jobs run again after this). Default 30 s. */
  leaseMs?: number;
  /** Completed jobs kept per queue (for counts and jobId idempotency). Default 1000. */
  keepCompleted?: number;
  /** Store backend only: how often idle workers look for due jobs. Default 500 ms; a local `add`
   * wakes them at once. */
  pollIntervalMs?: number;
}

export interface Queues {
  /** The queue of that name (letters, digits, `.`, `_`, `-`). The policy applies to the jobs this
   * object adds and to the retries of the workers it starts. */
  queue<T>(name: string, policy: QueuePolicy): JobQueue<T>;
  /** Closes every queue made here (waiting for handlers in flight), then the connections. */
  close(): Promise<void>;
}

export const DEFAULTS = { leaseMs: 30_000, keepCompleted: 1000, pollIntervalMs: 500, deadLetterLimit: 100 } as const;

// ---- helpers shared by the backends (not re-exported as API) ----

const NAME = /^[A-Za-z0-9_.-]{1,100}$/;

export function checkName(name: string, what: string): void {
  if (!NAME.test(name)) throw new Error(`${what} must be 1-100 letters, digits, '.', '_' or '-': ${JSON.stringify(name)}`);
}

export function checkPolicy(policy: QueuePolicy): void {
  const { attempts, backoffBaseMs, backoffMaxMs } = policy;
  if (!Number.isInteger(attempts) || attempts < 1) throw new Error(`policy.attempts must be an integer >= 1, got ${attempts}`);
  if (!(backoffBaseMs >= 0) || !(backoffMaxMs >= backoffBaseMs)) {
    throw new Error(`policy needs 0 <= backoffBaseMs <= backoffMaxMs, got ${backoffBaseMs} and ${backoffMaxMs}`);
  }
}

/** Wait before the retry that follows `failedAttempts` failures (>= 1): full jitter. */
export function backoffDelay(policy: QueuePolicy, failedAttempts: number): number {
  const exponent = Math.min(Math.max(failedAttempts - 1, 0), 52);
  const cap = Math.min(policy.backoffMaxMs, policy.backoffBaseMs * 2 ** exponent);
  return Math.floor(Math.random() * cap);
}

export function checkJobOptions(options: JobOptions | undefined): void {
  if (!options) return;
  if (options.jobId !== undefined && (typeof options.jobId !== 'string' || options.jobId.length === 0 || options.jobId.length > 1000)) {
    throw new Error('jobId must be a string of 1 to 1000 characters');
  }
  if (options.delayMs !== undefined && !(Number.isFinite(options.delayMs) && options.delayMs >= 0)) {
    throw new Error(`delayMs must be a finite number >= 0, got ${options.delayMs}`);
  }
}

/** The JSON text of job data; throws on what JSON cannot carry at the top level. */
export function jobJson(data: unknown): string {
  const text = JSON.stringify(data);
  if (text === undefined) throw new Error('job data must be JSON-serialisable');
  return text;
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message || err.name;
  return String(err);
}

export function retryLaterDelay(err: RetryLaterError): number {
  const ms = Number(err.delayMs);
  return Number.isFinite(ms) && ms >= 0 ? ms : 0;
}

export const consoleLogger: QueueLogger = {
  warn: (obj, msg) => console.warn(msg, obj),
  error: (obj, msg) => console.error(msg, obj),
};

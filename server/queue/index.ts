// Durable job queues: one interface, two backends.
//
// - BullMQ on Redis (server/queue/bullmq.ts) when a Redis URL is configured: the server and any
//   number of scanner nodes share the queues.
// - Rows in the store (server/queue/postgres.ts) otherwise: PGlite or PostgreSQL, so a restart loses
//   nothing and no extra service is needed.
//
// Semantics, the same on both backends (test/integration/queue.test.ts runs one suite on each):
// - Delivery is at-least-once: a handler may run again after a crash or a lost lease, so handlers
//   must be idempotent (federation receiving is idempotent by activity id).
// - `jobId` makes `add` idempotent: adding an id that the queue still holds (waiting, delayed,
//   active, dead, or among the recently completed ones it keeps) is a no-op. Without a jobId a
//   random UUID is used. Any string is accepted as an id (URIs included).
// - A handler that throws is retried with exponential backoff and full jitter until
//   `policy.attempts` attempts have failed; then the job is dead-lettered with the last error
//   (`deadLetters`, `counts().dead`) until `retryDead` runs it again with fresh attempts.
// - `PermanentJobError`: dead-letter now, no retry (e.g. a 4xx answer from a peer).
// - `RetryLaterError`: run again after exactly `delayMs`, WITHOUT counting the attempt (e.g. the
//   peer's circuit breaker is open). The job's `attempt` stays the same on the next run. A handler
//   that always answers RetryLaterError keeps its job forever: give up with PermanentJobError when
//   the outage has lasted too long.
// - Job data must be JSON-serialisable and is stored in clear in Redis or the database: never put
//   secrets or private keys in job data (pass a key id and look the key up in the handler).
// - Use one policy per queue name everywhere: BullMQ stores `attempts` with each job at add time,
//   the store backend reads it from the worker's policy.
// - Lifecycle: close the queues (which waits for handlers in flight) before the store they use.
//   "A restart loses nothing" holds for Redis only if it persists (AOF or RDB) and runs with
//   maxmemory-policy noeviction, as BullMQ requires.
import { createBullmqQueues } from './bullmq.js';
import { checkName, type Queues, type QueuesOptions } from './common.js';
import { createPostgresQueues } from './postgres.js';

export {
  PermanentJobError,
  RetryLaterError,
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

/** Opens the queues: BullMQ when `redisUrl` is set, the store's jobs table otherwise. */
export function createQueues(options: QueuesOptions): Queues {
  if (options.prefix !== undefined) checkName(options.prefix, 'queue prefix');
  if (options.redisUrl) return createBullmqQueues({ ...options, redisUrl: options.redisUrl });
  if (!options.db) throw new Error('queues without Redis live in the store: pass db');
  return createPostgresQueues({ ...options, db: options.db });
}

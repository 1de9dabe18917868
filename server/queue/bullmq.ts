// The queue backend on Redis: BullMQ. Processes that reach the same Redis (server replicas, scanner
// nodes) share the queues.
//
// - Connections, one per role, shared by all queues made by one createQueues: the producer's
//   (Queue: add, counts, dead letters) keeps ioredis's bounded retries so an add fails rather than
//   hang while Redis is away; the workers' has maxRetriesPerRequest: null as BullMQ requires, and
//   each Worker duplicates it for its blocking reads. Both are made only when first needed.
// - Retries: job option `attempts` plus a custom backoff strategy (full jitter, capped) in the
//   Worker's settings. PermanentJobError becomes BullMQ's UnrecoverableError; RetryLaterError moves
//   the job to delayed (`moveToDelayed` + DelayedError), which does not count an attempt.
// - Dead letters are BullMQ's failed set (kept until retried); completed jobs are kept up to
//   keepCompleted. A crashed worker's jobs come back through BullMQ's stalled-job check once their
//   lock (leaseMs) runs out, up to `attempts` times.
// - Ids: BullMQ refuses custom ids that are integers or contain ':', so ids are escaped on the way
//   in (`%` and `:` as %XX, and the first character of an integer-looking id) and unescaped on the
//   way out: callers see exactly the id they gave.
import { randomUUID } from 'node:crypto';
import { DelayedError, Queue, UnrecoverableError, Worker, type Job as BullJob } from 'bullmq';
import { Redis } from 'ioredis';
import { logThrottle } from '../config/logger.js';
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

const BACKOFF_TYPE = 'vouch-full-jitter';

/** BullMQ-safe job id, reversible by decodeId. */
export function encodeId(id: string): string {
  let encoded = id.replace(/[%:]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
  if (`${parseInt(encoded, 10)}` === encoded) encoded = `%${encoded.charCodeAt(0).toString(16).toUpperCase()}${encoded.slice(1)}`;
  return encoded;
}

export function decodeId(encoded: string): string {
  return encoded.replace(/%([0-9A-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

interface Settings {
  prefix: string;
  leaseMs: number;
  keepCompleted: number;
  logger: QueueLogger;
}

class Connections {
  private producer: Redis | undefined;
  private worker: Redis | undefined;

  constructor(
    private readonly url: string,
    private readonly logger: QueueLogger,
  ) {}

  private connect(role: 'producer' | 'worker'): Redis {
    const redis = new Redis(this.url, {
      connectionName: `vouch-${role}`,
      // Workers block and must retry forever (BullMQ requires null); a producer fails after a few tries.
      maxRetriesPerRequest: role === 'worker' ? null : 20,
    });
    let reported = false;
    redis.on('error', (err: Error) => {
      if (reported) return; // ioredis repeats the error on every reconnection attempt
      reported = true;
      this.logger.error({ role, err }, 'job queue: Redis connection error');
    });
    redis.on('ready', () => (reported = false));
    return redis;
  }

  forProducer(): Redis {
    return (this.producer ??= this.connect('producer'));
  }

  forWorkers(): Redis {
    return (this.worker ??= this.connect('worker'));
  }

  async close(): Promise<void> {
    await Promise.all(
      [this.producer, this.worker].map(async (redis) => {
        if (!redis || redis.status === 'end') return;
        try {
          await redis.quit();
        } catch {
          redis.disconnect();
        }
      }),
    );
  }
}

export function createBullmqQueues(options: QueuesOptions & { redisUrl: string }): Queues {
  const settings: Settings = {
    prefix: options.prefix ?? 'vouch',
    leaseMs: options.leaseMs ?? DEFAULTS.leaseMs,
    keepCompleted: options.keepCompleted ?? DEFAULTS.keepCompleted,
    logger: options.logger ?? consoleLogger,
  };
  if (!(settings.leaseMs >= 100)) throw new Error('leaseMs must be at least 100');
  if (!Number.isInteger(settings.keepCompleted) || settings.keepCompleted < 0) throw new Error('keepCompleted must be an integer >= 0');
  const connections = new Connections(options.redisUrl, settings.logger);
  const made = new Set<BullmqQueue<unknown>>();
  let closed = false;
  let closing: Promise<void> | undefined;
  return {
    queue<T>(name: string, policy: QueuePolicy): JobQueue<T> {
      if (closed) throw new Error('the queues are closed');
      checkName(name, 'queue name');
      checkPolicy(policy);
      const queue = new BullmqQueue<T>(name, { ...policy }, settings, connections);
      made.add(queue as BullmqQueue<unknown>);
      return queue;
    },
    close() {
      closed = true;
      closing ??= (async () => {
        await Promise.all([...made].map((queue) => queue.close()));
        await connections.close();
      })();
      return closing;
    },
  };
}

function isPermanent(err: unknown): boolean {
  return err instanceof PermanentJobError || (err instanceof Error && err.name === 'PermanentJobError');
}

function isRetryLater(err: unknown): err is RetryLaterError {
  return err instanceof RetryLaterError || (err instanceof Error && err.name === 'RetryLaterError' && 'delayMs' in err);
}

/** Queue and worker errors while Redis is away: logged at most this often. */
const QUEUE_ERROR_LOG_INTERVAL_MS = 60_000;

class BullmqQueue<T> implements JobQueue<T> {
  private readonly queue: Queue;
  private worker: Worker | undefined;
  private closed = false;
  private closing: Promise<void> | undefined;
  /** BullMQ repeats its error on every command while Redis is away: one line a minute is enough. */
  private readonly logError = logThrottle(QUEUE_ERROR_LOG_INTERVAL_MS);

  constructor(
    private readonly name: string,
    private readonly policy: QueuePolicy,
    private readonly settings: Settings,
    private readonly connections: Connections,
  ) {
    this.queue = new Queue(name, { connection: connections.forProducer(), prefix: settings.prefix });
    this.queue.on('error', (err: Error) => this.logError('queue', (unlogged) => settings.logger.error({ queue: name, err, unlogged }, 'job queue: error')));
  }

  private jobOptions(options: JobOptions | undefined, id: string) {
    return {
      jobId: encodeId(id),
      delay: options?.delayMs ? Math.round(options.delayMs) : undefined,
      attempts: this.policy.attempts,
      backoff: { type: BACKOFF_TYPE },
      removeOnComplete: this.settings.keepCompleted === 0 ? true : { count: this.settings.keepCompleted },
      removeOnFail: false,
    };
  }

  async add(name: string, data: T, options?: JobOptions): Promise<string> {
    if (this.closed) throw new Error(`queue ${this.name} is closed`);
    if (typeof name !== 'string' || name.length === 0) throw new Error('a job needs a name');
    checkJobOptions(options);
    jobJson(data);
    const id = options?.jobId ?? randomUUID();
    await this.queue.add(name, data, this.jobOptions(options, id));
    return id;
  }

  async addBulk(jobs: Array<{ name: string; data: T; options?: JobOptions }>): Promise<void> {
    if (this.closed) throw new Error(`queue ${this.name} is closed`);
    const bulk = jobs.map(({ name, data, options }) => {
      if (typeof name !== 'string' || name.length === 0) throw new Error('a job needs a name');
      checkJobOptions(options);
      jobJson(data);
      return { name, data, opts: this.jobOptions(options, options?.jobId ?? randomUUID()) };
    });
    if (bulk.length > 0) await this.queue.addBulk(bulk);
  }

  process(handler: (job: Job<T>) => Promise<void>, options?: { concurrency?: number }): void {
    if (this.closed) throw new Error(`queue ${this.name} is closed`);
    if (this.worker) throw new Error(`queue ${this.name}: process() was already called on this object`);
    const concurrency = options?.concurrency ?? 1;
    if (!Number.isInteger(concurrency) || concurrency < 1) throw new Error('concurrency must be an integer >= 1');
    const { policy, settings } = this;
    this.worker = new Worker(
      this.name,
      async (bullJob: BullJob, token?: string) => {
        const job: Job<T> = { id: decodeId(bullJob.id ?? ''), name: bullJob.name, data: bullJob.data as T, attempt: bullJob.attemptsMade + 1 };
        try {
          await handler(job);
        } catch (err) {
          if (isPermanent(err)) throw new UnrecoverableError(errorMessage(err));
          if (isRetryLater(err)) {
            await bullJob.moveToDelayed(Date.now() + retryLaterDelay(err), token);
            throw new DelayedError(errorMessage(err));
          }
          throw err instanceof Error && err.message ? err : new Error(errorMessage(err));
        }
      },
      {
        connection: this.connections.forWorkers(),
        prefix: settings.prefix,
        concurrency,
        lockDuration: settings.leaseMs,
        stalledInterval: settings.leaseMs,
        // BullMQ fails a job that stalls twice (default 1), attempts left or not: a delivery whose
        // process died twice mid-send was lost. A job now survives as many crashes as it has
        // attempts (the store backend counts a crash as one of its attempts).
        maxStalledCount: policy.attempts,
        removeOnComplete: settings.keepCompleted === 0 ? { count: 0 } : { count: settings.keepCompleted },
        settings: {
          backoffStrategy: (attemptsMade: number) => backoffDelay(policy, attemptsMade),
        },
      },
    );
    this.worker.on('error', (err: Error) => this.logError('worker', (unlogged) => settings.logger.error({ queue: this.name, err, unlogged }, 'job queue: worker error')));
  }

  async counts(): Promise<QueueCounts> {
    const c = await this.queue.getJobCounts('wait', 'prioritized', 'active', 'delayed', 'failed', 'completed');
    return {
      waiting: (c.wait ?? 0) + (c.prioritized ?? 0),
      active: c.active ?? 0,
      delayed: c.delayed ?? 0,
      dead: c.failed ?? 0,
      completed: c.completed ?? 0,
    };
  }

  async deadLetters(limit: number = DEFAULTS.deadLetterLimit): Promise<DeadJob<T>[]> {
    const count = Math.max(0, Math.floor(limit));
    if (count === 0) return [];
    const jobs = await this.queue.getFailed(0, count - 1);
    return jobs
      .filter((job): job is NonNullable<typeof job> => Boolean(job))
      .map((job) => ({
        id: decodeId(job.id ?? ''),
        name: job.name,
        data: job.data as T,
        attempts: job.attemptsMade,
        error: job.failedReason ?? '',
        failedAt: new Date(job.finishedOn ?? job.timestamp),
      }));
  }

  async retryDead(id: string): Promise<boolean> {
    const job = await this.queue.getJob(encodeId(id));
    if (!job || !(await job.isFailed())) return false;
    try {
      await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
      return true;
    } catch (err) {
      // Someone else retried or removed it meanwhile.
      if (!(await job.isFailed())) return false;
      throw err;
    }
  }

  close(): Promise<void> {
    this.closed = true;
    this.closing ??= (async () => {
      // Worker.close waits for the handlers in flight and records their outcomes.
      if (this.worker) await this.worker.close();
      await this.queue.close();
    })();
    return this.closing;
  }
}

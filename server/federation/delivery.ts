// Delivery: one durable job per (activity, inbox). A job carries only ids: the worker reads the
// activity from the outbox and signs with the key from the store, so no queue payload ever holds
// a private key. Retries back off with jitter; a per-inbox-host circuit breaker stops hammering a
// peer that is down.
import { createHash } from 'node:crypto';
import type { Db } from '../store/index.js';
import type { Metrics } from '../config/metrics.js';
import type { Logger } from '../config/logger.js';
import { PermanentJobError, RetryLaterError, type JobQueue } from '../queue/index.js';
import { signRequest } from '../../shared/crypto/http-signature.js';
import type { Identity } from './identity.js';
import type { SafeFetch } from './safe-fetch.js';

export interface DeliveryJob {
  activityId: string;
  inbox: string;
}

export const DELIVERY_QUEUE = 'deliver';

/** Consecutive failures that open the breaker, and how long it stays open. */
const BREAKER_THRESHOLD = 5;
const BREAKER_OPEN_MS = 30_000;

class CircuitBreaker {
  private readonly state = new Map<string, { failures: number; openUntil: number }>();

  check(key: string): void {
    const entry = this.state.get(key);
    const wait = entry ? entry.openUntil - Date.now() : 0;
    if (wait > 0) throw new RetryLaterError(`circuit open for ${key}`, wait);
  }

  success(key: string): void {
    this.state.delete(key);
  }

  failure(key: string): void {
    const entry = this.state.get(key) ?? { failures: 0, openUntil: 0 };
    entry.failures++;
    if (entry.failures >= BREAKER_THRESHOLD) entry.openUntil = Date.now() + BREAKER_OPEN_MS;
    this.state.set(key, entry);
  }
}

export function deliveryJobId(activityId: string, inbox: string): string {
  // Idempotent enqueue; hashed because BullMQ ids may not contain ':'.
  return createHash('sha256').update(`${activityId}\n${inbox}`).digest('hex');
}

export class Delivery {
  private readonly breaker = new CircuitBreaker();

  constructor(
    private readonly db: Db,
    private readonly identity: Identity,
    private readonly queue: JobQueue<DeliveryJob>,
    private readonly safeFetch: SafeFetch,
    private readonly logger: Logger,
    private readonly metrics: Metrics | undefined,
  ) {}

  async enqueue(activityId: string, inboxes: string[]): Promise<void> {
    if (inboxes.length === 0) return;
    await this.queue.addBulk(
      inboxes.map((inbox) => ({ name: 'deliver', data: { activityId, inbox }, options: { jobId: deliveryJobId(activityId, inbox) } })),
    );
  }

  start(concurrency: number): void {
    this.queue.process((job) => this.deliver(job.data), { concurrency });
  }

  private async deliver({ activityId, inbox }: DeliveryJob): Promise<void> {
    const row = await this.db.selectFrom('outbox').select('activity').where('id', '=', activityId).executeTakeFirst();
    if (!row) throw new PermanentJobError(`activity ${activityId} is not in the outbox`);
    const host = new URL(inbox).host;
    this.breaker.check(host);
    const body = JSON.stringify(row.activity);
    const signed = signRequest({
      method: 'POST',
      url: inbox,
      headers: { 'content-type': 'application/activity+json' },
      body,
      keyId: this.identity.rsaKeyId,
      privateKey: this.identity.rsaPrivateKey,
    });
    const headers: Record<string, string> = { 'content-type': 'application/activity+json' };
    for (const [name, value] of Object.entries(signed)) if (value !== undefined) headers[name.toLowerCase()] = value;
    let status: number;
    try {
      ({ status } = await this.safeFetch(inbox, { method: 'POST', headers, body, maxBodyBytes: 64 * 1024 }));
    } catch (err) {
      this.breaker.failure(host);
      this.metrics?.deliveries.inc({ result: 'failed' });
      throw err;
    }
    // 409: the peer has already applied this activity (an earlier attempt got through): delivered.
    if ((status >= 200 && status < 300) || status === 409) {
      this.breaker.success(host);
      this.metrics?.deliveries.inc({ result: 'delivered' });
      return;
    }
    if (status >= 400 && status < 500 && status !== 408 && status !== 429) {
      this.breaker.success(host);
      this.metrics?.deliveries.inc({ result: 'refused' });
      this.logger.warn({ inbox, activityId, status }, 'delivery refused by peer');
      throw new PermanentJobError(`${inbox} refused the activity with ${status}`);
    }
    this.breaker.failure(host);
    this.metrics?.deliveries.inc({ result: 'failed' });
    throw new Error(`${inbox} answered ${status}`);
  }
}

// A worker process for the queue's crash tests (test/integration/queue.test.ts): takes the jobs of
// one BullMQ queue, prints `started <id>` for each and never finishes one, until it is killed.
import { createQueues } from '../../server/queue/index.js';

const { REDIS_URL, QUEUE_PREFIX, QUEUE_NAME, QUEUE_LEASE_MS, QUEUE_ATTEMPTS } = process.env;
if (!REDIS_URL || !QUEUE_PREFIX || !QUEUE_NAME || !QUEUE_LEASE_MS || !QUEUE_ATTEMPTS) throw new Error('REDIS_URL, QUEUE_PREFIX, QUEUE_NAME, QUEUE_LEASE_MS and QUEUE_ATTEMPTS are required');

createQueues({ redisUrl: REDIS_URL, prefix: QUEUE_PREFIX, leaseMs: Number(QUEUE_LEASE_MS) })
  .queue<unknown>(QUEUE_NAME, { attempts: Number(QUEUE_ATTEMPTS), backoffBaseMs: 20, backoffMaxMs: 80 })
  .process(async (job) => {
    process.stdout.write(`started ${job.id}\n`);
    await new Promise(() => {});
  });

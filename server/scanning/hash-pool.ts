// A pool of worker threads for hashing, so decoding never blocks the event loop and a sweep uses
// every core. piscina does the pooling; the worker is hash-worker.ts compiled next to this file.
import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import type { ImageLimits } from '../../shared/hashing/index.js';
import type { HashOutcome, HashTask } from './hash-worker.js';

export type { HashOutcome } from './hash-worker.js';

/**
 * Images one worker thread hashes a second: the warm pool hashed 1024x768 JPEGs at 52–63 img/s on
 * two threads (docs/benchmarks.md, "`vouch hash` on many files"), so about 30 per thread.
 */
const MEASURED_IMAGES_PER_S_PER_THREAD = 30;
/** How long a request may wait in the queue before it is answered 503 busy instead. */
const QUEUE_WAIT_BUDGET_S = 1;

/**
 * The queue a pool of `threads` keeps: what it hashes within the wait budget. Longer would only
 * make clients wait past it; the bytes waiting are the request bodies already in memory.
 */
export function queueFor(threads: number): number {
  return Math.ceil(threads * MEASURED_IMAGES_PER_S_PER_THREAD * QUEUE_WAIT_BUDGET_S);
}

export class HashPool {
  private readonly pool: Piscina<HashTask, HashOutcome>;

  constructor(private readonly limits: ImageLimits, threads = availableParallelism()) {
    this.pool = new Piscina({
      filename: new URL('./hash-worker.js', import.meta.url).href,
      minThreads: 1,
      maxThreads: threads,
      maxQueue: queueFor(threads),
      idleTimeout: 30_000,
    });
  }

  get threads(): number {
    return this.pool.options.maxThreads;
  }

  hashFile(path: string): Promise<HashOutcome> {
    return this.pool.run({ kind: 'file', path, limits: this.limits });
  }

  /**
   * Hashes the files with at most 2 x threads of them in flight (the pool's queue never fills, and
   * memory stays bounded however many are given) and yields each outcome in the order given, as soon
   * as it and those before it are done.
   */
  async *hashFilesInOrder(paths: Iterable<string>): AsyncGenerator<{ path: string; outcome: HashOutcome }> {
    const window = this.threads * 2;
    const pending: { path: string; outcome: Promise<HashOutcome> }[] = [];
    try {
      for (const path of paths) {
        pending.push({ path, outcome: this.hashFile(path) });
        if (pending.length >= window) {
          const head = pending.shift()!;
          yield { path: head.path, outcome: await head.outcome };
        }
      }
      while (pending.length > 0) {
        const head = pending.shift()!;
        yield { path: head.path, outcome: await head.outcome };
      }
    } finally {
      // A consumer that stops early must not leave tasks whose rejection (a closed pool) goes unheard.
      await Promise.allSettled(pending.map((p) => p.outcome));
    }
  }

  hashBytes(bytes: Uint8Array): Promise<HashOutcome> {
    return this.pool.run({ kind: 'bytes', bytes, limits: this.limits });
  }

  async close(): Promise<void> {
    await this.pool.destroy();
  }
}

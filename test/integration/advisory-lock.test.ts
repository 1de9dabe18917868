// Cross-process locks (server/store/advisory-lock.ts) on the real PostgreSQL: two lock sets, as two
// server processes would hold, run tasks under one key one after the other (the second seen
// waiting in pg_locks), while another key, or the same key of another deployment, does not wait.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { advisoryLocks, type KeyLock } from '../../server/store/advisory-lock.js';
import { eventually } from '../helpers/process.js';
import { HAVE_POSTGRES, POSTGRES_URL } from '../helpers/services.js';

describe.skipIf(!HAVE_POSTGRES)('advisory locks across processes', () => {
  const namespace = `vouch_test_${randomBytes(6).toString('hex')}`;
  let one: KeyLock;
  let two: KeyLock;
  let elsewhere: KeyLock;
  let observer: pg.Client;

  beforeAll(async () => {
    one = advisoryLocks(POSTGRES_URL, namespace);
    two = advisoryLocks(POSTGRES_URL, namespace);
    elsewhere = advisoryLocks(POSTGRES_URL, `${namespace}_other`);
    observer = new pg.Client({ connectionString: POSTGRES_URL });
    await observer.connect();
  });

  afterAll(async () => {
    await observer?.end();
    await Promise.all([one?.close(), two?.close(), elsewhere?.close()]);
  });

  /** Advisory locks some session of the lock pools waits for right now. */
  const waiting = async () => {
    const { rows } = await observer.query<{ n: string }>(
      `SELECT count(*) AS n FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND NOT l.granted AND a.application_name = 'vouch advisory locks'`,
    );
    return Number(rows[0].n);
  };

  it('runs tasks under one key one at a time across lock sets; other keys and namespaces do not wait', async () => {
    const key = `reattest sha256:${randomBytes(32).toString('hex')}`;
    const events: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const first = one.run(key, async () => {
      events.push('first start');
      await gate;
      events.push('first end');
    });
    await eventually(async () => events.includes('first start'), 5_000, 'the first task to hold the lock');
    const second = two.run(key, async () => {
      events.push('second');
      return 42;
    });
    await eventually(async () => (await waiting()) === 1, 5_000, 'the second task to wait for the lock');
    // Neither another key of this deployment nor the same key of another waits for the first.
    expect(await two.run(`${key} other`, async () => 'free')).toBe('free');
    expect(await elsewhere.run(key, async () => 'free')).toBe('free');
    release();
    await first;
    expect(await second).toBe(42);
    expect(events).toEqual(['first start', 'first end', 'second']);
  });

  it('releases the lock when a task fails', async () => {
    const key = `reattest sha256:${randomBytes(32).toString('hex')}`;
    await expect(one.run(key, async () => Promise.reject(new Error('task failed')))).rejects.toThrow('task failed');
    expect(await two.run(key, async () => 'after')).toBe('after');
  });
});

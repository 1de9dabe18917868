// Work that must not run at once in two server processes sharing one PostgreSQL database (the
// re-attestation of one media) runs holding a transaction-scoped advisory lock on a key. The lock
// is held on a connection of a small pool of its own, so a task that waits for it never holds one
// of the main pool's connections that the tasks holding it need; it is released when the task ends,
// or by PostgreSQL if that connection is lost.
import pg from 'pg';

export interface KeyLock {
  /** Runs `task` while no other process runs one under the same key; settles as `task` does. */
  run<T>(key: string, task: () => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** Tasks of one process holding (or waiting for) a lock at once; more wait for a connection. */
const LOCK_CONNECTIONS = 4;
/** A lock held longer than this by another process (a stuck task) fails the waiting task instead of blocking it. */
const LOCK_TIMEOUT = '60s';

/** One process alone on its database (PGlite): nothing to lock against. */
export const PROCESS_LOCAL: KeyLock = { run: (_key, task) => task(), close: async () => {} };

/** Advisory locks on the PostgreSQL server at `url`, keyed within `namespace` (the schema: deployments sharing a database do not wait on each other). */
export function advisoryLocks(url: string, namespace: string): KeyLock {
  const pool = new pg.Pool({ connectionString: url, max: LOCK_CONNECTIONS, connectionTimeoutMillis: 30_000, application_name: 'vouch advisory locks' });
  // A lost connection is reported on the client (or the pool when idle); the task then fails or
  // finishes unprotected, and the next one opens a new connection.
  pool.on('error', () => {});
  pool.on('connect', (client) => client.on('error', () => {}));
  return {
    async run(key, task) {
      const client = await pool.connect();
      let broken: unknown;
      try {
        await client.query('BEGIN');
        await client.query(`SET LOCAL lock_timeout = '${LOCK_TIMEOUT}'`);
        await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [`${namespace}\n${key}`]);
        return await task();
      } finally {
        await client.query('COMMIT').catch((err: unknown) => (broken = err));
        client.release(broken instanceof Error ? broken : undefined);
      }
    },
    close: () => pool.end(),
  };
}

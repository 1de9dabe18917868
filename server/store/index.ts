// The store: one Kysely handle over PostgreSQL, either embedded (PGlite, a data directory on disk)
// or a server (DATABASE_URL). Same SQL and the same migrations on both.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { Kysely, PostgresDialect, sql, type Dialect } from 'kysely';
import { PGliteDialect } from 'kysely-pglite-dialect';
import pg from 'pg';
import type { Config } from '../config/index.js';
import { migrateToLatest } from './migrations.js';
import { syncHashAlgorithms } from './hash-algorithms.js';
import { ALGORITHM_REGISTRY } from '../../shared/algorithms/index.js';
import { OWN_BACKENDS, PROCESS_ORIGIN } from './origin.js';
import { sendPreparedByName } from './prepared.js';
import type { Database } from './schema.js';

export type { Database } from './schema.js';
export type Db = Kysely<Database>;

export interface Store {
  db: Db;
  /** 'pglite' or 'postgres', for health output and logs. */
  kind: 'pglite' | 'postgres';
  close(): Promise<void>;
}

type StoreConfig = Pick<Config, 'dataDir' | 'databaseUrl' | 'databaseSchema'>;

// bigint columns (bigserial ids, counts) come back as strings from pg; ids stay well inside 2^53.
pg.types.setTypeParser(pg.types.builtins.INT8, (value) => Number(value));

/** How long a request waits for a connection before failing (503) while PostgreSQL is away. */
const CONNECT_TIMEOUT_MS = 5_000;

/** The server process behind a connection, once connected (pg sets it without declaring it). */
function backendOf(client: pg.PoolClient): number | undefined {
  return (client as pg.PoolClient & { processID?: number | null }).processID ?? undefined;
}

function postgresDialect(url: string, schema: string | undefined): Dialect {
  const pool = new pg.Pool({
    connectionString: url,
    max: 10,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    // A schema per deployment (or per test run) without touching the URL.
    options: schema ? `-c search_path=${schema}` : undefined,
    // Names this process on the change-feed rows it writes (change-feed.ts) and in pg_stat_activity.
    application_name: PROCESS_ORIGIN,
  });
  // A PostgreSQL restart terminates every connection. The pool drops an idle client that fails and
  // emits 'error', which would kill the process without a listener; a client that is checked out
  // (between a transaction's queries) emits it on itself. Neither needs handling beyond that: the
  // failed client is removed on release, the next query opens a new one, and requests fail with
  // 503 (isStoreUnavailable) until the server is back.
  pool.on('error', () => {});
  pool.on('connect', (client) => {
    client.on('error', () => {});
    sendPreparedByName(client);
    const backend = backendOf(client);
    if (backend !== undefined) OWN_BACKENDS.add(backend);
  });
  pool.on('remove', (client) => {
    const backend = backendOf(client);
    if (backend !== undefined) OWN_BACKENDS.delete(backend);
  });
  return new PostgresDialect({ pool });
}

// SQLSTATE classes 08 (connection exception) and 57P (operator intervention: shutdown, starting up),
// less 08P01: a protocol violation is what PostgreSQL answers to a malformed message (a statement
// over 65,535 bind parameters), a wrong query on a live connection.
const UNAVAILABLE_SQLSTATE = /^(08(?!P01)|57P0[1-3])/;
const UNAVAILABLE_ERRNO = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);
// node-postgres reports a lost or unobtainable connection with these messages and no code.
const UNAVAILABLE_MESSAGE = /Connection terminated|timeout exceeded when trying to connect|not queryable|Client was closed/i;

/** Whether `err` (or its cause) says the database server cannot be reached right now, not that a query was wrong. */
export function isStoreUnavailable(err: unknown): boolean {
  for (let e = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && (UNAVAILABLE_SQLSTATE.test(code) || UNAVAILABLE_ERRNO.has(code))) return true;
    if (UNAVAILABLE_MESSAGE.test(e.message)) return true;
    if (e instanceof AggregateError && e.errors.some(isStoreUnavailable)) return true;
  }
  return false;
}

export class StoreLockedError extends Error {}

/** One bucket of a per-hour count (health charts). */
export interface HourlyCount {
  hour: Date;
  key: string;
  n: number;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * PGlite is one process's database: a second process opening the same directory would corrupt it.
 * A pid lock file refuses that with a clear message; a lock left by a dead process is taken over.
 */
function lockDataDir(dir: string): () => void {
  const lock = join(dir, 'vouch.lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(lock, String(process.pid), { flag: 'wx' });
      return () => rmSync(lock, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = Number(readFileSync(lock, 'utf8'));
      if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && processAlive(holder)) {
        throw new StoreLockedError(
          `the embedded database in ${dir} is in use by process ${holder}: stop it first, or use a PostgreSQL server (DATABASE_URL) to share one database between processes`,
        );
      }
      rmSync(lock, { force: true });
    }
  }
  throw new StoreLockedError(`cannot lock ${dir}`);
}

/**
 * Most bind parameters one statement may carry, on either store. PGlite (as installed) takes a
 * statement with 32,767 or more without an error and then answers every later query with no rows,
 * so bulk inserts chunk under this, and the PGlite connection refuses anything above it.
 */
export const MAX_BIND_PARAMETERS = 30_000;

/** The PGlite handle the dialect uses, refusing a statement PGlite would silently mishandle. */
function guardedPglite(pglite: PGlite): PGlite {
  return new Proxy(pglite, {
    get(target, prop) {
      if (prop === 'query') {
        return (text: string, params?: unknown[], options?: Parameters<PGlite['query']>[2]) => {
          if (params && params.length > MAX_BIND_PARAMETERS) {
            return Promise.reject(new RangeError(`a statement with ${params.length} bind parameters (at most ${MAX_BIND_PARAMETERS} on PGlite)`));
          }
          return target.query(text, params, options);
        };
      }
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/** Opens the store, applies pending migrations and registers this build's hash algorithms. */
export async function openStore(config: StoreConfig): Promise<Store> {
  let dialect: Dialect;
  let kind: Store['kind'];
  let pglite: PGlite | undefined;
  let unlock = () => {};
  if (config.databaseUrl) {
    kind = 'postgres';
    if (config.databaseSchema) {
      // The schema must exist before search_path can point at it.
      const client = new pg.Client({ connectionString: config.databaseUrl });
      await client.connect();
      try {
        await client.query(`CREATE SCHEMA IF NOT EXISTS ${config.databaseSchema}`);
      } finally {
        await client.end();
      }
    }
    dialect = postgresDialect(config.databaseUrl, config.databaseSchema);
  } else {
    kind = 'pglite';
    const dir = resolve(config.dataDir, 'pglite');
    mkdirSync(dir, { recursive: true });
    unlock = lockDataDir(resolve(config.dataDir));
    try {
      pglite = await PGlite.create(dir);
    } catch (err) {
      unlock();
      throw err;
    }
    dialect = new PGliteDialect(guardedPglite(pglite));
  }
  const db = new Kysely<Database>({ dialect });
  try {
    await migrateToLatest(db, config.databaseUrl ? config.databaseSchema : undefined);
    await syncHashAlgorithms(db, ALGORITHM_REGISTRY);
  } catch (err) {
    await db.destroy();
    if (pglite && !pglite.closed) await pglite.close();
    unlock();
    throw err;
  }
  return {
    db,
    kind,
    async close() {
      await db.destroy();
      if (pglite && !pglite.closed) await pglite.close();
      unlock();
    },
  };
}

/** Cheap liveness probe for /healthz. */
export async function pingStore(store: Store): Promise<void> {
  await sql`select 1`.execute(store.db);
}


// The store: one Kysely handle over PostgreSQL, either embedded (PGlite, a data directory on disk)
// or a server (DATABASE_URL). Same SQL and the same migrations on both.
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { Kysely, PostgresDialect, sql, type Dialect } from 'kysely';
import { PGliteDialect } from 'kysely-pglite-dialect';
import pg from 'pg';
import type { Config } from '../config/index.js';
import { migrateToLatest } from './migrations.js';
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

function postgresDialect(url: string, schema: string | undefined): Dialect {
  const pool = new pg.Pool({
    connectionString: url,
    max: 10,
    // A schema per deployment (or per test run) without touching the URL.
    options: schema ? `-c search_path=${schema}` : undefined,
  });
  return new PostgresDialect({ pool });
}

/** Opens the store and applies pending migrations. */
export async function openStore(config: StoreConfig): Promise<Store> {
  let dialect: Dialect;
  let kind: Store['kind'];
  let pglite: PGlite | undefined;
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
    pglite = await PGlite.create(dir);
    dialect = new PGliteDialect(pglite);
  }
  const db = new Kysely<Database>({ dialect });
  try {
    await migrateToLatest(db);
  } catch (err) {
    await db.destroy();
    throw err;
  }
  return {
    db,
    kind,
    async close() {
      await db.destroy();
      if (pglite && !pglite.closed) await pglite.close();
    },
  };
}

/** Cheap liveness probe for /healthz. */
export async function pingStore(store: Store): Promise<void> {
  await sql`select 1`.execute(store.db);
}


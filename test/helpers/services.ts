// Where the real PostgreSQL and Redis are. Locally a missing service skips its tests with a
// message; in CI (VOUCH_REQUIRE_SERVICES=1) it fails them instead.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { booleanVariable } from '../../server/config/index.js';

export const REQUIRE_SERVICES = booleanVariable(process.env, 'VOUCH_REQUIRE_SERVICES');
export const POSTGRES_URL = process.env.VOUCH_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const REDIS_URL = process.env.VOUCH_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

async function postgresReachable(): Promise<boolean> {
  const client = new pg.Client({ connectionString: POSTGRES_URL, connectionTimeoutMillis: 2_000 });
  try {
    await client.connect();
    await client.query('select 1');
    return true;
  } catch (err) {
    if (REQUIRE_SERVICES) throw new Error(`PostgreSQL required (VOUCH_REQUIRE_SERVICES=1) but unreachable at ${POSTGRES_URL}: ${(err as Error).message}`);
    console.warn(`PostgreSQL unreachable at ${POSTGRES_URL}: its tests are not run`);
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

export const HAVE_POSTGRES = await postgresReachable();

/** PING over a raw socket (RESP), so the check needs no Redis client package. */
async function redisReachable(): Promise<boolean> {
  const url = new URL(REDIS_URL);
  try {
    await new Promise<void>((resolve, reject) => {
      const target = { host: url.hostname, port: Number(url.port || 6379) };
      const ping = () => {
        const user = url.username ? `${decodeURIComponent(url.username)} ` : '';
        const auth = url.password ? `AUTH ${user}${decodeURIComponent(url.password)}\r\n` : '';
        socket.write(`${auth}PING\r\n`);
      };
      const socket = url.protocol === 'rediss:' ? tlsConnect({ ...target, servername: url.hostname }, ping) : connect(target, ping);
      const timer = setTimeout(() => socket.destroy(new Error('timed out after 2 s')), 2_000);
      let reply = '';
      socket.on('data', (chunk) => {
        reply += chunk.toString('utf8');
        if (reply.includes('+PONG')) {
          clearTimeout(timer);
          socket.end();
          resolve();
        } else if (reply.startsWith('-')) {
          clearTimeout(timer);
          socket.destroy(new Error(reply.trim()));
        }
      });
      socket.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
    return true;
  } catch (err) {
    if (REQUIRE_SERVICES) throw new Error(`Redis required (VOUCH_REQUIRE_SERVICES=1) but unreachable at ${REDIS_URL}: ${(err as Error).message}`);
    console.warn(`Redis unreachable at ${REDIS_URL}: its tests are not run`);
    return false;
  }
}

export const HAVE_REDIS = await redisReachable();

export interface StoreBackend {
  name: 'pglite' | 'postgres';
  available: boolean;
  /** A fresh, empty database configuration, and a function that removes it. */
  create(): { config: { dataDir: string; databaseUrl?: string; databaseSchema?: string }; cleanup(): Promise<void> };
}

export function tempDir(prefix = 'vouch-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export const STORE_BACKENDS: StoreBackend[] = [
  {
    name: 'pglite',
    available: true,
    create() {
      const dataDir = tempDir();
      return { config: { dataDir }, cleanup: async () => rmSync(dataDir, { recursive: true, force: true }) };
    },
  },
  {
    name: 'postgres',
    available: HAVE_POSTGRES,
    create() {
      // One schema per test database keeps parallel test files apart on the one server.
      const schema = `vouch_test_${randomBytes(6).toString('hex')}`;
      const dataDir = tempDir();
      return {
        config: { dataDir, databaseUrl: POSTGRES_URL, databaseSchema: schema },
        async cleanup() {
          const client = new pg.Client({ connectionString: POSTGRES_URL });
          await client.connect();
          await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
          await client.end();
          rmSync(dataDir, { recursive: true, force: true });
        },
      };
    },
  },
];

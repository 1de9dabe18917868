// Real `vouch serve` processes on a fresh PostgreSQL schema each and the real Redis, for the
// kill -9 fault tests: start, kill and restart an instance on the same store and port, call its
// admin API, and read its database directly to count what it holds.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { eventually, freePort, startServerProcess, LOCAL_FEDERATION_ENV, type ServerProcess } from './process.js';
import { POSTGRES_URL, REDIS_URL, STORE_BACKENDS } from './services.js';

export const ADMIN_TOKEN = randomBytes(32).toString('hex');

export interface Instance {
  url: string;
  actor: string;
  env: Record<string, string>;
  server?: ServerProcess;
  /** A client on this instance's own schema. */
  db: pg.Client;
  cleanup(): Promise<void>;
}

/** An instance on `host` with a fresh schema on the real PostgreSQL, delivering through the real Redis. */
export async function instance(host: string, env: Record<string, string> = {}): Promise<Instance> {
  const store = STORE_BACKENDS.find((s) => s.name === 'postgres')!.create();
  const port = await freePort(host);
  const url = `http://${host}:${port}`;
  const db = new pg.Client({ connectionString: POSTGRES_URL, options: `-c search_path=${store.config.databaseSchema}` });
  await db.connect();
  const i: Instance = {
    url,
    actor: `${url}/actor`,
    db,
    env: {
      VOUCH_DATA_DIR: store.config.dataDir,
      DATABASE_URL: POSTGRES_URL,
      VOUCH_DATABASE_SCHEMA: store.config.databaseSchema!,
      VOUCH_HOST: host,
      VOUCH_PORT: String(port),
      VOUCH_PUBLIC_URL: url,
      VOUCH_ADMIN_TOKEN: ADMIN_TOKEN,
      REDIS_URL,
      VOUCH_SCANNER: 'off',
      ...LOCAL_FEDERATION_ENV,
      VOUCH_DELIVERY_ATTEMPTS: '60',
      // A killed process's deliveries run again after the lease (BullMQ: up to twice it): 30 s by
      // default, which left the follower's wait at the mercy of where a kill fell.
      VOUCH_QUEUE_LEASE_MS: '3000',
      ...env,
    },
    async cleanup() {
      if (i.server?.child.exitCode === null && i.server.child.signalCode === null) i.server.child.kill('SIGKILL');
      await db.end();
      await store.cleanup();
    },
  };
  return i;
}

export async function start(i: Instance): Promise<void> {
  i.server = await startServerProcess({ ...i.env, VOUCH_LOG_LEVEL: 'info' });
}

/** kill -9: no shutdown step runs, in-flight requests and transactions are cut where they are. */
export async function kill9(i: Instance): Promise<void> {
  await i.server!.stop('SIGKILL');
}

export function admin(i: Instance, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${i.url}/api/v1/admin${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

export async function count(i: Instance, query: string, params: unknown[] = []): Promise<number> {
  const { rows } = await i.db.query<{ n: string }>(query, params);
  return Number(rows[0].n);
}

export function verdictBody(sha256: string) {
  return { subjects: [{ algorithm: 'sha256', digest: sha256 }], label: 'spam', confidence: 0.9, method: 'human' };
}

/** Issuer A (auto-approving followers) and follower B, both started, B following A. */
export async function issuerAndFollower(): Promise<[Instance, Instance]> {
  const [a, b] = await Promise.all([instance('127.0.0.2', { VOUCH_AUTO_APPROVE_FOLLOWERS: 'true' }), instance('127.0.0.3')]);
  await Promise.all([start(a), start(b)]);
  const followed = await admin(b, 'POST', '/peers/follow', { target: a.actor });
  if (followed.status !== 202) throw new Error(`B's follow of A answered ${followed.status}`);
  await eventually(async () => (await count(b, `SELECT count(*) AS n FROM peers WHERE actor_uri = $1 AND following_state = 'accepted'`, [a.actor])) === 1, 20_000, 'B following A');
  return [a, b];
}

/** Stops and removes the instances (their servers, connections and schemas). */
export async function stopAll(instances: ReadonlyArray<Instance | undefined>): Promise<void> {
  for (const i of instances) await i?.server?.stop();
  for (const i of instances) await i?.cleanup();
}

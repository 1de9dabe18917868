// Dependencies that come and go, against real processes: a private PostgreSQL cluster (in a
// temporary folder, so the test may restart and stop it) under a running `vouch serve`, and a
// private Redis killed under another one before SIGTERM.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, freePort, startServerProcess, type ServerProcess } from '../helpers/process.js';
import { REQUIRE_SERVICES, tempDir } from '../helpers/services.js';

const ADMIN_TOKEN = randomBytes(32).toString('hex');
const POSTGRES_BIN = (() => {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).filter((v) => existsSync(join(root, v, 'bin/pg_ctl'))) : [];
  return versions.length > 0 ? join(root, versions.sort((a, b) => Number(b) - Number(a))[0], 'bin') : undefined;
})();
const REDIS_SERVER = ['/usr/bin/redis-server', '/usr/local/bin/redis-server'].find(existsSync);
if (REQUIRE_SERVICES && (!POSTGRES_BIN || !REDIS_SERVER)) throw new Error('the fault tests need PostgreSQL\'s initdb/pg_ctl and redis-server (VOUCH_REQUIRE_SERVICES=1)');

/** A PostgreSQL cluster of our own; as root, run as the `postgres` user (initdb refuses root). */
class PrivatePostgres {
  readonly dir = mkdtempSync(join(tmpdir(), 'vouch-pg-'));
  port = 0;

  private run(tool: string, args: string[]): void {
    const command = [join(POSTGRES_BIN!, tool), ...args];
    if (process.getuid?.() === 0) execFileSync('su', ['postgres', '-s', '/bin/sh', '-c', command.map((a) => `'${a}'`).join(' ')], { stdio: 'pipe' });
    else execFileSync(command[0], command.slice(1), { stdio: 'pipe' });
  }

  async init(): Promise<void> {
    if (process.getuid?.() === 0) {
      const uid = Number(execFileSync('id', ['-u', 'postgres']).toString());
      const gid = Number(execFileSync('id', ['-g', 'postgres']).toString());
      chownSync(this.dir, uid, gid);
    }
    this.port = await freePort('127.0.0.1');
    this.run('initdb', ['-D', join(this.dir, 'data'), '-A', 'trust', '-U', 'postgres', '--no-sync']);
    this.pgCtl('start');
  }

  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  pgCtl(action: 'start' | 'restart' | 'stop', mode?: 'fast' | 'immediate'): void {
    const options = `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c fsync=off`;
    this.run('pg_ctl', ['-D', join(this.dir, 'data'), '-l', join(this.dir, 'log'), '-w', ...(mode ? ['-m', mode] : []), ...(action === 'stop' ? [] : ['-o', options]), action]);
  }

  cleanup(): void {
    try {
      this.pgCtl('stop', 'immediate');
    } catch {
      // not running
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

describe.skipIf(!POSTGRES_BIN)('PostgreSQL restarts under a running server', () => {
  const postgres = new PrivatePostgres();
  let server: ServerProcess;
  let dataDir: string;
  const digest = randomBytes(32).toString('hex');

  beforeAll(async () => {
    await postgres.init();
    dataDir = tempDir();
    server = await startServerProcess({ VOUCH_DATA_DIR: dataDir, DATABASE_URL: postgres.url, VOUCH_ADMIN_TOKEN: ADMIN_TOKEN, REDIS_URL: '' });
  });

  afterAll(async () => {
    const code = await server?.stop();
    postgres.cleanup();
    rmSync(dataDir, { recursive: true, force: true });
    expect(code).toBe(0);
  });

  const issue = (sha256: string) =>
    fetch(`${server.url}/api/v1/admin/verdicts`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ subjects: [{ algorithm: 'sha256', digest: sha256 }], label: 'spam', confidence: 0.9, method: 'human' }),
    });
  const lookup = async (sha256: string) => {
    const res = await fetch(`${server.url}/api/v1/verdicts?sha256=${sha256}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    return res.status === 200 ? ((await res.json()) as { matches: Array<{ label: string }> }).matches : undefined;
  };

  it('issues a verdict before any fault (the control case)', async () => {
    expect((await issue(digest)).status).toBe(201);
    expect((await lookup(digest))?.map((m) => m.label)).toEqual(['spam']);
  });

  it('survives pg_ctl restart -m fast and serves issued verdicts after it', async () => {
    postgres.pgCtl('restart', 'fast');
    // The pool's connections were all terminated; the next requests open new ones.
    const again = randomBytes(32).toString('hex');
    await eventually(async () => (await issue(again)).status === 201, 30_000, 'issuing after the restart');
    expect((await lookup(digest))?.map((m) => m.label)).toEqual(['spam']);
    expect((await lookup(again))?.map((m) => m.label)).toEqual(['spam']);
    expect(server.child.exitCode).toBeNull();
  });

  it('answers 503 while PostgreSQL is stopped (-m immediate) and resumes when it is back', async () => {
    postgres.pgCtl('stop', 'immediate');
    const health = await fetch(`${server.url}/healthz`);
    expect(health.status).toBe(503);
    expect(await health.json()).toMatchObject({ status: 'unavailable', database: 'down' });
    const ready = await fetch(`${server.url}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toEqual({ ready: false, database: 'down' });
    const refused = await issue(randomBytes(32).toString('hex'));
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('1');
    expect((await refused.json()).error.code).toBe('database_unavailable');
    expect(server.child.exitCode).toBeNull();

    postgres.pgCtl('start');
    await eventually(async () => (await fetch(`${server.url}/healthz`)).status === 200, 30_000, '/healthz after the start');
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
    expect((await lookup(digest))?.map((m) => m.label)).toEqual(['spam']);
    expect((await issue(randomBytes(32).toString('hex'))).status).toBe(201);
    // The 503s were counted, and none of them was logged as a failed request with a stack trace.
    expect(await (await fetch(`${server.url}/metrics`)).text()).toMatch(/vouch_http_shed_total\{reason="database_unavailable"\} [1-9]/);
    expect(server.logs.filter((line) => line.includes('"msg":"request failed"'))).toHaveLength(0);
    expect(server.child.exitCode).toBeNull();
  });
});

describe.skipIf(!REDIS_SERVER)('SIGTERM with Redis gone', () => {
  let redis: ChildProcess;
  let server: ServerProcess;
  let dataDir: string;

  beforeAll(async () => {
    const port = await freePort('127.0.0.1');
    redis = spawn(REDIS_SERVER!, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    dataDir = tempDir();
    server = await startServerProcess({ VOUCH_DATA_DIR: dataDir, REDIS_URL: `redis://127.0.0.1:${port}`, VOUCH_SCANNER: 'inprocess' });
  });

  afterAll(() => {
    if (redis.exitCode === null && redis.signalCode === null) redis.kill('SIGKILL');
    if (server.child.exitCode === null && server.child.signalCode === null) server.child.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('reports Redis down in /healthz, stays ready, and exits within 15 s of SIGTERM', async () => {
    expect(await (await fetch(`${server.url}/healthz`)).json()).toMatchObject({ status: 'ok', redis: 'ok' });
    redis.kill('SIGKILL');
    await once(redis, 'exit');
    const health = await fetch(`${server.url}/healthz`);
    expect(health.status).toBe(503);
    expect(await health.json()).toMatchObject({ database: 'ok', redis: 'down' });
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);

    const exited = server.stop('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<'still running'>((resolve) => (timer = setTimeout(() => resolve('still running'), 15_000)));
    const outcome = await Promise.race([exited, bound]);
    clearTimeout(timer);
    expect(outcome).toBe(0);
  });
});

describe.skipIf(!REDIS_SERVER)('Redis restarted while verdicts are being issued', () => {
  let redis: ChildProcess;
  let redisPort: number;
  let server: ServerProcess;
  let dataDir: string;
  const startRedis = () =>
    spawn(REDIS_SERVER!, ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });

  beforeAll(async () => {
    redisPort = await freePort('127.0.0.1');
    redis = startRedis();
    dataDir = tempDir();
    server = await startServerProcess({ VOUCH_DATA_DIR: dataDir, REDIS_URL: `redis://127.0.0.1:${redisPort}`, VOUCH_SCANNER: 'off', VOUCH_ADMIN_TOKEN: ADMIN_TOKEN });
  });

  afterAll(async () => {
    if (redis.exitCode === null && redis.signalCode === null) redis.kill('SIGKILL');
    await server?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('keeps the process up, answers nothing but 201 or 503, and stores exactly what it acknowledged', async () => {
    const issued: string[] = [];
    const statuses: number[] = [];
    const issue = async () => {
      const digest = randomBytes(32).toString('hex');
      const res = await fetch(`${server.url}/api/v1/admin/verdicts`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ subjects: [{ algorithm: 'sha256', digest }], label: 'spam', confidence: 1, method: 'human' }),
      });
      statuses.push(res.status);
      if (res.status === 201) issued.push(digest);
    };
    for (let i = 0; i < 15; i++) await issue();
    redis.kill('SIGKILL');
    await once(redis, 'exit');
    // While Redis is away, and through its restart.
    const away = Date.now();
    while (Date.now() - away < 3_000) await issue();
    redis = startRedis();
    await eventually(async () => (await fetch(`${server.url}/healthz`)).status === 200, 20_000, 'healthz to report Redis back');
    for (let i = 0; i < 15; i++) await issue();

    expect(server.child.exitCode).toBeNull();
    expect(statuses.filter((s) => s !== 201 && s !== 503)).toEqual([]);
    expect(issued.length).toBeGreaterThanOrEqual(30);
    for (const digest of issued) {
      const { matches } = await (await fetch(`${server.url}/api/v1/verdicts?sha256=${digest}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).json();
      expect(matches).toHaveLength(1);
    }
    // One log entry per acknowledged verdict, no more.
    const page = await (await fetch(`${server.url}/log/entries?start=0&end=1`)).json();
    expect(page.size).toBe(issued.length);
    // Queue errors while Redis was away were logged a handful of times, not on every command.
    expect(server.logs.filter((line) => line.includes('job queue: error') || line.includes('job queue: worker error')).length).toBeLessThanOrEqual(6);
  });
});

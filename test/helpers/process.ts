// Runs the compiled `vouch` binary (dist/, built by `npm test` before vitest starts) as a real
// child process: servers on 127.0.0.x ports, CLI commands with their exit codes.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../server/config/paths.js';

export const VOUCH_BIN = join(PROJECT_ROOT, 'dist/server/cli/main.js');

function ensureBuilt(): void {
  if (!existsSync(VOUCH_BIN)) throw new Error(`${VOUCH_BIN} is missing: run \`npm run build\` (npm test does)`);
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runCli(args: string[], env: Record<string, string | undefined> = {}, stdin?: string): Promise<CliResult> {
  ensureBuilt();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [VOUCH_BIN, ...args], {
      env: { ...process.env, VOUCH_LOG_LEVEL: 'warn', ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(stdin ?? '');
  });
}

export interface ServerProcess {
  url: string;
  child: ChildProcess;
  logs: string[];
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Starts `vouch serve` and resolves once it logs its listening address. */
export function startServerProcess(env: Record<string, string | undefined>, timeoutMs = 90_000): Promise<ServerProcess> {
  ensureBuilt();
  return new Promise((resolve, reject) => {
    // VOUCH_SERVER_NODE_ARGS: extra node flags for the server (e.g. --cpu-prof when profiling a bench).
    const nodeArgs = (process.env.VOUCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean);
    const child = spawn(process.execPath, [...nodeArgs, VOUCH_BIN, 'serve'], {
      env: { ...process.env, VOUCH_HOST: '127.0.0.1', VOUCH_PORT: '0', VOUCH_LOG_LEVEL: 'info', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const logs: string[] = [];
    let buffered = '';
    let settled = false;
    const timer = setTimeout(() => fail(new Error(`server did not start in ${timeoutMs} ms:\n${logs.join('\n')}`)), timeoutMs);
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(err);
    };
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    child.stderr.on('data', (d) => logs.push(String(d)));
    child.stdout.on('data', (d) => {
      buffered += d;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        logs.push(line);
        if (settled) continue;
        try {
          const entry = JSON.parse(line) as { msg?: string; url?: string };
          if (entry.msg === 'vouch listening' && entry.url) {
            settled = true;
            clearTimeout(timer);
            resolve({
              url: entry.url,
              child,
              logs,
              async stop(signal = 'SIGTERM') {
                if (child.exitCode === null) child.kill(signal);
                return exited;
              },
            });
          }
        } catch {
          // not a JSON log line
        }
      }
    });
    child.on('exit', (code) => fail(new Error(`server exited with ${code} before listening:\n${logs.join('\n')}`)));
  });
}

/** A port free on `host` right now (the OS picks it; the window before reuse is tiny). */
export async function freePort(host: string): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Polls `check` until it returns a value that is not undefined/false, or fails after `timeoutMs`. */
export async function eventually<T>(check: () => Promise<T | undefined | false>, timeoutMs = 15_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Federation between servers on 127.0.0.x: plain HTTP, loopback peers allowed, quick delivery retries. */
export const LOCAL_FEDERATION_ENV: Readonly<Record<string, string>> = Object.freeze({
  VOUCH_FEDERATION_ALLOW_HTTP: 'true',
  VOUCH_ALLOW_PRIVATE_NETWORKS: '127.0.0.0/8',
  VOUCH_DELIVERY_BACKOFF_BASE_MS: '100',
  VOUCH_DELIVERY_BACKOFF_MAX_MS: '1000',
});

/**
 * A server on `host` with its own embedded database, for tests of one instance; `env` is what it
 * was started with, to start it again on the same store.
 */
export async function startVouch(
  host: string,
  env: Record<string, string>,
): Promise<{ server: ServerProcess; url: string; env: Record<string, string>; cleanup: () => Promise<void> }> {
  // Loaded here, not at the top: services.js probes PostgreSQL and Redis when it loads.
  const { STORE_BACKENDS } = await import('./services.js');
  const store = STORE_BACKENDS[0].create();
  const port = await freePort(host);
  const url = `http://${host}:${port}`;
  try {
    const fullEnv = { VOUCH_DATA_DIR: store.config.dataDir, VOUCH_HOST: host, VOUCH_PORT: String(port), VOUCH_PUBLIC_URL: url, REDIS_URL: '', ...env };
    const server = await startServerProcess(fullEnv);
    return { server, url, env: fullEnv, cleanup: store.cleanup };
  } catch (err) {
    await store.cleanup();
    throw err;
  }
}

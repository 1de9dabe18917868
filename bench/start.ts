// From `npm start` to a `/healthz` that answers 200, on the embedded store (PGlite), as an admin
// sees it: npm, the build-stamp check (no tsc when the sources are unchanged), Node, the first
// migration of an empty data directory, the listening socket. Then once more on the same,
// migrated, directory (a restart). The sources must be built already (`npm run bench` does it).
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../server/config/paths.js';
import { tempDir } from '../test/helpers/services.js';
import { round, type BenchResult } from './result.js';

const HEALTH_TIMEOUT_MS = 120_000;

function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, host, () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

/** Seconds from spawning `npm start` until /healthz answers 200; the server is stopped after. */
async function startToHealthz(dataDir: string): Promise<number> {
  const host = '127.0.0.1';
  const port = await freePort(host);
  const env: NodeJS.ProcessEnv = { ...process.env, VOUCH_DATA_DIR: dataDir, VOUCH_HOST: host, VOUCH_PORT: String(port), REDIS_URL: '' };
  delete env.DATABASE_URL;
  const started = performance.now();
  // Its own process group, so that stopping it reaches the server under npm's shell.
  const child = spawn('npm', ['start'], { cwd: PROJECT_ROOT, env, stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  let exitedEarly = false;
  void exited.then(() => (exitedEarly = true));
  try {
    for (;;) {
      if (exitedEarly) throw new Error(`npm start exited before /healthz answered:\n${stderr}`);
      if (performance.now() - started > HEALTH_TIMEOUT_MS) throw new Error(`/healthz did not answer within ${HEALTH_TIMEOUT_MS} ms:\n${stderr}`);
      const ok = await fetch(`http://${host}:${port}/healthz`).then(
        (res) => res.ok,
        () => false,
      );
      if (ok) return (performance.now() - started) / 1000;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  } finally {
    if (!exitedEarly) process.kill(-child.pid!, 'SIGTERM');
    await exited;
  }
}

export async function benchStart(): Promise<BenchResult[]> {
  const root = tempDir('vouch-bench-start-');
  const dataDir = join(root, 'data');
  try {
    const first = await startToHealthz(dataDir);
    const restart = await startToHealthz(dataDir);
    return [
      { name: 'start_to_healthz_s', value: round(first, 2), unit: 's' },
      { name: 'start_to_healthz_s_restart', value: round(restart, 2), unit: 's' },
    ];
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

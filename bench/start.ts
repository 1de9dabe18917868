// From `npm start` to a `/healthz` that answers 200, on the embedded store (PGlite), as an admin
// sees it: npm, the build-stamp check (no tsc when the sources are unchanged), Node, the first
// migration of an empty data directory, the listening socket. Then once more on the same,
// migrated, directory (a restart). The CPU seconds the same process tree used (Linux) come with
// them: on a busy machine the wall time is mostly waiting for a core. The sources must be built
// already (`npm run bench` does it).
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
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

/**
 * CPU seconds used so far by a process group (npm, its shell, the build check, the server), from
 * Linux's /proc; undefined elsewhere. Unlike the wall time it barely moves with the machine's load.
 */
function groupCpuSeconds(pgid: number): number | undefined {
  if (!existsSync('/proc/self/stat')) return undefined;
  let ticks = 0;
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      continue; // exited meanwhile
    }
    // After "pid (comm) ": state ppid pgrp … utime stime cutime cstime are the 12th to 15th fields.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(fields[2]) !== pgid) continue;
    ticks += Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]);
  }
  return ticks / 100; // USER_HZ, 100 on Linux
}

/** Seconds (wall, CPU) from spawning `npm start` until /healthz answers 200; the server is stopped after. */
async function startToHealthz(dataDir: string): Promise<{ wall: number; cpu: number | undefined }> {
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
      if (ok) return { wall: (performance.now() - started) / 1000, cpu: groupCpuSeconds(child.pid!) };
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
    const results: BenchResult[] = [
      { name: 'start_to_healthz_s', value: round(first.wall, 2), unit: 's' },
      { name: 'start_to_healthz_s_restart', value: round(restart.wall, 2), unit: 's' },
    ];
    if (first.cpu !== undefined) results.push({ name: 'start_to_healthz_cpu_s', value: round(first.cpu, 2), unit: 's' });
    if (restart.cpu !== undefined) results.push({ name: 'start_to_healthz_cpu_s_restart', value: round(restart.cpu, 2), unit: 's' });
    return results;
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

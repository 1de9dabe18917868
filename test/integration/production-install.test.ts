// docs/getting-started.md's "A lean install for production", followed in a copy of this checkout
// with its built dist/: the production install (from npm's cache where it can), quiet; no
// TypeScript or TensorFlow.js in it, ONNX Runtime for this platform only; the bundled classifier
// still scans (it reads nsfwjs's weights, not TensorFlow.js) and `npm start` answers /healthz.
import { execFile, execFileSync, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../server/config/paths.js';
import { photoLikeRgb } from '../helpers/images.js';
import { eventually, freePort } from '../helpers/process.js';

const GUIDE = readFileSync(join(PROJECT_ROOT, 'docs/getting-started.md'), 'utf8');
const HEADING = '## A lean install for production';

/** The commands of the section's ```sh block, comments dropped. */
function leanInstallCommands(): string[] {
  const start = GUIDE.indexOf(HEADING);
  if (start === -1) throw new Error(`docs/getting-started.md has no "${HEADING}" section`);
  const section = GUIDE.slice(start, GUIDE.indexOf('\n## ', start + HEADING.length));
  const block = /```sh\n([\s\S]*?)```/.exec(section)?.[1] ?? '';
  return block
    .split('\n')
    .map((line) => line.replace(/\s+#.*$/, '').trim())
    .filter((line) => line !== '');
}

function run(command: string, cwd: string, env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile('bash', ['-c', `set -euo pipefail\n${command}`], { cwd, env, maxBuffer: 16 * 2 ** 20 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
    );
    child.stdin!.end();
  });
}

describe('docs/getting-started.md: a lean install for production', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vouch-production-'));
  const copy = join(dir, 'vouch');
  // npm's cache answers what it holds without asking the registry: quick, and offline where it can.
  const env: NodeJS.ProcessEnv = { ...process.env, npm_config_prefer_offline: 'true', npm_config_update_notifier: 'false', REDIS_URL: '' };
  delete env.DATABASE_URL;
  delete env.NODE_ENV;

  beforeAll(() => {
    // The checkout as a clone of it would have it (tracked files, and new ones not ignored), plus the
    // dist/ that `npm test` built.
    const files = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: PROJECT_ROOT, encoding: 'utf8' }).split('\0').filter(Boolean);
    for (const file of files) {
      if (!existsSync(join(PROJECT_ROOT, file))) continue; // deleted in the working tree, not yet committed
      mkdirSync(dirname(join(copy, file)), { recursive: true });
      cpSync(join(PROJECT_ROOT, file), join(copy, file));
    }
    cpSync(join(PROJECT_ROOT, 'dist'), join(copy, 'dist'), { recursive: true });
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('installs production dependencies only, quietly, and prunes other platforms', { timeout: 600_000 }, async () => {
    const commands = leanInstallCommands();
    expect(commands.at(-1)).toBe('npm start');
    const install = await run(commands.slice(0, -1).join('\n'), copy, env);
    expect(install.code, install.stderr).toBe(0);
    expect(install.stderr).not.toMatch(/npm warn|npm error/i);

    const modules = join(copy, 'node_modules');
    for (const devOnly of ['typescript', 'vitest', '@tensorflow/tfjs', '@tensorflow/tfjs-core', 'playwright-core']) {
      expect(existsSync(join(modules, devOnly)), devOnly).toBe(false);
    }
    for (const runtime of ['nsfwjs', 'onnxruntime-node', 'pino-pretty', 'sharp', '@electric-sql/pglite']) {
      expect(existsSync(join(modules, runtime)), runtime).toBe(true);
    }
    const bin = join(modules, 'onnxruntime-node/bin/napi-v6');
    expect(readdirSync(bin)).toEqual([process.platform]);
    expect(readdirSync(join(bin, process.platform))).toEqual([process.arch]);
    // `du -sh node_modules`, the block's last figure: the lean tree stays lean (about 190 MB).
    const size = /^([\d.]+)([KMG])\s/m.exec(install.stdout);
    expect(size, install.stdout).not.toBeNull();
    const megabytes = Number(size![1]) * { K: 1 / 1024, M: 1, G: 1024 }[size![2] as 'K' | 'M' | 'G'];
    expect(megabytes).toBeLessThan(260);
  });

  it('scans with the bundled classifier, without TensorFlow.js', { timeout: 180_000 }, async () => {
    const photos = join(dir, 'photos');
    mkdirSync(photos);
    writeFileSync(join(photos, 'photo.jpg'), await sharp(photoLikeRgb(640, 480, 7), { raw: { width: 640, height: 480, channels: 3 } }).jpeg().toBuffer());
    const scan = await run(`node dist/server/cli/main.js scan --classify ${JSON.stringify(photos)}`, copy, { ...env, VOUCH_DATA_DIR: join(dir, 'scan-data') });
    expect(scan.code, scan.stderr).toBe(0);
    const report = scan.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(report.some((line) => JSON.stringify(line).includes('nsfwjs-mobilenet-v2')), scan.stdout).toBe(true);
  });

  it('npm start answers /healthz, and /favicon.ico without a 404', { timeout: 180_000 }, async () => {
    const host = '127.0.0.75';
    const port = await freePort(host);
    const child = spawn('npm', ['start'], {
      cwd: copy,
      env: { ...env, VOUCH_DATA_DIR: join(dir, 'data'), VOUCH_HOST: host, VOUCH_PORT: String(port) },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true, // its own process group: stopping it reaches the server under npm
    });
    let output = '';
    child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    try {
      let health: Response | undefined;
      while (health?.status !== 200) {
        if (child.exitCode !== null) throw new Error(`npm start exited (${child.exitCode}):\n${output}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
        health = await fetch(`http://${host}:${port}/healthz`).catch(() => undefined);
      }
      expect(await health.json()).toMatchObject({ status: 'ok', store: 'pglite' });
      const favicon = await fetch(`http://${host}:${port}/favicon.ico`);
      expect(favicon.status).toBe(204);
      expect(favicon.headers.get('cache-control')).toMatch(/max-age=\d+/);
      // Not a terminal: JSON lines, and no compiling (dist/ matches the sources). The line may
      // still be on its way through npm's pipe when /healthz first answers.
      await eventually(async () => output.includes('"msg":"vouch listening"'), 10_000, "the \"vouch listening\" log line");
      expect(output).not.toContain('compiling');
    } finally {
      if (child.exitCode === null) process.kill(-child.pid!, 'SIGTERM');
      await exited;
    }
  });
});

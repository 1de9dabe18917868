// `vouch hash` as an admin runs it on a folder: the whole process (Node start, the CLI's imports,
// the worker threads' start, reading, hashing, printing) on 200 1024x768 JPEGs, next to the warm
// pool's rate on the same files in the same run. Then the peak RSS of `vouch hash` on 1,000 files
// with VOUCH_HASH_THREADS=2, from GNU time (`/usr/bin/time`, Debian's `time` package) when present.
// The files cycle through 24 generated pictures: hashing never caches, so repeats cost the same.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HashPool } from '../server/scanning/hash-pool.js';
import { DEFAULT_IMAGE_LIMITS } from '../shared/hashing/index.js';
import { tempDir } from '../test/helpers/services.js';
import { photoLikeJpeg } from './hashing.js';
import { round, type BenchResult } from './result.js';

const CLI = fileURLToPath(new URL('../server/cli/main.js', import.meta.url));
const GNU_TIME = '/usr/bin/time';

interface ProcessRun {
  wallSeconds: number;
  /** From GNU time; undefined without it. */
  maxRssKb?: number;
  /** User + system CPU seconds, from GNU time: steadier than the wall time on a loaded machine. */
  cpuSeconds?: number;
}

/** Runs `vouch hash` on the files; fails unless it printed one line per file and exited 0. */
async function runHashCli(files: string[], threads?: number): Promise<ProcessRun> {
  const env = { ...process.env };
  delete env.VOUCH_HASH_THREADS;
  if (threads !== undefined) env.VOUCH_HASH_THREADS = String(threads);
  const withTime = existsSync(GNU_TIME);
  const [command, args] = withTime
    ? [GNU_TIME, ['-f', 'vouch-bench-time %M %U %S', process.execPath, CLI, 'hash', ...files]]
    : [process.execPath, [CLI, 'hash', ...files]];
  const started = performance.now();
  const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let lines = 0;
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    for (const byte of chunk) if (byte === 0x0a) lines++;
  });
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  });
  const wallSeconds = (performance.now() - started) / 1000;
  if (code !== 0 || lines !== files.length) {
    throw new Error(`vouch hash exited ${code} with ${lines} lines for ${files.length} files: ${stderr.slice(-500)}`);
  }
  const time = /vouch-bench-time (\d+) ([\d.]+) ([\d.]+)/.exec(stderr);
  if (!time) return { wallSeconds };
  return { wallSeconds, maxRssKb: Number(time[1]), cpuSeconds: Number(time[2]) + Number(time[3]) };
}

async function writeImages(dir: string, count: number): Promise<string[]> {
  const pictures = await Promise.all(Array.from({ length: 24 }, (_, i) => photoLikeJpeg(300 + i)));
  const files = Array.from({ length: count }, (_, i) => join(dir, `img${String(i).padStart(4, '0')}.jpg`));
  await Promise.all(files.map((file, i) => writeFile(file, pictures[i % pictures.length])));
  return files;
}

export async function benchHashCli(): Promise<BenchResult[]> {
  const dir = tempDir('vouch-bench-hash-cli-');
  try {
    return await measure(await writeImages(dir, 1000));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function measure(files: string[]): Promise<BenchResult[]> {
  const first200 = files.slice(0, 200);
  const cores = availableParallelism();

  const pool = new HashPool(DEFAULT_IMAGE_LIMITS, cores);
  let warmRate: number;
  let warmCpuSeconds: number;
  try {
    for await (const { outcome } of pool.hashFilesInOrder(first200.slice(0, cores * 8))) {
      if (!outcome.ok) throw new Error(outcome.message);
    }
    const started = performance.now();
    const cpu = process.cpuUsage(); // the whole process: the workers' threads count too
    for await (const { outcome } of pool.hashFilesInOrder(first200)) {
      if (!outcome.ok) throw new Error(outcome.message);
    }
    warmRate = first200.length / ((performance.now() - started) / 1000);
    const used = process.cpuUsage(cpu);
    warmCpuSeconds = (used.user + used.system) / 1e6;
  } finally {
    await pool.close();
  }

  // The CLI's defaults (threads = cores), as an admin runs it.
  const whole = await runHashCli(first200);
  const cliRate = first200.length / whole.wallSeconds;
  const results: BenchResult[] = [
    { name: 'hash_cli_img_per_s_200_files', value: round(cliRate, 1), unit: 'img/s' },
    { name: 'hash_pool_warm_img_per_s_200_files', value: round(warmRate, 1), unit: 'img/s' },
    { name: 'hash_cli_vs_warm_pool', value: round(cliRate / warmRate, 2), unit: 'x' },
  ];
  // The fixed cost: Node, the CLI's imports and one worker, for a single file.
  const single = await runHashCli(files.slice(0, 1));
  if (whole.cpuSeconds !== undefined && single.cpuSeconds !== undefined) {
    results.push(
      { name: 'hash_cli_cpu_s_200_files', value: round(whole.cpuSeconds, 2), unit: 's' },
      { name: 'hash_pool_warm_cpu_s_200_files', value: round(warmCpuSeconds, 2), unit: 's' },
      { name: 'hash_cli_cpu_s_1_file', value: round(single.cpuSeconds, 2), unit: 's' },
    );
  }
  const thousand = await runHashCli(files, 2);
  if (thousand.maxRssKb !== undefined) {
    results.push({ name: 'hash_cli_peak_rss_mb_1000_files_2_threads', value: round(thousand.maxRssKb / 1024, 1), unit: 'MB' });
  } else {
    console.error(`# hash_cli_peak_rss_mb_1000_files_2_threads and the CPU seconds need GNU time at ${GNU_TIME}: not measured`);
  }
  return results;
}

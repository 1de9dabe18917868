// The system ffmpeg and ffprobe, found and run as confined child processes. Decoding hostile video
// is an attack surface (decoders are large C code), so each run is:
//  - a child process given an argument array, never a shell, and an empty environment (an
//    exploited decoder finds no tokens or keys in it);
//  - under `prlimit`: RLIMIT_DATA bounds its heap and private mappings (a declared 30000x30000
//    frame fails to allocate instead of taking the machine's memory), RLIMIT_FSIZE = 0 forbids
//    writing any file, RLIMIT_CORE = 0 leaves no core dumps. RLIMIT_DATA rather than RLIMIT_AS:
//    Debian's ffmpeg maps ~750 MB of shared libraries before decoding anything, which an
//    address-space limit would have to allow for;
//  - in its own process group, killed as a group at a wall-clock deadline;
//  - with its stdout consumed as a stream by the caller (who caps it) and only the tail of its
//    stderr kept (a broken file can make ffmpeg log millions of lines).
import { spawn } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { VideoRejectedError } from './errors.js';

export interface VideoTools {
  ffmpeg: string;
  ffprobe: string;
  prlimit: string;
}

/** Where to look: explicit paths (VOUCH_FFMPEG, VOUCH_FFPROBE) win over PATH. */
export interface VideoToolSettings {
  ffmpeg?: string;
  ffprobe?: string;
  /** The search path, `process.env.PATH` by default. */
  path?: string;
}

export interface RunLimits {
  timeoutMs: number;
  memoryBytes: number;
}

const STDERR_TAIL_BYTES = 4096;

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

function onPath(name: string, searchPath: string): string | undefined {
  for (const dir of searchPath.split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, name);
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

/**
 * Finds ffmpeg, ffprobe (VOUCH_FFPROBE, else beside VOUCH_FFMPEG, else PATH) and prlimit, or
 * throws `no_video_decoder` naming what is missing. Cheap (a few stat calls): callers look again
 * on each video, so installing ffmpeg needs no restart.
 */
export function locateVideoTools(settings: VideoToolSettings = {}): VideoTools {
  const searchPath = settings.path ?? process.env.PATH ?? '';
  const missing = (what: string): never => {
    throw new VideoRejectedError('no_video_decoder', `video cannot be hashed on this server: ${what} (install Debian's ffmpeg package, or set VOUCH_FFMPEG)`);
  };
  let ffmpeg: string;
  if (settings.ffmpeg !== undefined) {
    if (!isExecutable(settings.ffmpeg)) missing(`VOUCH_FFMPEG=${settings.ffmpeg} is not an executable file`);
    ffmpeg = settings.ffmpeg;
  } else {
    ffmpeg = onPath('ffmpeg', searchPath) ?? missing('ffmpeg is not on the PATH');
  }
  let ffprobe: string;
  if (settings.ffprobe !== undefined) {
    if (!isExecutable(settings.ffprobe)) missing(`VOUCH_FFPROBE=${settings.ffprobe} is not an executable file`);
    ffprobe = settings.ffprobe;
  } else if (settings.ffmpeg !== undefined) {
    const beside = join(dirname(settings.ffmpeg), 'ffprobe');
    if (!isExecutable(beside)) missing(`no ffprobe beside VOUCH_FFMPEG (set VOUCH_FFPROBE)`);
    ffprobe = beside;
  } else {
    ffprobe = onPath('ffprobe', searchPath) ?? missing('ffprobe is not on the PATH');
  }
  // util-linux, in every Debian install; without it ffmpeg's memory could not be bounded.
  const prlimit = onPath('prlimit', searchPath) ?? missing('prlimit (util-linux) is not on the PATH, so ffmpeg\'s memory cannot be limited');
  return { ffmpeg, ffprobe, prlimit };
}

/**
 * Runs ffmpeg or ffprobe under the limits. `consume` reads stdout (and decides what is too much:
 * it may throw, which kills the process); it must read to the end or throw. Resolves with the
 * tail of stderr when the tool exits 0; otherwise throws a VideoRejectedError: `too_costly` for
 * the deadline or an allocation refused under the memory limit, `corrupt` for any other failure,
 * with `describe(stderr)` as its message.
 */
export async function runConfined(
  tools: VideoTools,
  program: 'ffmpeg' | 'ffprobe',
  args: readonly string[],
  limits: RunLimits,
  consume: (stdout: Readable) => Promise<void>,
  describe: (stderrTail: string) => string,
): Promise<string> {
  const child = spawn(
    tools.prlimit,
    [`--data=${limits.memoryBytes}`, '--fsize=0', '--core=0', '--', tools[program], ...args],
    { stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: { LC_ALL: 'C' }, shell: false },
  );
  let timedOut = false;
  const killGroup = () => {
    if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  };
  const timer = setTimeout(() => {
    timedOut = true;
    killGroup();
  }, limits.timeoutMs);

  let stderr = Buffer.alloc(0);
  child.stderr.on('data', (chunk: Buffer) => {
    stderr = Buffer.concat([stderr, chunk]);
    if (stderr.length > STDERR_TAIL_BYTES) stderr = stderr.subarray(stderr.length - STDERR_TAIL_BYTES);
  });
  const exited = new Promise<{ code: number | null; spawnError?: Error }>((resolve) => {
    child.once('error', (err) => resolve({ code: null, spawnError: err }));
    child.once('close', (code) => resolve({ code }));
  });

  let consumeError: unknown;
  try {
    await consume(child.stdout);
  } catch (err) {
    consumeError = err;
    killGroup();
    child.stdout.destroy();
  }
  const { code, spawnError } = await exited;
  clearTimeout(timer);
  const tail = stderr.toString('utf8');

  if (timedOut) throw new VideoRejectedError('too_costly', `decoding took longer than ${limits.timeoutMs / 1000} s`);
  if (spawnError) throw new VideoRejectedError('no_video_decoder', `cannot run ${program}: ${spawnError.message}`, { cause: spawnError });
  if (consumeError !== undefined) throw consumeError;
  if (code !== 0) {
    if (/cannot allocate memory|could not allocate|out of memory|failed to map segment|get_buffer\(\) failed/i.test(tail)) {
      throw new VideoRejectedError('too_costly', `decoding needs more than ${Math.round(limits.memoryBytes / 2 ** 20)} MiB of memory`);
    }
    throw new VideoRejectedError('corrupt', describe(tail));
  }
  return tail;
}

/** The first informative line of ffmpeg's error output, without the input's path, bounded. */
export function firstErrorLine(stderrTail: string, inputPath: string): string {
  const lines = stderrTail
    .split('\n')
    .map((line) => line.split(inputPath).join('input').replace(/\[[^\]\n]* @ 0x[0-9a-f]+\]\s*/g, '').trim())
    .filter((line) => line !== '' && !/^Last message repeated/i.test(line));
  const line = lines[0] ?? 'the decoder gave up';
  return line.length > 200 ? `${line.slice(0, 200)}…` : line;
}

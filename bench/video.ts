/**
 * Video hashing cost on a generated 1-minute 720p30 H.264 video (ffmpeg's testsrc2 pattern with
 * moving grain, so that the decoder has detail to work on; libx264 veryfast, CRF 23 capped at
 * 5 Mbit/s: ~23 MB, about 3 Mbit/s, a phone video's rate):
 *  - vpdq_hash_s_per_minute_of_video: hashVideoFile as the server runs it (probe, decode in the
 *    confined ffmpeg, 60 frames through the image normalisation and PDQ, MD5 + SHA-256), wall
 *    time, and vpdq_hash_cpu_s_per_minute_of_video, the CPU time it took (Node and ffmpeg), which
 *    a busy machine changes less;
 *  - ffmpeg_decode_s_per_minute_of_video: the same ffmpeg command alone, frames discarded (what
 *    decoding costs by itself);
 *  - vpdq_png_frames_s_per_minute_of_video: the alternative design, ffmpeg writing PNG frames that
 *    go through the image pipeline (hashImage), to justify sending raw frames instead;
 *  - vpdq_match_ms_600x600: matchVpdq between two 10-minute frame lists (600 frames each, the
 *    default limit) that share half their frames.
 * Needs ffmpeg on the PATH. Median of VOUCH_BENCH_VIDEO_RUNS runs (default 3).
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { hashImage, matchVpdq, type VpdqFrame } from '../shared/hashing/index.js';
import { hashVideoFile } from '../server/video/index.js';
import { round, type BenchResult } from './result.js';

const run = promisify(execFile);

/** CPU seconds used so far by this process and its waited-for children (ffmpeg): /proc's clock ticks. */
async function cpuSeconds(): Promise<number> {
  const fields = (await readFile('/proc/self/stat', 'utf8')).split(') ')[1].split(' ');
  // Fields 14-17 of stat(5) (utime, stime, cutime, cstime) are 12-15 after the command name.
  const ticks = [11, 12, 13, 14].reduce((sum, i) => sum + Number(fields[i]), 0);
  return ticks / 100;
}

async function medianSeconds(runs: number, f: () => Promise<unknown>): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await f();
    samples.push((performance.now() - t0) / 1000);
  }
  samples.sort((a, b) => a - b);
  return samples[samples.length >> 1];
}

/** Runs ffmpeg with `args`, feeding each complete PNG on stdout to `onPng`. */
async function pngFrames(args: string[], onPng: (png: Buffer) => Promise<void>): Promise<number> {
  const child = spawn('ffmpeg', args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const IEND = Buffer.from([0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82]);
  let pending = Buffer.alloc(0);
  let count = 0;
  for await (const chunk of child.stdout as AsyncIterable<Buffer>) {
    pending = Buffer.concat([pending, chunk]);
    for (let end = pending.indexOf(IEND); end >= 0; end = pending.indexOf(IEND)) {
      await onPng(pending.subarray(0, end + IEND.length));
      pending = pending.subarray(end + IEND.length);
      count++;
    }
  }
  return count;
}

function randomFrames(seed: number, count: number): VpdqFrame[] {
  let s = seed >>> 0 || 1;
  const hex = () => Array.from({ length: 64 }, () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) >>> 28).toString(16)).join('');
  return Array.from({ length: count }, (_, k) => ({ pdq: hex(), quality: 100, seconds: k }));
}

export async function benchVideo(): Promise<BenchResult[]> {
  const runs = Number(process.env.VOUCH_BENCH_VIDEO_RUNS ?? 3);
  const dir = await mkdtemp(join(tmpdir(), 'vouch-bench-video-'));
  try {
    const video = join(dir, 'minute-720p.mp4');
    await run('ffmpeg', [
      '-nostdin', '-hide_banner', '-loglevel', 'error', '-y',
      '-f', 'lavfi', '-i', 'testsrc2=s=1280x720:r=30:d=60', '-vf', 'noise=alls=6:allf=t',
      '-c:v', 'libx264', '-preset', 'veryfast', '-crf', '23', '-maxrate', '5M', '-bufsize', '10M', '-pix_fmt', 'yuv420p', video,
    ]);
    const cpuBefore = await cpuSeconds();
    const hashSeconds = await medianSeconds(runs, () => hashVideoFile(video));
    const hashCpuSeconds = ((await cpuSeconds()) - cpuBefore) / runs;
    const decodeArgs = [
      '-nostdin', '-hide_banner', '-loglevel', 'error', '-threads', '2', '-i', video,
      '-map', '0:V:0', '-an', '-vf', 'fps=1:round=up', '-f', 'image2pipe', '-c:v', 'ppm', '-pix_fmt', 'rgb24', '-y', '/dev/null',
    ];
    const decodeSeconds = await medianSeconds(runs, () => run('ffmpeg', decodeArgs));
    const pngSeconds = await medianSeconds(runs, () =>
      pngFrames(
        ['-nostdin', '-hide_banner', '-loglevel', 'error', '-threads', '2', '-i', video, '-map', '0:V:0', '-an', '-vf', 'fps=1:round=up', '-f', 'image2pipe', '-c:v', 'png', 'pipe:1'],
        async (png) => {
          await hashImage(png);
        },
      ),
    );
    const a = randomFrames(1, 600);
    const b = [...a.slice(0, 300), ...randomFrames(2, 300)];
    matchVpdq(a, b); // warm up
    const t0 = performance.now();
    const matchRuns = 20;
    for (let i = 0; i < matchRuns; i++) matchVpdq(a, b);
    const matchMs = (performance.now() - t0) / matchRuns;
    return [
      { name: 'vpdq_hash_s_per_minute_of_video', value: round(hashSeconds, 2), unit: 's' },
      { name: 'vpdq_hash_cpu_s_per_minute_of_video', value: round(hashCpuSeconds, 2), unit: 's' },
      { name: 'ffmpeg_decode_s_per_minute_of_video', value: round(decodeSeconds, 2), unit: 's' },
      { name: 'vpdq_png_frames_s_per_minute_of_video', value: round(pngSeconds, 2), unit: 's' },
      { name: 'vpdq_match_ms_600x600', value: round(matchMs, 1), unit: 'ms' },
    ];
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

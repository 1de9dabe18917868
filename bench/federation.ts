// Federation throughput on this machine, with real server processes on 127.0.0.x:
// - inbox_verdicts_per_s: signed Create{Verdict} POSTs verified (HTTP signature + object proof),
//   stored and indexed per second by VOUCH_BENCH_INBOX_PROCESSES server processes (default 1),
//   with the client's share of the CPU used and each side's CPU per verdict (and PostgreSQL's,
//   when its server runs on this machine);
// - fanout_100_followers_s: from issuing one verdict to its arrival at 100 follower inboxes;
// - consensus_pass_*_ms_per_1000: one server holding 1,000 consensus verdicts (re-attestations of
//   a fake peer's human `ok` verdicts) re-decides them all: `kept` after a policy change that
//   changes no outcome (a lookup and a decision each), `retracted` after the peer's trust drops
//   below allow's bar (each also retracted, a Delete published).
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { Pool } from 'undici';
import { generateInstanceKeysSync } from '../shared/crypto/keys.js';
import { FakePeer } from '../test/helpers/fake-peer.js';
import { eventually, freePort, startServerProcess, type ServerProcess } from '../test/helpers/process.js';
import { tempDir } from '../test/helpers/services.js';
import { hashImage } from '../shared/hashing/index.js';
import { syntheticJpeg } from '../test/helpers/images.js';
import { round, type BenchResult } from './result.js';

const TOKEN = randomBytes(32).toString('hex');

function vouchEnv(host: string, port: number, dataDir: string, extra: Record<string, string>): Record<string, string> {
  const base = `http://${host}:${port}`;
  return {
    VOUCH_DATA_DIR: dataDir,
    VOUCH_HOST: host,
    VOUCH_PORT: String(port),
    VOUCH_PUBLIC_URL: base,
    VOUCH_ADMIN_TOKEN: TOKEN,
    VOUCH_FEDERATION_ALLOW_HTTP: 'true',
    VOUCH_ALLOW_PRIVATE_NETWORKS: '127.0.0.0/8',
    // info, as in production (and the start-up line the harness waits for is an info line).
    VOUCH_LOG_LEVEL: 'info',
    REDIS_URL: process.env.VOUCH_BENCH_REDIS_URL ?? '',
    // A PostgreSQL server instead of the embedded PGlite (a fresh schema per run).
    ...(process.env.VOUCH_BENCH_DATABASE_URL
      ? { DATABASE_URL: process.env.VOUCH_BENCH_DATABASE_URL, VOUCH_DATABASE_SCHEMA: `vouch_bench_${randomBytes(4).toString('hex')}` }
      : {}),
    ...extra,
  };
}

async function startVouch(host: string, extra: Record<string, string> = {}): Promise<{ server: ServerProcess; base: string; dataDir: string; env: Record<string, string> }> {
  const dataDir = tempDir('vouch-bench-');
  const env = vouchEnv(host, await freePort(host), dataDir, extra);
  const server = await startServerProcess(env);
  return { server, base: env.VOUCH_PUBLIC_URL, dataDir, env };
}

function admin(base: string, method: string, path: string, body?: unknown) {
  return fetch(`${base}/api/v1/admin${path}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

/** Runs `task` over `items` with `concurrency` workers. */
async function eachConcurrently<T>(items: T[], concurrency: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < items.length) await task(items[next++]);
  }));
}

/** The server at `base` follows `peer`, which accepts; returns the server's inbox. */
async function followedBy(base: string, peer: FakePeer): Promise<string> {
  const inbox = `${base}/actor/inbox`;
  await admin(base, 'POST', '/peers/follow', { target: peer.actor });
  const follow = await eventually(async () => peer.received.find((a) => a.type === 'Follow'));
  await peer.post(inbox, peer.activity('Accept', follow));
  return inbox;
}

/** CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat (Linux). */
function processCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces) start at state; utime and stime are the 12th and 13th.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_S;
}

/** Linux reports process times in USER_HZ ticks, 100 per second on every architecture Node runs on. */
const CLOCK_TICKS_PER_S = 100;

/**
 * CPU seconds used so far by the PostgreSQL server when it runs on this machine (processes named
 * `postgres`), undefined when none is visible. Backends that ended count through the postmaster,
 * which reaps them (its children's times); those still running, through their own.
 */
function postgresCpuSeconds(): number | undefined {
  let ticks = 0;
  let found = false;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // ended meanwhile
    }
    if (stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')) !== 'postgres') continue;
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime, stime, cutime, cstime
    ticks += Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]);
    found = true;
  }
  return found ? ticks / CLOCK_TICKS_PER_S : undefined;
}

interface InboxFigures {
  perSecond: number;
  processes: number;
  /** CPU the bench's client used in the timed part, as a share of all CPU (client + servers) used then. */
  clientCpuShare: number;
  serverCpuMsPerVerdict: number;
  clientCpuMsPerVerdict: number;
  /** PostgreSQL's CPU per verdict, when its server runs on this machine (other clients' work included). */
  postgresCpuMsPerVerdict: number | undefined;
}

/**
 * Signed Create{Verdict} POSTs to `processes` server processes of one instance (more than one
 * needs PostgreSQL: the documented scale-out, one database, the same public URL). The bodies and
 * signatures are made before the timed part and sent with undici's keep-alive pool, so the client
 * costs little of the machine's CPU; its share is measured and reported next to the rate.
 */
async function inboxThroughput(count: number, concurrency: number, processes: number): Promise<InboxFigures> {
  if (processes > 1 && !process.env.VOUCH_BENCH_DATABASE_URL) throw new Error('several server processes need PostgreSQL (VOUCH_BENCH_DATABASE_URL)');
  const first = await startVouch('127.0.0.20');
  const servers = [first.server];
  const addresses = [first.base];
  const peer = new FakePeer();
  const pools: Pool[] = [];
  try {
    // The others share the first's database, keys and public URL (started after it has created them).
    for (let n = 1; n < processes; n++) {
      const host = `127.0.0.${40 + n}`;
      const port = await freePort(host);
      servers.push(await startServerProcess({ ...first.env, VOUCH_HOST: host, VOUCH_PORT: String(port) }));
      addresses.push(`http://${host}:${port}`);
    }
    await peer.start('127.0.0.21');
    const inbox = await followedBy(first.base, peer);
    const inboxUrl = new URL(inbox);
    const make = (n: number) => Array.from({ length: n }, () => {
      const verdict = peer.signObject(peer.verdict([{ algorithm: 'pdq', digest: randomBytes(32).toString('hex'), quality: 100 }]));
      const body = JSON.stringify(peer.activity('Create', verdict));
      // Every process answers for the public host, as behind a load balancer.
      return { body, headers: { ...peer.signedHeaders('POST', inbox, body), host: inboxUrl.host } };
    });
    const warmUp = make(300);
    const requests = make(count);
    for (const address of addresses) pools.push(new Pool(address, { connections: Math.ceil(concurrency / addresses.length), pipelining: 1 }));
    let sent = 0;
    const send = async ({ body, headers }: { body: string; headers: Record<string, string> }) => {
      const res = await pools[sent++ % pools.length].request({ path: inboxUrl.pathname, method: 'POST', headers, body });
      const text = await res.body.text();
      if (res.statusCode !== 202) throw new Error(`inbox answered ${res.statusCode}: ${text}`);
    };
    // Untimed: the servers' JIT and caches (peer row, keys) warm up as they would in service.
    await eachConcurrently(warmUp, concurrency, send);

    const serverCpuBefore = servers.reduce((sum, s) => sum + processCpuSeconds(s.child.pid!), 0);
    const postgresCpuBefore = process.env.VOUCH_BENCH_DATABASE_URL ? postgresCpuSeconds() : undefined;
    const clientCpuBefore = process.cpuUsage();
    const started = performance.now();
    await eachConcurrently(requests, concurrency, send);
    const seconds = (performance.now() - started) / 1000;
    const clientCpu = process.cpuUsage(clientCpuBefore);
    const clientSeconds = (clientCpu.user + clientCpu.system) / 1e6;
    const serverSeconds = servers.reduce((sum, s) => sum + processCpuSeconds(s.child.pid!), 0) - serverCpuBefore;
    const postgresCpuAfter = postgresCpuBefore === undefined ? undefined : postgresCpuSeconds();
    return {
      perSecond: count / seconds,
      processes,
      clientCpuShare: clientSeconds / (clientSeconds + serverSeconds),
      serverCpuMsPerVerdict: (serverSeconds * 1000) / count,
      clientCpuMsPerVerdict: (clientSeconds * 1000) / count,
      postgresCpuMsPerVerdict: postgresCpuBefore === undefined || postgresCpuAfter === undefined ? undefined : ((postgresCpuAfter - postgresCpuBefore) * 1000) / count,
    };
  } finally {
    await Promise.all(pools.map((p) => p.close()));
    await peer.stop();
    for (const server of servers.slice(1).reverse()) await server.stop();
    await first.server.stop();
    rmSync(first.dataDir, { recursive: true, force: true });
  }
}

async function fanout(followers: number): Promise<number> {
  const { server, base, dataDir } = await startVouch('127.0.0.30', { VOUCH_AUTO_APPROVE_FOLLOWERS: 'true', VOUCH_DELIVERY_CONCURRENCY: '32' });
  const keys = generateInstanceKeysSync();
  const peers = Array.from({ length: followers }, () => new FakePeer(keys));
  try {
    await Promise.all(peers.map((p, i) => p.start(`127.0.1.${1 + (i % 250)}`)));
    const inbox = `${base}/actor/inbox`;
    for (const p of peers) {
      const res = await p.post(inbox, p.activity('Follow', `${base}/actor`));
      if (res.status !== 202) throw new Error(`follow answered ${res.status}`);
    }
    await eventually(async () => peers.every((p) => p.received.some((a) => a.type === 'Accept')), 60_000, 'all Accepts');
    const arrived = new Promise<void>((resolve) => {
      let pending = followers;
      for (const p of peers) {
        p.onReceive = (a) => {
          if (a.type === 'Create' && --pending === 0) resolve();
        };
      }
    });
    const started = performance.now();
    const res = await admin(base, 'POST', '/verdicts', {
      subjects: [{ algorithm: 'sha256', digest: randomBytes(32).toString('hex') }],
      label: 'spam',
      confidence: 0.9,
      method: 'human',
    });
    if (res.status !== 201) throw new Error(`issue answered ${res.status}`);
    await arrived;
    return (performance.now() - started) / 1000;
  } finally {
    await Promise.all(peers.map((p) => p.stop()));
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** The duration (ms) the server logs for the next pass over its consensus verdicts made for `reason`. */
function passMs(server: ServerProcess, from: number, reason: string): Promise<number> {
  return eventually(async () => {
    for (const line of server.logs.slice(from)) {
      if (!line.includes('re-decided media we re-attested')) continue;
      const entry = JSON.parse(line) as { reason?: string; ms?: number };
      if (entry.reason === reason && typeof entry.ms === 'number') return entry.ms;
    }
    return undefined;
  }, 600_000, `a pass for ${reason}`);
}

async function consensusPass(count: number): Promise<{ keptMs: number; retractedMs: number }> {
  const { server, base, dataDir } = await startVouch('127.0.0.22');
  const peer = new FakePeer();
  await peer.start('127.0.0.23');
  try {
    const inbox = await followedBy(base, peer);
    await admin(base, 'PUT', '/trust', { peer: peer.actor, abuse: 1, ok: 1 });

    const images = await Promise.all(Array.from({ length: count }, (_, i) => syntheticJpeg(70_000 + i, 96, 96)));
    const digests: string[] = [];
    for (const image of images) digests.push((await hashImage(image)).sha256);
    await eachConcurrently(digests, 8, async (digest) => {
      const verdict = peer.signObject(peer.verdict([{ algorithm: 'sha256', digest }], { label: 'ok', confidence: 1 }));
      const res = await peer.post(inbox, peer.activity('Create', verdict));
      if (res.status !== 202) throw new Error(`inbox answered ${res.status}`);
    });
    const known = async (digest: string) => ((await (await fetch(`${base}/api/v1/verdicts?sha256=${digest}`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as { matches: Array<{ method: string }> }).matches;
    await eventually(async () => (await known(digests.at(-1)!)).length > 0, 60_000, 'the peer\'s verdicts');
    await eachConcurrently(images, 4, async (image) => {
      const res = await fetch(`${base}/api/v1/media`, { method: 'POST', body: image, headers: { authorization: `Bearer ${TOKEN}` } });
      const decision = (await res.json()) as { outcome?: string };
      if (decision.outcome !== 'allow') throw new Error(`expected allow, got ${JSON.stringify(decision)}`);
    });
    await eventually(async () => (await known(digests.at(-1)!)).some((m) => m.method === 'consensus'), 60_000, 'the last consensus');

    let from = server.logs.length;
    const { policy } = (await (await admin(base, 'GET', '/policy')).json()) as { policy: Record<string, unknown> };
    await admin(base, 'PUT', '/policy', { ...policy, version: 'bench-same-thresholds' });
    const keptMs = await passMs(server, from, 'policy');
    from = server.logs.length;
    await admin(base, 'PUT', '/trust', { peer: peer.actor, ok: 0.5 });
    const retractedMs = await passMs(server, from, 'trust');
    const scale = 1_000 / count;
    return { keptMs: keptMs * scale, retractedMs: retractedMs * scale };
  } finally {
    await peer.stop();
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** Inbox requests in flight: 8 senders × the default delivery concurrency of 8, and a lone sender's 16. */
const HUB_IN_FLIGHT = 64;
const FEW_IN_FLIGHT = 16;

export async function benchFederation(): Promise<BenchResult[]> {
  // VOUCH_BENCH_INBOX_PROCESSES: server processes behind the inbox bench (more than one needs PostgreSQL).
  const processes = Number(process.env.VOUCH_BENCH_INBOX_PROCESSES ?? '1');
  if (!Number.isInteger(processes) || processes < 1) throw new Error('VOUCH_BENCH_INBOX_PROCESSES must be a whole number ≥ 1');
  const store = process.env.VOUCH_BENCH_DATABASE_URL ? 'postgres' : 'pglite';
  // A hub's inbox hears from many peers at once, each sending up to VOUCH_DELIVERY_CONCURRENCY (8)
  // deliveries per process: 64 in flight stands for 8 such senders. With fewer in flight, fewer
  // verdicts share a commit (group commit), so the rate at 16 is printed too.
  const inbox = await inboxThroughput(4_000, HUB_IN_FLIGHT, processes);
  const fewerInFlight = await inboxThroughput(4_000, FEW_IN_FLIGHT, processes);
  const inboxFigures: BenchResult[] = [
    { name: `inbox_verdicts_per_s_${store}`, value: round(inbox.perSecond, 1), unit: 'verdicts/s' },
    { name: `inbox_requests_in_flight_${store}`, value: HUB_IN_FLIGHT, unit: 'requests' },
    { name: `inbox_verdicts_per_s_${store}_${FEW_IN_FLIGHT}_in_flight`, value: round(fewerInFlight.perSecond, 1), unit: 'verdicts/s' },
    { name: `inbox_server_processes_${store}`, value: inbox.processes, unit: 'processes' },
    { name: `inbox_client_cpu_share_${store}`, value: round(inbox.clientCpuShare, 3), unit: 'share' },
    { name: `inbox_client_cpu_ms_per_verdict_${store}`, value: round(inbox.clientCpuMsPerVerdict, 3), unit: 'ms' },
    { name: `inbox_server_cpu_ms_per_verdict_${store}`, value: round(inbox.serverCpuMsPerVerdict, 3), unit: 'ms' },
    // PostgreSQL on this machine: the rest of what a verdict costs the cores the bench shares.
    ...(inbox.postgresCpuMsPerVerdict === undefined ? [] : [{ name: 'inbox_database_cpu_ms_per_verdict_postgres', value: round(inbox.postgresCpuMsPerVerdict, 3), unit: 'ms' }]),
  ];
  // VOUCH_BENCH_INBOX_ONLY=1: just the inbox figures (profiling the receive path).
  if (process.env.VOUCH_BENCH_INBOX_ONLY === '1') return inboxFigures;
  const fanoutSeconds = await fanout(100);
  const pass = await consensusPass(1_000);
  return [
    ...inboxFigures,
    { name: 'fanout_100_followers_s', value: round(fanoutSeconds, 3), unit: 's' },
    { name: `consensus_pass_kept_ms_per_1000_${store}`, value: round(pass.keptMs, 0), unit: 'ms' },
    { name: `consensus_pass_retracted_ms_per_1000_${store}`, value: round(pass.retractedMs, 0), unit: 'ms' },
  ];
}

// Federation throughput on this machine, with real server processes on 127.0.0.x:
// - inbox_verdicts_per_s: signed Create{Verdict} POSTs verified (HTTP signature + object proof),
//   stored and indexed per second by one server (requests pre-signed, so the client costs little);
// - fanout_100_followers_s: from issuing one verdict to its arrival at 100 follower inboxes;
// - consensus_pass_*_ms_per_1000: one server holding 1,000 consensus verdicts (re-attestations of
//   a fake peer's human `ok` verdicts) re-decides them all: `kept` after a policy change that
//   changes no outcome (a lookup and a decision each), `retracted` after the peer's trust drops
//   below allow's bar (each also retracted, a Delete published).
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { generateInstanceKeysSync } from '../shared/crypto/keys.js';
import { FakePeer } from '../test/helpers/fake-peer.js';
import { eventually, freePort, startServerProcess, type ServerProcess } from '../test/helpers/process.js';
import { tempDir } from '../test/helpers/services.js';
import { hashImage } from '../shared/hashing/index.js';
import { syntheticJpeg } from '../test/helpers/images.js';
import { round, type BenchResult } from './result.js';

const TOKEN = randomBytes(32).toString('hex');

async function startVouch(host: string, extra: Record<string, string> = {}): Promise<{ server: ServerProcess; base: string; dataDir: string }> {
  const dataDir = tempDir('vouch-bench-');
  const port = await freePort(host);
  const base = `http://${host}:${port}`;
  const server = await startServerProcess({
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
  });
  return { server, base, dataDir };
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

async function inboxThroughput(count: number, concurrency: number): Promise<number> {
  const { server, base, dataDir } = await startVouch('127.0.0.20');
  const peer = new FakePeer();
  await peer.start('127.0.0.21');
  try {
    const inbox = await followedBy(base, peer);
    const requests = Array.from({ length: count }, () => {
      const verdict = peer.signObject(peer.verdict([{ algorithm: 'pdq', digest: randomBytes(32).toString('hex'), quality: 100 }]));
      const body = JSON.stringify(peer.activity('Create', verdict));
      return { body, headers: peer.signedHeaders('POST', inbox, body) };
    });
    const started = performance.now();
    await eachConcurrently(requests, concurrency, async ({ body, headers }) => {
      const res = await fetch(inbox, { method: 'POST', headers, body });
      if (res.status !== 202) throw new Error(`inbox answered ${res.status}: ${await res.text()}`);
    });
    return count / ((performance.now() - started) / 1000);
  } finally {
    await peer.stop();
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
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

export async function benchFederation(): Promise<BenchResult[]> {
  const inbox = await inboxThroughput(2_000, 16);
  const fanoutSeconds = await fanout(100);
  const pass = await consensusPass(1_000);
  const store = process.env.VOUCH_BENCH_DATABASE_URL ? 'postgres' : 'pglite';
  return [
    { name: `inbox_verdicts_per_s_${store}`, value: round(inbox, 1), unit: 'verdicts/s' },
    { name: 'fanout_100_followers_s', value: round(fanoutSeconds, 3), unit: 's' },
    { name: `consensus_pass_kept_ms_per_1000_${store}`, value: round(pass.keptMs, 0), unit: 'ms' },
    { name: `consensus_pass_retracted_ms_per_1000_${store}`, value: round(pass.retractedMs, 0), unit: 'ms' },
  ];
}

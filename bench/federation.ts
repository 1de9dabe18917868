// Federation throughput on this machine, with real server processes on 127.0.0.x:
// - inbox_verdicts_per_s: signed Create{Verdict} POSTs verified (HTTP signature + object proof),
//   stored and indexed per second by one server (requests pre-signed, so the client costs little);
// - fanout_100_followers_s: from issuing one verdict to its arrival at 100 follower inboxes.
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { generateInstanceKeysSync } from '../shared/crypto/keys.js';
import { FakePeer } from '../test/helpers/fake-peer.js';
import { eventually, freePort, startServerProcess, type ServerProcess } from '../test/helpers/process.js';
import { tempDir } from '../test/helpers/services.js';
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

async function inboxThroughput(count: number, concurrency: number): Promise<number> {
  const { server, base, dataDir } = await startVouch('127.0.0.20');
  const peer = new FakePeer();
  await peer.start('127.0.0.21');
  try {
    const inbox = `${base}/actor/inbox`;
    await admin(base, 'POST', '/peers/follow', { target: peer.actor });
    const follow = await eventually(async () => peer.received.find((a) => a.type === 'Follow'));
    await peer.post(inbox, peer.activity('Accept', follow));
    const requests = Array.from({ length: count }, () => {
      const verdict = peer.signObject(peer.verdict([{ algorithm: 'pdq', digest: randomBytes(32).toString('hex'), quality: 100 }]));
      const body = JSON.stringify(peer.activity('Create', verdict));
      return { body, headers: peer.signedHeaders('POST', inbox, body) };
    });
    let next = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < requests.length) {
          const { body, headers } = requests[next++];
          const res = await fetch(inbox, { method: 'POST', headers, body });
          if (res.status !== 202) throw new Error(`inbox answered ${res.status}: ${await res.text()}`);
        }
      }),
    );
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

export async function benchFederation(): Promise<BenchResult[]> {
  const inbox = await inboxThroughput(2_000, 16);
  const fanoutSeconds = await fanout(100);
  const store = process.env.VOUCH_BENCH_DATABASE_URL ? 'postgres' : 'pglite';
  return [
    { name: `inbox_verdicts_per_s_${store}`, value: round(inbox, 1), unit: 'verdicts/s' },
    { name: 'fanout_100_followers_s', value: round(fanoutSeconds, 3), unit: 's' },
  ];
}

// Scan once, trust everywhere: B and its scanner node (a separate process on the real Redis)
// classify an image with two models and publish a verdict for each; A, which follows and trusts B,
// then decides about the same image with no scan of its own, under the default policy (allow needs
// two independent classifiers). The models are the real bundled one on the CPU (the GPU is what
// the test cannot have) and a tiny generated ONNX model that says ok; the images are generated.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { syntheticJpeg } from '../helpers/images.js';
import { writeOkTestClassifier } from '../helpers/models.js';
import { eventually, freePort, runCli, startServerProcess, VOUCH_BIN, type ServerProcess, LOCAL_FEDERATION_ENV } from '../helpers/process.js';
import { HAVE_REDIS, REDIS_URL, STORE_BACKENDS } from '../helpers/services.js';

const TOKEN = randomBytes(32).toString('hex');
const SCANNER_TOKEN = randomBytes(32).toString('hex');
const A_SCANNER_TOKEN = randomBytes(32).toString('hex');

describe.skipIf(!HAVE_REDIS)('scanning with a scanner node, and skipping what a trusted peer judged', () => {
  let a: ServerProcess;
  let b: ServerProcess;
  let aUrl: string;
  let bUrl: string;
  let scanner: ChildProcess;
  const scannerLog: string[] = [];
  const cleanups: Array<() => Promise<void>> = [];

  const admin = (base: string, method: string, path: string, body?: unknown) =>
    fetch(`${base}/api/v1/admin${path}`, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });

  async function start(host: string, scannerToken: string): Promise<{ server: ServerProcess; url: string; env: Record<string, string> }> {
    const store = STORE_BACKENDS[0].create();
    cleanups.push(store.cleanup);
    const port = await freePort(host);
    const url = `http://${host}:${port}`;
    const env = {
      VOUCH_DATA_DIR: store.config.dataDir,
      VOUCH_HOST: host,
      VOUCH_PORT: String(port),
      VOUCH_PUBLIC_URL: url,
      VOUCH_ADMIN_TOKEN: TOKEN,
      ...LOCAL_FEDERATION_ENV,
      REDIS_URL,
      VOUCH_SCANNER: 'external',
      VOUCH_SCANNER_TOKEN: scannerToken,
      VOUCH_SCAN_WAIT_MS: '60000',
      VOUCH_QUARANTINE_KEY: randomBytes(32).toString('base64'),
    };
    return { server: await startServerProcess(env), url, env };
  }

  beforeAll(async () => {
    const models = await mkdtemp(join(tmpdir(), 'vouch-models-'));
    cleanups.push(() => rm(models, { recursive: true, force: true }));
    const secondModel = await writeOkTestClassifier(models);
    let bEnv: Record<string, string>;
    ({ server: b, url: bUrl, env: bEnv } = await start('127.0.0.41', SCANNER_TOKEN));
    ({ server: a, url: aUrl } = await start('127.0.0.42', A_SCANNER_TOKEN));
    scanner = spawn(process.execPath, [VOUCH_BIN, 'scanner', '--server', bUrl], {
      env: { ...process.env, ...bEnv, VOUCH_CLASSIFIER: `default,${secondModel}`, VOUCH_LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    scanner.stdout!.on('data', (d) => scannerLog.push(String(d)));
    scanner.stderr!.on('data', (d) => scannerLog.push(String(d)));
    await eventually(async () => scannerLog.join('').includes('scanner node ready'), 60_000, 'the scanner node to load its model');
    // The generated model is ours: each instance's policy says what it can see, or its ok counts for nothing.
    for (const url of [aUrl, bUrl]) {
      const { policy } = await (await admin(url, 'GET', '/policy')).json();
      const classifierScopes = { ...policy.classifierScopes, 'test-mean-colour': ['sexual', 'csam'] };
      expect((await admin(url, 'PUT', '/policy', { ...policy, version: 'with-test-model', classifierScopes })).status).toBe(200);
    }

    expect((await admin(aUrl, 'POST', '/peers/follow', { target: `${bUrl}/actor` })).status).toBe(202);
    await eventually(async () => (await admin(bUrl, 'POST', '/peers/approve', { actor: `${aUrl}/actor` })).status === 200, 20_000, 'B to approve A');
    await eventually(async () => {
      const { peers } = await (await admin(aUrl, 'GET', '/peers')).json();
      return peers.some((p: { following: string }) => p.following === 'accepted');
    }, 20_000, 'A to be accepted');
  });

  afterAll(async () => {
    scanner?.kill('SIGTERM');
    await a?.stop();
    await b?.stop();
    for (const cleanup of cleanups) await cleanup();
  });

  it('B scans an unknown image through its scanner node and publishes its own verdict', async () => {
    const image = await syntheticJpeg(501, 640, 480);
    const res = await fetch(`${bUrl}/api/v1/media?wait=1`, { method: 'POST', body: image, headers: { 'content-type': 'image/jpeg', authorization: `Bearer ${TOKEN}` } });
    expect(res.status, scannerLog.join('')).toBe(200);
    const decision = await res.json();
    // Our own scanner's two models are evidence like anyone's classifiers, and together they decide.
    expect(decision).toMatchObject({ scanned: true, explanation: { decidedBy: 'evidence' } });
    // The bundled model is an adult-content triage model: it may only ever say sexual or ok.
    expect(['allow', 'block']).toContain(decision.outcome);
    expect(['ok', 'sexual']).toContain(decision.label);
    // One verdict per model.
    const { matches } = await (await fetch(`${bUrl}/api/v1/verdicts?sha256=${decision.hashes.sha256}`, { headers: { authorization: `Bearer ${TOKEN}` } })).json();
    expect(matches.map((v: { classifier: string }) => v.classifier).sort()).toEqual([expect.stringMatching(/nsfw/i), 'test-mean-colour@1']);
    for (const verdict of matches) expect(verdict).toMatchObject({ local: true, method: 'classifier' });
  });

  it('records the decision after the scan when the upload did not wait for it', async () => {
    const image = await syntheticJpeg(502, 640, 480);
    const res = await fetch(`${bUrl}/api/v1/media`, { method: 'POST', body: image, headers: { authorization: `Bearer ${TOKEN}` } });
    const first = await res.json();
    expect(first).toMatchObject({ outcome: 'unknown', scan_pending: true });
    const after = await eventually(async () => {
      const { decisions } = await (await admin(bUrl, 'GET', '/decisions')).json();
      return decisions.find((d: { id: number; sha256: string }) => d.sha256 === first.hashes.sha256 && d.id > first.decision_id);
    }, 60_000, 'the decision after the scan');
    expect(['allow', 'block']).toContain(after.outcome);
    const detail = await (await admin(bUrl, 'GET', `/decisions/${after.id}`)).json();
    expect(detail).toMatchObject({ source: 'api', explanation: { decidedBy: 'evidence' } });
  });

  it('A, trusting B, decides about the same image without a scan of its own, under the default policy', async () => {
    const image = await syntheticJpeg(501, 640, 480);
    // The default policy, less the random 2 % spot check (this test must be deterministic).
    const { policy } = await (await admin(aUrl, 'GET', '/policy')).json();
    expect((await admin(aUrl, 'PUT', '/policy', { ...policy, version: 'no-spot-checks', spotCheckShare: 0 })).status).toBe(200);
    expect((await admin(aUrl, 'PUT', '/trust', { peer: `${bUrl}/actor`, abuse: 0.9, ok: 0.9 })).status).toBe(200);

    const hashed = await (await fetch(`${aUrl}/api/v1/hash`, { method: 'POST', body: image })).json();
    const atB = (await (await fetch(`${bUrl}/api/v1/verdicts?sha256=${hashed.sha256}`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()).matches as Array<{ label: string }>;
    await eventually(async () => (await (await fetch(`${aUrl}/api/v1/verdicts?sha256=${hashed.sha256}`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()).matches.length === 2, 20_000, 'B\'s two verdicts to reach A');

    const res = await fetch(`${aUrl}/api/v1/media`, { method: 'POST', body: image, headers: { authorization: `Bearer ${TOKEN}` } });
    const decision = await res.json();
    expect(decision).toMatchObject({ scan_pending: false, explanation: { decidedBy: 'peers' } });
    // Both models said ok (the bundled one at 0.9999 for this generated image): two independent
    // classifiers, 0.9 × ~1 each, so A allows on B's one scan.
    expect(atB.map((v) => v.label)).toEqual(['ok', 'ok']);
    expect(decision).toMatchObject({ outcome: 'allow', label: 'ok' });
    expect(decision.explanation.labels[0]).toMatchObject({ okClassifiers: 2 });
    expect(decision.explanation.top[0]).toMatchObject({ issuer: `${bUrl}/actor`, method: 'classifier', weight: 0.9 });

    const explained = await runCli(['explain', `sha256:${hashed.sha256}`, '--server', aUrl], { VOUCH_ADMIN_TOKEN: TOKEN });
    expect(explained.code, explained.stderr).toBe(0);
    expect(explained.stdout).toContain(`from ${bUrl}/actor: weight 0.900`);
    expect(explained.stdout).toContain('trust path');
  });

  it('a scan result posted twice (a scanner retrying) issues nothing twice and penalises once', async () => {
    // A spot check of A's peer-decided allow of image 501 (the test above), posted by hand as A's
    // scanner node would (A has none running), with our "scanner" disagreeing: sexual.
    const hashed = await (await fetch(`${aUrl}/api/v1/hash`, { method: 'POST', body: await syntheticJpeg(501, 640, 480) })).json();
    const { decisions } = await (await admin(aUrl, 'GET', '/decisions')).json();
    const decided = decisions.find((d: { sha256: string; outcome: string }) => d.sha256 === hashed.sha256 && d.outcome === 'allow');
    const post = () =>
      fetch(`${aUrl}/internal/scan-results`, {
        method: 'POST',
        headers: { authorization: `Bearer ${A_SCANNER_TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          job: { sha256: hashed.sha256, decisionId: decided.id, spotCheck: true },
          results: [
            { label: 'sexual', confidence: 0.9, classifier: { name: 'spot-a', version: '1' } },
            { label: 'ok', confidence: 0.8, classifier: { name: 'spot-b', version: '1' } },
          ],
        }),
      });
    // Twice at once (a scanner that gave up waiting posts again), then once more.
    expect((await Promise.all([post(), post()])).map((r) => r.status)).toEqual([201, 201]);
    expect((await post()).status).toBe(201);
    const { matches } = await (await fetch(`${aUrl}/api/v1/verdicts?sha256=${hashed.sha256}`, { headers: { authorization: `Bearer ${TOKEN}` } })).json();
    const ours = matches.filter((v: { local: boolean }) => v.local);
    expect(ours.map((v: { classifier: string }) => v.classifier).sort()).toEqual(['spot-a@1', 'spot-b@1']);
    expect(new Set(ours.map((v: { published: string }) => v.published)).size).toBe(1);
    const { changes } = await (await admin(aUrl, 'GET', '/trust')).json();
    const penalties = changes.filter((c: { kind: string; detail: { peer: string } }) => c.kind === 'penalty' && c.detail.peer === `${bUrl}/actor`);
    expect(penalties).toHaveLength(1);
    expect(penalties[0].detail).toMatchObject({ polarity: 'ok', factor: 0.5 });
  });
});

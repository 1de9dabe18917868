// `vouch audit --stats` end to end: two real servers issue, correct, supersede and retract
// verdicts; the CLI, as a real process and an anonymous client, audits both logs and counts them:
// the printed table, the CSV files, and charts that are well-formed XML (libxml2, through sharp)
// naming every series. A third URL that is no Vouch instance fails alone, without a crash. The
// console's Log page shows the same counts and charts for the instance's own log (over plain HTTP
// with a real session; the browser suite needs Chromium). A hostile log (formula, terminal-escape
// and markup labels, times out of range), served by the real log routes, is counted without harm.
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import express from 'express';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { actorDocument, loadIdentity } from '../../server/federation/identity.js';
import type { Federation } from '../../server/federation/index.js';
import { logRoutes } from '../../server/http/log-routes.js';
import { LogCheckpoints, logOrigin } from '../../server/log/checkpoints.js';
import { activityEntry } from '../../server/log/entry.js';
import { TransparencyLog } from '../../server/log/store.js';
import { openStore, type Store } from '../../server/store/index.js';
import { eventually, freePort, LOCAL_FEDERATION_ENV, runCli, startServerProcess, startVouch } from '../helpers/process.js';
import { STORE_BACKENDS, tempDir } from '../helpers/services.js';

const TOKEN = randomBytes(32).toString('hex');
const ENV = { ...LOCAL_FEDERATION_ENV, VOUCH_ADMIN_TOKEN: TOKEN, VOUCH_SCANNER: 'off', VOUCH_CHECKPOINT_EVERY_MS: '200', VOUCH_CHECKPOINT_AFTER_APPENDS: '1' };

type Instance = Pick<Awaited<ReturnType<typeof startVouch>>, 'server' | 'url' | 'cleanup'>;
const VIEWER_PASSWORD = 'log-statistics-viewer';

/** An instance with a console viewer account, made with the CLI before the server starts. */
async function withViewer(host: string): Promise<Instance> {
  const dataDir = tempDir();
  const url = `http://${host}:${await freePort(host)}`;
  const env = { ...ENV, VOUCH_DATA_DIR: dataDir, VOUCH_HOST: host, VOUCH_PORT: new URL(url).port, VOUCH_PUBLIC_URL: url, REDIS_URL: '' };
  const added = await runCli(['users', 'add', 'vic', '--role', 'viewer'], env, `${VIEWER_PASSWORD}\n`);
  expect(added.code, added.stderr).toBe(0);
  return { server: await startServerProcess(env), url, cleanup: async () => rmSync(dataDir, { recursive: true, force: true }) };
}

async function admin(i: Instance, method: string, path: string, body?: unknown): Promise<Response> {
  const res = await fetch(`${i.url}/api/v1/admin${path}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  expect(res.status, `${method} ${path}: ${res.status}`).toBeLessThan(300);
  return res;
}

async function issue(i: Instance, label: string, method: 'human' | 'classifier', extra: Record<string, unknown> = {}): Promise<string> {
  const res = await admin(i, 'POST', '/verdicts', {
    subjects: [{ algorithm: 'sha256', digest: randomBytes(32).toString('hex') }],
    label,
    confidence: 0.9,
    method,
    ...(method === 'classifier' ? { classifier: { name: 'nsfw', version: '1' } } : {}),
    ...extra,
  });
  return ((await res.json()) as { id: string }).id;
}

const uuid = (id: string) => id.split('/').at(-1)!;

/** Waits until the log's signed checkpoint covers `size` entries. */
async function checkpointed(i: Instance, size: number): Promise<void> {
  await eventually(async () => Number((await (await fetch(`${i.url}/log/checkpoint`)).text()).split('\n')[1]) === size, 20_000, `a checkpoint of ${size}`);
}

describe('vouch audit --stats', () => {
  let a: Instance;
  let b: Instance;
  let notVouch: Server;
  let notVouchUrl: string;
  const out = tempDir('vouch-stats-out-');
  const state = tempDir('vouch-stats-state-');

  beforeAll(async () => {
    [a, b] = await Promise.all([withViewer('127.0.0.41'), startVouch('127.0.0.42', ENV)]);
    notVouch = createServer((_req, res) => res.writeHead(404).end('no'));
    await new Promise<void>((r) => notVouch.listen(0, '127.0.0.43', r));
    notVouchUrl = `http://127.0.0.43:${(notVouch.address() as AddressInfo).port}`;

    // A: csam by humans (one retracted), spam by a classifier (one superseded by a human verdict,
    // one retracted), an ok corrected to spam. 7 Creates, 1 Update, 3 Deletes.
    const csam = [await issue(a, 'csam', 'human'), await issue(a, 'csam', 'human'), await issue(a, 'csam', 'human')];
    await admin(a, 'DELETE', `/verdicts/${uuid(csam[0])}`);
    const spam = [await issue(a, 'spam', 'classifier'), await issue(a, 'spam', 'classifier')];
    await issue(a, 'spam', 'human', { supersedes: spam[0] });
    await admin(a, 'DELETE', `/verdicts/${uuid(spam[1])}`);
    const ok = await issue(a, 'ok', 'human');
    await admin(a, 'PATCH', `/verdicts/${uuid(ok)}`, { label: 'spam' });
    // B: two hate verdicts.
    await issue(b, 'hate', 'human');
    await issue(b, 'hate', 'human');
    await Promise.all([checkpointed(a, 11), checkpointed(b, 2)]);
  }, 120_000);

  afterAll(async () => {
    await new Promise((r) => notVouch?.close(r));
    for (const i of [a, b]) {
      await i?.server.stop();
      await i?.cleanup();
    }
  });

  it('counts both logs as an anonymous auditor, prints them, writes the CSV files and charts', async () => {
    const run = await runCli(['audit', '--stats', a.url, b.url, notVouchUrl, '--out', out, '--state', state], { VOUCH_ALLOW_PRIVATE_NETWORKS: '127.0.0.0/8' });
    // The third URL fails (exit 1) and is named; the two logs are still counted.
    expect(run.code, run.stderr).toBe(1);
    expect(run.stderr).toContain(`FAIL ${notVouchUrl}`);
    expect(run.stderr).not.toContain(`FAIL ${a.url}`);
    expect(run.stderr).not.toContain(`FAIL ${b.url}`);
    const aHost = new URL(a.url).host;
    expect(run.stdout).toContain(`${a.url} (${aHost}/vouch-log, checkpoint size 11), audit ok`);
    expect(run.stdout).toContain('11 entries: 11 version 2, 0 version 1 readable, 0 withheld (label unknown), 0 unreadable, 0 not about a verdict, 0 repeated');
    // label, method, issued, share of the label, updated, retracted, superseded, then the times.
    expect(run.stdout).toMatch(/^ {2}csam +human +3 +100 % +0 +1 +0 +\d+ s +\d+ s$/m);
    expect(run.stdout).toMatch(/^ {2}spam +classifier +2 +67 % +0 +1 +1 +\d+ s +\d+ s$/m);
    expect(run.stdout).toMatch(/^ {2}spam +human +1 +33 % +1 +0 +0$/m);
    expect(run.stdout).toMatch(/^ {2}ok +human +1 +100 % +0 +0 +0$/m);
    expect(run.stdout).toContain('All 3 instances');
    expect(run.stdout).toMatch(/^ {2}hate +human +2 +100 % +0 +0 +0$/m);
    const month = new Date().toISOString().slice(0, 7);
    // B's month: 2 issued, all by humans.
    expect(run.stdout).toMatch(new RegExp(`^ {2}${month} +2 +0 % +100 % +0 % +0$`, 'm'));

    const csv = (name: string) => readFileSync(join(out, name), 'utf8').split('\r\n').filter(Boolean);
    const summary = csv('summary.csv');
    expect(summary[0]).toBe('instance,label,method,issued,updated,retracted,superseded,share_of_label_issued,retractions_timed,retraction_median_seconds,retraction_p90_seconds');
    expect(summary.slice(1).map((r) => r.split(',').slice(0, 9).join(','))).toEqual([
      `${a.url},csam,human,3,0,1,0,1,1`,
      `${a.url},ok,human,1,0,0,0,1,0`,
      `${a.url},spam,classifier,2,0,1,1,0.6667,1`,
      `${a.url},spam,human,1,1,0,0,0.3333,0`,
      `${b.url},hate,human,2,0,0,0,1,0`,
    ]);
    const seconds = Number(summary[1].split(',')[9]);
    expect(seconds).toBeGreaterThanOrEqual(0);
    expect(seconds).toBeLessThan(120);

    const verdicts = csv('verdicts.csv');
    expect(verdicts).toHaveLength(1 + 7 + 2);
    expect(verdicts.filter((r) => r.includes(',superseded,'))).toHaveLength(1);
    expect(verdicts.filter((r) => r.includes(',retracted,'))).toHaveLength(2);
    expect(verdicts.filter((r) => r.startsWith(`${a.url},`) && r.includes(',spam,classifier,nsfw@1,'))).toHaveLength(2);
    expect(csv('monthly.csv')).toContain(`${a.url},${month},csam,human,3,0,1,0`);
    expect(csv('instances.csv')).toEqual([
      'instance,log_origin,checkpoint_size,audit_ok,entries,version1,version2,withheld,unreadable,other,repeated',
      `${a.url},${aHost}/vouch-log,11,true,11,0,11,0,0,0,0`,
      `${b.url},${new URL(b.url).host}/vouch-log,2,true,2,0,2,0,0,0,0`,
      `${notVouchUrl},,,false,0,0,0,0,0,0,0`,
    ]);

    for (const name of ['issued-per-month', 'retraction-time', 'method-share-per-month']) {
      const svg = readFileSync(join(out, `${name}.svg`));
      const rendered = await sharp(svg).png().toBuffer(); // libxml2 refuses XML that is not well formed
      expect(rendered.subarray(1, 4).toString('latin1')).toBe('PNG');
      expect(readFileSync(join(out, `${name}.png`)).subarray(1, 4).toString('latin1')).toBe('PNG');
    }
    const issued = readFileSync(join(out, 'issued-per-month.svg'), 'utf8');
    expect(issued.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    // Issued this month: csam 3, spam 3 (2 by the classifier, 1 by a human), hate 2, ok 1.
    for (const series of ['csam 3', 'spam 3', 'hate 2', 'ok 1']) expect(issued).toContain(`<title>${month}: ${series}</title>`);
    const retraction = readFileSync(join(out, 'retraction-time.svg'), 'utf8');
    expect(retraction).toMatch(/<title>(&lt; 1 min|1–10 min): csam 1<\/title>/);
    expect(retraction).toMatch(/<title>(&lt; 1 min|1–10 min): spam 1<\/title>/);
    const share = readFileSync(join(out, 'method-share-per-month.svg'), 'utf8');
    expect(share).toContain(`<title>${month}: human 7 of 9 (77.8 %)</title>`);
    expect(share).toContain(`<title>${month}: classifier 2 of 9 (22.2 %)</title>`);
  }, 120_000);

  it('shows the same counts and charts on the console\'s Log page for our own log', async () => {
    const login = await fetch(`${a.url}/console/login`, {
      method: 'POST',
      body: new URLSearchParams({ username: 'vic', password: VIEWER_PASSWORD }),
      headers: { 'sec-fetch-site': 'same-origin' },
      redirect: 'manual',
    });
    expect(login.status).toBe(303);
    const cookie = login.headers.get('set-cookie')!.split(';')[0];
    const res = await fetch(`${a.url}/console/log`, { headers: { cookie } });
    expect(res.status).toBe(200);
    const page = await res.text();
    const month = new Date().toISOString().slice(0, 7);
    // label, method, issued, share of label, updated, retracted, superseded, median, p90.
    expect(page).toMatch(/<tr><td>csam<\/td><td>human<\/td><td>3<\/td><td>100 %<\/td><td>0<\/td><td>1<\/td><td>0<\/td><td>\d+ s<\/td><td>\d+ s<\/td><\/tr>/);
    expect(page).toMatch(/<tr><td>spam<\/td><td>classifier<\/td><td>2<\/td><td>67 %<\/td><td>0<\/td><td>1<\/td><td>1<\/td>/);
    expect(page).toContain('<tr><td>spam</td><td>human</td><td>1</td><td>33 %</td><td>1</td><td>0</td><td>0</td><td></td><td></td></tr>');
    expect(page).toContain(`<tr><td>${month}</td><td>7</td><td>29 %</td><td>71 %</td><td>0 %</td><td>2</td></tr>`);
    // The three charts, inline, without a script; A's own log only.
    expect(page.match(/<figure class="chart log-chart" data-chart="[a-z-]+"><svg xmlns="http:\/\/www.w3.org\/2000\/svg"/g)).toHaveLength(3);
    const section = page.slice(page.indexOf('<h2>What our log says</h2>'));
    expect(section.length).toBeLessThan(page.length);
    expect(section).not.toMatch(/<script|<style|https?:\/\/(?!www\.w3\.org\/2000\/svg)/); // no script, style sheet or outside address
    for (const series of ['csam 3', 'spam 3', 'ok 1']) expect(page).toContain(`<title>${month}: ${series}</title>`);
    expect(page).not.toContain(': hate ');
    // Read again after more entries: the page counts only what was appended since.
    await issue(a, 'gore', 'human');
    await eventually(async () => (await (await fetch(`${a.url}/console/log`, { headers: { cookie } })).text()).includes('<tr><td>gore</td><td>human</td><td>1</td>'), 10_000, 'the new verdict on the Log page');
    expect(await (await fetch(`${a.url}/console/log`, { headers: { cookie } })).text()).toContain(`<tr><td>${month}</td><td>8</td>`);
  });

  it('audits one instance at a time without --stats', async () => {
    const run = await runCli(['audit', a.url, b.url, '--state', state], { VOUCH_ALLOW_PRIVATE_NETWORKS: '127.0.0.0/8' });
    expect(run.code).toBe(2);
    expect(run.stderr).toBe('vouch: audit one instance at a time, or count several with --stats\n');
  });
});

describe('vouch audit --stats on a hostile log', () => {
  const handle = STORE_BACKENDS[0].create();
  let store: Store;
  let server: Server;
  let base: string;
  const out = tempDir('vouch-stats-hostile-');
  const FORMULA = '=HYPERLINK("http://evil.example")';
  const ESCAPES = '\u001b[2J\u001b[31mred';
  const MARKUP = '</text><script>alert(1)</script>';

  beforeAll(async () => {
    store = await openStore(handle.config);
    const log = new TransparencyLog(store.db);
    const app = express();
    server = await new Promise<Server>((resolve) => {
      const s = app.listen(0, '127.0.0.44', () => resolve(s));
    });
    base = `http://127.0.0.44:${(server.address() as AddressInfo).port}`;
    const identity = await loadIdentity(store.db, base);
    const checkpoints = new LogCheckpoints(store.db, log, { origin: logOrigin(identity.host), privateKey: identity.proofPrivateKey });
    // Nobody is an approved follower: every reader is anonymous.
    const federation = { identity, approvedFollower: async () => undefined, peers: { get: async () => undefined } } as unknown as Federation;
    app.get('/actor', (_req, res) => {
      res.json(actorDocument(identity));
    });
    app.use(logRoutes({ log, checkpoints, federation, publicOkFeed: false }));
    // Version-2 entries whose public parts pass entry.ts's schema (any text of ≤ 64 characters),
    // so the audit verifies the log, while their labels and times are hostile.
    const create = (n: string, label: string, method: string, published: string) => ({
      type: 'Create',
      id: `${base}/verdicts/${n}#create`,
      actor: identity.actorId,
      object: { type: 'Verdict', id: `${base}/verdicts/${n}`, label, method, published, subject: [{ algorithm: 'sha256', digest: n.padEnd(64, '0') }] },
    });
    const activities = [
      create('1', FORMULA, 'human', '2026-01-15T00:00:00Z'),
      create('2', ESCAPES, 'classifier', '99999-01-01T00:00:00Z'),
      create('3', MARKUP, '@human', '1969-12-31T00:00:00Z'),
      { type: 'Delete', id: `${base}/verdicts/1#delete`, actor: identity.actorId, object: { type: 'Tombstone', id: `${base}/verdicts/1`, formerType: 'Verdict', deleted: '2026-01-15T01:00:00Z' } },
      create('4', 'spam', 'human', '2026-02-01T00:00:00Z'),
    ];
    const built = activities.map((a) => activityEntry(a));
    await log.append(
      built.map((b) => b.entry),
      activities.map((a) => a.object.id),
      built.map((b) => b.private),
    );
    await checkpoints.signCheckpoint();
  });

  afterAll(async () => {
    await new Promise((r) => server?.close(r));
    await store?.close();
    await handle.cleanup();
  });

  it('counts it, and neither the terminal, the CSV nor the charts run what the labels say', async () => {
    const run = await runCli(['audit', '--stats', base, '--out', out, '--state', tempDir('vouch-stats-state-')], { VOUCH_ALLOW_PRIVATE_NETWORKS: '127.0.0.0/8' });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).not.toContain('\u001b');
    expect(run.stdout).toMatch(/^ {2}\?\[2J\?\[31mred +classifier +1 +100 % +0 +0 +0$/m);
    expect(run.stdout).toMatch(/^ {2}=HYPERLINK\("http:\/\/evil\.example"\) +human +1 +100 % +0 +1 +0 +60\.0 min +60\.0 min$/m);
    expect(run.stdout).toMatch(/^ {2}\(unknown\) +2 +50 % +0 % +50 % +0$/m); // two times out of range

    const summary = readFileSync(join(out, 'summary.csv'), 'utf8');
    expect(summary).toContain(`${base},"'=HYPERLINK(""http://evil.example"")",human,1,0,1,0,1,1,3600,3600\r\n`);
    expect(summary).toContain(`${base},${MARKUP},'@human,1,0,0,0,1,0,,\r\n`);
    expect(summary).toContain(`${base},${ESCAPES},classifier,1,0,0,0,1,0,,\r\n`); // a CSV cell, quoted only as RFC 4180 asks
    for (const name of ['issued-per-month', 'retraction-time', 'method-share-per-month']) {
      const svg = readFileSync(join(out, `${name}.svg`), 'utf8');
      await sharp(Buffer.from(svg)).png().toBuffer(); // well-formed XML
      expect(svg).not.toContain('<script');
      expect(svg).not.toContain('\u001b');
    }
    const issued = readFileSync(join(out, 'issued-per-month.svg'), 'utf8');
    expect(issued).toContain('&lt;/text&gt;&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(issued).toContain('\uFFFD[2J\uFFFD[31mred');
    expect(issued).toContain('=HYPERLINK(&quot;http://evil.example&quot;)');
  });
});

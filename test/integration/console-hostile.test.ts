// The console against hostile or broken input, over plain HTTP with a real session: every bad
// request gets a 4xx page, never a 500, and nothing changes.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, runCli, startServerProcess, type ServerProcess } from '../helpers/process.js';
import { tempDir } from '../helpers/services.js';

describe('console input checks', () => {
  let server: ServerProcess;
  let url: string;
  let cookie: string;
  let csrf: string;
  const dataDir = tempDir();

  beforeAll(async () => {
    const host = '127.0.0.75';
    const port = await freePort(host);
    url = `http://${host}:${port}`;
    const env = { VOUCH_DATA_DIR: dataDir, VOUCH_HOST: host, VOUCH_PORT: String(port), VOUCH_PUBLIC_URL: url, REDIS_URL: '', VOUCH_SCANNER: 'off', VOUCH_QUARANTINE_KEY: randomBytes(32).toString('base64') };
    const added = await runCli(['users', 'add', 'root', '--role', 'admin'], env, 'hostile-input-passphrase\n');
    expect(added.code, added.stderr).toBe(0);
    server = await startServerProcess(env);
    const login = await fetch(`${url}/console/login`, {
      method: 'POST',
      body: new URLSearchParams({ username: 'root', password: 'hostile-input-passphrase' }),
      headers: { 'sec-fetch-site': 'same-origin' },
      redirect: 'manual',
    });
    expect(login.status).toBe(303);
    cookie = login.headers.get('set-cookie')!.split(';')[0];
    const page = await (await fetch(`${url}/console/`, { headers: { cookie } })).text();
    csrf = /name="csrf-token" content="([^"]+)"/.exec(page)![1];
  });

  afterAll(async () => {
    await server?.stop();
  });

  const get = (path: string) => fetch(`${url}${path}`, { headers: { cookie, accept: 'text/html' }, redirect: 'manual' });
  const post = (path: string, body: string, type = 'application/x-www-form-urlencoded') =>
    fetch(`${url}${path}`, { method: 'POST', body, headers: { cookie, accept: 'text/html', 'content-type': type, 'sec-fetch-site': 'same-origin' }, redirect: 'manual' });
  const form = (fields: Record<string, string | string[]>) => {
    const params = new URLSearchParams({ _csrf: csrf });
    for (const [k, v] of Object.entries(fields)) for (const one of [v].flat()) params.append(k, one);
    return params.toString();
  };

  it('answers bad ids, hashes and queries with 400 or 404', async () => {
    for (const [path, status] of [
      ['/console/decisions/abc', 400],
      ['/console/decisions/0', 400],
      ['/console/decisions/99999999', 404],
      ['/console/explain?sha256=zz', 400],
      ['/console/explain', 400],
      ['/console/verdicts?hash=nothex', 400],
      ['/console/verdicts?since=yesterday', 400],
      ['/console/quarantine/-1', 400],
      ['/console/quarantine/424242', 404],
      ['/console/review/5/preview', 404],
      ['/console/assets/../../package.json', 404],
      ['/console/assets/nothing.js', 404],
      ['/console/no-such-page', 404],
    ] as const) {
      const res = await get(path);
      expect(res.status, path).toBe(status);
      expect(await res.text(), path).not.toMatch(/internal|stack|at .*\.js:\d+/);
    }
  });

  it('refuses malformed forms: repeated fields, wrong types, oversize bodies, bad JSON', async () => {
    const cases: Array<[string, string, string?]> = [
      ['/console/review/1', form({ action: ['confirm', 'overturn'], reason: 'twice' })],
      ['/console/review/1', form({ action: 'delete', reason: 'unknown action' })],
      ['/console/review/1', form({ action: 'overturn', reason: 'no label given' })],
      ['/console/peers/trust', form({ actor: 'not a url', abuse: '0.5' })],
      ['/console/peers/trust', form({ actor: 'https://peer.example/actor', abuse: '7' })],
      ['/console/peers/trust', form({ actor: 'https://peer.example/actor' })],
      ['/console/peers/follow', form({ target: ['a', 'b'] })],
      ['/console/policy', form({ 'csam.blockProbability': 'NaN' })],
      ['/console/users', form({ username: 'Bad Name', role: 'admin', password: 'long enough passphrase' })],
      ['/console/users', form({ username: 'someone', role: 'emperor', password: 'long enough passphrase' })],
      ['/console/quarantine/1/delete', form({ reason: 'no confirmation tick' })],
      ['/console/deliveries/retry', form({ id: 'nope' })],
      ['/console/review/1', `${form({})}&${'x'.repeat(70_000)}=1`],
      ['/console/review/1', '{"action":"confirm"', 'application/json'],
    ];
    for (const [path, body, type] of cases) {
      const res = await post(path, body, type);
      // A 4xx page, or (forms that keep what was typed) back to the form with a signed error.
      const refused = (res.status >= 400 && res.status < 500) || (res.status === 303 && /[?&]error=/.test(res.headers.get('location') ?? ''));
      expect(refused ? 'refused' : `${res.status} ${res.headers.get('location') ?? ''}`, `${path} ${body.slice(0, 80)}`).toBe('refused');
    }
    // Nothing changed: no trust was set, no user was made.
    const peers = await (await get('/console/peers')).text();
    expect(peers).not.toContain('peer.example');
    const users = await (await get('/console/users')).text();
    expect(users).not.toContain('someone');
  });
});

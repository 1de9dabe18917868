// `vouch serve` as a real process on 127.0.0.1: health, hashing, lookups, admin import, and
// hostile uploads that must get a clear 4xx while the server stays up.
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pngHeaderOnly, syntheticJpeg } from '../helpers/images.js';
import { runCli, startServerProcess, type ServerProcess } from '../helpers/process.js';
import { HAVE_REDIS, REDIS_URL, tempDir } from '../helpers/services.js';

const ADMIN_TOKEN = randomBytes(32).toString('hex');

describe('vouch serve', () => {
  let server: ServerProcess;
  let dataDir: string;
  let jpeg: Buffer;

  beforeAll(async () => {
    dataDir = tempDir();
    jpeg = await syntheticJpeg(1, 1024, 768);
    server = await startServerProcess({ VOUCH_DATA_DIR: dataDir, VOUCH_ADMIN_TOKEN: ADMIN_TOKEN, VOUCH_MAX_UPLOAD_BYTES: String(2 * 1024 * 1024) });
  });

  afterAll(async () => {
    const code = await server?.stop();
    rmSync(dataDir, { recursive: true, force: true });
    expect(code).toBe(0);
  });

  const post = (path: string, body: Buffer | string, headers: Record<string, string> = {}) =>
    fetch(`${server.url}${path}`, { method: 'POST', body, headers: { 'content-type': 'application/octet-stream', ...headers } });

  it('answers /healthz', async () => {
    const res = await fetch(`${server.url}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: 'ok', store: 'pglite' });
  });

  it('hashes an uploaded JPEG', async () => {
    const res = await post('/api/v1/hash', jpeg, { 'content-type': 'image/jpeg' });
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body).toMatchObject({
      sha256: expect.stringMatching(/^[0-9a-f]{64}$/),
      pdq: expect.stringMatching(/^[0-9a-f]{64}$/),
      phash64: expect.stringMatching(/^[0-9a-f]{16}$/),
      pipeline: expect.any(String),
      width: 1024,
      height: 768,
    });
    expect(body.pdq_quality).toBeGreaterThanOrEqual(50);
    expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it.each([
    ['an empty body', Buffer.alloc(0), 400, 'empty'],
    ['random bytes', randomBytes(4096), 422, 'unsupported_format'],
    ['a 50000x50000 PNG header', pngHeaderOnly(50_000, 50_000), 422, 'too_many_pixels'],
    ['a body over the upload limit', Buffer.alloc(3 * 1024 * 1024, 1), 413, 'too_large'],
  ])('refuses %s with a clear error and stays up', async (_name, body, status, code) => {
    const res = await post('/api/v1/hash', body as Buffer);
    expect(res.status).toBe(status);
    const json = await res.json();
    expect(json.error.code).toBe(code);
    expect(json.error.message).toEqual(expect.any(String));
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
  });

  it('refuses a truncated JPEG as corrupt', async () => {
    const res = await post('/api/v1/hash', jpeg.subarray(0, Math.floor(jpeg.length / 2)));
    expect(res.status).toBe(422);
    expect((await res.json()).error.code).toBe('corrupt');
  });

  it('guards the admin API with the bearer token', async () => {
    const list = `pdq:${randomBytes(32).toString('hex')},spam`;
    expect((await post('/api/v1/admin/hashes', list, { 'content-type': 'text/plain' })).status).toBe(401);
    const wrong = await post('/api/v1/admin/hashes', list, { 'content-type': 'text/plain', authorization: `Bearer ${'x'.repeat(64)}` });
    expect(wrong.status).toBe(401);
    expect(await wrong.text()).not.toContain(ADMIN_TOKEN);
  });

  it('imports a hash list and then finds the uploaded image among its verdicts', async () => {
    const hashes = await (await post('/api/v1/hash', jpeg)).json();
    const list = `# partner list\npdq:${hashes.pdq},csam,0.97\nsha256:${hashes.sha256},csam\n`;
    const auth = { 'content-type': 'text/plain', authorization: `Bearer ${ADMIN_TOKEN}` };
    const imported = await post('/api/v1/admin/hashes?source=partner', list, auth);
    expect(imported.status).toBe(201);
    expect(await imported.json()).toEqual({ imported: 2, skipped: 0 });

    const byPdq = await (await fetch(`${server.url}/api/v1/verdicts?pdq=${hashes.pdq}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).json();
    expect(byPdq.matches).toHaveLength(1);
    expect(byPdq.matches[0]).toMatchObject({ label: 'csam', method: 'hashlist', distance: 0, matched_by: 'pdq', source: 'partner' });

    // A re-encoded copy is a near duplicate: same verdict, small distance.
    const recoded = await syntheticJpeg(1, 1024, 768, 60);
    const near = await (await post('/api/v1/hash', recoded)).json();
    const byNear = await (await fetch(`${server.url}/api/v1/verdicts?pdq=${near.pdq}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).json();
    expect(byNear.matches).toHaveLength(1);
    expect(byNear.matches[0].distance).toBeLessThanOrEqual(31);

    const bad = await post('/api/v1/admin/hashes', 'pdq:zz,csam', auth);
    expect(bad.status).toBe(400);
    expect((await bad.json()).error).toMatchObject({ code: 'bad_hash_list', message: expect.stringMatching(/line 1/) });
  });

  it('keeps a second process off its embedded database', async () => {
    const result = await runCli(['scan', dataDir], { VOUCH_DATA_DIR: dataDir });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/in use by process \d+: stop it first, or use a PostgreSQL server/);
  });

  it('validates lookup queries', async () => {
    for (const query of ['', '?pdq=abc', '?sha256=zz', `?pdq=${'0'.repeat(64)}&max_distance=32`, `?pdq=${'0'.repeat(64)}&pdq=${'0'.repeat(64)}`]) {
      const res = await fetch(`${server.url}/api/v1/verdicts${query}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
      expect(res.status, query).toBe(400);
      expect((await res.json()).error.code).toMatch(/^bad_/);
    }
    const missing = await fetch(`${server.url}/nope`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ error: { code: 'not_found', message: 'no such route' } });
  });
});

describe.skipIf(!HAVE_REDIS)('vouch serve on SIGTERM', () => {
  it('finishes an in-flight request before it exits, and takes no new ones', async () => {
    const dataDir = tempDir();
    // Scanner nodes on Redis, none running: an upload of unknown media waits its full scan time.
    const server = await startServerProcess({
      VOUCH_DATA_DIR: dataDir,
      REDIS_URL,
      VOUCH_SCANNER: 'external',
      VOUCH_SCANNER_TOKEN: randomBytes(32).toString('hex'),
      VOUCH_SCAN_WAIT_MS: '3000',
    });
    try {
      const started = Date.now();
      const inFlight = fetch(`${server.url}/api/v1/pictrs/validate`, { method: 'POST', body: await syntheticJpeg(31) });
      await new Promise((r) => setTimeout(r, 700));
      const exited = server.stop('SIGTERM');
      await new Promise((r) => setTimeout(r, 300));
      await expect(fetch(`${server.url}/healthz`)).rejects.toThrow();
      const res = await inFlight;
      expect(res.status).toBe(201); // fail-open: nobody decided in time
      expect(Date.now() - started).toBeGreaterThanOrEqual(2900);
      expect(await exited).toBe(0);
      expect(server.logs.join('\n')).toMatch(/shutting down: finishing in-flight requests[\s\S]*"msg":"stopped"/);
    } finally {
      await server.stop('SIGKILL');
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

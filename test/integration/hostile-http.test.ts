// Hostile HTTP against a real `vouch serve`: malformed paths and bodies are 4xx, an oversize
// declared Content-Length is refused before its body is read, a full hashing queue answers a polite
// 503, and anonymous lookups reveal nothing the feeds would not.
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { syntheticJpeg } from '../helpers/images.js';
import { startServerProcess, type ServerProcess } from '../helpers/process.js';
import { tempDir } from '../helpers/services.js';
import { queueFor } from '../../server/scanning/hash-pool.js';

const ADMIN_TOKEN = randomBytes(32).toString('hex');
const MAX_UPLOAD = 4 * 1024 * 1024;

/** `hex` with `bits` of its bits flipped (the first ones): a near copy of a digest. */
function flipBits(hex: string, bits: number): string {
  const bytes = Buffer.from(hex, 'hex');
  for (let i = 0; i < bits; i++) bytes[i >> 3] ^= 1 << (i & 7);
  return bytes.toString('hex');
}

/** Sends raw request bytes and resolves with the whole answer once the server has sent it and closed. */
function rawExchange(url: string, head: string, body: Buffer): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => socket.write(Buffer.concat([Buffer.from(head.replace(/\n/g, '\r\n')), body])));
    let answer = '';
    socket.on('data', (chunk) => (answer += chunk.toString('latin1')));
    socket.on('error', reject);
    socket.on('close', () => resolve(answer));
  });
}

describe('hostile HTTP', () => {
  let server: ServerProcess;
  let dataDir: string;

  beforeAll(async () => {
    dataDir = tempDir();
    server = await startServerProcess({
      VOUCH_DATA_DIR: dataDir,
      VOUCH_ADMIN_TOKEN: ADMIN_TOKEN,
      VOUCH_MAX_UPLOAD_BYTES: String(MAX_UPLOAD),
      // One hashing thread: a queue of about a second's work (queueFor(1)), which a burst of uploads overflows.
      VOUCH_HASH_THREADS: '1',
      VOUCH_PUBLIC_OK_FEED: 'true',
      REDIS_URL: '',
    });
  });

  afterAll(async () => {
    const code = await server?.stop();
    rmSync(dataDir, { recursive: true, force: true });
    expect(code).toBe(0);
  });

  const admin = (method: string, path: string, body?: unknown) =>
    fetch(`${server.url}/api/v1/admin${path}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });

  it.each([
    ['GET', '/verdicts/%ff'],
    ['GET', '/verdicts/%E0%A4%A'],
    ['GET', '/api/v1/admin/quarantine/%ff'],
    ['PATCH', '/api/v1/admin/verdicts/%ff'],
    ['DELETE', '/api/v1/admin/verdicts/%c0%80'],
    ['POST', '/api/v1/admin/deliveries/%ff/retry'],
    ['GET', '/internal/scan-media/%ff'],
    ['GET', '/log/bundle/%ff'],
  ])('answers %s %s (malformed percent-encoding) with a 4xx', async (method, path) => {
    const res = await fetch(`${server.url}${path}`, { method, headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    expect((await res.json()).error.code).toEqual(expect.any(String));
  });

  // Plain JSON text is invalid gzip, deflate and brotli alike (random bytes are not: one in a few
  // dozen decodes as brotli, and the test would then see a body that is merely not a verdict).
  const notCompressed = Buffer.from('{"this is": "not compressed at all"}');

  it.each(['gzip', 'br', 'deflate'])('refuses a body that is not the %s it claims to be with 400', async (encoding) => {
    const headers = { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-encoding': encoding };
    const json = await fetch(`${server.url}/api/v1/admin/verdicts`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: notCompressed });
    expect(json.status).toBe(400);
    expect((await json.json()).error.code).toBe('bad_body');
    const image = await fetch(`${server.url}/api/v1/hash`, { method: 'POST', headers: { ...headers, 'content-type': 'image/jpeg' }, body: notCompressed });
    expect(image.status).toBe(400);
  });

  it.each([
    ['/api/v1/hash', 60 * 1024 * 1024, {}],
    ['/api/v1/pictrs/validate', 60 * 1024 * 1024, {}],
    ['/api/v1/media', 60 * 1024 * 1024, { authorization: `Bearer ${ADMIN_TOKEN}` }],
    ['/api/v1/media', 1024 * 1024, { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' }],
    ['/api/v1/admin/verdicts', 1024 * 1024, { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' }],
    // No route takes this much: refused before any route's own parser.
    ['/actor/inbox', 100 * 1024 * 1024, { 'content-type': 'application/activity+json' }],
  ])('refuses POST %s declaring %d bytes with 413 before reading the body', async (path, length, headers) => {
    const host = new URL(server.url).host;
    const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\n`).join('');
    // Ten bytes of the declared length: an answer can only come from the declared length.
    const answer = await rawExchange(server.url, `POST ${path} HTTP/1.1\nhost: ${host}\ncontent-length: ${length}\n${extra}\n`, Buffer.alloc(10, 1));
    expect(answer).toMatch(/^HTTP\/1\.1 413 /);
    expect(answer).toMatch(/"code":"too_large"/);
  });

  it('serves 16 clients hashing at once without a busy answer (the queue holds about a second of work)', async () => {
    const jpeg = await syntheticJpeg(8, 1024, 768, 90);
    const answers = await Promise.all(
      Array.from({ length: 16 }, () => fetch(`${server.url}/api/v1/hash`, { method: 'POST', headers: { 'content-type': 'image/jpeg' }, body: jpeg })),
    );
    expect(answers.map((res) => res.status)).toEqual(Array(16).fill(200));
  });

  it('answers a full hashing queue with 503 busy, Retry-After, a metric and one log line', async () => {
    const jpeg = await syntheticJpeg(7, 1600, 1200, 95);
    const answers = await Promise.all(
      Array.from({ length: 4 * queueFor(1) }, () => fetch(`${server.url}/api/v1/hash`, { method: 'POST', headers: { 'content-type': 'image/jpeg' }, body: jpeg })),
    );
    const busy = answers.filter((res) => res.status === 503);
    expect(busy.length).toBeGreaterThan(0);
    expect(answers.every((res) => res.status === 200 || res.status === 503)).toBe(true);
    for (const res of busy) {
      expect(res.headers.get('retry-after')).toBe('1');
      expect((await res.json()).error.code).toBe('busy');
    }
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toContain(`vouch_http_shed_total{reason="busy"} ${busy.length}`);
    // One line for the burst, no per-request error lines or stack traces.
    expect(server.logs.filter((line) => line.includes('answering 503 busy'))).toHaveLength(1);
    expect(server.logs.filter((line) => line.includes('"statusCode":503') || line.includes('status code 503'))).toHaveLength(0);
  });

  it('shows the public only published ok verdicts: a hash list\'s ok entry (never published) stays hidden', async () => {
    const listed = randomBytes(32).toString('hex');
    const issued = randomBytes(32).toString('hex');
    const imported = await fetch(`${server.url}/api/v1/admin/hashes?source=partner`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'text/plain' },
      body: `sha256:${listed},ok,1`,
    });
    expect(imported.status).toBe(201);
    expect((await admin('POST', '/verdicts', { subjects: [{ algorithm: 'sha256', digest: issued }], label: 'ok', confidence: 1, method: 'human' })).status).toBe(201);
    const anonymous = async (sha256: string) => (await (await fetch(`${server.url}/api/v1/verdicts?sha256=${sha256}`)).json()).matches as unknown[];
    expect(await anonymous(listed)).toEqual([]);
    expect(await anonymous(issued)).toHaveLength(1);
    const asAdmin = await (await fetch(`${server.url}/api/v1/verdicts?sha256=${listed}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).json();
    expect(asAdmin.matches).toHaveLength(1);
  });

  it('reveals nothing of an abuse verdict to an anonymous lookup, even 6 bits off; the admin token sees it', async () => {
    const pdq = randomBytes(32).toString('hex');
    const issued = await admin('POST', '/verdicts', { subjects: [{ algorithm: 'pdq', digest: pdq }], label: 'csam', confidence: 1, method: 'human' });
    expect(issued.status).toBe(201);
    const near = flipBits(pdq, 6);

    const anonymous = await fetch(`${server.url}/api/v1/verdicts?pdq=${near}`);
    expect(anonymous.status).toBe(200);
    const anonymousText = await anonymous.text();
    expect(JSON.parse(anonymousText)).toEqual({ matches: [] });
    expect(anonymousText).not.toContain(pdq);
    // The same answer as for a digest nothing matches: no difference to measure.
    expect(await (await fetch(`${server.url}/api/v1/verdicts?pdq=${randomBytes(32).toString('hex')}`)).json()).toEqual({ matches: [] });

    const wrongToken = await fetch(`${server.url}/api/v1/verdicts?pdq=${near}`, { headers: { authorization: 'Bearer nope' } });
    expect(wrongToken.status).toBe(401);

    const withToken = await fetch(`${server.url}/api/v1/verdicts?pdq=${near}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    const { matches } = (await withToken.json()) as { matches: Array<{ label: string; distance: number; subjects: Array<{ digest: string }> }> };
    expect(matches).toHaveLength(1);
    expect(matches[0]).toMatchObject({ label: 'csam', distance: 6 });
    expect(matches[0].subjects[0].digest).toBe(pdq);
  });

  it('shows an anonymous lookup our ok verdicts when the ok feed is public, as the feed does', async () => {
    const sha256 = randomBytes(32).toString('hex');
    expect((await admin('POST', '/verdicts', { subjects: [{ algorithm: 'sha256', digest: sha256 }], label: 'ok', confidence: 0.9, method: 'human' })).status).toBe(201);
    const { matches } = (await (await fetch(`${server.url}/api/v1/verdicts?sha256=${sha256}`)).json()) as { matches: Array<{ label: string }> };
    expect(matches.map((m) => m.label)).toEqual(['ok']);
  });

  it('is still up and healthy', async () => {
    const res = await fetch(`${server.url}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: 'ok', database: 'ok' });
    expect(server.child.exitCode).toBeNull();
  });

  it('never logs the signature of a signed URL (a scanner\'s media fetch, the console\'s notices)', async () => {
    const signature = randomBytes(32).toString('hex');
    const sha256 = randomBytes(32).toString('hex');
    const res = await fetch(`${server.url}/internal/scan-media/${sha256}?expires=${Date.now() + 60_000}&signature=${signature}`);
    expect(res.status).toBeGreaterThanOrEqual(400);
    await fetch(`${server.url}/console/login?notice=hello&sig=${signature}`);
    await new Promise((r) => setTimeout(r, 300)); // the log is written asynchronously
    const lines = server.logs.filter((line) => line.includes('/internal/scan-media/') || line.includes('/console/login'));
    expect(lines.length).toBeGreaterThan(0);
    expect(server.logs.join('\n')).not.toContain(signature);
    expect(lines.some((line) => line.includes('signature=[redacted]'))).toBe(true);
  });
});

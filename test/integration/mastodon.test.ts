// Mastodon integration: a real Vouch server receives Mastodon's signed admin webhooks, fetches the
// status's images and, for blocked media, reports the status through Mastodon's API. Mastodon
// itself cannot run here: a small stand-in on 127.0.0.x (a mock, by necessity) serves the media
// files and records the API calls, checking the bearer token as Mastodon would.
import { createHmac, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { syntheticJpeg } from '../helpers/images.js';
import { eventually, startVouch, type ServerProcess } from '../helpers/process.js';

const TOKEN = randomBytes(32).toString('hex');
const SECRET = randomBytes(24).toString('hex');
const MASTODON_TOKEN = randomBytes(24).toString('base64url');

class FakeMastodon {
  readonly media = new Map<string, Buffer>();
  readonly calls: Array<{ path: string; auth: string | undefined; body: Record<string, unknown> }> = [];
  private server?: Server;
  origin = '';

  async start(host: string): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const path = req.url ?? '/';
        if (req.method === 'GET' && this.media.has(path)) {
          res.writeHead(200, { 'content-type': 'image/jpeg' }).end(this.media.get(path));
          return;
        }
        if (req.method === 'POST' && path.startsWith('/api/v1/')) {
          if (req.headers.authorization !== `Bearer ${MASTODON_TOKEN}`) {
            res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"The access token is invalid"}');
            return;
          }
          this.calls.push({ path, auth: req.headers.authorization, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) });
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ id: String(this.calls.length + 100) }));
          return;
        }
        res.writeHead(404).end();
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, host, resolve));
    this.origin = `http://${host}:${(this.server!.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
  }
}

describe('Mastodon webhooks', () => {
  const mastodon = new FakeMastodon();
  let server: ServerProcess;
  let url: string;
  let cleanup: () => Promise<void>;

  const status = (id: string, media: Array<{ id: string; path: string; type?: string }>) => ({
    event: 'status.created',
    created_at: new Date().toISOString(),
    object: {
      id,
      uri: `${mastodon.origin}/users/someone/statuses/${id}`,
      content: '<p>hello</p>',
      account: { id: '4242', username: 'someone', acct: 'someone' },
      media_attachments: media.map((m) => ({ id: m.id, type: m.type ?? 'image', url: `${mastodon.origin}${m.path}`, preview_url: null, remote_url: null })),
    },
  });
  const post = (payload: unknown, signature?: string | null) => {
    const body = Buffer.from(typeof payload === 'string' ? payload : JSON.stringify(payload));
    const sig = signature === undefined ? `sha256=${createHmac('sha256', SECRET).update(body).digest('hex')}` : signature;
    return fetch(`${url}/api/v1/integrations/mastodon/webhook`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(sig === null ? {} : { 'x-hub-signature': sig }) },
      body,
    });
  };

  beforeAll(async () => {
    await mastodon.start('127.0.0.81');
    ({ server, url, cleanup } = await startVouch('127.0.0.82', {
      VOUCH_ADMIN_TOKEN: TOKEN,
      VOUCH_SCANNER: 'off',
      VOUCH_MASTODON_ALLOW_PRIVATE_NETWORKS: '127.0.0.81/32',
      VOUCH_MASTODON_WEBHOOK_SECRET: SECRET,
      VOUCH_MASTODON_URL: mastodon.origin,
      VOUCH_MASTODON_TOKEN: MASTODON_TOKEN,
      VOUCH_MASTODON_ACCOUNT_ACTION: 'sensitive',
    }));
  });

  afterAll(async () => {
    await server?.stop();
    await cleanup?.();
    await mastodon.stop();
  });

  it('refuses deliveries without the right signature, and bad payloads', async () => {
    const payload = status('1', [{ id: '1', path: '/system/x.jpg' }]);
    expect((await post(payload, null)).status).toBe(401);
    expect((await post(payload, `sha256=${'0'.repeat(64)}`)).status).toBe(401);
    expect((await post(payload, `sha256=${createHmac('sha256', 'another secret').update(JSON.stringify(payload)).digest('hex')}`)).status).toBe(401);
    expect((await post('{not json')).status).toBe(400);
    expect((await post({ event: 'status.created', object: { id: 'abc' } })).status).toBe(400);
    const other = await post({ event: 'account.created', object: { id: '7' } });
    expect(other.status).toBe(202);
    expect(await other.json()).toEqual({ queued: 0 });
  });

  it('reports a status whose image is blocked, with the decision, and acts on the account', async () => {
    const bad = await syntheticJpeg(8101);
    const fine = await syntheticJpeg(8102);
    mastodon.media.set('/system/media_attachments/1.jpg', bad);
    mastodon.media.set('/system/media_attachments/2.jpg', fine);
    const { sha256 } = await (await fetch(`${url}/api/v1/hash`, { method: 'POST', body: bad })).json();
    const imported = await fetch(`${url}/api/v1/admin/hashes?source=drill`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'text/plain' },
      body: `sha256:${sha256},spam`,
    });
    expect(imported.status).toBe(201);

    // A status with a harmless image only: looked at, nothing reported.
    const res1 = await post(status('109', [{ id: '12', path: '/system/media_attachments/2.jpg' }]));
    expect(await res1.json()).toEqual({ queued: 1 });
    const mixed = status('110', [{ id: '11', path: '/system/media_attachments/1.jpg' }, { id: '12', path: '/system/media_attachments/2.jpg' }, { id: '13', path: '/x.mp3', type: 'audio' }]);
    const res2 = await post(mixed);
    expect(res2.status).toBe(202);
    expect(await res2.json()).toEqual({ queued: 2 });

    await eventually(async () => mastodon.calls.length >= 2, 20_000, 'the report and the account action');
    const [report, action] = mastodon.calls;
    expect(report.path).toBe('/api/v1/reports');
    expect(report.body).toMatchObject({ account_id: '4242', status_ids: ['110'], category: 'spam', forward: false });
    expect(String(report.body.comment)).toMatch(/^Vouch blocked 1 image\(s\): spam \(decision \d+: /);
    expect(action).toMatchObject({ path: '/api/v1/admin/accounts/4242/action', body: { type: 'sensitive', report_id: '101' } });

    // Redelivery of the same webhook is queued once; the harmless status never led to a report.
    expect((await post(mixed)).status).toBe(202);
    // Media outside the Mastodon allow list (here: another loopback address) is never fetched.
    const elsewhere = status('111', [{ id: '14', path: '/system/media_attachments/1.jpg' }]);
    elsewhere.object.media_attachments[0].url = `${url}/healthz`;
    expect(await (await post(elsewhere)).json()).toEqual({ queued: 1 });
    // The report needs only the blocked image; the harmless one's decision may land a moment later.
    await eventually(async () => {
      const { decisions } = await (await fetch(`${url}/api/v1/admin/decisions`, { headers: { authorization: `Bearer ${TOKEN}` } })).json();
      return decisions.filter((d: { source: string }) => d.source.startsWith('mastodon:')).length >= 3;
    }, 20_000, 'a decision for each looked-at image');
    await new Promise((r) => setTimeout(r, 1500));
    expect(mastodon.calls.filter((c) => c.path === '/api/v1/reports').map((c) => c.body.status_ids)).toEqual([['110']]);
  });
});

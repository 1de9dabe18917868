import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  blockedRange,
  createSafeFetcher,
  OutboundRequestError,
  type HostLookup,
  type OutboundFailureReason,
} from '../../server/federation/safe-fetch.js';

interface TestServer {
  server: http.Server;
  port: number;
  host: string;
  connections: number;
  requests: Array<{ method: string; url: string; headers: http.IncomingHttpHeaders; body: string }>;
  base: string;
}

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, srv: TestServer) => void;

async function startServer(host: string, handler: Handler, port = 0): Promise<TestServer> {
  const srv = { host, connections: 0, requests: [] } as unknown as TestServer;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      srv.requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString() });
      handler(req, res, srv);
    });
  });
  server.on('connection', () => {
    srv.connections++;
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  srv.server = server;
  srv.port = (server.address() as AddressInfo).port;
  srv.base = `http://${host}:${srv.port}`;
  return srv;
}

function reset(...servers: TestServer[]): void {
  for (const s of servers) {
    s.connections = 0;
    s.requests = [];
  }
}

async function expectReason(p: Promise<unknown>, reason: OutboundFailureReason): Promise<OutboundRequestError> {
  const err = await p.then(
    () => {
      throw new Error(`expected OutboundRequestError(${reason}), got success`);
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(OutboundRequestError);
  expect((err as OutboundRequestError).reason).toBe(reason);
  return err as OutboundRequestError;
}

/** Routes shared by both servers. `other` lets a route redirect to the other server. */
function makeHandler(getOther: () => TestServer): Handler {
  return (req, res, srv) => {
    const u = new URL(req.url ?? '/', 'http://x');
    switch (u.pathname) {
      case '/ok':
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ from: srv.host, method: req.method }));
        return;
      case '/echo':
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ method: req.method, headers: req.headers, body: srv.requests.at(-1)?.body }));
        return;
      case '/to-other':
        res.writeHead(302, { location: `${getOther().base}/ok` });
        res.end();
        return;
      case '/to-other-echo':
        res.writeHead(Number(u.searchParams.get('status') ?? 302), { location: `${getOther().base}/echo` });
        res.end();
        return;
      case '/same-origin-echo':
        res.writeHead(Number(u.searchParams.get('status') ?? 302), { location: '/echo' });
        res.end();
        return;
      case '/loop': {
        const n = Number(u.searchParams.get('n') ?? 0);
        res.writeHead(301, { location: n > 0 ? `/loop?n=${n - 1}` : '/ok' });
        res.end();
        return;
      }
      case '/big-cl': {
        const body = Buffer.alloc(4096, 'a');
        res.writeHead(200, { 'content-length': String(body.length) });
        res.end(body);
        return;
      }
      case '/big-chunked': {
        // No Content-Length: chunked transfer encoding, streamed in pieces.
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        let sent = 0;
        const tick = () => {
          if (res.destroyed) return;
          if (sent >= 64 * 1024) {
            res.end();
            return;
          }
          sent += 1024;
          res.write(Buffer.alloc(1024, 'b'), () => setImmediate(tick));
        };
        tick();
        return;
      }
      case '/slow-headers':
        // Never answers.
        return;
      case '/slow-body':
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('partial');
        // ...and never finishes.
        return;
      case '/trickle': {
        // Each chunk arrives well within any per-read timeout, but the whole takes too long.
        res.writeHead(200, { 'content-type': 'text/plain' });
        const iv = setInterval(() => {
          if (res.destroyed) {
            clearInterval(iv);
            return;
          }
          res.write('x');
        }, 20);
        res.on('close', () => clearInterval(iv));
        return;
      }
      default:
        res.writeHead(404);
        res.end('not found');
    }
  };
}

let s1: TestServer; // 127.0.0.1
let s2: TestServer; // 127.0.0.2

beforeAll(async () => {
  s1 = await startServer('127.0.0.1', makeHandler(() => s2));
  s2 = await startServer('127.0.0.2', makeHandler(() => s1));
});

afterAll(async () => {
  for (const s of [s1, s2]) {
    s.server.closeAllConnections();
    await new Promise<void>((r) => s.server.close(() => r()));
  }
});

afterEach(() => reset(s1, s2));

/** A lookup that fails the test if it is ever used. */
const noDns: HostLookup = async (host) => {
  throw new Error(`unexpected DNS lookup for ${host}`);
};

describe('blocked by default', () => {
  const fetcher = createSafeFetcher({ lookup: noDns });

  it('refuses local literals before connecting', async () => {
    for (const url of [`http://127.0.0.1:${s1.port}/ok`, `https://127.0.0.1:${s1.port}/ok`, `https://[::ffff:127.0.0.1]:${s1.port}/ok`]) {
      const err = await expectReason(fetcher(url), url.startsWith('http:') ? 'bad_url' : 'blocked_address');
      expect(err.host).toMatch(/127\.0\.0\.1|::ffff:7f00:1/);
    }
    expect(s1.connections).toBe(0);
  });

  it.each([
    'https://127.0.0.1/',
    'https://[::1]/',
    'https://10.0.0.1/',
    'https://169.254.169.254/latest/meta-data/',
    'https://192.168.1.1/',
    'https://[::ffff:127.0.0.1]/',
    'https://[::ffff:10.0.0.1]/',
    'https://0.0.0.0/',
    'https://[fd00::1]/',
    'https://100.64.0.1/',
    'https://172.16.5.4/',
    'https://[fe80::1]/',
    'https://224.0.0.1/',
    'https://255.255.255.255/',
    'https://192.0.2.10/',
    'https://[::]/',
    'https://[64:ff9b::a00:1]/', // NAT64 wrapping 10.0.0.1
    'https://[64:ff9b::7f00:1]/', // NAT64 wrapping 127.0.0.1
    'https://[2002:a9fe:a9fe::1]/', // 6to4 wrapping 169.254.169.254
    'https://[::7f00:1]/', // IPv4-compatible ::127.0.0.1
    'https://2130706433/', // 127.0.0.1 as an integer; WHATWG URL normalises it
    'https://0x7f.1/',
  ])('refuses %s without DNS or network', async (url) => {
    const err = await expectReason(fetcher(url), 'blocked_address');
    expect(err.message).toContain('refused');
  });

  it('refuses a hostname resolving to loopback (localhost, real DNS)', async () => {
    const f = createSafeFetcher();
    await expectReason(f(`https://localhost:${s1.port}/ok`), 'blocked_address');
    expect(s1.connections).toBe(0);
  });

  it('refuses a hostname if ANY resolved address is blocked', async () => {
    const lookups: string[] = [];
    const f = createSafeFetcher({
      lookup: async (h) => {
        lookups.push(h);
        return [
          { address: '93.184.216.34', family: 4 },
          { address: '10.1.2.3', family: 4 },
        ];
      },
    });
    const err = await expectReason(f('https://mixed.example/'), 'blocked_address');
    expect(err.message).toContain('mixed.example');
    expect(err.message).toContain('10.1.2.3');
    expect(lookups).toEqual(['mixed.example']);
  });

  it('refuses v4-mapped private answers from DNS', async () => {
    const f = createSafeFetcher({ lookup: async () => [{ address: '::ffff:192.168.0.1', family: 6 }] });
    await expectReason(f('https://mapped.example/'), 'blocked_address');
  });
});

describe('URL rules', () => {
  const fetcher = createSafeFetcher({ lookup: noDns, allowPrivate: ['127.0.0.0/8'] });

  it.each(['file:///etc/passwd', 'ftp://example.com/x', 'data:text/plain,hello', 'gopher://example.com/', 'javascript:alert(1)'])(
    'refuses scheme of %s',
    async (url) => {
      await expectReason(fetcher(url), 'bad_url');
    },
  );

  it('refuses unparseable URLs', async () => {
    await expectReason(fetcher('not a url'), 'bad_url');
    await expectReason(fetcher('/relative/path'), 'bad_url');
  });

  it('refuses credentials in the URL', async () => {
    await expectReason(fetcher(`http://user:pass@127.0.0.1:${s1.port}/ok`), 'bad_url');
    await expectReason(fetcher(`http://user@127.0.0.1:${s1.port}/ok`), 'bad_url');
    expect(s1.connections).toBe(0);
  });

  it('refuses plain http to public hosts, with or without allowPrivate', async () => {
    const publicDns: HostLookup = async () => [{ address: '93.184.216.34', family: 4 }];
    await expectReason(createSafeFetcher({ lookup: publicDns })('http://example.com/'), 'bad_url');
    await expectReason(createSafeFetcher({ lookup: publicDns, allowPrivate: ['127.0.0.0/8'] })('http://example.com/'), 'bad_url');
  });

  it('rejects an invalid allowPrivate CIDR up front', () => {
    expect(() => createSafeFetcher({ allowPrivate: ['not-a-cidr'] })).toThrow(/allowPrivate/);
  });
});

describe('allowed with allowPrivate', () => {
  it('fetches from 127.0.0.1 and returns status, lower-case headers, body, url', async () => {
    const f = createSafeFetcher({ allowPrivate: ['127.0.0.0/8'], lookup: noDns });
    const res = await f(`${s1.base}/ok`);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('application/json');
    expect(JSON.parse(res.body.toString())).toEqual({ from: '127.0.0.1', method: 'GET' });
    expect(res.url).toBe(`${s1.base}/ok`);
  });

  it('returns non-2xx responses as they are', async () => {
    const f = createSafeFetcher({ allowPrivate: ['127.0.0.0/8'], lookup: noDns });
    const res = await f(`${s1.base}/nope`);
    expect(res.status).toBe(404);
    expect(res.body.toString()).toBe('not found');
  });

  it('sends method, headers, body, user agent and accept', async () => {
    const f = createSafeFetcher({ allowPrivate: ['127.0.0.0/8'], lookup: noDns, userAgent: 'VouchTest/1' });
    const res = await f(`${s1.base}/echo`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/activity+json', Signature: 'keyId="k",signature="abc"' },
      body: '{"type":"Follow"}',
      accept: 'application/activity+json',
    });
    const echoed = JSON.parse(res.body.toString()) as { method: string; headers: Record<string, string>; body: string };
    expect(echoed.method).toBe('POST');
    expect(echoed.body).toBe('{"type":"Follow"}');
    expect(echoed.headers['user-agent']).toBe('VouchTest/1');
    expect(echoed.headers['accept']).toBe('application/activity+json');
    expect(echoed.headers['signature']).toBe('keyId="k",signature="abc"');
    expect(echoed.headers['content-type']).toBe('application/activity+json');
    expect(echoed.headers['host']).toBe(`127.0.0.1:${s1.port}`);
  });

  it('connects a hostname to the vetted address and keeps the hostname as Host', async () => {
    const lookups: string[] = [];
    const f = createSafeFetcher({
      allowPrivate: ['127.0.0.0/8'],
      lookup: async (h) => {
        lookups.push(h);
        return [{ address: '127.0.0.2', family: 4 }];
      },
    });
    const res = await f(`http://peer.vouch.test:${s2.port}/echo`);
    const echoed = JSON.parse(res.body.toString()) as { headers: Record<string, string> };
    expect(echoed.headers['host']).toBe(`peer.vouch.test:${s2.port}`);
    expect(lookups).toEqual(['peer.vouch.test']);
    expect(s2.connections).toBe(1);
  });

  it('allowPrivate is exact: 127.0.0.2/32 does not open 127.0.0.1', async () => {
    const f = createSafeFetcher({ allowPrivate: ['127.0.0.2/32'], lookup: noDns });
    expect((await f(`${s2.base}/ok`)).status).toBe(200);
    await expectReason(f(`${s1.base}/ok`), 'blocked_address');
    expect(s1.connections).toBe(0);
  });

  it('localhost is refused when it also resolves outside allowPrivate', async () => {
    const f = createSafeFetcher({
      allowPrivate: ['127.0.0.0/8'],
      lookup: async () => [
        { address: '127.0.0.1', family: 4 },
        { address: '::1', family: 6 },
      ],
    });
    await expectReason(f(`http://localhost:${s1.port}/ok`), 'blocked_address');
    expect(s1.connections).toBe(0);
  });
});

describe('DNS pinning', () => {
  it('uses one lookup per hop and connects to the address it checked (rebinding)', async () => {
    // A "secret" service on 127.0.0.1 at the same port as s2 (127.0.0.2). A rebinding resolver
    // answers 127.0.0.2 (allowed) first and 127.0.0.1 (blocked) afterwards: a connection that did
    // its own second lookup would land on the secret service.
    const secret = await startServer('127.0.0.1', (_q, r) => r.end('secret'), s2.port);
    try {
      let calls = 0;
      const rebinding: HostLookup = async () => {
        calls++;
        return [{ address: calls === 1 ? '127.0.0.2' : '127.0.0.1', family: 4 }];
      };
      const f = createSafeFetcher({ allowPrivate: ['127.0.0.2/32'], lookup: rebinding });
      const res = await f(`http://rebind.vouch.test:${s2.port}/ok`);
      expect(JSON.parse(res.body.toString())).toEqual({ from: '127.0.0.2', method: 'GET' });
      expect(calls).toBe(1);
      expect(secret.connections).toBe(0);
      expect(s2.connections).toBe(1);
    } finally {
      secret.server.closeAllConnections();
      await new Promise<void>((r) => secret.server.close(() => r()));
    }
  });

  it('re-resolves and re-vets on every redirect hop, once each', async () => {
    const lookups: string[] = [];
    const f = createSafeFetcher({
      allowPrivate: ['127.0.0.2/32'],
      lookup: async (h) => {
        lookups.push(h);
        return [{ address: '127.0.0.2', family: 4 }];
      },
    });
    const res = await f(`http://a.vouch.test:${s2.port}/loop?n=1`);
    expect(res.status).toBe(200);
    expect(res.url).toBe(`http://a.vouch.test:${s2.port}/ok`);
    expect(lookups).toEqual(['a.vouch.test', 'a.vouch.test', 'a.vouch.test']);
  });
});

describe('redirects', () => {
  it('refuses a redirect to a blocked address even if the first hop is allowed', async () => {
    const f = createSafeFetcher({ allowPrivate: ['127.0.0.2/32'], lookup: noDns });
    const err = await expectReason(f(`${s2.base}/to-other`), 'blocked_address');
    expect(err.host).toBe('127.0.0.1');
    expect(s2.requests).toHaveLength(1);
    expect(s1.connections).toBe(0);
  });

  it('refuses a redirect to a hostname that resolves to a blocked address', async () => {
    const f = createSafeFetcher({
      allowPrivate: ['127.0.0.2/32'],
      lookup: async (h) => [{ address: h === 'evil.test' ? '169.254.169.254' : '127.0.0.2', family: 4 }],
    });
    // /to-other redirects to s1's literal address; craft a hostname hop with a tiny server instead.
    const hop = await startServer('127.0.0.2', (_req, res) => {
      res.writeHead(307, { location: 'http://evil.test/latest/meta-data/' });
      res.end();
    });
    try {
      const err = await expectReason(f(`http://good.test:${hop.port}/`), 'blocked_address');
      expect(err.host).toBe('evil.test');
    } finally {
      hop.server.closeAllConnections();
      await new Promise<void>((r) => hop.server.close(() => r()));
    }
  });

  it('refuses a redirect to a non-http scheme', async () => {
    const hop = await startServer('127.0.0.1', (_req, res) => {
      res.writeHead(302, { location: 'file:///etc/passwd' });
      res.end();
    });
    try {
      const f = createSafeFetcher({ allowPrivate: ['127.0.0.0/8'], lookup: noDns });
      await expectReason(f(`${hop.base}/`), 'bad_url');
    } finally {
      hop.server.closeAllConnections();
      await new Promise<void>((r) => hop.server.close(() => r()));
    }
  });

  it('follows up to maxRedirects and refuses one more', async () => {
    const f = createSafeFetcher({ allowPrivate: ['127.0.0.0/8'], lookup: noDns, maxRedirects: 3 });
    // n=2 -> n=1 -> n=0 -> /ok : 3 redirects
    const ok = await f(`${s1.base}/loop?n=2`);
    expect(ok.status).toBe(200);
    expect(ok.url).toBe(`${s1.base}/ok`);
    reset(s1);
    // 4 redirects
    await expectReason(f(`${s1.base}/loop?n=3`), 'too_many_redirects');
    expect(s1.requests).toHaveLength(4);
  });

  it('maxRedirects 0 refuses any redirect', async () => {
    const f = createSafeFetcher({ allowPrivate: ['127.0.0.0/8'], lookup: noDns, maxRedirects: 0 });
    await expectReason(f(`${s1.base}/loop?n=0`), 'too_many_redirects');
  });

  it('303 turns a POST into a body-less GET', async () => {
    const f = createSafeFetcher({ allowPrivate: ['127.0.0.0/8'], lookup: noDns });
    const res = await f(`${s1.base}/same-origin-echo?status=303`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', digest: 'SHA-256=x' },
      body: '{"a":1}',
    });
    const echoed = JSON.parse(res.body.toString()) as { method: string; headers: Record<string, string>; body: string };
    expect(echoed.method).toBe('GET');
    expect(echoed.body).toBe('');
    expect(echoed.headers['content-type']).toBeUndefined();
    expect(echoed.headers['digest']).toBeUndefined();
  });

  it('307 keeps method and body', async () => {
    const f = createSafeFetcher({ allowPrivate: ['127.0.0.0/8'], lookup: noDns });
    const res = await f(`${s1.base}/same-origin-echo?status=307`, { method: 'POST', body: 'payload' });
    const echoed = JSON.parse(res.body.toString()) as { method: string; body: string };
    expect(echoed.method).toBe('POST');
    expect(echoed.body).toBe('payload');
  });

  it('drops credential headers on a cross-origin hop', async () => {
    const f = createSafeFetcher({ allowPrivate: ['127.0.0.0/8'], lookup: noDns });
    const res = await f(`${s1.base}/to-other-echo?status=307`, {
      headers: { Signature: 'secret-sig', Authorization: 'Bearer t', 'X-Other': 'kept' },
    });
    const echoed = JSON.parse(res.body.toString()) as { headers: Record<string, string> };
    expect(echoed.headers['signature']).toBeUndefined();
    expect(echoed.headers['authorization']).toBeUndefined();
    expect(echoed.headers['x-other']).toBe('kept');
    expect(res.url).toBe(`${s2.base}/echo`);
  });
});

describe('size caps', () => {
  const f = createSafeFetcher({ allowPrivate: ['127.0.0.0/8'], lookup: noDns, maxBodyBytes: 1000 });

  it('rejects early on a Content-Length above the cap', async () => {
    const err = await expectReason(f(`${s1.base}/big-cl`), 'too_large');
    expect(err.message).toContain('Content-Length');
  });

  it('aborts a chunked body (no Content-Length) over the cap', async () => {
    const err = await expectReason(f(`${s1.base}/big-chunked`), 'too_large');
    expect(err.message).not.toContain('Content-Length');
  });

  it('per-request maxBodyBytes overrides the default', async () => {
    const res = await f(`${s1.base}/big-cl`, { maxBodyBytes: 8192 });
    expect(res.body.length).toBe(4096);
    const chunked = await f(`${s1.base}/big-chunked`, { maxBodyBytes: 64 * 1024 });
    expect(chunked.body.length).toBe(64 * 1024);
  });

  it('a body of exactly the cap is accepted', async () => {
    const res = await f(`${s1.base}/big-cl`, { maxBodyBytes: 4096 });
    expect(res.body.length).toBe(4096);
  });
});

describe('timeouts', () => {
  const f = createSafeFetcher({ allowPrivate: ['127.0.0.0/8'], lookup: noDns, timeoutMs: 300 });

  it('times out waiting for headers', async () => {
    const t0 = Date.now();
    const err = await expectReason(f(`${s1.base}/slow-headers`), 'timeout');
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(err.host).toBe('127.0.0.1');
  });

  it('times out on a stalled body', async () => {
    await expectReason(f(`${s1.base}/slow-body`), 'timeout');
  });

  it('the deadline covers the whole body, not each read', async () => {
    const t0 = Date.now();
    await expectReason(f(`${s1.base}/trickle`, { maxBodyBytes: 1 << 20 }), 'timeout');
    expect(Date.now() - t0).toBeLessThan(3000);
  });

  it('covers a DNS lookup that never answers', async () => {
    const hang = createSafeFetcher({ timeoutMs: 200, lookup: () => new Promise(() => {}) });
    await expectReason(hang('https://slow-dns.example/'), 'timeout');
  });

  it('per-request timeoutMs overrides the default', async () => {
    const slow = createSafeFetcher({ allowPrivate: ['127.0.0.0/8'], lookup: noDns, timeoutMs: 60_000 });
    const t0 = Date.now();
    await expectReason(slow(`${s1.base}/slow-headers`, { timeoutMs: 200 }), 'timeout');
    expect(Date.now() - t0).toBeLessThan(3000);
  });
});

describe('errors', () => {
  it('DNS failures are dns_failure', async () => {
    const f = createSafeFetcher({
      lookup: async () => {
        throw Object.assign(new Error('getaddrinfo ENOTFOUND nowhere.invalid'), { code: 'ENOTFOUND' });
      },
    });
    await expectReason(f('https://nowhere.invalid/'), 'dns_failure');
    const empty = createSafeFetcher({ lookup: async () => [] });
    await expectReason(empty('https://empty.example/'), 'dns_failure');
  });

  it('real DNS failure for .invalid is dns_failure', async () => {
    const f = createSafeFetcher();
    await expectReason(f('https://does-not-exist.invalid/'), 'dns_failure');
  });

  it('refused connections are connection_failed', async () => {
    // Grab a free port, then close it.
    const tmp = await startServer('127.0.0.1', (_q, r) => r.end());
    const port = tmp.port;
    await new Promise<void>((r) => tmp.server.close(() => r()));
    const f = createSafeFetcher({ allowPrivate: ['127.0.0.0/8'], lookup: noDns });
    await expectReason(f(`http://127.0.0.1:${port}/`), 'connection_failed');
  });

  it('messages name the host but never request headers or bodies', async () => {
    const f = createSafeFetcher({ allowPrivate: ['127.0.0.0/8'], lookup: noDns, timeoutMs: 200 });
    const secretHeaders = { Signature: 'keyId="x",signature="TOPSECRETSIG"', Authorization: 'Bearer TOPSECRETTOKEN' };
    const cases = [
      f(`${s1.base}/slow-headers?q=TOPSECRETQUERY`, { headers: secretHeaders, method: 'POST', body: 'TOPSECRETBODY' }),
      f(`${s1.base}/big-chunked`, { headers: secretHeaders, maxBodyBytes: 10 }),
      createSafeFetcher({ allowPrivate: ['127.0.0.2/32'], lookup: noDns })(`${s2.base}/to-other`, { headers: secretHeaders }),
    ];
    const settled = await Promise.all(cases.map((p) => p.then(() => null, (e: unknown) => e)));
    for (const err of settled) {
      expect(err).toBeInstanceOf(OutboundRequestError);
      const text = `${(err as Error).message} ${JSON.stringify(err)}`;
      expect(text).toMatch(/127\.0\.0\.\d/);
      expect(text).not.toContain('TOPSECRET');
    }
  });
});

describe('blockedRange', () => {
  it.each([
    ['8.8.8.8', null],
    ['93.184.216.34', null],
    ['2606:4700:4700::1111', null],
    ['::ffff:8.8.8.8', null],
    ['64:ff9b::808:808', null], // NAT64 of a public address
    ['2002:808:808::1', null], // 6to4 of a public address
    ['127.0.0.1', 'loopback'],
    ['10.0.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['169.254.169.254', 'linkLocal'],
    ['100.64.0.1', 'carrierGradeNat'],
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', 'unspecified'],
    ['255.255.255.255', 'broadcast'],
    ['239.1.1.1', 'multicast'],
    ['192.0.2.1', 'reserved'],
    ['198.51.100.1', 'reserved'],
    ['203.0.113.1', 'reserved'],
    ['240.0.0.1', 'reserved'],
    ['::1', 'loopback'],
    ['::', 'unspecified'],
    ['fe80::1', 'linkLocal'],
    ['fd00::1', 'uniqueLocal'],
    ['fc00::1', 'uniqueLocal'],
    ['ff02::1', 'multicast'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:169.254.169.254', 'linkLocal'],
    ['64:ff9b::a00:1', 'rfc6052(private)'],
    ['64:ff9b::7f00:1', 'rfc6052(loopback)'],
    ['64:ff9b:1::1', 'rfc6052'], // local-use NAT64 prefix
    ['2002:a00:1::1', '6to4(private)'],
    ['2001:db8::1', 'reserved'],
    ['::7f00:1', 'ipv4Compatible'],
    ['::ffff:0:7f00:1', 'rfc6145'],
    ['nonsense', 'unparseable'],
  ])('%s -> %s', (addr, expected) => {
    const got = blockedRange(addr);
    if (expected === null) expect(got).toBeNull();
    else expect(got).toBe(expected);
  });

  it('2001::/32 (Teredo) is blocked', () => {
    expect(blockedRange('2001:0:4136:e378:8000:63bf:3fff:fdd2')).not.toBeNull();
  });
});

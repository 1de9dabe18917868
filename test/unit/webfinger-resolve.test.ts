// A handle's WebFinger lookup: https always first; plain http only when the instance allows http
// peers (test meshes) and the host takes no TLS connection.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../server/config/logger.js';
import type { Identity } from '../../server/federation/identity.js';
import { FederationError, PeerDirectory } from '../../server/federation/peers.js';
import { OutboundRequestError, createSafeFetcher } from '../../server/federation/safe-fetch.js';
import type { Db } from '../../server/store/index.js';

describe('PeerDirectory.resolve', () => {
  let server: http.Server;
  let host: string;
  const requests: string[] = [];

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      requests.push(req.url ?? '');
      res.setHeader('content-type', 'application/jrd+json');
      res.end(JSON.stringify({ links: [{ rel: 'self', type: 'application/activity+json', href: `http://${host}/actor` }] }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  // resolve() touches neither the database nor the identity.
  const directory = () =>
    new PeerDirectory({} as Db, {} as Identity, createSafeFetcher({ allowPrivate: ['127.0.0.0/8'], timeoutMs: 5_000 }), createLogger({ logLevel: 'silent' }));

  it('asks over plain http when http peers are allowed and the host takes no TLS', async () => {
    requests.length = 0;
    expect(await directory().resolve(`vouch@${host}`, true)).toBe(`http://${host}/actor`);
    expect(requests).toEqual([`/.well-known/webfinger?resource=${encodeURIComponent(`acct:vouch@${host}`)}`]);
  });

  it('never falls back to http otherwise', async () => {
    requests.length = 0;
    const error = await directory()
      .resolve(`vouch@${host}`)
      .catch((err: unknown) => err);
    expect(error).toBeInstanceOf(OutboundRequestError);
    expect((error as OutboundRequestError).reason).toBe('connection_failed');
    expect(requests).toEqual([]);
  });

  it('returns an actor URL as given, and refuses what is neither a URL nor a handle', async () => {
    expect(await directory().resolve('https://vouch.example/actor')).toBe('https://vouch.example/actor');
    await expect(directory().resolve('not a handle', true)).rejects.toThrow(FederationError);
  });
});

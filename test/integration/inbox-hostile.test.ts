// A real Vouch server's inbox against hostile peers. The peers are FakePeer actors on 127.0.0.x,
// driven by the test so that each one can forge exactly one thing. Every case must answer 4xx and
// store nothing.
import { createHash, randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { gzipSync } from 'node:zlib';
import httpSignature from 'http-signature';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, freePort, startServerProcess, type ServerProcess } from '../helpers/process.js';
import { STORE_BACKENDS } from '../helpers/services.js';
import { FakePeer } from '../helpers/fake-peer.js';
import { syntheticJpeg } from '../helpers/images.js';

const TOKEN = randomBytes(32).toString('hex');
const hex = (n: number) => randomBytes(n).toString('hex');
/** A signed object with changes, without its (now invalid) proof, ready to be signed again. */
const changed = (v: Record<string, unknown>, changes: Record<string, unknown>) => {
  const { proof: _proof, ...rest } = v;
  return { ...rest, ...changes };
};

describe('inbox against hostile peers', () => {
  let server: ServerProcess;
  let base: string;
  let inbox: string;
  let cleanup: () => Promise<void>;
  const honest = new FakePeer();
  const other = new FakePeer();
  const stranger = new FakePeer();

  const admin = (method: string, path: string, body?: unknown) =>
    fetch(`${base}/api/v1/admin${path}`, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  const stored = async (digest: string) =>
    ((await (await fetch(`${base}/api/v1/verdicts?sha256=${digest}`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as { matches: unknown[] }).matches;

  /** B follows `peer` and `peer` accepts, the way a real remote instance would. */
  async function befriend(peer: FakePeer) {
    expect((await admin('POST', '/peers/follow', { target: peer.actor })).status).toBe(202);
    const follow = await eventually(async () => peer.received.find((a) => a.type === 'Follow'), 15_000, 'the Follow');
    expect((await peer.post(inbox, peer.activity('Accept', follow))).status).toBe(202);
  }

  beforeAll(async () => {
    const store = STORE_BACKENDS[0].create();
    cleanup = store.cleanup;
    await Promise.all([honest.start('127.0.0.6'), other.start('127.0.0.7'), stranger.start('127.0.0.8')]);
    const port = await freePort('127.0.0.9');
    base = `http://127.0.0.9:${port}`;
    inbox = `${base}/actor/inbox`;
    server = await startServerProcess({
      VOUCH_DATA_DIR: store.config.dataDir,
      VOUCH_HOST: '127.0.0.9',
      VOUCH_PORT: String(port),
      VOUCH_PUBLIC_URL: base,
      VOUCH_ADMIN_TOKEN: TOKEN,
      VOUCH_FEDERATION_ALLOW_HTTP: 'true',
      VOUCH_ALLOW_PRIVATE_NETWORKS: '127.0.0.0/8',
      REDIS_URL: '',
    });
    await befriend(honest);
    await befriend(other);
  });

  afterAll(async () => {
    await server?.stop();
    await Promise.all([honest.stop(), other.stop(), stranger.stop()]);
    await cleanup?.();
  });

  const subject = () => [{ algorithm: 'sha256', digest: hex(32) }];
  const digestOf = (v: Record<string, unknown>) => (v.subject as Array<{ digest: string }>)[0].digest;

  it('accepts an honest, signed, proven Create (the control case)', async () => {
    const verdict = honest.signObject(honest.verdict(subject()));
    const res = await honest.post(inbox, honest.activity('Create', verdict));
    expect(res.status).toBe(202);
    expect(await stored(digestOf(verdict))).toHaveLength(1);
  });

  it('accepts a Create signed by the independent http-signature library', async () => {
    const verdict = honest.signObject(honest.verdict(subject()));
    const body = JSON.stringify(honest.activity('Create', verdict));
    const url = new URL(inbox);
    const headers: Record<string, string> = {
      host: url.host,
      date: new Date().toUTCString(),
      digest: `SHA-256=${createHash('sha256').update(body).digest('base64')}`,
      'content-type': 'application/activity+json',
    };
    const clientRequest = {
      method: 'POST',
      path: url.pathname,
      headers,
      getHeader: (name: string) => headers[name.toLowerCase()],
      setHeader: (name: string, value: string) => (headers[name.toLowerCase()] = value),
    };
    httpSignature.signRequest(clientRequest as never, {
      key: honest.keys.rsa.privatePem,
      keyId: honest.keyId,
      headers: ['(request-target)', 'host', 'date', 'digest'],
      authorizationHeaderName: 'Signature',
    } as never);
    const res = await fetch(inbox, { method: 'POST', headers, body });
    expect(res.status).toBe(202);
    expect(await stored(digestOf(verdict))).toHaveLength(1);
  });

  it('answers an accepted activity with its result and a request id, unlogged; a refusal is logged with its request id', async () => {
    const logged = server.logs.length;
    const accepted = await honest.post(inbox, honest.activity('Create', honest.signObject(honest.verdict(subject()))));
    expect(accepted.status).toBe(202);
    expect(accepted.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(accepted.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    expect(await accepted.json()).toEqual({ status: 'accepted', type: 'Create' });
    const refused = await stranger.post(inbox, stranger.activity('Create', stranger.signObject(stranger.verdict(subject()))));
    expect(refused.status).toBe(403);
    expect(await refused.json()).toMatchObject({ error: { code: 'not_followed' } });
    const id = refused.headers.get('x-request-id');
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    await eventually(async () => server.logs.slice(logged).some((line) => line.includes(id!) && line.includes('"statusCode":403')), 5_000, 'the refusal logged');
    expect(server.logs.slice(logged).filter((line) => line.includes('/actor/inbox'))).toHaveLength(1);
  });

  it('refuses a body past 256 KiB sent without a declared length with 413, and one declared past it unread', async () => {
    const { hostname, port } = new URL(base);
    const exchange = (head: string, body: Buffer) =>
      new Promise<string>((resolve, reject) => {
        const socket = connect(Number(port), hostname, () => socket.write(Buffer.concat([Buffer.from(head.replace(/\n/g, '\r\n')), body])));
        let answer = '';
        socket.on('data', (chunk) => (answer += chunk.toString('latin1')));
        socket.on('error', (err) => (answer ? resolve(answer) : reject(err)));
        socket.on('close', () => resolve(answer));
      });
    const host = `host: ${new URL(base).host}\ncontent-type: application/activity+json\n`;
    const chunk = Buffer.alloc(64 * 1024, 0x20);
    const chunked = Buffer.concat([...Array.from({ length: 5 }, () => Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')])), Buffer.from('0\r\n\r\n')]);
    const streamed = await exchange(`POST /actor/inbox HTTP/1.1\n${host}transfer-encoding: chunked\n\n`, chunked);
    expect(streamed).toMatch(/^HTTP\/1\.1 413 /);
    expect(streamed).toMatch(/"code":"too_large"/);
    const declared = await exchange(`POST /actor/inbox HTTP/1.1\n${host}content-length: ${300 * 1024}\n\n`, Buffer.alloc(10, 0x20));
    expect(declared).toMatch(/^HTTP\/1\.1 413 /);
    expect(declared).toMatch(/"code":"too_large"/);
  });

  it('accepts a gzip-compressed Create, signed over the JSON it carries', async () => {
    const verdict = honest.signObject(honest.verdict(subject()));
    const body = JSON.stringify(honest.activity('Create', verdict));
    const res = await fetch(inbox, { method: 'POST', headers: { ...honest.signedHeaders('POST', inbox, body), 'content-encoding': 'gzip' }, body: gzipSync(body) });
    expect(res.status).toBe(202);
    expect(await stored(digestOf(verdict))).toHaveLength(1);
  });

  it('signs its own deliveries so that the http-signature library verifies them', async () => {
    const delivered = honest.requests.find((r) => r.method === 'POST');
    expect(delivered).toBeDefined();
    const parsed = httpSignature.parseRequest({ ...delivered!, httpVersion: '1.1' } as never, {
      headers: ['(request-target)', 'host', 'date', 'digest'],
    } as never);
    const actor = (await (await fetch(`${base}/actor`)).json()) as { publicKey: { id: string; publicKeyPem: string } };
    expect((parsed as unknown as { keyId: string }).keyId).toBe(actor.publicKey.id);
    expect(httpSignature.verifySignature(parsed, actor.publicKey.publicKeyPem)).toBe(true);
    expect(httpSignature.verifySignature(parsed, honest.keys.rsa.publicPem)).toBe(false);
  });

  it('acknowledges and ignores an unknown activity type', async () => {
    const res = await honest.post(inbox, honest.activity('Like', `${base}/verdicts/x`));
    expect(res.status).toBe(202);
    expect(await res.json()).toMatchObject({ status: 'ignored' });
  });

  type Attack = { status: number; code: RegExp; send: (verdict: Record<string, unknown>) => Promise<Response> };
  const attacks: Record<string, Attack> = {
    unsigned: {
      status: 401,
      code: /missing_signature/,
      send: (v) => fetch(inbox, { method: 'POST', headers: { 'content-type': 'application/activity+json' }, body: JSON.stringify(honest.activity('Create', v)) }),
    },
    'bad signature': {
      status: 401,
      code: /bad_signature/,
      send: (v) => {
        const body = JSON.stringify(honest.activity('Create', v));
        const headers = honest.signedHeaders('POST', inbox, body);
        headers.signature = headers.signature.replace(/signature="([A-Za-z0-9+/])/, (_m, c) => `signature="${c === 'A' ? 'B' : 'A'}`);
        return fetch(inbox, { method: 'POST', headers, body });
      },
    },
    'signature over a different body (Digest mismatch)': {
      status: 401,
      code: /digest_mismatch/,
      send: (v) => {
        const signedBody = JSON.stringify(honest.activity('Create', honest.signObject(honest.verdict(subject()))));
        return fetch(inbox, { method: 'POST', headers: honest.signedHeaders('POST', inbox, signedBody), body: JSON.stringify(honest.activity('Create', v)) });
      },
    },
    'expired Date': {
      status: 401,
      code: /date_skew/,
      send: (v) => honest.post(inbox, honest.activity('Create', v), { date: new Date(Date.now() - 10 * 60_000) }),
    },
    'keyId on another origin': {
      status: 401,
      code: /foreign_key/,
      send: (v) => honest.post(inbox, honest.activity('Create', v), { keyId: other.keyId }),
    },
    'Create whose object id is on another origin': {
      status: 403,
      code: /foreign_object/,
      send: (v) => honest.post(inbox, honest.activity('Create', honest.signObject(changed(v, { id: `${other.origin}/verdicts/${hex(8)}` })))),
    },
    'Create attributed to another actor': {
      status: 403,
      code: /foreign_object/,
      send: (v) => honest.post(inbox, honest.activity('Create', honest.signObject(changed(v, { attributedTo: other.actor })))),
    },
    'a body that is not JSON': {
      status: 400,
      code: /not_json/,
      send: () => fetch(inbox, { method: 'POST', headers: honest.signedHeaders('POST', inbox, 'not json {'), body: 'not json {' }),
    },
    'an oversized body': {
      status: 413,
      code: /too_large/,
      send: (v) => honest.post(inbox, honest.activity('Create', { ...v, padding: 'x'.repeat(300 * 1024) })),
    },
    'a Verdict with an invalid hash': {
      status: 422,
      code: /invalid_object/,
      send: (v) => honest.post(inbox, honest.activity('Create', honest.signObject(changed(v, { subject: [{ algorithm: 'sha256', digest: 'zz'.repeat(32) }] })))),
    },
    'a Verdict with an invalid label': {
      status: 422,
      code: /invalid_object/,
      send: (v) => honest.post(inbox, honest.activity('Create', honest.signObject(changed(v, { label: 'kittens' })))),
    },
    'a valid HTTP signature over a broken object proof': {
      status: 401,
      code: /proof_/,
      send: (v) => honest.post(inbox, honest.activity('Create', { ...v, confidence: 0.1 })),
    },
    'a Create from a peer this instance does not follow': {
      status: 403,
      code: /not_followed/,
      send: () => {
        const own = stranger.signObject(stranger.verdict(subject()));
        return stranger.post(inbox, stranger.activity('Create', own));
      },
    },
  };

  for (const [name, attack] of Object.entries(attacks)) {
    it(`refuses ${name} and stores nothing`, async () => {
      const verdict = honest.signObject(honest.verdict(subject()));
      const res = await attack.send(verdict);
      expect(res.status).toBe(attack.status);
      const body = (await res.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toMatch(attack.code);
      expect(await stored(digestOf(verdict))).toEqual([]);
    });
  }

  it('refuses an Update or Delete of another actor\'s stored verdict', async () => {
    const verdict = honest.signObject(honest.verdict(subject()));
    expect((await honest.post(inbox, honest.activity('Create', verdict))).status).toBe(202);
    const hijacked = other.signObject(changed(verdict, { label: 'ok' }));
    const update = await other.post(inbox, other.activity('Update', hijacked));
    expect(update.status).toBe(403);
    const del = await other.post(inbox, other.activity('Delete', verdict.id));
    expect(del.status).toBe(403);
    expect(await stored(digestOf(verdict))).toMatchObject([{ label: 'csam' }]);
  });

  it('pulls on miss: asks a followed peer before scanning, and its verdict spares the scan', async () => {
    const image = await syntheticJpeg(701);
    const { sha256 } = await (await fetch(`${base}/api/v1/hash`, { method: 'POST', body: image })).json();
    honest.lookupVerdicts = [honest.signObject(honest.verdict([{ algorithm: 'sha256', digest: sha256 }], { label: 'spam', method: 'human', confidence: 0.95 }))];
    // A forged answer (another origin's verdict) is refused, not stored.
    other.lookupVerdicts = [honest.signObject(honest.verdict([{ algorithm: 'sha256', digest: sha256 }], { label: 'ok', method: 'human' }))];
    expect((await admin('PUT', '/trust', { peer: honest.actor, abuse: 0.9, ok: 0.9 })).status).toBe(200);
    // No random spot check (2 % by default) in this deterministic test.
    const { policy } = await (await admin('GET', '/policy')).json();
    expect((await admin('PUT', '/policy', { ...policy, version: 'no-spot-checks', spotCheckShare: 0 })).status).toBe(200);
    for (const peer of [honest, other]) expect((await admin('POST', '/peers/pull', { actor: peer.actor, enabled: true })).status).toBe(200);
    const decision = await (await fetch(`${base}/api/v1/media`, { method: 'POST', body: image, headers: { authorization: `Bearer ${TOKEN}` } })).json();
    expect(honest.lookups).toEqual([expect.stringContaining(`sha256=${sha256}`)]);
    expect(decision).toMatchObject({ outcome: 'block', label: 'spam', scan_pending: false, explanation: { decidedBy: 'peers' } });
    // The pulled verdict is kept, and, since it decided, re-attested as our consensus naming it.
    const kept = await stored(sha256);
    expect(kept).toHaveLength(2);
    expect(kept).toContainEqual(expect.objectContaining({ issuer: honest.actor, label: 'spam', method: 'human' }));
    expect(kept).toContainEqual(
      expect.objectContaining({ local: true, label: 'spam', method: 'consensus', basis: [expect.objectContaining({ issuer: honest.actor, method: 'human' })] }),
    );
  });

  it('refuses a replayed activity', async () => {
    const verdict = honest.signObject(honest.verdict(subject()));
    const activity = honest.activity('Create', verdict);
    expect((await honest.post(inbox, activity)).status).toBe(202);
    const retracted = honest.activity('Delete', verdict.id);
    expect((await honest.post(inbox, retracted)).status).toBe(202);
    expect(await stored(digestOf(verdict))).toEqual([]);
    // Replaying the Create must not resurrect the retracted verdict.
    const replay = await honest.post(inbox, activity);
    expect(replay.status).toBe(409);
    expect((await replay.json()).error.code).toBe('replayed');
    expect(await stored(digestOf(verdict))).toEqual([]);
  });
});

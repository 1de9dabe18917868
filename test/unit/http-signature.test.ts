import { createHash, generateKeyPairSync, type KeyObject } from 'node:crypto';
import httpSignature from 'http-signature';
import { describe, expect, it } from 'vitest';
import {
  digestHeader,
  HttpSignatureError,
  keyIdOrigin,
  parseSignatureHeader,
  signRequest,
  verifyRequest,
  type HttpSignatureReason,
  type VerifyRequestOptions,
} from '../../shared/crypto/http-signature.js';
import {
  generateInstanceKeys,
  generateInstanceKeysSync,
  KeyError,
  loadPrivateKey,
  loadPublicKey,
  publicPemFromPrivate,
} from '../../shared/crypto/keys.js';

const keys = generateInstanceKeysSync();
const rsaPriv = loadPrivateKey(keys.rsa.privatePem);
const rsaPub = loadPublicKey(keys.rsa.publicPem);
const edPriv = loadPrivateKey(keys.ed25519.privatePem);
const edPub = loadPublicKey(keys.ed25519.publicPem);
const other = generateInstanceKeysSync();
const otherRsaPub = loadPublicKey(other.rsa.publicPem);

const NOW = new Date('2025-03-01T12:00:00Z');
const KEY_ID = 'https://vouch.example/actor#main-key';
const URL_ = 'https://peer.example/inbox?x=1';
const BODY = Buffer.from(JSON.stringify({ type: 'Create', id: 'https://vouch.example/a/1' }));

/** Signs a POST and returns the lower-cased header map a server would see. */
function signedPost(privateKey: KeyObject, opts: { body?: Buffer; now?: Date; algorithm?: 'rsa-sha256' | 'hs2019' | 'ed25519' } = {}) {
  const body = 'body' in opts ? opts.body : BODY;
  const base = { 'content-type': 'application/activity+json' };
  const added = signRequest({
    method: 'POST',
    url: URL_,
    headers: base,
    body,
    keyId: KEY_ID,
    privateKey,
    now: opts.now ?? NOW,
    ...(opts.algorithm ? { algorithm: opts.algorithm } : {}),
  });
  const headers: Record<string, string> = { ...base };
  for (const [k, v] of Object.entries(added)) if (v !== undefined) headers[k.toLowerCase()] = v;
  return { headers, body, added };
}

function verifyOpts(over: Partial<VerifyRequestOptions> & { headers: VerifyRequestOptions['headers'] }): VerifyRequestOptions {
  return { method: 'POST', path: '/inbox?x=1', body: BODY, publicKey: rsaPub, now: NOW, ...over };
}

function expectReason(fn: () => unknown, reason: HttpSignatureReason): HttpSignatureError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(HttpSignatureError);
    expect((e as HttpSignatureError).reason).toBe(reason);
    expect((e as Error).message.length).toBeGreaterThan(0);
    return e as HttpSignatureError;
  }
  throw new Error(`expected HttpSignatureError(${reason}), nothing thrown`);
}

/** Replaces one parameter of a Signature header value. */
function withParam(sig: string, name: string, value: string): string {
  return sig.replace(new RegExp(`${name}="[^"]*"`), `${name}="${value}"`);
}

describe('signRequest', () => {
  it('adds Date, Digest, Host and a Signature over (request-target) host date digest', () => {
    const { added } = signedPost(rsaPriv);
    expect(added.Date).toBe('Sat, 01 Mar 2025 12:00:00 GMT');
    expect(added.Host).toBe('peer.example');
    expect(added.Digest).toBe(`SHA-256=${createHash('sha256').update(BODY).digest('base64')}`);
    const p = parseSignatureHeader(added.Signature);
    expect(p).toMatchObject({ keyId: KEY_ID, algorithm: 'rsa-sha256', headers: ['(request-target)', 'host', 'date', 'digest'] });
  });

  it('omits Digest for a bodyless GET, keeps an existing Date, includes the port in Host', () => {
    const added = signRequest({
      method: 'GET',
      url: 'https://peer.example:8443/outbox?page=2',
      headers: { date: 'Sat, 01 Mar 2025 11:59:00 GMT' },
      keyId: KEY_ID,
      privateKey: rsaPriv,
    });
    expect(added.Date).toBeUndefined();
    expect(added.Digest).toBeUndefined();
    expect(added.Host).toBe('peer.example:8443');
    expect(parseSignatureHeader(added.Signature).headers).toEqual(['(request-target)', 'host', 'date']);
    const headers = { host: added.Host, date: 'Sat, 01 Mar 2025 11:59:00 GMT', signature: added.Signature };
    expect(verifyRequest({ method: 'GET', path: '/outbox?page=2', headers, publicKey: rsaPub, now: NOW }).keyId).toBe(KEY_ID);
  });

  it('defaults Ed25519 keys to hs2019 and accepts the "ed25519" name', () => {
    expect(parseSignatureHeader(signedPost(edPriv).added.Signature).algorithm).toBe('hs2019');
    expect(parseSignatureHeader(signedPost(edPriv, { algorithm: 'ed25519' }).added.Signature).algorithm).toBe('ed25519');
    expect(() => signedPost(edPriv, { algorithm: 'rsa-sha256' })).toThrow(TypeError);
    expect(() => signedPost(rsaPriv, { algorithm: 'ed25519' })).toThrow(TypeError);
  });

  it('digestHeader matches the SHA-256 of the body', () => {
    expect(digestHeader('')).toBe('SHA-256=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=');
  });
});

describe('verifyRequest round trips', () => {
  it('RSA rsa-sha256', () => {
    const { headers } = signedPost(rsaPriv);
    expect(verifyRequest(verifyOpts({ headers }))).toEqual({
      keyId: KEY_ID,
      algorithm: 'rsa-sha256',
      signedHeaders: ['(request-target)', 'host', 'date', 'digest'],
    });
  });

  it('RSA hs2019', () => {
    const { headers } = signedPost(rsaPriv, { algorithm: 'hs2019' });
    expect(verifyRequest(verifyOpts({ headers })).algorithm).toBe('rsa-sha256');
  });

  it('Ed25519 hs2019 and ed25519', () => {
    for (const algorithm of ['hs2019', 'ed25519'] as const) {
      const { headers } = signedPost(edPriv, { algorithm });
      const r = verifyRequest(verifyOpts({ headers, publicKey: edPub }));
      expect(r).toMatchObject({ keyId: KEY_ID, algorithm: 'ed25519' });
    }
  });

  it('accepts a missing algorithm parameter (derived from the key) and a Date exactly 300 s off', () => {
    const { headers } = signedPost(rsaPriv);
    headers.signature = headers.signature!.replace('algorithm="rsa-sha256",', '');
    expect(verifyRequest(verifyOpts({ headers })).keyId).toBe(KEY_ID);
    const old = signedPost(rsaPriv, { now: new Date(NOW.getTime() - 300_000) });
    expect(verifyRequest(verifyOpts({ headers: old.headers })).keyId).toBe(KEY_ID);
    const future = signedPost(rsaPriv, { now: new Date(NOW.getTime() + 300_000) });
    expect(verifyRequest(verifyOpts({ headers: future.headers })).keyId).toBe(KEY_ID);
  });

  it('checks an additional SHA-512 digest entry', () => {
    const sha256 = digestHeader(BODY);
    const good512 = createHash('sha512').update(BODY).digest('base64');
    const bad512 = createHash('sha512').update('x').digest('base64');
    const ok = signCustom(rsaPriv, { digest: `${sha256}, SHA-512=${good512}` }, undefined, '/inbox?x=1');
    expect(verifyRequest(verifyOpts({ headers: ok })).keyId).toBe(KEY_ID);
    const bad = signCustom(rsaPriv, { digest: `${sha256}, SHA-512=${bad512}` }, undefined, '/inbox?x=1');
    expectReason(() => verifyRequest(verifyOpts({ headers: bad })), 'digest_mismatch');
  });
});

/**
 * Builds a request signed by the Joyent library with arbitrary header values, for cases our own
 * signer would never produce (custom Digest values, chosen covered headers).
 */
function signCustom(
  key: KeyObject,
  extra: Record<string, string>,
  covered: string[] = ['(request-target)', 'host', 'date', 'digest'],
  path = '/inbox',
): Record<string, string> {
  const headers: Record<string, string> = { host: 'peer.example', date: NOW.toUTCString(), ...extra };
  const req = fakeClientRequest('POST', path, headers);
  const pem = key.export({ type: 'pkcs8', format: 'pem' }).toString();
  httpSignature.signRequest(req as never, {
    key: pem,
    keyId: KEY_ID,
    headers: covered,
    authorizationHeaderName: 'Signature',
  } as never);
  return req.headers;
}

function fakeClientRequest(method: string, path: string, headers: Record<string, string>) {
  return {
    method,
    path,
    headers,
    getHeader(name: string) {
      return headers[name.toLowerCase()];
    },
    setHeader(name: string, value: string) {
      headers[name.toLowerCase()] = value;
    },
  };
}

describe('verifyRequest rejections', () => {
  it('unsigned request -> missing_signature', () => {
    const { headers } = signedPost(rsaPriv);
    delete headers.signature;
    expectReason(() => verifyRequest(verifyOpts({ headers })), 'missing_signature');
  });

  it('signature by another key -> bad_signature', () => {
    const { headers } = signedPost(rsaPriv);
    expectReason(() => verifyRequest(verifyOpts({ headers, publicKey: otherRsaPub })), 'bad_signature');
  });

  it('tampered signature bytes -> bad_signature', () => {
    const { headers } = signedPost(edPriv);
    const p = parseSignatureHeader(headers.signature!);
    const sig = Buffer.from(p.signature, 'base64');
    sig[0] ^= 1;
    headers.signature = withParam(headers.signature!, 'signature', sig.toString('base64'));
    expectReason(() => verifyRequest(verifyOpts({ headers, publicKey: edPub })), 'bad_signature');
  });

  it('a different path or method -> bad_signature', () => {
    const { headers } = signedPost(rsaPriv);
    expectReason(() => verifyRequest(verifyOpts({ headers, path: '/inbox' })), 'bad_signature');
    expectReason(() => verifyRequest(verifyOpts({ headers, method: 'PUT' })), 'bad_signature');
  });

  it('a changed covered header (host) -> bad_signature', () => {
    const { headers } = signedPost(rsaPriv);
    headers.host = 'evil.example';
    expectReason(() => verifyRequest(verifyOpts({ headers })), 'bad_signature');
  });

  it('body changed -> digest_mismatch', () => {
    const { headers } = signedPost(rsaPriv);
    expectReason(() => verifyRequest(verifyOpts({ headers, body: Buffer.from(`${BODY.toString()} `) })), 'digest_mismatch');
  });

  it('body and Digest both changed -> bad_signature', () => {
    const { headers } = signedPost(rsaPriv);
    const body = Buffer.from('{"type":"Delete"}');
    headers.digest = digestHeader(body);
    expectReason(() => verifyRequest(verifyOpts({ headers, body })), 'bad_signature');
  });

  it('body without Digest header -> missing_header', () => {
    const { headers } = signedPost(rsaPriv);
    delete headers.digest;
    expectReason(() => verifyRequest(verifyOpts({ headers })), 'missing_header');
  });

  it('Digest with only unknown algorithms -> unsupported_digest', () => {
    const h = signCustom(rsaPriv, { digest: 'MD5=1B2M2Y8AsgTpgAmY7PhCfg==' });
    expectReason(
      () => verifyRequest({ method: 'POST', path: '/inbox', headers: h, body: Buffer.alloc(0), publicKey: rsaPub, now: NOW }),
      'unsupported_digest',
    );
  });

  it('Date 301 s old -> date_skew', () => {
    const { headers } = signedPost(rsaPriv, { now: new Date(NOW.getTime() - 301_000) });
    const e = expectReason(() => verifyRequest(verifyOpts({ headers })), 'date_skew');
    expect(e.message).toMatch(/301s in the past/);
  });

  it('Date 301 s in the future -> date_skew', () => {
    const { headers } = signedPost(rsaPriv, { now: new Date(NOW.getTime() + 301_000) });
    const e = expectReason(() => verifyRequest(verifyOpts({ headers })), 'date_skew');
    expect(e.message).toMatch(/301s in the future/);
  });

  it('maxSkewSeconds is honoured', () => {
    const { headers } = signedPost(rsaPriv, { now: new Date(NOW.getTime() - 61_000) });
    expectReason(() => verifyRequest(verifyOpts({ headers, maxSkewSeconds: 60 })), 'date_skew');
  });

  it('Date not an IMF-fixdate -> invalid_date', () => {
    const h = signCustom(rsaPriv, { date: '2025-03-01T12:00:00Z', digest: digestHeader('') });
    expectReason(
      () => verifyRequest({ method: 'POST', path: '/inbox', headers: h, body: Buffer.alloc(0), publicKey: rsaPub, now: NOW }),
      'invalid_date',
    );
  });

  it('required header not covered -> header_not_covered', () => {
    for (const missing of ['(request-target)', 'host', 'date', 'digest']) {
      const covered = ['(request-target)', 'host', 'date', 'digest'].filter((h) => h !== missing);
      const h = signCustom(rsaPriv, { digest: digestHeader(BODY) }, covered);
      const e = expectReason(
        () => verifyRequest({ method: 'POST', path: '/inbox', headers: h, body: BODY, publicKey: rsaPub, now: NOW }),
        'header_not_covered',
      );
      expect(e.message).toContain(missing);
    }
  });

  it('signature without a headers list (defaults to date only) -> header_not_covered', () => {
    const { headers } = signedPost(rsaPriv);
    headers.signature = headers.signature!.replace(/headers="[^"]*",/, '');
    expectReason(() => verifyRequest(verifyOpts({ headers })), 'header_not_covered');
  });

  it('covered header absent from the request -> missing_header', () => {
    const h = signCustom(rsaPriv, { digest: digestHeader(BODY), 'content-type': 'application/activity+json' }, [
      '(request-target)',
      'host',
      'date',
      'digest',
      'content-type',
    ]);
    delete h['content-type'];
    expectReason(
      () => verifyRequest({ method: 'POST', path: '/inbox', headers: h, body: BODY, publicKey: rsaPub, now: NOW }),
      'missing_header',
    );
  });

  it('malformed Signature header -> malformed_signature', () => {
    const { headers } = signedPost(rsaPriv);
    headers.signature = 'garbage';
    expectReason(() => verifyRequest(verifyOpts({ headers })), 'malformed_signature');
    headers.signature = ['a', 'b'] as never;
    expectReason(() => verifyRequest(verifyOpts({ headers })), 'malformed_signature');
  });

  it('rsa-sha256 claimed with an Ed25519 key -> algorithm_mismatch', () => {
    const { headers } = signedPost(edPriv);
    headers.signature = withParam(headers.signature!, 'algorithm', 'rsa-sha256');
    expectReason(() => verifyRequest(verifyOpts({ headers, publicKey: edPub })), 'algorithm_mismatch');
  });

  it('ed25519 claimed with an RSA key -> algorithm_mismatch', () => {
    const { headers } = signedPost(rsaPriv);
    headers.signature = withParam(headers.signature!, 'algorithm', 'ed25519');
    expectReason(() => verifyRequest(verifyOpts({ headers })), 'algorithm_mismatch');
  });

  it('Ed25519 signature checked against an RSA key -> bad_signature (hs2019 derives rsa-sha256)', () => {
    const { headers } = signedPost(edPriv);
    expectReason(() => verifyRequest(verifyOpts({ headers })), 'bad_signature');
  });

  it('hmac-sha256, rsa-sha1 and unknown algorithms -> unsupported_algorithm', () => {
    for (const alg of ['hmac-sha256', 'rsa-sha1', 'rsa-sha512', 'ecdsa-sha256', 'none']) {
      const { headers } = signedPost(rsaPriv);
      headers.signature = withParam(headers.signature!, 'algorithm', alg);
      expectReason(() => verifyRequest(verifyOpts({ headers })), 'unsupported_algorithm');
    }
  });

  it('hs2019 with an HMAC (secret) key -> unsupported_algorithm', async () => {
    const { createSecretKey } = await import('node:crypto');
    const { headers } = signedPost(rsaPriv, { algorithm: 'hs2019' });
    expectReason(() => verifyRequest(verifyOpts({ headers, publicKey: createSecretKey(Buffer.alloc(32, 1)) })), 'unsupported_algorithm');
  });

  it('an expired (expires) parameter -> expired', () => {
    const h = signCustom(rsaPriv, { digest: digestHeader(BODY) }, ['(request-target)', 'host', 'date', 'digest']);
    h.signature = `${h.signature},expires=${Math.floor(NOW.getTime() / 1000) - 400}`;
    expectReason(
      () => verifyRequest({ method: 'POST', path: '/inbox', headers: h, body: BODY, publicKey: rsaPub, now: NOW }),
      'expired',
    );
  });

  it('errors never contain key material', () => {
    const { headers } = signedPost(rsaPriv);
    const e = expectReason(() => verifyRequest(verifyOpts({ headers, publicKey: otherRsaPub })), 'bad_signature');
    const b64Body = keys.rsa.publicPem.split('\n')[1]!;
    expect(e.message).not.toContain(b64Body);
    expect(JSON.stringify(e)).not.toContain(b64Body);
  });
});

describe('parseSignatureHeader', () => {
  const good = 'keyId="https://a.example/actor#key",algorithm="rsa-sha256",headers="(request-target) host date",signature="YWJjZA=="';

  it('parses a well-formed header, tolerating spaces after commas and unknown params', () => {
    expect(parseSignatureHeader(good)).toEqual({
      keyId: 'https://a.example/actor#key',
      algorithm: 'rsa-sha256',
      headers: ['(request-target)', 'host', 'date'],
      signature: 'YWJjZA==',
    });
    const spaced = good.replaceAll('",', '", ') + ', foo="bar"';
    expect(parseSignatureHeader(spaced).keyId).toBe('https://a.example/actor#key');
    expect(parseSignatureHeader(`${good},created=1700000000,expires="1700000060"`)).toMatchObject({
      created: 1700000000,
      expires: 1700000060,
    });
    expect(parseSignatureHeader('keyId="k",signature="YWJjZA=="').headers).toEqual(['date']);
  });

  it.each([
    ['empty', ''],
    ['no params', 'garbage'],
    ['missing keyId', 'algorithm="rsa-sha256",signature="YWJjZA=="'],
    ['empty keyId', 'keyId="",signature="YWJjZA=="'],
    ['missing signature', 'keyId="k",algorithm="rsa-sha256"'],
    ['duplicate keyId', 'keyId="a",keyId="b",signature="YWJjZA=="'],
    ['unquoted string', 'keyId=k,signature="YWJjZA=="'],
    ['unterminated quote', 'keyId="k,signature="YWJjZA=='],
    ['trailing garbage', `${good} x`],
    ['trailing comma', `${good},`],
    ['missing comma', 'keyId="k" signature="YWJjZA=="'],
    ['backslash escape', 'keyId="k\\"",signature="YWJjZA=="'],
    ['non-base64 signature', 'keyId="k",signature="not base64!"'],
    ['bad base64 padding', 'keyId="k",signature="YWJjZA="'],
    ['empty headers', 'keyId="k",headers="",signature="YWJjZA=="'],
    ['double space in headers', 'keyId="k",headers="host  date",signature="YWJjZA=="'],
    ['duplicate header entry', 'keyId="k",headers="date date",signature="YWJjZA=="'],
    ['non-integer created', 'keyId="k",signature="YWJjZA==",created="soon"'],
    ['Authorization-style scheme prefix', `Signature ${good}`],
    ['control char', 'keyId="k\u0001",signature="YWJjZA=="'],
  ])('rejects %s', (_name, value) => {
    expectReason(() => parseSignatureHeader(value), 'malformed_signature');
  });

  it('rejects absurdly long headers', () => {
    expectReason(() => parseSignatureHeader(`keyId="${'a'.repeat(9000)}",signature="YWJjZA=="`), 'malformed_signature');
  });
});

describe('keyIdOrigin', () => {
  it('returns the origin of an http(s) keyId', () => {
    expect(keyIdOrigin('https://Peer.Example:443/users/a#main-key')).toBe('https://peer.example');
    expect(keyIdOrigin('http://peer.example:8080/actor#k')).toBe('http://peer.example:8080');
  });
  it('rejects non-URLs, other schemes and credentials', () => {
    expectReason(() => keyIdOrigin('main-key'), 'invalid_key_id');
    expectReason(() => keyIdOrigin('did:key:z6Mk'), 'invalid_key_id');
    expectReason(() => keyIdOrigin('https://u:p@peer.example/k'), 'invalid_key_id');
  });
});

describe('interop with Joyent http-signature 1.4', () => {
  it('the library verifies our RSA signature', () => {
    const { headers } = signedPost(rsaPriv);
    const req = { method: 'POST', url: '/inbox?x=1', headers, httpVersion: '1.1' };
    const parsed = httpSignature.parseRequest(req as never, {
      headers: ['(request-target)', 'host', 'date', 'digest'],
      clockSkew: 10 * 365 * 86400,
    } as never);
    expect((parsed as unknown as { keyId: string }).keyId).toBe(KEY_ID);
    expect(httpSignature.verifySignature(parsed, keys.rsa.publicPem)).toBe(true);
    expect(httpSignature.verifySignature(parsed, other.rsa.publicPem)).toBe(false);
  });

  it('the library verifies our Ed25519 signature bytes (it cannot parse "hs2019", so the name is swapped)', () => {
    const { headers } = signedPost(edPriv);
    const req = { method: 'POST', url: '/inbox?x=1', headers, httpVersion: '1.1' };
    expect(() => httpSignature.parseRequest(req as never, { clockSkew: 1e9 } as never)).toThrow(/hs2019/);
    // algorithm is not part of the signing string, so renaming it leaves the signature valid.
    const renamed = { ...req, headers: { ...headers, signature: withParam(headers.signature!, 'algorithm', 'ed25519-sha512') } };
    const parsed = httpSignature.parseRequest(renamed as never, { clockSkew: 1e9 } as never);
    expect(httpSignature.verifySignature(parsed, keys.ed25519.publicPem)).toBe(true);
  });

  it('we verify an RSA request signed by the library', () => {
    const h = signCustom(rsaPriv, { digest: digestHeader(BODY) }, ['(request-target)', 'host', 'date', 'digest'], '/inbox?x=1');
    expect(parseSignatureHeader(h.signature!).algorithm).toBe('rsa-sha256');
    expect(verifyRequest(verifyOpts({ headers: h })).keyId).toBe(KEY_ID);
  });

  it('we verify an Ed25519 request signed by the library ("ed25519-sha512")', () => {
    const h = signCustom(edPriv, { digest: digestHeader(BODY) }, ['(request-target)', 'host', 'date', 'digest'], '/inbox?x=1');
    expect(parseSignatureHeader(h.signature!).algorithm).toBe('ed25519-sha512');
    expect(verifyRequest(verifyOpts({ headers: h, publicKey: edPub })).algorithm).toBe('ed25519');
    expectReason(() => verifyRequest(verifyOpts({ headers: h, publicKey: rsaPub })), 'algorithm_mismatch');
  });

  it('we reject a library-signed request whose body was swapped', () => {
    const h = signCustom(rsaPriv, { digest: digestHeader(BODY) }, undefined, '/inbox?x=1');
    expectReason(() => verifyRequest(verifyOpts({ headers: h, body: Buffer.from('{}') })), 'digest_mismatch');
  });
});

describe('keys', () => {
  it('generates RSA-2048 and Ed25519 PEM pairs that load and match', async () => {
    const k = await generateInstanceKeys();
    expect(k.rsa.privatePem).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    expect(k.rsa.publicPem).toMatch(/^-----BEGIN PUBLIC KEY-----/);
    expect(k.ed25519.privatePem).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    const rsa = loadPrivateKey(k.rsa.privatePem);
    expect(rsa.asymmetricKeyType).toBe('rsa');
    expect(rsa.asymmetricKeyDetails?.modulusLength).toBe(2048);
    expect(loadPrivateKey(k.ed25519.privatePem).asymmetricKeyType).toBe('ed25519');
    expect(publicPemFromPrivate(rsa)).toBe(k.rsa.publicPem);
  });

  it('loaders reject junk, private keys as public keys, small RSA and other curves', () => {
    expect(() => loadPublicKey('nope')).toThrow(KeyError);
    expect(() => loadPrivateKey('nope')).toThrow(KeyError);
    expect(() => loadPublicKey(keys.rsa.privatePem)).toThrow(KeyError);
    const small = generateKeyPairSync('rsa', { modulusLength: 1024, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } });
    expect(() => loadPublicKey(small.publicKey)).toThrow(/too small/);
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256', publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } });
    expect(() => loadPublicKey(ec.publicKey)).toThrow(KeyError);
    try {
      loadPrivateKey(keys.rsa.privatePem.replace('A', 'B').slice(0, 200));
    } catch (e) {
      expect((e as Error).message).not.toContain(keys.rsa.privatePem.split('\n')[1]!.slice(0, 20));
    }
  });

  it('loads PKCS#1 "RSA PUBLIC KEY" PEM', () => {
    const pkcs1 = rsaPub.export({ type: 'pkcs1', format: 'pem' }).toString();
    expect(pkcs1).toMatch(/BEGIN RSA PUBLIC KEY/);
    expect(loadPublicKey(pkcs1).asymmetricKeyType).toBe('rsa');
  });
});

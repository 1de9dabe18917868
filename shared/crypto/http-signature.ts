/**
 * HTTP Signatures, draft-cavage-http-signatures-12, as the fediverse uses them.
 *
 * Signing covers `(request-target) host date` plus `digest` when there is a body, with
 * `Digest: SHA-256=<base64>` (RFC 3230). Algorithms:
 *  - RSA keys: `rsa-sha256` (default) or `hs2019`; both are RSASSA-PKCS1-v1_5 with SHA-256, which is
 *    what Mastodon & co. mean by hs2019 with an RSA key.
 *  - Ed25519 keys: `hs2019` (default) or `ed25519`; pure Ed25519 over the signing string.
 *    On verification `ed25519-sha512` (what Joyent's http-signature/sshpk emit for Ed25519 keys,
 *    also pure Ed25519) is accepted as an alias.
 *
 * Verification is pure: it returns the `keyId`; the caller fetches that key, checks that its origin
 * ({@link keyIdOrigin}) is the actor's origin, and checks that `host` is its own host.
 * Errors are {@link HttpSignatureError} with a machine-readable `reason`; they never carry key material.
 */
import { createHash, sign as cryptoSign, timingSafeEqual, verify as cryptoVerify, type KeyObject } from 'node:crypto';

export type HttpSignatureReason =
  | 'missing_signature' // no Signature header
  | 'malformed_signature' // Signature header does not parse, or unsupported pseudo-header
  | 'missing_header' // a covered header (or Digest for a body) is absent from the request
  | 'header_not_covered' // a required header is present but not in the signed list
  | 'invalid_date' // Date header is not an IMF-fixdate
  | 'date_skew' // Date (or created) outside the allowed skew
  | 'expired' // the signature's `expires` parameter has passed
  | 'digest_mismatch' // Digest header does not match the body
  | 'unsupported_digest' // Digest header has no SHA-256 / SHA-512 entry, or is malformed
  | 'unsupported_algorithm' // algorithm not one of rsa-sha256, hs2019, ed25519, or unsupported key type
  | 'algorithm_mismatch' // algorithm does not fit the key type (e.g. rsa-sha256 with an Ed25519 key)
  | 'bad_signature' // the signature does not verify
  | 'invalid_key_id'; // keyId is not an http(s) URL (keyIdOrigin)

export class HttpSignatureError extends Error {
  override readonly name = 'HttpSignatureError';
  constructor(
    readonly reason: HttpSignatureReason,
    message: string,
  ) {
    super(message);
  }
}

export type SignatureAlgorithm = 'rsa-sha256' | 'hs2019' | 'ed25519';

export interface SignRequestOptions {
  method: string;
  /** Absolute URL of the request. */
  url: string | URL;
  /** Headers the request already has (any case). `Date` and `Host` are reused if present. */
  headers?: Record<string, string | undefined>;
  body?: Buffer | Uint8Array | string;
  keyId: string;
  privateKey: KeyObject;
  algorithm?: SignatureAlgorithm;
  /** Clock for the Date header (tests). */
  now?: Date;
}

export interface SignedHeaders {
  Date?: string;
  Digest?: string;
  Host: string;
  Signature: string;
  [name: string]: string | undefined;
}

export interface ParsedSignature {
  keyId: string;
  /** Lower-cased; undefined when the header omits it (treated as hs2019). */
  algorithm: string | undefined;
  /** Lower-cased covered header names, in order. Defaults to ["date"] when absent (draft-12 §2.1.6). */
  headers: string[];
  /** Base64 signature, as sent. */
  signature: string;
  created?: number;
  expires?: number;
}

export interface VerifyRequestOptions {
  method: string;
  /** Request target path including the query string, exactly as received (e.g. `/inbox?x=1`). */
  path: string;
  /** Request headers, lower-cased names. Repeated headers may be arrays (joined with ", "). */
  headers: Record<string, string | string[] | undefined>;
  body?: Buffer | Uint8Array;
  publicKey: KeyObject;
  now?: Date;
  maxSkewSeconds?: number;
}

export interface VerifyResult {
  keyId: string;
  /** The algorithm actually used to verify. */
  algorithm: 'rsa-sha256' | 'ed25519';
  /** Covered headers, lower-cased, in signed order. */
  signedHeaders: string[];
}

const MAX_SIGNATURE_HEADER = 8192;
const MAX_IN_MESSAGE = 120;

/** Truncates attacker-controlled text before it goes into an error message. */
function quoteForMessage(s: string): string {
  const t = s.length > MAX_IN_MESSAGE ? `${s.slice(0, MAX_IN_MESSAGE)}…` : s;
  return JSON.stringify(t);
}

function toBuffer(body: Buffer | Uint8Array | string | undefined): Buffer {
  if (body === undefined) return Buffer.alloc(0);
  if (typeof body === 'string') return Buffer.from(body, 'utf8');
  return Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
}

/** `SHA-256=<base64>` of the body, for the Digest header. */
export function digestHeader(body: Buffer | Uint8Array | string): string {
  return `SHA-256=${createHash('sha256').update(toBuffer(body)).digest('base64')}`;
}

/**
 * Origin (`https://host[:port]`) of an http(s) keyId, to compare with the actor's origin.
 * Throws {@link HttpSignatureError} `invalid_key_id` for anything else.
 */
export function keyIdOrigin(keyId: string): string {
  let u: URL;
  try {
    u = new URL(keyId);
  } catch {
    throw new HttpSignatureError('invalid_key_id', `keyId is not a URL: ${quoteForMessage(keyId)}`);
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') {
    throw new HttpSignatureError('invalid_key_id', `keyId must be an http(s) URL: ${quoteForMessage(keyId)}`);
  }
  if (u.username !== '' || u.password !== '') {
    throw new HttpSignatureError('invalid_key_id', 'keyId must not contain credentials');
  }
  return u.origin;
}

function keyKind(key: KeyObject): 'rsa' | 'ed25519' {
  if (key.type !== 'secret') {
    if (key.asymmetricKeyType === 'rsa') return 'rsa';
    if (key.asymmetricKeyType === 'ed25519') return 'ed25519';
  }
  throw new HttpSignatureError(
    'unsupported_algorithm',
    `unsupported key type ${key.type === 'secret' ? 'secret (HMAC)' : String(key.asymmetricKeyType)}`,
  );
}

function findHeader(headers: Record<string, string | undefined> | undefined, name: string): string | undefined {
  if (!headers) return undefined;
  const lower = name.toLowerCase();
  for (const [k, v] of Object.entries(headers)) {
    if (k.toLowerCase() === lower && v !== undefined) return v;
  }
  return undefined;
}

/**
 * Signs an outgoing request. Returns the headers to add: `Date` (only when the request has none),
 * `Digest` (when there is a body), `Host`, `Signature`.
 */
export function signRequest(opts: SignRequestOptions): SignedHeaders {
  const url = typeof opts.url === 'string' ? new URL(opts.url) : opts.url;
  const kind = keyKind(opts.privateKey);
  if (opts.privateKey.type !== 'private') throw new TypeError('signRequest needs a private key');
  const algorithm: SignatureAlgorithm = opts.algorithm ?? (kind === 'rsa' ? 'rsa-sha256' : 'hs2019');
  if (kind === 'rsa' && algorithm === 'ed25519') throw new TypeError('algorithm "ed25519" needs an Ed25519 key');
  if (kind === 'ed25519' && algorithm === 'rsa-sha256') throw new TypeError('algorithm "rsa-sha256" needs an RSA key');
  if (/[\s"\\]/.test(opts.keyId) || opts.keyId === '') throw new TypeError('keyId must be non-empty, without spaces or quotes');

  const out: SignedHeaders = { Host: findHeader(opts.headers, 'host') ?? url.host, Signature: '' };
  let date = findHeader(opts.headers, 'date');
  if (date === undefined) {
    date = (opts.now ?? new Date()).toUTCString();
    out.Date = date;
  }
  const covered = ['(request-target)', 'host', 'date'];
  const values: Record<string, string> = {
    '(request-target)': `${opts.method.toLowerCase()} ${url.pathname}${url.search}`,
    host: out.Host,
    date,
  };
  if (opts.body !== undefined) {
    out.Digest = digestHeader(opts.body);
    covered.push('digest');
    values.digest = out.Digest;
  }
  const signingString = covered.map((h) => `${h}: ${values[h]}`).join('\n');
  const data = Buffer.from(signingString, 'utf8');
  const sig = kind === 'rsa' ? cryptoSign('sha256', data, opts.privateKey) : cryptoSign(null, data, opts.privateKey);
  out.Signature =
    `keyId="${opts.keyId}",algorithm="${algorithm}",headers="${covered.join(' ')}",` +
    `signature="${sig.toString('base64')}"`;
  return out;
}

const NUMERIC_PARAMS = new Set(['created', 'expires']);
const TOKEN = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const HEADER_NAME = /^(?:[a-z0-9!#$%&'*+.^_`|~-]+|\([a-z-]+\))$/;

function malformed(msg: string): HttpSignatureError {
  return new HttpSignatureError('malformed_signature', `malformed Signature header: ${msg}`);
}

/**
 * Strict parser for the Signature header value: `name="value"` pairs separated by commas (optional
 * whitespace around them); `created`/`expires` may also be bare integers. Rejects duplicates, empty
 * or missing keyId/signature, invalid base64, backslashes/controls in values, trailing garbage.
 * Unknown well-formed parameters are ignored (draft-12 §2.2). Throws `malformed_signature`.
 */
export function parseSignatureHeader(value: string): ParsedSignature {
  if (typeof value !== 'string' || value.trim() === '') throw malformed('empty');
  if (value.length > MAX_SIGNATURE_HEADER) throw malformed('too long');
  const params = new Map<string, string>();
  let i = 0;
  const n = value.length;
  const skipOws = () => {
    while (i < n && (value[i] === ' ' || value[i] === '\t')) i++;
  };
  skipOws();
  for (;;) {
    const nameStart = i;
    while (i < n && value[i] !== '=' && value[i] !== ',' && value[i] !== ' ' && value[i] !== '\t') i++;
    const name = value.slice(nameStart, i);
    if (!TOKEN.test(name)) throw malformed(`bad parameter name at offset ${nameStart}`);
    if (value[i] !== '=') throw malformed(`expected "=" after ${quoteForMessage(name)}`);
    i++;
    let v: string;
    if (value[i] === '"') {
      i++;
      const start = i;
      while (i < n && value[i] !== '"') {
        const c = value.charCodeAt(i);
        if (c === 0x5c) throw malformed('backslash escapes are not allowed');
        if (c < 0x20 || c === 0x7f) throw malformed('control character in value');
        i++;
      }
      if (i >= n) throw malformed(`unterminated quoted value for ${quoteForMessage(name)}`);
      v = value.slice(start, i);
      i++;
    } else {
      const start = i;
      while (i < n && value[i] >= '0' && value[i] <= '9') i++;
      v = value.slice(start, i);
      if (v === '' || !NUMERIC_PARAMS.has(name)) throw malformed(`value of ${quoteForMessage(name)} must be quoted`);
    }
    if (params.has(name)) throw malformed(`duplicate parameter ${quoteForMessage(name)}`);
    params.set(name, v);
    skipOws();
    if (i >= n) break;
    if (value[i] !== ',') throw malformed(`unexpected character at offset ${i}`);
    i++;
    skipOws();
    if (i >= n) throw malformed('trailing comma');
  }

  const keyId = params.get('keyId');
  const signature = params.get('signature');
  if (keyId === undefined || keyId === '') throw malformed('keyId is required');
  if (signature === undefined || signature === '') throw malformed('signature is required');
  if (!BASE64.test(signature)) throw malformed('signature is not base64');
  const algorithm = params.get('algorithm');
  if (algorithm !== undefined && algorithm === '') throw malformed('empty algorithm');
  const rawHeaders = params.get('headers');
  let headers: string[];
  if (rawHeaders === undefined) {
    headers = ['date'];
  } else {
    headers = rawHeaders.split(' ').map((h) => h.toLowerCase());
    if (headers.some((h) => h === '' || !HEADER_NAME.test(h))) throw malformed('bad headers list');
    if (new Set(headers).size !== headers.length) throw malformed('duplicate entry in headers list');
  }
  const result: ParsedSignature = { keyId, algorithm: algorithm?.toLowerCase(), headers, signature };
  for (const p of NUMERIC_PARAMS) {
    const raw = params.get(p);
    if (raw === undefined) continue;
    if (!/^\d{1,15}$/.test(raw)) throw malformed(`${p} must be an integer`);
    result[p as 'created' | 'expires'] = Number(raw);
  }
  return result;
}

const IMF_FIXDATE =
  /^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT$/;

function headerValue(headers: VerifyRequestOptions['headers'], name: string): string | undefined {
  const v = headers[name];
  if (v === undefined) return undefined;
  return Array.isArray(v) ? v.map((x) => x.trim()).join(', ') : v.trim();
}

/** Resolves the effective verification algorithm for a claimed algorithm and key type. */
function resolveAlgorithm(claimed: string | undefined, kind: 'rsa' | 'ed25519'): 'rsa-sha256' | 'ed25519' {
  const alg = claimed ?? 'hs2019';
  switch (alg) {
    case 'hs2019':
      return kind === 'rsa' ? 'rsa-sha256' : 'ed25519';
    case 'rsa-sha256':
      if (kind !== 'rsa') throw new HttpSignatureError('algorithm_mismatch', `algorithm rsa-sha256 claimed with an ${kind} key`);
      return 'rsa-sha256';
    case 'ed25519':
    case 'ed25519-sha512':
      if (kind !== 'ed25519') throw new HttpSignatureError('algorithm_mismatch', `algorithm ${alg} claimed with an ${kind} key`);
      return 'ed25519';
    default:
      throw new HttpSignatureError('unsupported_algorithm', `unsupported algorithm ${quoteForMessage(alg)}`);
  }
}

const DIGEST_ALGS: Record<string, { hash: string; size: number }> = {
  'sha-256': { hash: 'sha256', size: 32 },
  'sha-512': { hash: 'sha512', size: 64 },
};

/** Checks every SHA-256 / SHA-512 entry of a Digest header against the body. */
function checkDigest(digest: string, body: Buffer): void {
  let checked = 0;
  for (const part of digest.split(',')) {
    const entry = part.trim();
    const eq = entry.indexOf('=');
    if (eq <= 0) throw new HttpSignatureError('unsupported_digest', 'malformed Digest header');
    const alg = DIGEST_ALGS[entry.slice(0, eq).toLowerCase()];
    if (!alg) continue; // other algorithms (e.g. MD5) are ignored, never trusted
    const expectedB64 = entry.slice(eq + 1);
    if (!BASE64.test(expectedB64)) throw new HttpSignatureError('unsupported_digest', 'Digest value is not base64');
    const expected = Buffer.from(expectedB64, 'base64');
    const actual = createHash(alg.hash).update(body).digest();
    if (expected.length !== alg.size || !timingSafeEqual(expected, actual)) {
      throw new HttpSignatureError('digest_mismatch', `Digest ${entry.slice(0, eq)} does not match the body`);
    }
    checked++;
  }
  if (checked === 0) throw new HttpSignatureError('unsupported_digest', 'Digest header has no SHA-256 or SHA-512 value');
}

/**
 * Verifies a signed incoming request. Requires `(request-target)`, `host` and `date` to be covered,
 * and `digest` when there is a (non-empty) body; checks Date within ±maxSkewSeconds (default 300),
 * the Digest against the body, and the signature with the given public key.
 * Returns `{ keyId, ... }`; throws {@link HttpSignatureError}.
 */
export function verifyRequest(opts: VerifyRequestOptions): VerifyResult {
  const now = (opts.now ?? new Date()).getTime();
  const maxSkewMs = (opts.maxSkewSeconds ?? 300) * 1000;
  const raw = opts.headers['signature'];
  if (raw === undefined || raw === '') throw new HttpSignatureError('missing_signature', 'request has no Signature header');
  if (Array.isArray(raw)) throw malformed('more than one Signature header');
  const parsed = parseSignatureHeader(raw);
  const body = toBuffer(opts.body);

  const required = ['(request-target)', 'host', 'date'];
  if (body.length > 0) required.push('digest');
  for (const h of required) {
    if (!parsed.headers.includes(h)) {
      throw new HttpSignatureError('header_not_covered', `signature does not cover ${h}`);
    }
  }

  const kind = keyKind(opts.publicKey);
  const algorithm = resolveAlgorithm(parsed.algorithm, kind);

  // Build the signing string; every covered header must be present.
  const lines: string[] = [];
  for (const h of parsed.headers) {
    let v: string | undefined;
    if (h === '(request-target)') v = `${opts.method.toLowerCase()} ${opts.path}`;
    else if (h === '(created)' || h === '(expires)') {
      const p = parsed[h === '(created)' ? 'created' : 'expires'];
      if (p === undefined) throw malformed(`${h} is covered but the parameter is absent`);
      v = String(p);
    } else if (h.startsWith('(')) throw malformed(`unsupported pseudo-header ${quoteForMessage(h)}`);
    else {
      v = headerValue(opts.headers, h);
      if (v === undefined) throw new HttpSignatureError('missing_header', `covered header ${h} is missing from the request`);
    }
    lines.push(`${h}: ${v}`);
  }

  // Freshness.
  const date = headerValue(opts.headers, 'date') as string; // covered, so present
  if (!IMF_FIXDATE.test(date)) throw new HttpSignatureError('invalid_date', 'Date header is not an IMF-fixdate');
  const dateMs = Date.parse(date);
  if (Number.isNaN(dateMs)) throw new HttpSignatureError('invalid_date', 'Date header is not a valid date');
  if (Math.abs(now - dateMs) > maxSkewMs) {
    const ageS = Math.round((now - dateMs) / 1000);
    throw new HttpSignatureError(
      'date_skew',
      ageS > 0 ? `Date is ${ageS}s in the past (max ${maxSkewMs / 1000}s)` : `Date is ${-ageS}s in the future (max ${maxSkewMs / 1000}s)`,
    );
  }
  if (parsed.created !== undefined && parsed.created * 1000 > now + maxSkewMs) {
    throw new HttpSignatureError('date_skew', 'signature created is in the future');
  }
  if (parsed.expires !== undefined && parsed.expires * 1000 < now - maxSkewMs) {
    throw new HttpSignatureError('expired', 'signature has expired');
  }

  // Body integrity: whenever a Digest is sent it must match; a body requires one.
  const digest = headerValue(opts.headers, 'digest');
  if (digest !== undefined) checkDigest(digest, body);
  else if (body.length > 0) throw new HttpSignatureError('missing_header', 'request has a body but no Digest header');

  const sig = Buffer.from(parsed.signature, 'base64');
  const data = Buffer.from(lines.join('\n'), 'utf8');
  let ok = false;
  try {
    ok = cryptoVerify(algorithm === 'rsa-sha256' ? 'sha256' : null, data, opts.publicKey, sig);
  } catch {
    ok = false;
  }
  if (!ok) throw new HttpSignatureError('bad_signature', 'signature does not verify');
  return { keyId: parsed.keyId, algorithm, signedHeaders: parsed.headers };
}

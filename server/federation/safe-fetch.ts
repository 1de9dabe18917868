/**
 * The single way Vouch makes outgoing HTTP requests: fetching actors and keys, delivering
 * activities, pulling media by URL. Everything that reaches out to a URL someone else chose goes
 * through `createSafeFetcher`, which defends against SSRF:
 *
 * - Only `https:` URLs, without credentials. `http:` is accepted only when every address the host
 *   resolves to lies inside an `allowPrivate` range (test and development setups); production
 *   peers are always reached over TLS.
 * - The host is resolved once per hop (`lookup`, default `dns.lookup` with `all: true`) and the
 *   request is refused if ANY resolved address is not ordinary public unicast (loopback, RFC 1918,
 *   link-local, unique-local, CGNAT, 0/8, multicast, broadcast, reserved and documentation ranges,
 *   IPv4-mapped/-translated/-compatible IPv6 forms of those, 6to4 and NAT64 prefixes wrapping a
 *   non-public IPv4, Teredo, ...) unless it falls inside an `allowPrivate` CIDR. IP literals in the
 *   URL are checked the same way, without DNS. Classification uses ipaddr.js `range()`: only the
 *   `unicast` class is public; anything else is blocked (deny by default).
 * - The connection then goes to the address that was checked: a per-hop undici `Agent` whose
 *   socket `lookup` is pinned to the vetted addresses, so there is no second DNS query to rebind.
 *   TLS SNI, certificate checks and the Host header still use the hostname.
 * - Redirects are followed by hand (301/302/303/307/308 with a Location), each hop re-vetted, at
 *   most `maxRedirects` hops. 303 (and 301/302 after a POST) becomes a body-less GET. On a
 *   cross-origin hop the credential headers (authorization, cookie, signature) are dropped: an
 *   HTTP signature covers the original target and must not leak elsewhere.
 * - One deadline (`timeoutMs`) covers DNS, every hop, headers and body. The body is streamed with a
 *   running byte count and aborted past `maxBodyBytes`; a Content-Length above the cap is refused
 *   before reading.
 * - Failures are `OutboundRequestError` with a `reason`. Messages name the host (and the offending
 *   address) but never the request headers (signatures) or bodies, nor the path and query.
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import { isIP, type LookupFunction } from 'node:net';
import ipaddr from 'ipaddr.js';
import { Agent, request, errors as undiciErrors } from 'undici';

export type OutboundFailureReason =
  | 'bad_url'
  | 'blocked_address'
  | 'dns_failure'
  | 'timeout'
  | 'too_large'
  | 'too_many_redirects'
  | 'connection_failed';

export class OutboundRequestError extends Error {
  override readonly name = 'OutboundRequestError';
  readonly reason: OutboundFailureReason;
  /** Hostname of the hop that failed ('' when the URL could not be parsed). */
  readonly host: string;

  constructor(reason: OutboundFailureReason, host: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.reason = reason;
    this.host = host;
  }
}

export interface ResolvedAddress {
  address: string;
  family: number;
}

/** Resolves a hostname to all its addresses (like `dns.lookup(host, { all: true })`). */
export type HostLookup = (hostname: string) => Promise<ResolvedAddress[]>;

export interface SafeFetcherOptions {
  /** CIDRs allowed despite being private/loopback/etc., e.g. ['127.0.0.0/8'] in tests. Empty by default. */
  allowPrivate?: string[];
  /** Deadline for the whole request: DNS, all redirect hops, headers and body. Default 10 000 ms. */
  timeoutMs?: number;
  /** Largest accepted response body. Default 1 MiB. */
  maxBodyBytes?: number;
  /** Most redirects followed. Default 3. */
  maxRedirects?: number;
  /** Sent unless the request's headers carry their own user-agent. */
  userAgent?: string;
  /** Host resolution, injectable for tests. Default: dns.lookup(hostname, { all: true }). */
  lookup?: HostLookup;
}

export interface SafeFetchInit {
  method?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  maxBodyBytes?: number;
  timeoutMs?: number;
  /** Shorthand for the Accept header (ignored when headers already carry one). */
  accept?: string;
  /** Extra cancellation (e.g. shutdown); reported as `timeout` if it fires. */
  signal?: AbortSignal;
}

export interface SafeFetchResponse {
  status: number;
  /** Response headers with lower-case names; repeated headers joined with ', '. */
  headers: Record<string, string>;
  body: Buffer;
  /** The final URL, after redirects. */
  url: string;
}

export type SafeFetch = (url: string | URL, init?: SafeFetchInit) => Promise<SafeFetchResponse>;

export const DEFAULT_TIMEOUT_MS = 10_000;
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;
export const DEFAULT_MAX_REDIRECTS = 3;
export const DEFAULT_USER_AGENT = 'Vouch/0.1.0';

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
/** Dropped on a cross-origin redirect. */
const CREDENTIAL_HEADERS = ['authorization', 'proxy-authorization', 'cookie', 'signature'];
/** Dropped when a redirect turns the request into a body-less GET. */
const BODY_HEADERS = ['content-type', 'content-length', 'content-encoding', 'content-language', 'content-location', 'digest'];

type Cidr = [ipaddr.IPv4 | ipaddr.IPv6, number];

/**
 * IPv6 ranges blocked although ipaddr.js calls them `unicast`: the deprecated IPv4-compatible
 * block ::/96 (::a.b.c.d; `::` and `::1` are already classified) is not a real global address.
 */
const EXTRA_BLOCKED_V6: Cidr[] = [ipaddr.parseCIDR('::/96')];

function parseCidrs(list: string[]): Cidr[] {
  return list.map((c) => {
    try {
      const [addr, bits] = ipaddr.parseCIDR(c);
      // A v4-mapped CIDR (::ffff:7f00:0/104) means the same as its IPv4 form.
      if (addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).isIPv4MappedAddress() && bits >= 96) {
        return [(addr as ipaddr.IPv6).toIPv4Address(), bits - 96] as Cidr;
      }
      return [addr, bits] as Cidr;
    } catch {
      throw new Error(`allowPrivate: invalid CIDR ${JSON.stringify(c)}`);
    }
  });
}

function inCidrs(addr: ipaddr.IPv4 | ipaddr.IPv6, cidrs: Cidr[]): boolean {
  return cidrs.some(([net, bits]) => net.kind() === addr.kind() && addr.match(net, bits));
}

function embeddedV4(parts: number[], hi: number): ipaddr.IPv4 {
  // The 32 bits starting at 16-bit group `hi`.
  const a = parts[hi]!;
  const b = parts[hi + 1]!;
  return new ipaddr.IPv4([a >> 8, a & 0xff, b >> 8, b & 0xff]);
}

/**
 * Why an address is not public unicast (its ipaddr.js range name, possibly qualified), or null if
 * it is. IPv4-mapped IPv6 is unwrapped first; 6to4 and the NAT64 well-known prefix are judged by
 * the IPv4 address they wrap.
 */
export function blockedRange(address: string): string | null {
  let addr: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    addr = ipaddr.process(address);
  } catch {
    return 'unparseable';
  }
  if (addr.kind() === 'ipv4') {
    const range = (addr as ipaddr.IPv4).range();
    return range === 'unicast' ? null : range;
  }
  const v6 = addr as ipaddr.IPv6;
  if (v6.zoneId !== undefined) return 'zoned';
  const range = v6.range();
  if (range === 'unicast') {
    return inCidrs(v6, EXTRA_BLOCKED_V6) ? 'ipv4Compatible' : null;
  }
  // NAT64 well-known prefix 64:ff9b::/96 carries the IPv4 destination in the low 32 bits.
  // (The local-use 64:ff9b:1::/48 is also `rfc6052` but fails the /96 match and stays blocked.)
  if (range === 'rfc6052' && v6.match(ipaddr.IPv6.parse('64:ff9b::'), 96)) {
    const inner = embeddedV4(v6.parts, 6).range();
    return inner === 'unicast' ? null : `rfc6052(${inner})`;
  }
  // 6to4 2002:AABB:CCDD::/48 carries the IPv4 relay address in bits 16..48.
  if (range === '6to4') {
    const inner = embeddedV4(v6.parts, 1).range();
    return inner === 'unicast' ? null : `6to4(${inner})`;
  }
  return range;
}

function isInAllowed(address: string, allowed: Cidr[]): boolean {
  if (allowed.length === 0) return false;
  try {
    return inCidrs(ipaddr.process(address), allowed);
  } catch {
    return false;
  }
}

function stripBrackets(hostname: string): string {
  return hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
}

function lowerCaseHeaders(headers: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers ?? {})) out[k.toLowerCase()] = v;
  return out;
}

function flattenHeaders(raw: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw)) {
    if (v === undefined) continue;
    out[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
  }
  return out;
}

function defaultLookup(hostname: string): Promise<ResolvedAddress[]> {
  return dnsLookup(hostname, { all: true });
}

/** Rejects when the signal aborts, so non-abortable work (DNS) still honours the deadline. */
function raceSignal<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

/** A socket lookup that answers only `hostname`, only with the already vetted addresses. */
function pinnedLookup(hostname: string, addresses: ResolvedAddress[]): LookupFunction {
  return ((name: string, options: { all?: boolean } | number | undefined, callback: (...args: unknown[]) => void) => {
    const cb = typeof options === 'function' ? (options as (...args: unknown[]) => void) : callback;
    const all = typeof options === 'object' && options !== null && options.all === true;
    if (name !== hostname) {
      const err = Object.assign(new Error(`pinned lookup: unexpected host ${name}`), { code: 'ENOTFOUND' });
      process.nextTick(cb, err);
      return;
    }
    if (all) process.nextTick(cb, null, addresses.map((a) => ({ address: a.address, family: a.family })));
    else process.nextTick(cb, null, addresses[0]!.address, addresses[0]!.family);
  }) as unknown as LookupFunction;
}

export function createSafeFetcher(options: SafeFetcherOptions = {}): SafeFetch {
  const allowed = parseCidrs(options.allowPrivate ?? []);
  const defaultTimeout = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const defaultMaxBody = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const maxRedirects = options.maxRedirects ?? DEFAULT_MAX_REDIRECTS;
  const userAgent = options.userAgent ?? DEFAULT_USER_AGENT;
  const lookup = options.lookup ?? defaultLookup;

  function parseTarget(input: string | URL, hostForErrors: string): URL {
    let url: URL;
    try {
      url = new URL(typeof input === 'string' ? input : input.href);
    } catch {
      throw new OutboundRequestError('bad_url', hostForErrors, 'outbound request refused: invalid URL');
    }
    const host = url.hostname;
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      throw new OutboundRequestError('bad_url', host, `outbound request to ${host || '(no host)'} refused: scheme ${url.protocol} not allowed`);
    }
    if (url.protocol === 'http:' && allowed.length === 0) {
      throw new OutboundRequestError('bad_url', host, `outbound request to ${host} refused: plain http is not allowed`);
    }
    if (url.username !== '' || url.password !== '') {
      throw new OutboundRequestError('bad_url', host, `outbound request to ${host} refused: credentials in URL`);
    }
    if (host === '') {
      throw new OutboundRequestError('bad_url', host, 'outbound request refused: URL has no host');
    }
    return url;
  }

  /** Resolves (once) and vets the hop's host; returns the addresses to connect to. */
  async function vet(url: URL, signal: AbortSignal): Promise<ResolvedAddress[]> {
    const host = url.hostname;
    const bare = stripBrackets(host);
    let addresses: ResolvedAddress[];
    const family = isIP(bare);
    if (family !== 0) {
      addresses = [{ address: bare, family }];
    } else {
      try {
        addresses = await raceSignal(lookup(bare), signal);
      } catch (err) {
        if (signal.aborted) throw err;
        const code = (err as { code?: unknown }).code;
        throw new OutboundRequestError('dns_failure', host, `outbound request to ${host} failed: DNS lookup failed${typeof code === 'string' ? ` (${code})` : ''}`, { cause: err });
      }
      if (!Array.isArray(addresses) || addresses.length === 0) {
        throw new OutboundRequestError('dns_failure', host, `outbound request to ${host} failed: DNS lookup returned no addresses`);
      }
    }
    for (const a of addresses) {
      if (isInAllowed(a.address, allowed)) continue;
      const why = blockedRange(a.address);
      if (why !== null) {
        throw new OutboundRequestError('blocked_address', host, `outbound request to ${host} refused: address ${a.address} is ${why}`);
      }
    }
    if (url.protocol === 'http:' && !addresses.every((a) => isInAllowed(a.address, allowed))) {
      throw new OutboundRequestError('bad_url', host, `outbound request to ${host} refused: plain http is only allowed for allowPrivate addresses`);
    }
    return addresses.map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }));
  }

  async function readBody(body: AsyncIterable<unknown> & { destroy(err?: Error): unknown }, cap: number, host: string): Promise<Buffer> {
    const chunks: Buffer[] = [];
    let total = 0;
    for await (const chunk of body) {
      const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
      total += buf.length;
      if (total > cap) {
        body.destroy();
        throw new OutboundRequestError('too_large', host, `outbound request to ${host} failed: response body exceeds ${cap} bytes`);
      }
      chunks.push(buf);
    }
    return Buffer.concat(chunks, total);
  }

  return async function safeFetch(input, init = {}) {
    const timeoutMs = init.timeoutMs ?? defaultTimeout;
    const maxBody = init.maxBodyBytes ?? defaultMaxBody;
    const deadline = AbortSignal.timeout(timeoutMs);
    const signal = init.signal ? AbortSignal.any([deadline, init.signal]) : deadline;

    let url = parseTarget(input, '');
    let method = (init.method ?? 'GET').toUpperCase();
    let body: string | Buffer | undefined = init.body;
    const headers = lowerCaseHeaders(init.headers);
    if (headers['user-agent'] === undefined) headers['user-agent'] = userAgent;
    if (init.accept !== undefined && headers['accept'] === undefined) headers['accept'] = init.accept;
    delete headers['host']; // always the URL's host; undici sets it

    let redirects = 0;
    for (;;) {
      const host = url.hostname;
      const timeoutError = () =>
        new OutboundRequestError('timeout', host, `outbound request to ${host} failed: timed out after ${timeoutMs} ms`);

      let addresses: ResolvedAddress[];
      try {
        addresses = await vet(url, signal);
      } catch (err) {
        if (err instanceof OutboundRequestError) throw err;
        if (signal.aborted) throw timeoutError();
        throw err;
      }

      const agent = new Agent({
        connect: { lookup: pinnedLookup(stripBrackets(host), addresses), timeout: timeoutMs },
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
        connections: 1,
      });
      try {
        let res: Awaited<ReturnType<typeof request>>;
        try {
          res = await request(url, {
            method: method as 'GET',
            headers,
            body,
            dispatcher: agent,
            signal,
          });
        } catch (err) {
          if (signal.aborted) throw timeoutError();
          if (err instanceof undiciErrors.InvalidArgumentError) {
            throw new OutboundRequestError('bad_url', host, `outbound request to ${host} refused: invalid request`, { cause: err });
          }
          if (err instanceof undiciErrors.HeadersTimeoutError || err instanceof undiciErrors.ConnectTimeoutError) {
            throw timeoutError();
          }
          const code = (err as { code?: unknown }).code;
          throw new OutboundRequestError('connection_failed', host, `outbound request to ${host} failed: connection failed${typeof code === 'string' ? ` (${code})` : ''}`, { cause: err });
        }

        // Destroying an unread body makes undici emit 'error' (RequestAborted); without a
        // listener that would be an uncaught exception. Reads still see errors via the iterator.
        res.body.on('error', () => {});
        const status = res.statusCode;
        const resHeaders = flattenHeaders(res.headers as Record<string, string | string[] | undefined>);
        const location = resHeaders['location'];

        if (REDIRECT_STATUSES.has(status) && location !== undefined) {
          res.body.destroy();
          if (redirects >= maxRedirects) {
            throw new OutboundRequestError('too_many_redirects', host, `outbound request to ${host} failed: more than ${maxRedirects} redirects`);
          }
          redirects++;
          let next: URL;
          try {
            next = new URL(location, url);
          } catch {
            throw new OutboundRequestError('bad_url', host, `outbound request to ${host} failed: invalid redirect location`);
          }
          next = parseTarget(next, host);
          if (next.origin !== url.origin) {
            for (const h of CREDENTIAL_HEADERS) delete headers[h];
          }
          if ((status === 303 && method !== 'HEAD') || ((status === 301 || status === 302) && method === 'POST')) {
            method = 'GET';
            body = undefined;
            for (const h of BODY_HEADERS) delete headers[h];
          }
          url = next;
          continue;
        }

        const declared = resHeaders['content-length'];
        if (method !== 'HEAD' && declared !== undefined && /^\d+$/.test(declared.trim()) && Number(declared.trim()) > maxBody) {
          res.body.destroy();
          throw new OutboundRequestError('too_large', host, `outbound request to ${host} failed: Content-Length ${declared.trim()} exceeds ${maxBody} bytes`);
        }

        let data: Buffer;
        try {
          data = await readBody(res.body, maxBody, host);
        } catch (err) {
          if (err instanceof OutboundRequestError) throw err;
          if (signal.aborted || err instanceof undiciErrors.BodyTimeoutError) throw timeoutError();
          const code = (err as { code?: unknown }).code;
          throw new OutboundRequestError('connection_failed', host, `outbound request to ${host} failed: error reading response${typeof code === 'string' ? ` (${code})` : ''}`, { cause: err });
        }
        return { status, headers: resHeaders, body: data, url: url.href };
      } finally {
        agent.destroy().catch(() => {});
      }
    }
  };
}

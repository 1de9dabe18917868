/**
 * The wire format of the log's HTTP API, shared by the server (http.ts) and the auditor
 * (audit.ts), which must agree byte for byte on how an entry travels.
 *
 * An entry is JCS (RFC 8785) text (entry.ts: a signed activity in version 1, the public part and
 * the private part's digest in version 2), so it is served as parsed JSON (`entry`) and the
 * auditor gets the exact bytes back with JCS. Anything that does not survive that round trip byte
 * for byte (not UTF-8, not JSON, not canonical) is served as `entry_base64` instead, so the leaf
 * hash can always be recomputed from what is served. A version-2 entry's private part travels the
 * same way, as `private` (or `private_base64`), to the clients allowed to read it.
 */
import canonicalize from 'canonicalize';
import { HASH_SIZE } from '../../shared/merkle/tree.js';

/** Most entries one GET /log/entries answers. */
export const ENTRIES_PAGE_MAX = 1000;

export interface WireEntry {
  readonly index: number;
  /** Standard base64 of SHA-256(0x00 || entry). */
  readonly leaf_hash: string;
  /** The entry as parsed JSON (its JCS text is the entry bytes). */
  readonly entry?: unknown;
  /** The entry bytes, when they are not canonical JSON. */
  readonly entry_base64?: string;
  /** A version-1 entry this client may not read; its leaf hash still proves its place. */
  readonly withheld?: true;
  /** A version-2 entry's private part as parsed JSON (its JCS text is the private part's bytes). */
  readonly private?: unknown;
  /** The private part's bytes, when they are not canonical JSON. */
  readonly private_base64?: string;
  /** A version-2 entry whose private part this client may not read (its public part is served). */
  readonly private_withheld?: true;
}

export interface WireEntriesPage {
  readonly start: number;
  /** Exclusive end of the range this page covers. */
  readonly end: number;
  /** Current log size when the page was served. */
  readonly size: number;
  readonly entries: readonly WireEntry[];
  /** `start` of the next page, or null at the end of the log. */
  readonly next: number | null;
}

export interface WireInclusionProof {
  readonly index: number;
  readonly size: number;
  readonly hashes: readonly string[];
}

export interface WireConsistencyProof {
  readonly from: number;
  readonly to: number;
  readonly hashes: readonly string[];
}

export const toBase64 = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64');

/** Canonical standard base64 only; null for anything else. */
export function fromBase64(s: unknown): Uint8Array | null {
  if (typeof s !== 'string' || s.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(s)) return null;
  const buf = Buffer.from(s, 'base64');
  return buf.toString('base64') === s ? new Uint8Array(buf) : null;
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Parsed JCS JSON when the bytes round-trip exactly, else undefined. */
function canonicalJson(bytes: Uint8Array): { value: unknown } | undefined {
  try {
    const text = utf8.decode(bytes);
    const value: unknown = JSON.parse(text);
    if (canonicalize(value) === text) return { value };
  } catch {
    // not UTF-8 or not JSON
  }
  return undefined;
}

/**
 * The wire form of a stored entry for a client who may (`readable`) or may not read its content:
 * a version-2 entry (one stored with a private part) is always served, with its private part
 * only when readable; a version-1 entry is served only when readable, else withheld.
 */
export function wireEntry(row: { index: number; entry: Uint8Array; leafHash: Uint8Array; private: Uint8Array | null }, readable: boolean): WireEntry {
  const leaf_hash = toBase64(row.leafHash);
  if (row.private === null && !readable) return { index: row.index, withheld: true, leaf_hash };
  const json = canonicalJson(row.entry);
  const entry = json ? { entry: json.value } : { entry_base64: toBase64(row.entry) };
  if (row.private === null) return { index: row.index, ...entry, leaf_hash };
  if (!readable) return { index: row.index, ...entry, leaf_hash, private_withheld: true };
  const privateJson = canonicalJson(row.private);
  return { index: row.index, ...entry, leaf_hash, ...(privateJson ? { private: privateJson.value } : { private_base64: toBase64(row.private) }) };
}

/** JCS bytes of a served JSON value, or the decoded base64 alternative. Throws on a malformed one. */
function servedBytes(json: unknown, hasJson: boolean, base64: string | undefined, what: string): Uint8Array {
  if (base64 !== undefined) {
    const b = fromBase64(base64);
    if (!b) throw new TypeError(`${what}_base64 is not canonical base64`);
    return b;
  }
  if (!hasJson) throw new TypeError(`${what} has neither ${what} nor ${what}_base64`);
  const text = canonicalize(json);
  if (text === undefined) throw new TypeError(`${what} cannot be canonicalized (JCS)`);
  return new Uint8Array(Buffer.from(text, 'utf8'));
}

/** The entry bytes a wire entry stands for; null when withheld. Throws on a malformed entry. */
export function entryBytes(wire: WireEntry): Uint8Array | null {
  if (wire.withheld === true) return null;
  return servedBytes(wire.entry, 'entry' in wire, wire.entry_base64, 'entry');
}

/** The private part's bytes a wire entry carries; null when it carries none. Throws on a malformed one. */
export function privateBytes(wire: WireEntry): Uint8Array | null {
  if (!('private' in wire) && wire.private_base64 === undefined) return null;
  return servedBytes(wire.private, 'private' in wire, wire.private_base64, 'private');
}

/** Decodes a list of base64 hashes, strictly (canonical base64, 32 bytes each). */
export function decodeHashes(list: unknown, what = 'proof'): Uint8Array[] {
  if (!Array.isArray(list)) throw new TypeError(`${what} hashes are not a list`);
  return list.map((s, i) => {
    const b = fromBase64(s);
    if (!b || b.length !== HASH_SIZE) throw new TypeError(`${what} hash ${i} is not ${HASH_SIZE} bytes of canonical base64`);
    return b;
  });
}

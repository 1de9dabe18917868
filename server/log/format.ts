/**
 * The wire format of the log's HTTP API, shared by the server (http.ts) and the auditor
 * (audit.ts), which must agree byte for byte on how an entry travels.
 *
 * An entry is the JCS (RFC 8785) text of a signed activity, so it is served as parsed JSON
 * (`entry`) and the auditor gets the exact bytes back with JCS. Anything that does not survive
 * that round trip byte for byte (not UTF-8, not JSON, not canonical) is served as `entry_base64`
 * instead, so the leaf hash can always be recomputed from what is served.
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
  /** The entry exists but this client may not read it; its leaf hash still proves its place. */
  readonly withheld?: true;
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

/** The wire form of a readable entry: parsed JCS JSON when the bytes round-trip exactly. */
export function encodeEntry(index: number, entry: Uint8Array, leafHash: Uint8Array): WireEntry {
  try {
    const text = utf8.decode(entry);
    const value: unknown = JSON.parse(text);
    if (canonicalize(value) === text) return { index, entry: value, leaf_hash: toBase64(leafHash) };
  } catch {
    // not UTF-8 or not JSON: fall through to base64
  }
  return { index, entry_base64: toBase64(entry), leaf_hash: toBase64(leafHash) };
}

export function withheldEntry(index: number, leafHash: Uint8Array): WireEntry {
  return { index, withheld: true, leaf_hash: toBase64(leafHash) };
}

/** The entry bytes a wire entry stands for; null when withheld. Throws on a malformed entry. */
export function entryBytes(wire: WireEntry): Uint8Array | null {
  if (wire.withheld === true) return null;
  if (wire.entry_base64 !== undefined) {
    const b = fromBase64(wire.entry_base64);
    if (!b) throw new TypeError('entry_base64 is not canonical base64');
    return b;
  }
  if (!('entry' in wire)) throw new TypeError('entry has neither entry, entry_base64 nor withheld');
  const text = canonicalize(wire.entry);
  if (text === undefined) throw new TypeError('entry cannot be canonicalized (JCS)');
  return new Uint8Array(Buffer.from(text, 'utf8'));
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

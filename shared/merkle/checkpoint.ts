/**
 * Signed checkpoints: C2SP signed-note, tlog-checkpoint and tlog-cosignature (`cosignature/v1`).
 *
 * Why these formats: they are what the transparency ecosystem (Go sumdb, Sigstore, the public
 * witness network) already speaks, so a Vouch checkpoint can be checked with off-the-shelf tools
 * and Vouch peers can witness each other with the same bytes a public witness would sign. The
 * byte format is the contract, so everything here is strict: text is exact UTF-8 with no control
 * characters but newline, base64 must be canonical, sizes have no leading zeros, and a note opens
 * only if at least one signature by a key the caller trusts verifies (and none by a trusted key
 * fails). Every refusal is a `NoteError` with a stable `code` and a human message.
 *
 * Keys are node:crypto Ed25519 KeyObjects. A key is identified in a note by its name and key ID,
 * SHA-256(name || "\n" || type || public key)[:4], with type 0x01 for plain Ed25519 note
 * signatures and 0x04 for timestamped witness cosignatures; the same key pair yields different
 * IDs under the two types, so a cosignature can never pass as a log signature or vice versa.
 */
import { createHash, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { HASH_SIZE } from './tree.js';

export type NoteErrorCode =
  | 'invalid_argument' // something we were asked to format or sign is not representable
  | 'malformed_note' // note text or a signature line is not well formed
  | 'malformed_checkpoint' // the note text is not a valid tlog-checkpoint body
  | 'malformed_key' // a verifier key string is invalid or of an unsupported type
  | 'ambiguous_key' // two trusted verifiers share a name and key ID
  | 'invalid_signature' // a signature by a trusted key does not verify: the note is rejected
  | 'unverified_note' // no signature by a trusted key (or not by the required one)
  | 'wrong_origin'; // checkpoint origin differs from the expected log

export class NoteError extends Error {
  override readonly name = 'NoteError';
  constructor(
    readonly code: NoteErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** Signature types this module signs and verifies (signed-note signature type bytes). */
export type SignatureType = 'ed25519' | 'cosignature/v1';

const TYPE_BYTE: Record<SignatureType, number> = { ed25519: 0x01, 'cosignature/v1': 0x04 };
const EM_DASH_SPACE = '\u2014 ';
const MAX_SIGNATURES = 100; // the spec requires accepting at least 16; Go's note package caps at 100
const ED25519_SIG = 64;
const MAX_TIMESTAMP = 2n ** 63n - 1n;

// ---------------------------------------------------------------------------------------------
// Text rules
// ---------------------------------------------------------------------------------------------

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
// eslint-disable-next-line no-control-regex
const CONTROL_BUT_NEWLINE = /[\u0000-\u0009\u000B-\u001F]/;
// eslint-disable-next-line no-control-regex
const INVALID_NAME = /[\p{White_Space}+\u0000-\u001F\u007F]/u;

/** Why `s` cannot appear in a note (lone surrogate = not UTF-8, or a control character), or null. */
function textProblem(s: string): string | null {
  if (LONE_SURROGATE.test(s)) return 'is not valid UTF-8 (lone surrogate)';
  const m = CONTROL_BUT_NEWLINE.exec(s);
  if (m) return `contains control character U+${m[0].charCodeAt(0).toString(16).padStart(4, '0').toUpperCase()}`;
  return null;
}

/** Key names: non-empty, no Unicode white space, no '+', no control characters. */
function isValidName(name: string): boolean {
  return name.length > 0 && !INVALID_NAME.test(name) && !LONE_SURROGATE.test(name);
}

function assertNoteText(text: string): void {
  if (typeof text !== 'string' || !text.endsWith('\n')) throw new NoteError('invalid_argument', 'note text must end with a newline');
  const p = textProblem(text);
  if (p) throw new NoteError('invalid_argument', `note text ${p}`);
}

function assertName(name: string, what: string): void {
  if (typeof name !== 'string' || !isValidName(name)) {
    throw new NoteError('invalid_argument', `${what} ${JSON.stringify(name)} must be non-empty, without spaces, '+' or control characters`);
  }
}

/** Standard base64 (RFC 4648 §4), padded and canonical; null if `s` is anything else. */
function decodeBase64(s: string): Uint8Array | null {
  if (s.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(s)) return null;
  const buf = Buffer.from(s, 'base64');
  return buf.toString('base64') === s ? new Uint8Array(buf) : null;
}

const encodeBase64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');

// ---------------------------------------------------------------------------------------------
// Checkpoint body (c2sp.org/tlog-checkpoint)
// ---------------------------------------------------------------------------------------------

export interface Checkpoint {
  /** Log identity, first line. */
  readonly origin: string;
  /** Number of leaves. */
  readonly size: number;
  /** RFC 6962 root hash at `size` (32 bytes). */
  readonly rootHash: Uint8Array;
  /** Opaque extension lines (not auditable; Vouch does not emit any). */
  readonly extensions: readonly string[];
}

/** The checkpoint note text: origin, size, base64 root, extension lines, each ending in "\n". */
export function formatCheckpoint(cp: {
  origin: string;
  size: number;
  rootHash: Uint8Array;
  extensions?: readonly string[];
}): string {
  if (!Number.isSafeInteger(cp.size) || cp.size < 0) {
    throw new NoteError('invalid_argument', `tree size must be a non-negative safe integer, got ${cp.size}`);
  }
  if (!(cp.rootHash instanceof Uint8Array) || cp.rootHash.length !== HASH_SIZE) {
    throw new NoteError('invalid_argument', `root hash must be ${HASH_SIZE} bytes`);
  }
  const extensions = cp.extensions ?? [];
  const free: [string, string][] = [['origin', cp.origin], ...extensions.map((e, i): [string, string] => [`extension line ${i}`, e])];
  for (const [what, line] of free) {
    if (typeof line !== 'string' || line.length === 0) throw new NoteError('invalid_argument', `${what} must be non-empty`);
    if (line.includes('\n')) throw new NoteError('invalid_argument', `${what} must not contain a newline`);
    const p = textProblem(line);
    if (p) throw new NoteError('invalid_argument', `${what} ${p}`);
  }
  return [cp.origin, String(cp.size), encodeBase64(cp.rootHash), ...extensions].map((l) => l + '\n').join('');
}

/** Parses a checkpoint note text (the body, without signatures). Rejects anything malformed. */
export function parseCheckpoint(text: string): Checkpoint {
  const bad = (why: string): NoteError => new NoteError('malformed_checkpoint', `malformed checkpoint: ${why}`);
  if (typeof text !== 'string') throw bad('not a string');
  if (!text.endsWith('\n')) throw bad('text must end with a newline');
  const p = textProblem(text);
  if (p) throw bad(`text ${p}`);
  const lines = text.slice(0, -1).split('\n');
  if (lines.length < 3) throw bad(`expected at least 3 lines (origin, size, root hash), got ${lines.length}`);
  const [origin, sizeLine, rootLine, ...extensions] = lines;
  if (origin.length === 0) throw bad('empty origin line');
  if (!/^(0|[1-9][0-9]*)$/.test(sizeLine)) throw bad(`tree size ${JSON.stringify(sizeLine)} is not a decimal without leading zeros`);
  const size = Number(sizeLine);
  if (!Number.isSafeInteger(size)) throw bad(`tree size ${sizeLine} exceeds 2^53 - 1`);
  const rootHash = decodeBase64(rootLine);
  if (!rootHash) throw bad(`root hash ${JSON.stringify(rootLine)} is not canonical base64`);
  if (rootHash.length !== HASH_SIZE) throw bad(`root hash is ${rootHash.length} bytes, expected ${HASH_SIZE}`);
  extensions.forEach((e, i) => {
    if (e.length === 0) throw bad(`extension line ${i} is empty`);
  });
  return { origin, size, rootHash, extensions };
}

// ---------------------------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------------------------

/** A trusted public key, as decoded from a verifier key string. */
export interface NoteVerifier {
  readonly name: string;
  /** uint32 key ID. */
  readonly keyId: number;
  readonly type: SignatureType;
  /** Raw 32-byte Ed25519 public key. */
  readonly publicKey: Uint8Array;
  /** Encoded form: name+hex8(keyId)+base64(type || publicKey). */
  readonly vkey: string;
  readonly key: KeyObject;
}

function computeKeyId(name: string, type: SignatureType, rawPublicKey: Uint8Array): number {
  const h = createHash('sha256').update(name, 'utf8').update(Uint8Array.of(0x0a, TYPE_BYTE[type])).update(rawPublicKey).digest();
  return h.readUInt32BE(0);
}

/** Raw 32-byte public key of an Ed25519 KeyObject (public or private). */
function rawEd25519PublicKey(key: KeyObject): Uint8Array {
  if (key?.asymmetricKeyType !== 'ed25519') throw new NoteError('invalid_argument', 'key must be an Ed25519 KeyObject');
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  const jwk = pub.export({ format: 'jwk' });
  return new Uint8Array(Buffer.from(String(jwk.x), 'base64url'));
}

function assertPrivateEd25519(key: KeyObject): void {
  if (key?.type !== 'private' || key.asymmetricKeyType !== 'ed25519') {
    throw new NoteError('invalid_argument', 'signing key must be an Ed25519 private KeyObject');
  }
}

/** Key ID of `publicKey` under `name` for the given signature type. */
export function keyId(name: string, publicKey: KeyObject, type: SignatureType = 'ed25519'): number {
  assertName(name, 'key name');
  return computeKeyId(name, type, rawEd25519PublicKey(publicKey));
}

/**
 * Verifier key string `name+hash+base64(type || pubkey)` (hash: 8 lowercase hex digits). Type
 * 'ed25519' (0x01) for log signatures, 'cosignature/v1' (0x04) for witness cosignatures.
 */
export function verifierKey(name: string, publicKey: KeyObject, type: SignatureType = 'ed25519'): string {
  assertName(name, 'key name');
  const raw = rawEd25519PublicKey(publicKey);
  const id = computeKeyId(name, type, raw);
  return `${name}+${id.toString(16).padStart(8, '0')}+${encodeBase64(Uint8Array.of(TYPE_BYTE[type], ...raw))}`;
}

/** Decodes and checks a verifier key string. */
export function parseVerifierKey(vkey: string): NoteVerifier {
  const bad = (why: string): NoteError => new NoteError('malformed_key', `malformed verifier key: ${why}`);
  if (typeof vkey !== 'string') throw bad('not a string');
  const p1 = vkey.indexOf('+');
  const p2 = p1 < 0 ? -1 : vkey.indexOf('+', p1 + 1);
  if (p2 < 0) throw bad('expected name+hash+key');
  const name = vkey.slice(0, p1);
  const hex = vkey.slice(p1 + 1, p2);
  if (!isValidName(name)) throw bad(`invalid key name ${JSON.stringify(name)}`);
  if (!/^[0-9a-f]{8}$/i.test(hex)) throw bad('key hash must be 8 hex digits');
  const material = decodeBase64(vkey.slice(p2 + 1));
  if (!material || material.length === 0) throw bad('key material is not canonical base64');
  const type = (Object.keys(TYPE_BYTE) as SignatureType[]).find((t) => TYPE_BYTE[t] === material[0]);
  if (!type) throw bad(`unsupported signature type 0x${material[0].toString(16).padStart(2, '0')}`);
  const publicKey = material.slice(1);
  if (publicKey.length !== 32) throw bad(`Ed25519 public key is ${publicKey.length} bytes, expected 32`);
  const id = parseInt(hex, 16);
  if (id !== computeKeyId(name, type, publicKey)) throw bad('key hash does not match name and key');
  let key: KeyObject;
  try {
    key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(publicKey).toString('base64url') }, format: 'jwk' });
  } catch {
    throw bad('not a valid Ed25519 public key');
  }
  return { name, keyId: id, type, publicKey, vkey, key };
}

// ---------------------------------------------------------------------------------------------
// Signing
// ---------------------------------------------------------------------------------------------

function signatureLine(name: string, id: number, sig: Uint8Array): string {
  const blob = new Uint8Array(4 + sig.length);
  new DataView(blob.buffer).setUint32(0, id);
  blob.set(sig, 4);
  return `${EM_DASH_SPACE}${name} ${encodeBase64(blob)}\n`;
}

/** An Ed25519 (type 0x01) signature line "— name base64(keyID || sig)\n" over `text`. */
export function noteSignatureLine(text: string, name: string, privateKey: KeyObject): string {
  assertNoteText(text);
  assertName(name, 'key name');
  assertPrivateEd25519(privateKey);
  const sig = sign(null, Buffer.from(text, 'utf8'), privateKey);
  return signatureLine(name, computeKeyId(name, 'ed25519', rawEd25519PublicKey(privateKey)), sig);
}

/** The signed note: `text`, a blank line, and one Ed25519 signature line. */
export function signNote(text: string, name: string, privateKey: KeyObject): string {
  return `${text}\n${noteSignatureLine(text, name, privateKey)}`;
}

/** The message a `cosignature/v1` signature covers. */
export function cosignatureMessage(text: string, time: number): string {
  return `cosignature/v1\ntime ${time}\n${text}`;
}

/**
 * A witness cosignature line (tlog-cosignature, Ed25519, type 0x04) over checkpoint text `text`:
 * "— witnessName base64(keyID || uint64be(time) || sig)\n". `time` is POSIX seconds.
 */
export function cosign(text: string, witnessName: string, witnessKey: KeyObject, time: number): string {
  assertNoteText(text);
  parseCheckpoint(text); // a witness only ever vouches for a checkpoint
  assertName(witnessName, 'witness name');
  assertPrivateEd25519(witnessKey);
  if (!Number.isSafeInteger(time) || time < 0) throw new NoteError('invalid_argument', `time must be non-negative integer seconds, got ${time}`);
  const sig = sign(null, Buffer.from(cosignatureMessage(text, time), 'utf8'), witnessKey);
  const body = new Uint8Array(8 + ED25519_SIG);
  new DataView(body.buffer).setBigUint64(0, BigInt(time));
  body.set(sig, 8);
  return signatureLine(witnessName, computeKeyId(witnessName, 'cosignature/v1', rawEd25519PublicKey(witnessKey)), body);
}

/** Appends signature lines (e.g. cosignatures returned by witnesses) to a signed note. */
export function appendSignatureLines(note: string, lines: readonly string[]): string {
  splitNote(note); // the note must already be well formed
  for (const line of lines) {
    if (!line.endsWith('\n') || line.indexOf('\n') !== line.length - 1) {
      throw new NoteError('malformed_note', 'a signature line must be exactly one line ending in a newline');
    }
    parseSignatureLine(line.slice(0, -1));
  }
  return note + lines.join('');
}

// ---------------------------------------------------------------------------------------------
// Opening
// ---------------------------------------------------------------------------------------------

/** A signature line as found in a note. */
export interface NoteSignature {
  readonly name: string;
  readonly keyId: number;
  /** The base64 blob as written (key ID included). */
  readonly base64: string;
}

/** A signature that verified against a trusted key. */
export interface VerifiedSignature extends NoteSignature {
  readonly type: SignatureType;
  /** cosignature/v1 only: the cosigner's timestamp, POSIX seconds. */
  readonly timestamp?: number;
}

export interface OpenedNote {
  /** The signed text, final newline included. */
  readonly text: string;
  readonly signatures: readonly VerifiedSignature[];
  /** Signatures by keys the caller did not supply (ignored, as the spec requires). */
  readonly unverified: readonly NoteSignature[];
}

interface ParsedLine extends NoteSignature {
  readonly sig: Uint8Array;
}

function malformed(why: string): NoteError {
  return new NoteError('malformed_note', `malformed note: ${why}`);
}

function parseSignatureLine(line: string): ParsedLine {
  if (!line.startsWith(EM_DASH_SPACE)) throw malformed('signature line does not start with an em dash and a space');
  const rest = line.slice(EM_DASH_SPACE.length);
  const sp = rest.indexOf(' ');
  if (sp < 0) throw malformed('signature line has no signature');
  const name = rest.slice(0, sp);
  const base64 = rest.slice(sp + 1);
  if (!isValidName(name)) throw malformed(`invalid key name ${JSON.stringify(name)} in signature line`);
  const blob = decodeBase64(base64);
  if (!blob) throw malformed(`signature by ${name} is not canonical base64`);
  if (blob.length < 5) throw malformed(`signature by ${name} is too short`);
  const keyIdValue = new DataView(blob.buffer, blob.byteOffset).getUint32(0);
  return { name, keyId: keyIdValue, base64, sig: blob.subarray(4) };
}

function splitNote(note: string | Uint8Array): { text: string; lines: ParsedLine[] } {
  let s: string;
  if (typeof note === 'string') {
    s = note;
  } else if (note instanceof Uint8Array) {
    try {
      s = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(note);
    } catch {
      throw malformed('not valid UTF-8');
    }
  } else {
    throw malformed('not a string');
  }
  const p = textProblem(s);
  if (p) throw malformed(p);
  const split = s.lastIndexOf('\n\n');
  if (split < 0) throw malformed('no blank line before the signatures');
  const text = s.slice(0, split + 1);
  const sigs = s.slice(split + 2);
  if (sigs.length === 0) throw malformed('no signature lines');
  if (!sigs.endsWith('\n')) throw malformed('missing final newline');
  const raw = sigs.slice(0, -1).split('\n');
  if (raw.length > MAX_SIGNATURES) throw malformed(`more than ${MAX_SIGNATURES} signatures`);
  return { text, lines: raw.map(parseSignatureLine) };
}

function toVerifier(v: NoteVerifier | string): NoteVerifier {
  return typeof v === 'string' ? parseVerifierKey(v) : v;
}

const idKey = (name: string, id: number): string => `${id.toString(16).padStart(8, '0')} ${name}`;

/** Checks one signature by a trusted key; returns the cosignature timestamp if any, or throws. */
function checkSignature(v: NoteVerifier, text: string, line: ParsedLine): number | undefined {
  const invalid = (why: string): NoteError =>
    new NoteError('invalid_signature', `signature by trusted key ${v.name}+${v.keyId.toString(16).padStart(8, '0')} ${why}`);
  const ok = (msg: string, sig: Uint8Array): boolean => {
    try {
      return verify(null, Buffer.from(msg, 'utf8'), v.key, sig);
    } catch {
      return false;
    }
  };
  if (v.type === 'ed25519') {
    if (line.sig.length !== ED25519_SIG) throw invalid(`is ${line.sig.length} bytes, expected ${ED25519_SIG}`);
    if (!ok(text, line.sig)) throw invalid('does not verify');
    return undefined;
  }
  if (line.sig.length !== 8 + ED25519_SIG) throw invalid(`is ${line.sig.length} bytes, expected ${8 + ED25519_SIG}`);
  const ts = new DataView(line.sig.buffer, line.sig.byteOffset).getBigUint64(0);
  if (ts > MAX_TIMESTAMP) throw invalid('has a timestamp above 2^63 - 1');
  if (ts > BigInt(Number.MAX_SAFE_INTEGER)) throw invalid('has a timestamp beyond any plausible date');
  const time = Number(ts);
  if (!ok(cosignatureMessage(text, time), line.sig.subarray(8))) throw invalid('does not verify');
  return time;
}

/**
 * Opens a signed note against trusted verifiers (objects or verifier key strings). Signatures by
 * unknown keys are ignored (returned in `unverified`); a signature by a trusted key that fails
 * rejects the whole note; a note without any verified signature is rejected.
 */
export function openNote(note: string | Uint8Array, verifiers: readonly (NoteVerifier | string)[]): OpenedNote {
  const known = new Map<string, NoteVerifier>();
  for (const v of verifiers.map(toVerifier)) {
    const k = idKey(v.name, v.keyId);
    if (known.has(k)) throw new NoteError('ambiguous_key', `two trusted keys named ${v.name} share key ID ${v.keyId.toString(16).padStart(8, '0')}`);
    known.set(k, v);
  }
  const { text, lines } = splitNote(note);
  const signatures: VerifiedSignature[] = [];
  const unverified: NoteSignature[] = [];
  const seen = new Set<string>();
  for (const line of lines) {
    const k = idKey(line.name, line.keyId);
    const v = known.get(k);
    const entry: NoteSignature = { name: line.name, keyId: line.keyId, base64: line.base64 };
    if (!v) {
      if (!unverified.some((u) => u.name === line.name && u.base64 === line.base64)) unverified.push(entry);
      continue;
    }
    const timestamp = checkSignature(v, text, line); // every trusted signature is checked, duplicates too
    if (seen.has(k)) continue;
    seen.add(k);
    signatures.push(timestamp === undefined ? { ...entry, type: v.type } : { ...entry, type: v.type, timestamp });
  }
  if (signatures.length === 0) {
    const names = unverified.map((u) => `${u.name}+${u.keyId.toString(16).padStart(8, '0')}`).join(', ');
    throw new NoteError('unverified_note', `note has no signature by a trusted key (found: ${names})`);
  }
  return { text, signatures, unverified };
}

export interface OpenedCheckpoint extends OpenedNote {
  readonly checkpoint: Checkpoint;
  /** The log's own signature. */
  readonly logSignature: VerifiedSignature;
  /** Verified signatures by the supplied witnesses (cosignatures carry a timestamp). */
  readonly cosignatures: readonly VerifiedSignature[];
}

/**
 * Opens a checkpoint: requires a valid signature by `log`, parses the body strictly, checks the
 * origin (by default it must equal the log key's name, as tlog-checkpoint recommends and Vouch
 * always does), and verifies any signatures by the given `witnesses`.
 */
export function openCheckpoint(
  note: string | Uint8Array,
  log: NoteVerifier | string,
  witnesses: readonly (NoteVerifier | string)[] = [],
  options: { origin?: string } = {},
): OpenedCheckpoint {
  const logVerifier = toVerifier(log);
  const opened = openNote(note, [logVerifier, ...witnesses]);
  const logSignature = opened.signatures.find((s) => s.name === logVerifier.name && s.keyId === logVerifier.keyId);
  if (!logSignature) {
    throw new NoteError('unverified_note', `checkpoint is not signed by the log key ${logVerifier.name}+${logVerifier.keyId.toString(16).padStart(8, '0')}`);
  }
  const checkpoint = parseCheckpoint(opened.text);
  const origin = options.origin ?? logVerifier.name;
  if (checkpoint.origin !== origin) {
    throw new NoteError('wrong_origin', `checkpoint origin ${JSON.stringify(checkpoint.origin)} is not ${JSON.stringify(origin)}`);
  }
  return { ...opened, checkpoint, logSignature, cosignatures: opened.signatures.filter((s) => s !== logSignature) };
}

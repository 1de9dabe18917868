/**
 * A C2SP tlog-witness (https://c2sp.org/tlog-witness) written from the spec text alone, as real
 * HTTP on a loopback address, to test our log against a witness nobody on the log side wrote.
 * Nothing here uses shared/merkle: note parsing, key IDs, Ed25519 checks, the RFC 6962
 * consistency-proof check (RFC 9162 §2.1.4.2) and the `cosignature/v1` signing (c2sp.org/
 * tlog-cosignature) are done over again from the specs, so an error shared by both sides cannot
 * hide.
 *
 * It implements `POST <prefix>/add-checkpoint` with the spec's answers, in the spec's order:
 * 404 unknown origin, 403 no valid signature by a trusted key (or a failing one), 400 old size
 * above the checkpoint's (or a malformed body), 409 + `text/x.tlog.size` when the old size is
 * not the size it last cosigned, 422 a size-0 checkpoint without the empty root, a proof with old
 * size 0, a proof that does not verify, or equal sizes with different roots; else it records the
 * checkpoint and answers 200 with one cosignature line. The check and the record are one
 * synchronous step (the spec's atomicity requirement). `GET <prefix>/<sha256(origin) hex>/checkpoint`
 * serves the latest cosigned checkpoint (the monitoring API).
 */
import { createHash, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface C2spWitnessOptions {
  /** The witness's key name (c2sp: a schema-less URL), e.g. `witness.test/w1`. */
  name: string;
  /** Its Ed25519 key (default: a fresh one). */
  privateKey?: KeyObject;
  /** Per log origin, the log verifier keys (`name+hash+base64`) it trusts. */
  logs: Record<string, string[]>;
  /** Loopback address to listen on (default 127.0.0.1). */
  host?: string;
  /** Submission prefix path (default `/w`). */
  prefix?: string;
  /** Cosignature timestamps, POSIX seconds (default: now). */
  now?: () => number;
}

export interface RecordedCheckpoint {
  size: number;
  root: Buffer;
  /** The note as submitted, plus our cosignature line. */
  note: string;
}

export interface C2spWitness {
  /** Submission prefix URL (what an operator configures). */
  readonly url: string;
  readonly host: string;
  /** Its `cosignature/v1` verifier key. */
  readonly vkey: string;
  /** Each add-checkpoint request: the old size sent and the status answered. */
  readonly requests: Array<{ old: number | null; size: number | null; status: number }>;
  latest(origin: string): RecordedCheckpoint | undefined;
  /** Records and cosigns the next valid checkpoint, then drops the connection without answering. */
  dropNextAnswer(): void;
  close(): Promise<void>;
}

const EM_DASH = '\u2014 ';
const MAX_BODY = 1024 * 1024;

const sha256 = (...parts: Array<Buffer | string>): Buffer => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};

/** Standard, padded, canonical base64 only. */
function b64decode(s: string): Buffer | null {
  if (s.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(s)) return null;
  const b = Buffer.from(s, 'base64');
  return b.toString('base64') === s ? b : null;
}

function rawPublicKey(key: KeyObject): Buffer {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  return Buffer.from(String(pub.export({ format: 'jwk' }).x), 'base64url');
}

interface TrustedKey {
  name: string;
  id: number;
  key: KeyObject;
}

/** signed-note §Verifier keys: name+hex(keyID)+base64(0x01 || key), Ed25519 only. */
function parseLogVkey(vkey: string): TrustedKey {
  // The base64 part may itself hold '+': split at the first two only.
  const first = vkey.indexOf('+');
  const second = vkey.indexOf('+', first + 1);
  const [name, hex, material] = [vkey.slice(0, first), vkey.slice(first + 1, second), vkey.slice(second + 1)];
  const bytes = b64decode(material ?? '');
  if (first < 1 || second < 0 || !/^[0-9a-f]{8}$/.test(hex) || !bytes || bytes.length !== 33 || bytes[0] !== 0x01) throw new Error(`bad log vkey ${vkey}`);
  const id = sha256(name, '\n', bytes).readUInt32BE(0);
  if (id !== parseInt(hex, 16)) throw new Error(`vkey ${vkey}: key ID mismatch`);
  const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: bytes.subarray(1).toString('base64url') }, format: 'jwk' });
  return { name, id, key };
}

/** RFC 9162 §2.1.4.2, with 1 ≤ first < second. */
function consistent(first: number, second: number, proof: Buffer[], firstRoot: Buffer, secondRoot: Buffer): boolean {
  const node = (l: Buffer, r: Buffer) => sha256(Buffer.of(1), l, r);
  const path = (first & (first - 1)) === 0 ? [firstRoot, ...proof] : [...proof];
  if (path.length === 0) return false;
  let fn = first - 1;
  let sn = second - 1;
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  let fr = path[0]!;
  let sr = path[0]!;
  for (const c of path.slice(1)) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      fr = node(c, fr);
      sr = node(c, sr);
      while (fn % 2 === 0 && fn !== 0) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
      }
    } else {
      sr = node(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && fr.equals(firstRoot) && sr.equals(secondRoot);
}

class Answer extends Error {
  constructor(
    readonly status: number,
    readonly body = '',
    readonly contentType = 'text/plain; charset=utf-8',
  ) {
    super(`${status}`);
  }
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of req) {
    total += (chunk as Buffer).length;
    if (total > MAX_BODY) throw new Answer(413);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

export async function startC2spWitness(options: C2spWitnessOptions): Promise<C2spWitness> {
  const privateKey = options.privateKey ?? generateKeyPairSync('ed25519').privateKey;
  const publicKey = rawPublicKey(privateKey);
  const prefix = options.prefix ?? '/w';
  const now = options.now ?? (() => Math.floor(Date.now() / 1000));
  const keyMaterial = Buffer.concat([Buffer.of(0x04), publicKey]);
  const keyId = sha256(options.name, '\n', keyMaterial).readUInt32BE(0);
  const vkey = `${options.name}+${keyId.toString(16).padStart(8, '0')}+${keyMaterial.toString('base64')}`;
  const trusted = new Map(Object.entries(options.logs).map(([origin, vkeys]) => [origin, vkeys.map(parseLogVkey)]));
  const state = new Map<string, RecordedCheckpoint>();
  const requests: C2spWitness['requests'] = [];
  let dropNext = false;

  const cosignatureLine = (text: string): string => {
    const time = now();
    const sig = sign(null, Buffer.from(`cosignature/v1\ntime ${time}\n${text}`, 'utf8'), privateKey);
    const blob = Buffer.alloc(4 + 8 + 64);
    blob.writeUInt32BE(keyId, 0);
    blob.writeBigUInt64BE(BigInt(time), 4);
    sig.copy(blob, 12);
    return `${EM_DASH}${options.name} ${blob.toString('base64')}\n`;
  };

  /** Everything add-checkpoint checks; returns the 200 body, or throws an Answer. */
  const addCheckpoint = (raw: Buffer, seen: { old: number | null; size: number | null }): { body: string; drop: boolean } => {
    let body: string;
    try {
      body = new TextDecoder('utf-8', { fatal: true }).decode(raw);
    } catch {
      throw new Answer(400);
    }
    const blank = body.indexOf('\n\n');
    if (blank < 0) throw new Answer(400);
    const head = body.slice(0, blank).split('\n');
    const note = body.slice(blank + 2);
    const oldMatch = /^old (0|[1-9][0-9]*)$/.exec(head[0]!);
    if (!oldMatch) throw new Answer(400);
    const old = Number(oldMatch[1]);
    seen.old = old;
    const proofLines = head.slice(1);
    if (proofLines.length > 63) throw new Answer(400);
    const proof = proofLines.map((l) => b64decode(l));
    if (proof.some((h) => h === null || h.length !== 32)) throw new Answer(400);

    // The checkpoint: a signed note (text, blank line, signature lines).
    const split = note.lastIndexOf('\n\n');
    if (split < 0 || !note.endsWith('\n')) throw new Answer(400);
    const text = note.slice(0, split + 1);
    const lines = text.slice(0, -1).split('\n');
    if (lines.length < 3 || !/^(0|[1-9][0-9]*)$/.test(lines[1]!)) throw new Answer(400);
    const [origin, sizeLine, rootLine] = lines as [string, string, string];
    const size = Number(sizeLine);
    seen.size = size;
    const root = b64decode(rootLine);
    if (!root || root.length !== 32) throw new Answer(400);

    const keys = trusted.get(origin);
    if (!keys) throw new Answer(404);
    let verified = false;
    for (const line of note.slice(split + 2, -1).split('\n')) {
      if (!line.startsWith(EM_DASH)) throw new Answer(403); // a malformed note
      const [name, sigB64] = line.slice(EM_DASH.length).split(' ');
      const blob = b64decode(sigB64 ?? '');
      if (!name || !blob || blob.length < 4) throw new Answer(403);
      const key = keys.find((k) => k.name === name && k.id === blob.readUInt32BE(0));
      if (!key) continue; // unknown keys are ignored
      if (blob.length !== 68 || !verify(null, Buffer.from(text, 'utf8'), key.key, blob.subarray(4))) throw new Answer(403);
      verified = true;
    }
    if (!verified) throw new Answer(403);

    if (old > size) throw new Answer(400);
    const held = state.get(origin);
    if (old !== (held?.size ?? 0)) throw new Answer(409, `${held?.size ?? 0}\n`, 'text/x.tlog.size');
    if (size === 0 && !root.equals(sha256(''))) throw new Answer(422);
    if (old === 0) {
      if (proof.length !== 0) throw new Answer(422);
    } else if (old === size) {
      if (proof.length !== 0 || !held!.root.equals(root)) throw new Answer(422);
    } else if (!consistent(old, size, proof as Buffer[], held!.root, root)) {
      throw new Answer(422);
    }
    const cosignature = cosignatureLine(text);
    state.set(origin, { size, root, note: note + cosignature });
    const drop = dropNext;
    dropNext = false;
    return { body: cosignature, drop };
  };

  const server: Server = createServer((req, res) => {
    void (async () => {
      const path = (req.url ?? '').split('?')[0]!;
      const monitor = new RegExp(`^${prefix}/([0-9a-f]{64})/checkpoint$`).exec(path);
      if (req.method === 'GET' && monitor) {
        const found = [...state.entries()].find(([origin]) => sha256(origin).toString('hex') === monitor[1]);
        if (!found) return res.writeHead(404).end();
        return res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' }).end(found[1].note);
      }
      if (path !== `${prefix}/add-checkpoint`) return res.writeHead(404).end();
      if (req.method !== 'POST') return res.writeHead(405).end();
      const seen = { old: null as number | null, size: null as number | null };
      try {
        const { body, drop } = addCheckpoint(await readBody(req), seen);
        requests.push({ ...seen, status: drop ? 0 : 200 });
        if (drop) return req.socket.destroy();
        res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' }).end(body);
      } catch (err) {
        if (!(err instanceof Answer)) throw err;
        requests.push({ ...seen, status: err.status });
        res.writeHead(err.status, { 'content-type': err.contentType }).end(err.body);
      }
    })().catch(() => res.destroy());
  });
  server.keepAliveTimeout = 1000;
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host}:${port}${prefix}`,
    host,
    vkey,
    requests,
    latest: (origin) => state.get(origin),
    dropNextAnswer: () => {
      dropNext = true;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

// The transparency log over HTTP: the log's own read API (public checkpoint, proofs and entries'
// public parts; private parts with abuse labels for approved followers only), its metadata document (origin, verifier key and
// every endpoint and the outside witnesses' keys, linked from the actor as `endpoints.vouchLog`),
// and the cosignature endpoint where followers hand back their witness signatures (outside
// witnesses answer our add-checkpoint requests instead: log/witness-client.ts).
import express, { type Request, type Router } from 'express';
import { z } from 'zod';
import type { Federation } from '../federation/index.js';
import { logOrigin, logRouter, type LogCheckpoints, type TransparencyLog } from '../log/index.js';
import { logMetadata } from '../log/http.js';
import { publicObjectOf } from '../log/entry.js';
import { wireEntry } from '../log/format.js';
import { verifierKey } from '../../shared/merkle/checkpoint.js';
import { multibaseToEd25519 } from '../../shared/crypto/data-integrity.js';
import { HttpError } from './errors.js';

const cosignatureSchema = z.object({ cosignature: z.string().min(10).max(512), size: z.number().int().nonnegative().optional() }).strict();

/** `— <name> <base64>`: the witness name a cosignature line is signed under (C2SP signed-note). */
const SIGNATURE_LINE = /^\u2014 (\S+) [A-Za-z0-9+/=]+\n?$/;

export function logRoutes(deps: {
  log: TransparencyLog;
  checkpoints: LogCheckpoints;
  federation: Federation;
  publicOkFeed: boolean;
  /** The outside witnesses' verifier keys, published in the metadata (none when absent). */
  outsideWitnesses?: { readonly verifierKeys: readonly string[] };
}): Router {
  const { log, checkpoints, federation, publicOkFeed, outsideWitnesses } = deps;
  const router = express.Router();
  /**
   * Which of these entries anyone may read whole, when policy publishes `ok` verdicts: those whose
   * activity the outbox serves to anyone (9.3). A Create of an `ok` verdict; an Update that keeps
   * it `ok` (one that clears a verdict labelled otherwise would hand out that verdict's digests);
   * a Delete of a verdict that was `ok` (a Tombstone has no label). The version an entry follows
   * is the newest earlier non-Delete entry about the same verdict (the log keys each entry by its
   * object's id), read for the whole page in one query.
   */
  const publicEntries = async (rows: readonly { index: number; entry: Uint8Array }[]): Promise<boolean[]> => {
    const objects = rows.map((r) => publicObjectOf(r.entry));
    const keys = new Set(objects.flatMap((o) => (typeof o?.id === 'string' && (o.type === 'Tombstone' || o.label === 'ok') ? [o.id] : [])));
    const history = new Map<string, { index: number; object: ReturnType<typeof publicObjectOf> }[]>();
    for (const e of await log.entriesByKey([...keys])) {
      const object = publicObjectOf(e.entry);
      if (object?.type === 'Tombstone') continue;
      const versions = history.get(e.key) ?? [];
      versions.push({ index: e.index, object });
      history.set(e.key, versions);
    }
    return rows.map((row, i) => {
      const object = objects[i];
      if (typeof object?.id !== 'string') return false;
      const retraction = object.type === 'Tombstone';
      if (!retraction && object.label !== 'ok') return false;
      const before = (history.get(object.id) ?? []).filter((e) => e.index < row.index).at(-1);
      if (before === undefined) return !retraction;
      return before.object?.label === 'ok';
    });
  };
  const readableEntries = async (req: Request, rows: readonly { index: number; entry: Uint8Array }[]): Promise<readonly boolean[]> => {
    if ((await federation.approvedFollower(req)) !== undefined) return rows.map(() => true);
    return publicOkFeed ? publicEntries(rows) : rows.map(() => false);
  };
  router.use(logRouter({ log, checkpoints, canReadEntries: readableEntries }));

  const { identity } = federation;
  const origin = logOrigin(identity.host);
  const metadata = logMetadata(identity.publicUrl, origin, verifierKey(origin, identity.proofPrivateKey, 'ed25519'), outsideWitnesses?.verifierKeys);
  router.get('/log', (_req, res) => {
    res.setHeader('cache-control', 'public, max-age=300');
    res.json(metadata);
  });

  // A verdict's proof bundle: its newest log entry, an inclusion proof and the signed checkpoint
  // (with the cosignatures collected), enough to verify it offline. A version-2 entry's public
  // part is everyone's; its private part, and a version-1 entry, follow the entries' rule.
  router.get('/log/bundle', async (req, res) => {
    const id = typeof req.query.id === 'string' ? req.query.id : '';
    if (!z.url().safeParse(id).success) throw new HttpError(400, 'bad_query', 'give id=OBJECT_URL');
    const index = await log.latestIndexOf(id);
    if (index === null) throw new HttpError(404, 'not_found', 'no log entry for that object');
    const [entry] = await log.entries(index, index + 1);
    const [readable] = await readableEntries(req, [entry]);
    const wire = wireEntry(entry, readable);
    if (wire.withheld) throw new HttpError(404, 'not_found', 'no log entry for that object');
    // The newest checkpoint covers the entry unless it came after it: then sign one now.
    let checkpoint = await checkpoints.signCheckpoint();
    if (checkpoint.size <= index) checkpoint = await checkpoints.signCheckpoint();
    const note = (await checkpoints.checkpointAt(checkpoint.size)) ?? checkpoint.note;
    const proof = await log.inclusionProof(index, checkpoint.size);
    res.json({
      ...wire,
      // The exact logged bytes, which the leaf hash covers.
      entry_bytes: Buffer.from(entry.entry).toString('base64'),
      checkpoint: note,
      inclusion: { index, size: checkpoint.size, hashes: proof.map((h) => Buffer.from(h).toString('base64')) },
    });
  });

  router.post('/log/cosignatures', express.raw({ type: () => true, limit: '16kb' }), async (req, res) => {
    const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const witness = await federation.approvedFollower(req, body);
    if (!witness) throw new HttpError(401, 'unauthorized', 'cosignatures are accepted from approved followers over signed POST');
    let parsed: z.infer<typeof cosignatureSchema>;
    try {
      parsed = cosignatureSchema.parse(JSON.parse(body.toString('utf8')));
    } catch {
      throw new HttpError(400, 'bad_request', 'body must be {"cosignature": "<signature line>", "size"?: n}');
    }
    const name = logOrigin(new URL(witness).host);
    const signedName = SIGNATURE_LINE.exec(parsed.cosignature)?.[1];
    if (signedName === undefined) throw new HttpError(400, 'bad_request', 'cosignature must be one signature line: "\u2014 <witness name> <base64>"');
    if (signedName !== name) {
      throw new HttpError(422, 'bad_witness_name', `the cosignature is signed under the name ${JSON.stringify(signedName)}; a witness signs as its own log origin, here ${JSON.stringify(name)}`);
    }
    const peer = await federation.peers.get(witness);
    // The witness signs with the Ed25519 key its actor lists for proofs.
    for (const multibase of Object.values(peer?.proofKeys ?? {})) {
      const key = verifierKey(name, multibaseToEd25519(multibase), 'cosignature/v1');
      try {
        const result = await checkpoints.addCosignature(parsed.cosignature, key, parsed.size);
        res.status(result.added ? 201 : 200).json({ size: result.size, witness: result.witness, added: result.added });
        return;
      } catch {
        // not this key: try the next one
      }
    }
    throw new HttpError(422, 'bad_cosignature', 'the cosignature does not verify against a checkpoint of this log with the witness\'s key');
  });
  return router;
}

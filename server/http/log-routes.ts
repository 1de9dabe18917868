// The transparency log over HTTP: the log's own read API (public checkpoint and proofs; entries
// with abuse labels for approved followers only) and the cosignature endpoint where followers hand
// back their witness signatures.
import express, { type Request, type Router } from 'express';
import { z } from 'zod';
import type { Federation } from '../federation/index.js';
import { logOrigin, logRouter, type LogCheckpoints, type TransparencyLog } from '../log/index.js';
import { verifierKey } from '../../shared/merkle/checkpoint.js';
import { multibaseToEd25519 } from '../../shared/crypto/data-integrity.js';
import { HttpError } from './errors.js';

const cosignatureSchema = z.object({ cosignature: z.string().min(10).max(512), size: z.number().int().nonnegative().optional() }).strict();

/** An entry is public only when it carries an `ok` verdict and policy publishes those. */
function publicEntry(bytes: Uint8Array): boolean {
  try {
    const activity = JSON.parse(Buffer.from(bytes).toString('utf8')) as { object?: { label?: unknown } };
    return activity.object?.label === 'ok';
  } catch {
    return false;
  }
}

export function logRoutes(deps: { log: TransparencyLog; checkpoints: LogCheckpoints; federation: Federation; publicOkFeed: boolean }): Router {
  const { log, checkpoints, federation, publicOkFeed } = deps;
  const router = express.Router();
  const followerCache = new WeakMap<Request, Promise<string | undefined>>();
  const follower = (req: Request) => {
    let pending = followerCache.get(req);
    if (!pending) followerCache.set(req, (pending = federation.approvedFollower(req)));
    return pending;
  };
  const readable = async (req: Request, bytes: Uint8Array) => (publicOkFeed && publicEntry(bytes)) || (await follower(req)) !== undefined;
  router.use(logRouter({ log, checkpoints, canReadEntry: (req, _index, bytes) => readable(req, bytes) }));

  // A verdict's proof bundle: its newest log entry, an inclusion proof and the signed checkpoint
  // (with the cosignatures collected), enough to verify it offline.
  router.get('/log/bundle', async (req, res) => {
    const id = typeof req.query.id === 'string' ? req.query.id : '';
    if (!z.url().safeParse(id).success) throw new HttpError(400, 'bad_query', 'give id=OBJECT_URL');
    const index = await log.latestIndexOf(id);
    if (index === null) throw new HttpError(404, 'not_found', 'no log entry for that object');
    const [entry] = await log.entries(index, index + 1);
    if (!(await readable(req, entry.entry))) throw new HttpError(404, 'not_found', 'no log entry for that object');
    // The newest checkpoint covers the entry unless it came after it: then sign one now.
    let checkpoint = await checkpoints.signCheckpoint();
    if (checkpoint.size <= index) checkpoint = await checkpoints.signCheckpoint();
    const note = (await checkpoints.checkpointAt(checkpoint.size)) ?? checkpoint.note;
    const proof = await log.inclusionProof(index, checkpoint.size);
    res.json({
      index,
      entry: JSON.parse(Buffer.from(entry.entry).toString('utf8')),
      // The exact logged bytes (the JCS of the activity), which the leaf hash covers.
      entry_bytes: Buffer.from(entry.entry).toString('base64'),
      leaf_hash: Buffer.from(entry.leafHash).toString('base64'),
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
    const peer = await federation.peers.get(witness);
    const name = logOrigin(new URL(witness).host);
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

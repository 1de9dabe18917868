/**
 * HTTP API of the transparency log. The checkpoint, the proofs and every version-2 entry's
 * public part (entry.ts) are public; the private parts, and version-1 entries whole, pass through
 * `canReadEntries` (abuse-labelled ones go only to approved followers). A version-1 entry a client
 * may not read is served as `{index, withheld: true, leaf_hash}`, a version-2 one with
 * `private_withheld: true`, so the tree stays verifiable end to end either way.
 *
 *   GET /log/checkpoint                      text/plain: the signed note + cosignature lines
 *   GET /log/entries?start=S[&end=E]         JSON page, at most 1000 entries, E exclusive
 *   GET /log/proof/inclusion?index=I&size=N  JSON {index, size, hashes: [base64...]}
 *   GET /log/proof/consistency?from=M&to=N   JSON {from, to, hashes: [base64...]}
 *
 * The log's metadata document (`GET /log`, built by `logMetadata` and served with the instance's
 * routes) names the origin, the C2SP verifier key and each of these URLs, so clients discover
 * them instead of building paths.
 *
 * Bad input answers 400 `{error: {code, message}}` (codes: invalid_parameter, out_of_range);
 * sizes beyond the current size are out_of_range. Other errors go to the app's error handler.
 */
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import type { LogCheckpoints } from './checkpoints.js';
import {
  ENTRIES_PAGE_MAX,
  toBase64,
  wireEntry,
  type WireConsistencyProof,
  type WireEntriesPage,
  type WireInclusionProof,
} from './format.js';
import { LogRangeError, type TransparencyLog } from './store.js';

/**
 * The log's metadata document (GET /log, linked from the actor as `endpoints.vouchLog`): what a
 * verifier or witness needs, without guessing names or paths.
 */
export interface LogMetadata {
  /** The checkpoint origin line and the log key's name: `<host>/vouch-log`. */
  origin: string;
  /** C2SP signed-note verifier key of the log: `<origin>+<key ID, 8 hex>+<base64(0x01 || Ed25519 key)>`. */
  verifier_key: string;
  checkpoint: string;
  entries: string;
  inclusion_proof: string;
  consistency_proof: string;
  bundle: string;
  /** Where witnesses POST `{"cosignature", "size"?}` (approved followers, signed POST). */
  cosignatures: string;
  /**
   * `cosignature/v1` verifier keys of the outside witnesses (C2SP tlog-witness) the log submits
   * each checkpoint to; their cosignatures are served with the checkpoint, beside followers'.
   */
  witnesses: string[];
}

export function logMetadata(publicUrl: string, origin: string, verifierKey: string, witnesses: readonly string[] = []): LogMetadata {
  const base = `${publicUrl}/log`;
  return {
    origin,
    verifier_key: verifierKey,
    checkpoint: `${base}/checkpoint`,
    entries: `${base}/entries`,
    inclusion_proof: `${base}/proof/inclusion`,
    consistency_proof: `${base}/proof/consistency`,
    bundle: `${base}/bundle`,
    cosignatures: `${base}/cosignatures`,
    witnesses: [...witnesses],
  };
}

export interface LogRouterOptions {
  log: TransparencyLog;
  checkpoints: LogCheckpoints;
  /**
   * Which of these entries (one answer each, in order) the requester may read whole: a version-1
   * entry's content or a version-2 entry's private part. E.g. public ones, or all for an approved
   * follower's signed GET. Asked once per page, so that it can read what it needs in one query.
   */
  canReadEntries: (req: Request, entries: readonly { index: number; entry: Uint8Array }[]) => Promise<readonly boolean[]>;
}

class BadRequest extends Error {
  constructor(
    readonly code: 'invalid_parameter' | 'out_of_range',
    message: string,
  ) {
    super(message);
  }
}

function intParam(req: Request, name: string, required: true): number;
function intParam(req: Request, name: string, required: false): number | undefined;
function intParam(req: Request, name: string, required: boolean): number | undefined {
  const raw = req.query[name];
  if (raw === undefined) {
    if (required) throw new BadRequest('invalid_parameter', `query parameter ${name} is required`);
    return undefined;
  }
  if (typeof raw !== 'string' || !/^(0|[1-9][0-9]{0,15})$/.test(raw) || !Number.isSafeInteger(Number(raw))) {
    throw new BadRequest('invalid_parameter', `query parameter ${name} must be one non-negative integer`);
  }
  return Number(raw);
}

type Handler = (req: Request, res: Response) => Promise<void>;

function route(fn: Handler) {
  return async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    try {
      await fn(req, res);
    } catch (err) {
      if (err instanceof BadRequest || err instanceof LogRangeError) {
        const code = err instanceof LogRangeError && err.code === 'invalid_argument' ? 'invalid_parameter' : err.code;
        res.status(400).json({ error: { code, message: err.message } });
        return;
      }
      next(err);
    }
  };
}

export function logRouter(options: LogRouterOptions): Router {
  const { log, checkpoints, canReadEntries } = options;
  const router = express.Router();

  router.get(
    '/log/checkpoint',
    route(async (_req, res) => {
      let note = await checkpoints.latestCheckpoint();
      if (note === null) {
        await checkpoints.signCheckpoint(); // a fresh log: sign its first checkpoint now
        note = await checkpoints.latestCheckpoint();
      }
      res.setHeader('cache-control', 'no-cache');
      res.type('text/plain; charset=utf-8').send(note);
    }),
  );

  router.get(
    '/log/entries',
    route(async (req, res) => {
      const start = intParam(req, 'start', true);
      const requestedEnd = intParam(req, 'end', false);
      if (requestedEnd !== undefined && requestedEnd < start) throw new BadRequest('invalid_parameter', `end ${requestedEnd} is before start ${start}`);
      const size = await log.size();
      if (start > size) throw new BadRequest('out_of_range', `start ${start} is beyond the current log size ${size}`);
      const end = Math.min(requestedEnd ?? start + ENTRIES_PAGE_MAX, start + ENTRIES_PAGE_MAX, size);
      const rows = await log.entries(start, end);
      const readable = await canReadEntries(req, rows);
      const entries = rows.map((r, i) => wireEntry(r, readable[i] === true));
      const page: WireEntriesPage = { start, end, size, entries, next: end < size ? end : null };
      res.json(page);
    }),
  );

  router.get(
    '/log/proof/inclusion',
    route(async (req, res) => {
      const index = intParam(req, 'index', true);
      const size = intParam(req, 'size', true);
      const hashes = await log.inclusionProof(index, size);
      const body: WireInclusionProof = { index, size, hashes: hashes.map(toBase64) };
      res.json(body);
    }),
  );

  router.get(
    '/log/proof/consistency',
    route(async (req, res) => {
      const from = intParam(req, 'from', true);
      const to = intParam(req, 'to', true);
      const hashes = await log.consistencyProof(from, to);
      const body: WireConsistencyProof = { from, to, hashes: hashes.map(toBase64) };
      res.json(body);
    }),
  );

  return router;
}

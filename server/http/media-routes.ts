// Where media comes in: the API (bytes or a URL), upload hooks (pict-rs, Synapse), and the two
// internal endpoints scanner nodes use (fetch pending media, post results).
import express, { type Router } from 'express';
import { z } from 'zod';
import type { Config } from '../config/index.js';
import type { SafeFetch } from '../federation/safe-fetch.js';
import { MediaRejectedError, type MediaDecision, type MediaIntake } from '../scanning/intake.js';
import { verifyScanUrl } from '../scanning/scanner.js';
import { EXPLAINED_FRAMES } from '../scanning/video-scan.js';
import { MAX_SAMPLED_FRAMES } from '../video/frames.js';
import { LABELS } from '../../shared/vocab/verdict.js';
import { requireBearer } from './auth.js';
import { HttpError, refuseDeclaredOversize, rejectionStatus } from './errors.js';

function decisionJson(d: MediaDecision) {
  return {
    decision_id: d.decisionId,
    outcome: d.outcome,
    label: d.label,
    scanned: d.scanned,
    scan_pending: d.scanPending,
    quarantined: d.quarantineId !== null,
    hashes: d.hashes,
    explanation: d.explanation,
  };
}

/** What an upload hook answers: enough to act on, nothing about peers or trust (hooks are unauthenticated). */
function hookJson(d: MediaDecision) {
  const { hashes, explanation: _explanation, ...decision } = decisionJson(d);
  return { ...decision, sha256: hashes.sha256 };
}

async function submit(intake: MediaIntake, bytes: Buffer, source: string, waitMs: number, remote = false): Promise<MediaDecision> {
  try {
    return await intake.submit(bytes, source, waitMs, { remote });
  } catch (err) {
    if (err instanceof MediaRejectedError) throw new HttpError(rejectionStatus(err.code), err.code, err.message);
    throw err;
  }
}

export function mediaRoutes(deps: { config: Config; intake: MediaIntake; safeFetch: SafeFetch }): Router {
  const { config, intake, safeFetch } = deps;
  const router = express.Router();
  const maxBytes = config.limits.maxUploadBytes;
  const isJson = (req: express.Request) => /^application\/json/.test(req.headers['content-type'] ?? '');
  const jsonLimit = 8 * 1024;
  const imageBody = express.raw({ type: (req) => !isJson(req as express.Request), limit: maxBytes });
  const jsonBody = express.json({ limit: jsonLimit });
  const mediaLimit = refuseDeclaredOversize((req) => (isJson(req) ? jsonLimit : maxBytes));

  // POST bytes, or {"url": "https://…"} (fetched SSRF-safe, size-capped). ?wait=1 waits for a scan.
  // Media from another instance (fetched by URL, or bytes sent with ?remote=1) that nobody waits on
  // is scanned `deferScanSeconds` late, unless peers' verdicts decide it first.
  // For the platform's integration (it holds the admin token): an answer carries the explanation,
  // peers and trust paths included, and each call may start a scan.
  const platformOnly = requireBearer(config.adminToken, 'admin', 'the media API is disabled: set VOUCH_ADMIN_TOKEN');
  router.post('/api/v1/media', platformOnly, mediaLimit, imageBody, jsonBody, async (req, res) => {
    let bytes: Buffer;
    let source = 'api';
    let remote = req.query.remote === '1' || req.query.remote === 'true';
    if (Buffer.isBuffer(req.body)) {
      bytes = req.body;
    } else {
      remote = true;
      const parsed = z.object({ url: z.url({ protocol: /^https?$/ }) }).strict().safeParse(req.body);
      if (!parsed.success) throw new HttpError(400, 'bad_request', 'send image bytes, or JSON {"url": "https://…"}');
      const fetched = await safeFetch(parsed.data.url, { maxBodyBytes: maxBytes, accept: 'image/*' });
      if (fetched.status !== 200) throw new HttpError(502, 'fetch_failed', `the URL answered ${fetched.status}`);
      bytes = fetched.body;
      source = `url:${new URL(parsed.data.url).host}`;
    }
    if (bytes.length === 0) throw new HttpError(400, 'empty', 'request body must hold the image bytes');
    const wait = req.query.wait === '1' || req.query.wait === 'true' ? config.scanner.waitMs : 0;
    res.json(decisionJson(await submit(intake, bytes, source, wait, remote)));
  });

  // Upload validation hooks: 2xx keeps the upload, 406 refuses it. Unknown media waits for its
  // scan up to the configured time, then the policy's fail-open/fail-closed rule applies.
  // Videos (MP4/MOV, WebM/MKV, animated GIF/WebP, told by content) are decided like images from
  // their MD5, SHA-256 and vPDQ frames; a video that cannot be hashed is refused (4xx), unkept.
  // pict-rs stores only images and videos, so what is neither is refused there. Other platforms (Synapse)
  // carry every kind of file, encrypted ones included: what is not an image is not ours to judge
  // and is kept, while an image we could not decode (corrupt, over the limits) is media nobody
  // judged, and the policy's default fail mode decides.
  const validate = (options: { source: (req: express.Request) => string; imagesOnly: boolean }) => async (req: express.Request, res: express.Response) => {
    const bytes = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    if (bytes.length === 0) throw new HttpError(400, 'empty', 'no bytes were sent');
    let decision: MediaDecision;
    try {
      decision = await intake.submit(bytes, options.source(req), config.scanner.waitMs);
    } catch (err) {
      if (!(err instanceof MediaRejectedError)) throw err;
      const keep = !options.imagesOnly && (err.code === 'unsupported_format' || !intake.failsClosedByDefault());
      res.status(keep ? 200 : 406).json({ judged: false, error: { code: err.code, message: err.message } });
      return;
    }
    const refuse = decision.outcome === 'block' || intake.failsClosed(decision);
    res.status(refuse ? 406 : 201).json(hookJson(decision));
  };
  const uploadLimit = refuseDeclaredOversize(maxBytes);
  const uploadBody = express.raw({ type: () => true, limit: maxBytes });
  router.post('/api/v1/pictrs/validate', uploadLimit, uploadBody, validate({ source: () => 'pictrs', imagesOnly: true }));
  // Behind VOUCH_VALIDATE_TOKEN when one is set (pict-rs cannot send one; the Synapse module can).
  const validateAuth = config.validateToken ? requireBearer(config.validateToken, 'validation', '') : (_req: express.Request, _res: express.Response, next: express.NextFunction) => next();
  router.post(
    '/api/v1/validate',
    validateAuth,
    uploadLimit,
    uploadBody,
    validate({
      source: (req) => (typeof req.query.source === 'string' && /^[\w.-]{1,40}$/.test(req.query.source) ? req.query.source : 'upload'),
      imagesOnly: false,
    }),
  );
  return router;
}

const scanResultSchema = z
  .object({
    job: z.object({ sha256: z.string().regex(/^[0-9a-f]{64}$/), decisionId: z.number().int().positive(), spotCheck: z.boolean(), deferred: z.boolean().optional() }).strict(),
    /** One per model the node ran. */
    results: z
      .array(
        z
          .object({
            label: z.enum(LABELS),
            confidence: z.number().min(0).max(1),
            classifier: z.object({ name: z.string().min(1).max(100), version: z.string().min(1).max(100) }).strict(),
            /** A video's: the frames behind the verdict (server/scanning/video-scan.ts). */
            scannedFrames: z
              .object({
                sampled: z.number().int().min(1).max(MAX_SAMPLED_FRAMES),
                frames: z
                  .array(z.object({ seconds: z.number().min(0).max(86_400), label: z.enum(LABELS), confidence: z.number().min(0).max(1) }).strict())
                  .min(1)
                  .max(EXPLAINED_FRAMES),
              })
              .strict()
              .optional(),
          })
          .strict(),
      )
      .min(1)
      .max(4)
      .refine((list) => new Set(list.map((r) => `${r.classifier.name}@${r.classifier.version}`)).size === list.length, 'one result per classifier'),
    node: z.string().regex(/^[\w.:-]{1,200}$/).optional(),
  })
  .strict();

export function scannerRoutes(deps: { token: string; intake: MediaIntake }): Router {
  const router = express.Router();
  const auth = requireBearer(deps.token, 'scanner', 'no scanner token configured');
  router.get('/internal/scan-media/:sha256', auth, async (req, res) => {
    const sha256 = String(req.params.sha256);
    const ok = /^[0-9a-f]{64}$/.test(sha256) && verifyScanUrl(deps.token, sha256, Number(req.query.expires), String(req.query.signature ?? ''));
    if (!ok) throw new HttpError(403, 'bad_signature', 'the scan URL is invalid or has expired');
    // A deferred scan: peers may have decided while it waited (410: settled, nothing to scan).
    if (req.query.recheck !== undefined) {
      const decisionId = Number(req.query.recheck);
      if (!Number.isSafeInteger(decisionId) || decisionId <= 0) throw new HttpError(400, 'bad_query', 'recheck must be the job\'s decision id');
      if (await deps.intake.settledBeforeScan({ sha256, decisionId })) throw new HttpError(410, 'settled', 'decided without a scan');
    }
    const bytes = await deps.intake.pendingBytes(sha256);
    if (!bytes) throw new HttpError(404, 'not_found', 'no pending media with that hash');
    res.type('application/octet-stream').send(bytes);
  });
  const resultLimit = 16 * 1024;
  router.post('/internal/scan-results', auth, refuseDeclaredOversize(resultLimit), express.json({ limit: resultLimit }), async (req, res) => {
    const parsed = scanResultSchema.safeParse(req.body);
    if (!parsed.success) throw new HttpError(400, 'bad_request', parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
    const { job, results, node } = parsed.data;
    try {
      await deps.intake.scanResult(job, results, node);
    } catch (err) {
      if (err instanceof MediaRejectedError) throw new HttpError(404, err.code, err.message);
      throw err;
    }
    res.status(201).json({ recorded: true });
  });
  return router;
}

// Admin routes for trust, policy, decisions and the review queue (mounted behind the admin token).
import express, { type Request, type Router } from 'express';
import { z } from 'zod';
import type { TrustService } from '../trust/service.js';
import { OUTCOMES, ReviewConflictError, ReviewInputError, ReviewNotFoundError, type DecisionSummary, type Outcome, type ReviewQueue } from '../review/index.js';
import type { ScanningServices } from '../review/scanning-services.js';
import { LABELS } from '../../shared/vocab/verdict.js';
import { HttpError, parseBody } from './errors.js';

const trustSchema = z
  .object({
    peer: z.url(),
    abuse: z.number().min(0).max(1).optional(),
    ok: z.number().min(0).max(1).optional(),
    label: z.enum(LABELS.filter((l) => l !== 'ok') as ['csam', 'sexual', 'gore', 'hate', 'spam']).optional(),
  })
  .strict()
  .refine((t) => t.abuse !== undefined || t.ok !== undefined, { message: 'give abuse and/or ok trust' });

const reviewSchema = z
  .object({
    action: z.enum(['confirm', 'overturn']),
    label: z.enum(LABELS).optional(),
    reason: z.string().trim().min(3).max(1000),
  })
  .strict()
  .refine((r) => r.action === 'confirm' || r.label !== undefined, { message: 'overturning needs the correct label' });

/** Who did it, for the records: the admin API has one token, so the caller may name itself. */
export const actorOf = (req: Request) => String(req.get('x-vouch-actor') ?? 'admin').slice(0, 100);

const isOutcome = (s: string): s is Outcome => (OUTCOMES as readonly string[]).includes(s);

export function reviewRoutes(deps: {
  trust: TrustService;
  scanning: ScanningServices;
  review: ReviewQueue;
}): Router {
  const { trust, review } = deps;
  const router = express.Router();
  const json = express.json({ limit: '64kb' });

  router.get('/trust', async (_req, res) => {
    res.json({ direct: await trust.direct(), changes: await trust.changes(50) });
  });
  router.put('/trust', json, async (req, res) => {
    const t = parseBody(trustSchema, req.body);
    if (t.abuse !== undefined) await trust.setTrust(t.peer, 'abuse', t.abuse, actorOf(req), t.label);
    if (t.ok !== undefined) await trust.setTrust(t.peer, 'ok', t.ok, actorOf(req), t.label);
    res.json({ peer: t.peer, abuse: trust.weightsFor('abuse').weight(t.peer), ok: trust.weightsFor('ok').weight(t.peer) });
  });
  // A peer's effective weight per polarity, with the trust paths that give it.
  router.get('/trust/weight', (req, res) => {
    const peer = typeof req.query.peer === 'string' ? req.query.peer : '';
    if (!z.url().safeParse(peer).success) throw new HttpError(400, 'bad_query', 'give peer=ACTOR_URL');
    res.json({ peer, abuse: trust.weightsFor('abuse').explain(peer), ok: trust.weightsFor('ok').explain(peer) });
  });
  router.post('/trust/block', json, async (req, res) => {
    const { peer, reason } = parseBody(z.object({ peer: z.url(), reason: z.string().max(500).optional() }).strict(), req.body);
    await trust.block(peer, actorOf(req), reason);
    res.json({ blocked: peer });
  });
  router.post('/trust/unblock', json, async (req, res) => {
    const { peer } = parseBody(z.object({ peer: z.url() }).strict(), req.body);
    await trust.unblock(peer, actorOf(req));
    res.json({ unblocked: peer });
  });

  router.get('/policy', (_req, res) => {
    res.json(trust.policyInfo());
  });
  router.put('/policy', json, async (req, res) => {
    try {
      res.json({ policy: await trust.setPolicy(req.body, actorOf(req)) });
    } catch (err) {
      if (err instanceof z.ZodError) {
        throw new HttpError(400, 'bad_policy', err.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
      }
      throw err;
    }
  });

  // What Vouch would decide now about a hash, with the full explanation (nothing recorded).
  router.get('/explain', async (req, res) => {
    const sha256 = typeof req.query.sha256 === 'string' ? req.query.sha256 : undefined;
    const pdq = typeof req.query.pdq === 'string' ? req.query.pdq : undefined;
    const phash64 = typeof req.query.phash64 === 'string' ? req.query.phash64 : undefined;
    const md5 = typeof req.query.md5 === 'string' ? req.query.md5 : undefined;
    if (
      (sha256 && !/^[0-9a-f]{64}$/.test(sha256)) ||
      (pdq && !/^[0-9a-f]{64}$/.test(pdq)) ||
      (md5 && !/^[0-9a-f]{32}$/.test(md5)) ||
      (!sha256 && !pdq && !md5) ||
      (phash64 && !/^[0-9a-f]{16}$/.test(phash64))
    ) {
      throw new HttpError(400, 'bad_query', 'give sha256=HEX and/or pdq=HEX (64 lower-case hex characters) or md5=HEX (32), and optionally phash64=HEX (16)');
    }
    const decision = await deps.scanning.intake.explain({ sha256, pdq, phash64, md5 });
    res.json({ outcome: decision.outcome, label: decision.label, scan: decision.scan, explanation: decision.explanation });
  });

  const decisionJson = (d: DecisionSummary) => ({
    id: d.id,
    outcome: d.outcome,
    label: d.label,
    source: d.source,
    created_at: d.createdAt,
    reviewed_at: d.reviewedAt,
    reviewed_by: d.reviewedBy,
    review_outcome: d.reviewOutcome,
    sha256: d.sha256,
    quarantine_id: d.quarantineId,
  });
  const decisionId = (req: Request) => {
    const id = Number(req.params.id);
    if (!Number.isSafeInteger(id) || id <= 0) throw new HttpError(400, 'bad_id', 'decision ids are positive integers');
    return id;
  };

  router.get('/decisions', async (req, res) => {
    const outcome = typeof req.query.outcome === 'string' ? req.query.outcome : undefined;
    if (outcome !== undefined && !isOutcome(outcome)) throw new HttpError(400, 'bad_query', 'unknown outcome');
    const rows = await review.list({ outcome, pending: req.query.pending === 'true', queue: req.query.queue === 'true' });
    res.json({ decisions: rows.map(decisionJson) });
  });
  router.get('/decisions/:id', async (req, res) => {
    const decision = await review.get(decisionId(req));
    if (!decision) throw new HttpError(404, 'not_found', 'no such decision');
    res.json({ ...decisionJson(decision), explanation: decision.explanation });
  });

  // The review queue: confirm, or overturn with the correct label (see ReviewQueue.review).
  router.post('/decisions/:id/review', json, async (req, res) => {
    const id = decisionId(req);
    const input = parseBody(reviewSchema, req.body);
    try {
      const { verdict } = await review.review(id, input, actorOf(req));
      res.json({ decision: id, action: input.action, verdict });
    } catch (err) {
      if (err instanceof ReviewNotFoundError) throw new HttpError(404, 'not_found', 'no such decision');
      if (err instanceof ReviewConflictError) throw new HttpError(409, 'already_reviewed', err.message);
      if (err instanceof ReviewInputError) throw new HttpError(400, 'bad_request', err.message);
      throw err;
    }
  });

  return router;
}

// The review queue. Media is shown blurred and in greyscale, made on the server, so the sharp
// original never reaches the browser until a moderator clicks Reveal; every preview and every
// reveal is written to the quarantine access log under the moderator's name. A video is shown by a
// still (its middle frame, through the confined decoder; a placeholder if it cannot be decoded).
import express, { type Request, type Router } from 'express';
import sharp from 'sharp';
import { z } from 'zod';
import { LABELS } from '../../shared/vocab/verdict.js';
import type { ReviewQueue, DecisionSummary } from '../review/index.js';
import type { Quarantine } from '../scanning/quarantine.js';
import { previewStill } from '../scanning/preview-still.js';
import type { FrameSampleOptions } from '../video/frames.js';
import type { ConsoleAccounts } from './accounts.js';
import { html } from './html.js';
import { csrfField, formatTime, page } from './layout.js';
import { messages, redirectWithMessage, requireRole } from './session.js';
import { HttpError, parseBody } from '../http/errors.js';

const reviewForm = z.object({
  action: z.enum(['confirm', 'overturn']),
  label: z.union([z.enum(LABELS), z.literal('')]).optional(),
  reason: z.string().trim().min(3, 'give a reason (3 characters at least)').max(1000),
  _csrf: z.string(),
});

const PREVIEW_SIDE = 320;
const REVEAL_SIDE = 1280;

export function decisionId(req: Request): number {
  const id = Number(req.params.id);
  if (!Number.isSafeInteger(id) || id <= 0) throw new HttpError(400, 'bad_id', 'decision ids are positive integers');
  return id;
}

export function reviewPages(deps: {
  review: ReviewQueue;
  quarantine: Quarantine | undefined;
  accounts: ConsoleAccounts;
  /** How quarantined videos are read for their still (ffmpeg, limits). */
  video?: Omit<FrameSampleOptions, 'maxFrames'>;
}): Router {
  const { review, quarantine, accounts } = deps;
  const router = express.Router();
  const moderator = requireRole('moderator');

  router.get('/review', moderator, async (req, res) => {
    const session = req.consoleSession!;
    const items = await review.list({ queue: true, pending: true, limit: 50 });
    const card = (d: DecisionSummary, index: number) => html`<article class="review-item" id="item-${d.id}" data-decision="${d.id}" tabindex="0" data-index="${index}">
  <div class="media">${
    d.quarantineId !== null
      ? html`<img class="preview" src="/console/review/${d.id}/preview" alt="Blurred greyscale preview of decision ${d.id}" width="${PREVIEW_SIDE}" data-reveal="/console/review/${d.id}/reveal"><button type="button" class="reveal" data-decision="${d.id}">Reveal (r)</button>`
      : html`<p class="no-media">No copy kept${quarantine ? '' : ' (quarantine is off: set VOUCH_QUARANTINE_KEY)'}</p>`
  }</div>
  <div class="facts">
    <p><strong class="outcome outcome-${d.outcome}">${d.outcome}</strong> ${d.label ?? ''} · from ${d.source ?? '?'} · ${formatTime(d.createdAt)}</p>
    <p class="hash">sha256 ${d.sha256}</p>
    <p><a href="/console/decisions/${d.id}">Why? (explanation and access log)</a></p>
    <form method="post" action="/console/review/${d.id}" class="review-form">
      ${csrfField(session)}
      <label>Reason <input name="reason" required minlength="3" maxlength="1000" placeholder="what you saw"></label>
      <label>Correct label <select name="label"><option value="">(to overturn)</option>${LABELS.map((l) => html`<option value="${l}">${l}</option>`)}</select></label>
      <button type="submit" name="action" value="confirm" class="confirm">Confirm (c)</button>
      <button type="submit" name="action" value="overturn" class="overturn">Overturn (o)</button>
    </form>
  </div>
</article>`;
    res.send(
      page(
        { title: 'Review queue', session, active: '/console/review', flash: messages(req).flash },
        html`<p class="hint">Media stays blurred and grey until you click Reveal; each reveal is logged with your name. Keys: j / k move, r reveals, c confirms, o overturns (pick the label first), ? lists keys.</p>
${items.length === 0 ? html`<p class="empty">Nothing waits for review.</p>` : items.map(card)}`,
      ),
    );
  });

  router.get('/review/:id/preview', moderator, async (req, res) => {
    const { image } = await previewStill(await readQuarantined(req, 'view', 'blurred preview in the review queue'), deps.video);
    const preview = await sharp(image, { limitInputPixels: 100_000_000 })
      .rotate()
      .resize({ width: PREVIEW_SIDE, height: PREVIEW_SIDE, fit: 'inside' })
      .greyscale()
      .blur(18)
      .jpeg({ quality: 60 })
      .toBuffer();
    res.set('cache-control', 'no-store').type('image/jpeg').send(preview);
  });

  // A POST (so it carries the CSRF token and is never prefetched): logs the reveal, then sends a
  // re-encoded copy (no metadata; an image whatever the upload was).
  router.post('/review/:id/reveal', moderator, async (req, res) => {
    const { image } = await previewStill(await readQuarantined(req, 'reveal', 'revealed in the review queue'), deps.video);
    const full = await sharp(image, { limitInputPixels: 100_000_000 })
      .rotate()
      .resize({ width: REVEAL_SIDE, height: REVEAL_SIDE, fit: 'inside', withoutEnlargement: true })
      .jpeg({ quality: 85 })
      .toBuffer();
    res.set('cache-control', 'no-store').type('image/jpeg').send(full);
  });

  router.post('/review/:id', moderator, async (req, res) => {
    const id = decisionId(req);
    const form = parseBody(reviewForm, req.body);
    const { action, reason } = form;
    const label = form.label || undefined;
    if (action === 'overturn' && !label) throw new HttpError(400, 'bad_form', 'pick the correct label to overturn');
    const session = req.consoleSession!;
    const { verdict } = await review.review(id, { action, label, reason }, session.user.username);
    await accounts.record(session.user.username, `review.${action}`, { decision: id, label, reason, verdict }, req.ip ?? null);
    const done = action === 'confirm' ? `Decision ${id} confirmed.` : `Decision ${id} overturned to ${label}; our verdict ${verdict} was published.`;
    redirectWithMessage(req, res, '/console/review', done);
  });

  async function readQuarantined(req: Request, action: 'view' | 'reveal', reason: string): Promise<Buffer> {
    if (!quarantine) throw new HttpError(404, 'quarantine_disabled', 'no media is kept: set VOUCH_QUARANTINE_KEY');
    const decision = await review.get(decisionId(req));
    if (!decision || decision.quarantineId === null) throw new HttpError(404, 'not_found', 'no media is kept for this decision');
    return quarantine.read(decision.quarantineId, { actor: req.consoleSession!.user.username, action, reason: `${reason} (decision ${decision.id})` });
  }

  return router;
}

// Verdict search, and explanations: of a stored decision, or of what would be decided now.
import express, { type Router } from 'express';
import { z } from 'zod';
import { LABELS } from '../../shared/vocab/verdict.js';
import type { VerdictService, Verdict, VerdictMatch } from '../verdicts/index.js';
import type { ReviewQueue } from '../review/index.js';
import type { Quarantine } from '../scanning/quarantine.js';
import type { MediaIntake } from '../scanning/intake.js';
import type { Explanation, ScannedFrames, VideoMatchShares } from '../trust/decide.js';
import { html, type SafeHtml } from './html.js';
import { formatTime, page } from './layout.js';
import { requireRole } from './session.js';
import { HttpError } from '../http/errors.js';
import { decisionId } from './review-pages.js';
import { ALGORITHM_REGISTRY, IMAGE_SIMILARITY_ALGORITHM, MEDIA_KEY_ALGORITHM } from '../../shared/algorithms/index.js';
import { queryOf } from '../matching/matcher.js';

const HEX64 = /^[0-9a-f]{64}$/;
const searchSchema = z.object({
  hash: z.union([z.string().trim().toLowerCase().regex(HEX64, 'a hash is 64 hex digits (SHA-256 or PDQ)'), z.literal('')]).optional(),
  label: z.union([z.enum(LABELS), z.literal('')]).optional(),
  issuer: z.union([z.url('the issuer is an actor URL'), z.literal('')]).optional(),
  since: z.union([z.iso.date(), z.literal('')]).optional(),
  until: z.union([z.iso.date(), z.literal('')]).optional(),
});

const num = (x: number) => (Math.round(x * 1000) / 1000).toString();

const DECIDED_BY: Record<string, string> = {
  local: 'our own moderators or lists',
  peers: 'verdicts weighted by trust, peers’ among them',
  evidence: 'the evidence we hold (our own scanner’s included)',
};
const NOT_COUNTED: Record<NonNullable<Explanation['top'][number]['notCounted']>, string> = {
  'outranked-by-own-human': 'not counted: its issuer’s human verdict outranks it',
  'looser-than-evidence': 'not counted: matches more loosely than the evidence against it',
  'cannot-see-label': 'not counted: its classifier cannot see the label',
};

/** A video verdict of our scanner: the sampled frames behind it, with their times and scores. */
function scannedFramesHtml(s: ScannedFrames | undefined): SafeHtml | string {
  if (!s) return '';
  return html`<div class="scanned-frames"><small>frames behind it (of ${s.sampled} sampled): ${s.frames.map((f, i) => html`${i > 0 ? ', ' : ''}${f.seconds} s ${f.label} ${num(f.confidence)}`)}</small></div>`;
}

/** A match between two videos: the shares of frames found each way (HMA's vPDQ rule). */
function videoMatchHtml(v: VideoMatchShares | undefined): SafeHtml | string {
  if (!v) return '';
  return html`<div class="video-match"><small>video match: ${v.queryMatchPercent.toFixed(1)}% of this video's frames, ${v.comparedMatchPercent.toFixed(1)}% of that one's</small></div>`;
}

export function explanationHtml(e: Explanation): SafeHtml {
  const lv = e.localVerdict;
  return html`<section class="explanation">
<p class="verdict-line"><strong class="outcome outcome-${e.outcome}">${e.outcome}</strong> ${e.label ?? ''} — ${e.reason}</p>
<p>Decided by ${DECIDED_BY[e.decidedBy] ?? e.decidedBy} under policy ${e.policy.version} (${e.policy.hash.slice(0, 12)}…). Verdicts: ${e.verdicts.local} local, ${e.verdicts.peer} from peers, ${e.verdicts.ignored} ignored.</p>
${lv ? html`<p>Our verdict: ${lv.label} (confidence ${num(lv.confidence)}, ${lv.method}${lv.classifier ? ` ${lv.classifier}` : ''}), distance ${lv.distance}, <span class="uri">${lv.uri}</span></p>${scannedFramesHtml(lv.scannedFrames)}${videoMatchHtml(lv.videoMatch)}` : ''}
${
  e.labels.length
    ? html`<table class="evidence"><caption>Evidence per label</caption><thead><tr><th>label</th><th>for (r)</th><th>against: ok (s)</th><th>ok on the same file</th><th>probability</th><th>uncertainty</th><th>block at</th><th>min evidence</th><th>ok classifiers</th><th>ok human</th><th>closest evidence</th><th>could not see it</th></tr></thead><tbody>
${e.labels.map(
  // Explanations stored before decision 15 lack the same-file, tier and scope fields.
  (l) =>
    html`<tr><td>${l.label}</td><td>${num(l.r)}</td><td>${num(l.s)}</td><td>${l.sameImageOk === undefined ? '—' : num(l.sameImageOk)}</td><td>${num(l.p)}</td><td>${num(l.u)}</td><td>${num(l.blockProbability)}</td><td>${num(l.minEvidence)}</td><td>${l.okClassifiers}</td><td>${l.okHuman ? 'yes' : 'no'}</td><td>${l.closestTier ?? '—'}</td><td>${(l.cannotSee ?? []).map((c) => html`<div><small>${c}</small></div>`)}</td></tr>`,
)}
</tbody></table>`
    : ''
}
${
  e.top.length
    ? html`<table class="contributions"><caption>Top verdicts (${e.omitted} more not shown)</caption><thead><tr><th>issuer</th><th>label</th><th>confidence</th><th>method</th><th>distance</th><th>match</th><th>weight</th><th>contribution</th><th>trust paths</th></tr></thead><tbody>
${e.top.map(
  (c) => html`<tr class="${c.deduplicated || c.notCounted ? 'deduplicated' : ''}"><td class="uri">${c.issuer}${c.local ? html` <small>(ours)</small>` : ''}</td><td>${c.label}</td><td>${num(c.confidence)}</td><td>${c.method}${c.classifier ? html`<br><small>${c.classifier}</small>` : ''}${scannedFramesHtml(c.scannedFrames)}</td><td>${c.distance}${c.tier ? html`<br><small>${c.tier}</small>` : ''}${videoMatchHtml(c.videoMatch)}</td><td>${num(c.match)}</td><td>${num(c.weight)}</td><td>${c.deduplicated ? html`counted once: repeat of <span class="uri">${c.repeatOf ?? ''}</span>` : c.notCounted ? NOT_COUNTED[c.notCounted] : num(c.contribution)}</td><td>${(c.paths ?? []).map(
    (p) => html`<div class="path">you → ${p.via.join(' → ')} <small>(${num(p.contribution)})</small></div>`,
  )}</td></tr>`,
)}
</tbody></table>`
    : html`<p>No verdict counted.</p>`
}
<p class="thresholds">Thresholds: allow when abuse probability ≤ ${num(e.thresholds.allow.maxAbuseProbability)} with ok evidence on the same file ≥ ${num(e.thresholds.allow.minEvidence)} and ${e.thresholds.allow.requireIndependent} independent classifiers or a human; disputed at ${num(e.thresholds.disputedShare)} of the evidence; PDQ matches count to distance ${e.thresholds.distanceThreshold}${e.thresholds.match ? `, near-duplicates within ${e.thresholds.match.strictRadius}` : ''}; prior weight ${num(e.thresholds.priorWeight)}.</p>
</section>`;
}

function verdictRow(v: Verdict | VerdictMatch): SafeHtml {
  const sha = v.subjects.find((s) => s.algorithm === MEDIA_KEY_ALGORITHM)?.digest;
  const pdq = v.subjects.find((s) => s.algorithm === IMAGE_SIMILARITY_ALGORITHM)?.digest;
  const explain = sha ? `/console/explain?sha256=${sha}` : pdq ? `/console/explain?pdq=${pdq}` : undefined;
  return html`<tr class="${v.retracted ? 'retracted' : ''}"><td>${formatTime(v.published)}</td><td class="uri">${v.issuer}${v.local ? html` <small>(ours)</small>` : ''}</td><td>${v.label}</td><td>${num(v.confidence)}</td><td>${v.method}${v.classifier ? html`<br><small>${v.classifier}</small>` : ''}</td><td>${'distance' in v ? v.distance : ''}</td><td class="hash">${v.subjects.map((s) => html`<div>${s.algorithm} ${s.digest}</div>`)}</td><td>${v.retracted ? `retracted ${formatTime(v.retracted)}` : explain ? html`<a href="${explain}">explain</a>` : ''}</td></tr>`;
}

export function verdictPages(deps: { verdicts: VerdictService; review: ReviewQueue; quarantine: Quarantine | undefined; intake: MediaIntake }): Router {
  const router = express.Router();
  const viewer = requireRole('viewer');

  router.get('/verdicts', viewer, async (req, res) => {
    const parsed = searchSchema.safeParse(req.query);
    const q = parsed.success ? parsed.data : {};
    let rows: Array<Verdict | VerdictMatch> = [];
    if (parsed.success) {
      if (q.hash) {
        // The hash of any algorithm that is looked up and has digests of this length (SHA-256, PDQ).
        rows = (await deps.verdicts.find(queryOf(ALGORITHM_REGISTRY.indexed.map((a) => ({ algorithm: a.name, digest: q.hash! }))))).filter(
          (v) =>
            (!q.label || v.label === q.label) &&
            (!q.issuer || v.issuer === q.issuer) &&
            (!q.since || v.published >= q.since) &&
            (!q.until || v.published < q.until),
        );
      } else {
        rows = await deps.verdicts.search({
          label: q.label || undefined,
          issuer: q.issuer || undefined,
          since: q.since ? new Date(q.since) : undefined,
          until: q.until ? new Date(q.until) : undefined,
        });
      }
    }
    const value = (k: keyof typeof q) => (typeof req.query[k] === 'string' ? (req.query[k] as string) : '');
    res.status(parsed.success ? 200 : 400).send(
      page(
        { title: 'Verdicts', session: req.consoleSession, active: '/console/verdicts', error: parsed.success ? undefined : parsed.error.issues.map((i) => i.message).join('; ') },
        html`<form method="get" action="/console/verdicts" class="search">
<label>Hash <input name="hash" value="${value('hash')}" placeholder="SHA-256 or PDQ, 64 hex digits" size="66" id="search-hash"></label>
<label>Label <select name="label"><option value="">any</option>${LABELS.map((l) => html`<option ${value('label') === l ? 'selected' : ''}>${l}</option>`)}</select></label>
<label>Issuer <input name="issuer" value="${value('issuer')}" placeholder="https://peer.example/actor"></label>
<label>From <input type="date" name="since" value="${value('since')}"></label>
<label>Before <input type="date" name="until" value="${value('until')}"></label>
<button type="submit">Search</button></form>
<p class="hint">A PDQ hash finds near matches too (distance shown). Press / to search.</p>
<table class="verdicts"><thead><tr><th>published</th><th>issuer</th><th>label</th><th>confidence</th><th>method</th><th>distance</th><th>subjects</th><th></th></tr></thead>
<tbody>${rows.map(verdictRow)}</tbody></table>
${rows.length === 0 ? html`<p class="empty">No verdicts match.</p>` : ''}`,
      ),
    );
  });

  router.get('/explain', viewer, async (req, res) => {
    const sha256 = typeof req.query.sha256 === 'string' ? req.query.sha256.toLowerCase() : undefined;
    const pdq = typeof req.query.pdq === 'string' ? req.query.pdq.toLowerCase() : undefined;
    if ((sha256 !== undefined && !HEX64.test(sha256)) || (pdq !== undefined && !HEX64.test(pdq)) || (!sha256 && !pdq)) {
      throw new HttpError(400, 'bad_query', 'give sha256=HEX and/or pdq=HEX (64 hex digits)');
    }
    const decision = await deps.intake.explain({ sha256, pdq });
    res.send(
      page(
        { title: 'What Vouch would decide now', session: req.consoleSession, active: '/console/verdicts' },
        html`<p class="hash">${sha256 ? `sha256 ${sha256}` : ''} ${pdq ? `pdq ${pdq}` : ''}</p>${explanationHtml(decision.explanation)}`,
      ),
    );
  });

  router.get('/decisions/:id', viewer, async (req, res) => {
    const decision = await deps.review.get(decisionId(req));
    if (!decision) throw new HttpError(404, 'not_found', 'no such decision');
    const access = decision.quarantineId !== null && deps.quarantine ? await deps.quarantine.accessLog(decision.quarantineId) : [];
    res.send(
      page(
        { title: `Decision ${decision.id}`, session: req.consoleSession, active: '/console/review' },
        html`<p>Made ${formatTime(decision.createdAt)} for media from ${decision.source ?? '?'}.</p>
<p class="hash">sha256 ${decision.sha256}${decision.pdq ? html`<br>pdq ${decision.pdq}` : ''}</p>
<p>${decision.reviewedAt ? html`Reviewed by ${decision.reviewedBy} at ${formatTime(decision.reviewedAt)}: ${decision.reviewOutcome}` : 'Not reviewed yet.'}
 <a href="/console/explain?sha256=${decision.sha256}">What would be decided now?</a></p>
<h2>Explanation at the time</h2>
${explanationHtml(decision.explanation)}
${
  decision.quarantineId !== null
    ? html`<h2>Quarantine access log (item ${decision.quarantineId})</h2><table class="access-log"><thead><tr><th>when</th><th>who</th><th>what</th><th>why</th></tr></thead><tbody>${access.map(
        (a) => html`<tr class="access-${a.action}"><td>${formatTime(a.at)}</td><td>${a.actor}</td><td>${a.action}</td><td>${a.reason ?? ''}</td></tr>`,
      )}</tbody></table>`
    : ''
}`,
      ),
    );
  });

  return router;
}

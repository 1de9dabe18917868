// The quarantine for admins: what is kept and why, its access log, and the three deliberate acts:
// export a report bundle, release a false positive, delete the bytes. No media is shown here; the
// review queue is where moderators look at media, blurred first.
import express, { type Request, type Router } from 'express';
import { z } from 'zod';
import type { Quarantine, QuarantineItem } from '../scanning/quarantine.js';
import { exportDir, itemId } from '../http/quarantine-routes.js';
import { HttpError, parseBody } from '../http/errors.js';
import type { ConsoleAccounts } from './accounts.js';
import { html } from './html.js';
import { csrfField, formatTime, page } from './layout.js';
import { messages, redirectWithMessage, requireRole } from './session.js';

const actionForm = z.object({ reason: z.string().trim().min(3, 'give a reason (3 characters at least)').max(1000), confirm: z.string().optional() });
const VIEWS = { held: 'held, not released', expired: 'past retention', all: 'all' } as const;
type View = keyof typeof VIEWS;

export function quarantinePages(deps: { quarantine: Quarantine | undefined; dataDir: string; accounts: ConsoleAccounts }): Router {
  const router = express.Router();
  const admin = requireRole('admin');
  const need = (): Quarantine => {
    if (!deps.quarantine) throw new HttpError(404, 'quarantine_disabled', 'Quarantine is off: set VOUCH_QUARANTINE_KEY to keep blocked media.');
    return deps.quarantine;
  };

  const actions = (req: Request, item: QuarantineItem) => {
    const session = req.consoleSession!;
    const form = (action: string, label: string, extra = html``) =>
      html`<form method="post" action="/console/quarantine/${item.id}/${action}" class="inline quarantine-${action}">${csrfField(session)}<input name="reason" required minlength="3" maxlength="1000" placeholder="reason" size="18">${extra}<button>${label}</button></form>`;
    if (item.state === 'deleted') return html`<span class="hint">deleted by ${item.deletedBy} (${item.deleteReason})</span>`;
    return html`${form('export', 'Export bundle')}${item.state === 'held' ? form('release', 'Release') : ''}${form('delete', 'Delete bytes', html`<label><input type="checkbox" name="confirm" value="yes" required> cannot be undone</label>`)}`;
  };

  router.get('/quarantine', admin, async (req, res) => {
    const quarantine = need();
    const view: View = req.query.show === 'expired' || req.query.show === 'all' ? req.query.show : 'held';
    const items = await quarantine.list({ expiredOnly: view === 'expired', heldOnly: view === 'held', limit: 200 });
    res.send(
      page(
        { title: 'Quarantine', session: req.consoleSession, active: '/console/quarantine', ...messages(req) },
        html`<p>Blocked and disputed media, kept encrypted as evidence (key ${quarantine.keyId}); kept at least ${quarantine.retentionDays} days, then until an admin decides. Nothing here is deleted automatically.</p>
<p>${(Object.keys(VIEWS) as View[]).map((v) => html`<a href="/console/quarantine?show=${v}" class="${v === view ? 'active' : ''}">${VIEWS[v]}</a> `)}</p>
<table class="quarantine"><thead><tr><th>item</th><th>decision</th><th>source</th><th>kept since</th><th>retain until</th><th>state</th><th></th></tr></thead><tbody>${items.map(
          (i) => html`<tr data-item="${i.id}"><td><a href="/console/quarantine/${i.id}">#${i.id}</a><div class="hash">${i.sha256}</div></td><td><strong class="outcome outcome-${i.decision.outcome}">${i.decision.outcome}</strong> ${i.decision.label ?? ''}<br><small>${i.decision.summary}</small></td><td>${i.source}</td><td>${formatTime(i.quarantinedAt)}</td><td class="${i.expired ? 'warn' : ''}">${formatTime(i.retainUntil)}${i.expired ? ' (past)' : ''}</td><td>${i.state}</td><td>${actions(req, i)}</td></tr>`,
        )}</tbody></table>
${items.length === 0 ? html`<p class="empty">Nothing here.</p>` : ''}
<p class="hint">An export writes a folder on the server (under the data directory's <code>exports/</code>) with the media <strong>unencrypted</strong>, its metadata, the access log and SHA256SUMS, for a report to the authorities: fetch it over a channel your procedure allows, then delete it.</p>`,
      ),
    );
  });

  router.get('/quarantine/:id', admin, async (req, res) => {
    const quarantine = need();
    const item = await quarantine.get(itemId(req));
    if (!item) throw new HttpError(404, 'not_found', 'no such quarantined item');
    const access = await quarantine.accessLog(item.id);
    res.send(
      page(
        { title: `Quarantined item #${item.id}`, session: req.consoleSession, active: '/console/quarantine', ...messages(req) },
        html`<p class="hash">sha256 ${item.sha256}${item.pdq ? html`<br>pdq ${item.pdq}` : ''}</p>
<p>${item.byteSize} bytes${item.format ? `, ${item.format}` : ''}, from ${item.source}; kept since ${formatTime(item.quarantinedAt)}, at least until ${formatTime(item.retainUntil)}; ${item.state}.</p>
<p><strong class="outcome outcome-${item.decision.outcome}">${item.decision.outcome}</strong> ${item.decision.label ?? ''}: ${item.decision.summary} <a href="/console/verdicts?hash=${item.sha256}">verdicts</a> · <a href="/console/explain?sha256=${item.sha256}">what would be decided now</a></p>
<p>${actions(req, item)}</p>
<h2>Access log</h2>
<table class="access-log"><thead><tr><th>when</th><th>who</th><th>what</th><th>why</th></tr></thead><tbody>${access.map(
          (a) => html`<tr class="access-${a.action}"><td>${formatTime(a.at)}</td><td>${a.actor}</td><td>${a.action}</td><td>${a.reason ?? ''}</td></tr>`,
        )}</tbody></table>`,
      ),
    );
  });

  for (const action of ['export', 'release', 'delete'] as const) {
    router.post(`/quarantine/:id/${action}`, admin, async (req, res) => {
      const quarantine = need();
      const id = itemId(req);
      const form = parseBody(actionForm, req.body);
      if (action === 'delete' && form.confirm !== 'yes') throw new HttpError(400, 'bad_form', 'tick "cannot be undone" to delete');
      const user = req.consoleSession!.user.username;
      const who = { actor: user, reason: form.reason };
      // Quarantine refusals (not found, deleted, bad input) become 4xx pages in the console's error handler.
      let message: string;
      if (action === 'export') {
        const bundle = await quarantine.exportBundle(id, { ...who, outDir: exportDir(deps.dataDir, id) });
        message = `Exported item ${id} to ${bundle.dir} (media unencrypted: move it as your procedure says, then delete it).`;
      } else if (action === 'release') {
        message = (await quarantine.release(id, who)) ? `Released item ${id}.` : `Item ${id} was already released.`;
      } else {
        message = (await quarantine.delete(id, who)) ? `Deleted the bytes of item ${id}; its record and access log stay.` : `Item ${id} was already deleted.`;
      }
      await deps.accounts.record(user, `quarantine.${action}`, { item: id, reason: form.reason }, req.ip ?? null);
      redirectWithMessage(req, res, `/console/quarantine/${id}`, message);
    });
  }
  return router;
}

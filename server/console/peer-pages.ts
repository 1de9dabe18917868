// Peers and trust: follow, approve, block, trust per polarity, and a drawing of the trust graph.
// Everyone signed in may look; only admins change anything.
import express, { type Request, type Response, type Router } from 'express';
import { z } from 'zod';
import type { Federation } from '../federation/index.js';
import type { TrustService } from '../trust/service.js';
import type { TrustPolarity } from '../trust/flow.js';
import type { ConsoleAccounts } from './accounts.js';
import { roleAtLeast } from './accounts.js';
import { trustGraphSvg } from './drawing.js';
import { html } from './html.js';
import { csrfField, formatTime, page } from './layout.js';
import { messages, redirectWithMessage, requireRole } from './session.js';
import { HttpError, parseBody } from '../http/errors.js';

const trustValue = z.union([z.literal(''), z.coerce.number().min(0, 'trust is from 0 to 1').max(1, 'trust is from 0 to 1')]);
const forms = {
  follow: z.object({ target: z.string().trim().min(3).max(500) }),
  actor: z.object({ actor: z.url() }),
  block: z.object({ actor: z.url(), reason: z.string().trim().max(500).optional() }),
  trust: z.object({ actor: z.url(), abuse: trustValue.optional(), ok: trustValue.optional() }),
};

const num = (x: number) => (Math.round(x * 1000) / 1000).toString();

export function peerPages(deps: { federation: Federation; trust: TrustService; accounts: ConsoleAccounts }): Router {
  const { federation, trust, accounts } = deps;
  const router = express.Router();
  const admin = requireRole('admin');

  router.get('/peers', requireRole('viewer'), async (req, res) => {
    const session = req.consoleSession!;
    const canEdit = roleAtLeast(session.user.role, 'admin');
    const polarity: TrustPolarity = req.query.polarity === 'ok' ? 'ok' : 'abuse';
    const [peers, direct, blocks] = await Promise.all([federation.peers.list(), trust.direct(), trust.blocks()]);
    const blocked = new Set(blocks.map((b) => b.peer));
    const directOf = (peer: string, p: TrustPolarity) => direct.find((d) => d.peer === peer && d.polarity === p && d.label === null)?.value;
    const abuse = trust.weightsFor('abuse');
    const ok = trust.weightsFor('ok');
    const actors = [...new Set([...peers.map((p) => p.actor), ...direct.map((d) => d.peer), ...blocked])].sort();
    const byActor = new Map(peers.map((p) => [p.actor, p]));
    const rows = actors.map((actor) => {
      const p = byActor.get(actor);
      const isBlocked = blocked.has(actor);
      return html`<tr data-actor="${actor}"><td class="uri">${actor}</td><td>${p?.following ?? '—'}</td><td>${p?.follower ?? '—'}${
        canEdit && p?.follower === 'pending'
          ? html` <form method="post" action="/console/peers/approve" class="inline">${csrfField(session)}<input type="hidden" name="actor" value="${actor}"><button>Approve</button></form><form method="post" action="/console/peers/reject" class="inline">${csrfField(session)}<input type="hidden" name="actor" value="${actor}"><button>Reject</button></form>`
          : ''
      }</td>
<td>${
        canEdit
          ? html`<form method="post" action="/console/peers/trust" class="inline trust-form">${csrfField(session)}<input type="hidden" name="actor" value="${actor}"><label>abuse <input name="abuse" type="number" min="0" max="1" step="0.05" value="${directOf(actor, 'abuse') ?? ''}" size="4"></label> <label>ok <input name="ok" type="number" min="0" max="1" step="0.05" value="${directOf(actor, 'ok') ?? ''}" size="4"></label> <button>Set trust</button></form>`
          : html`abuse ${directOf(actor, 'abuse') ?? '—'} · ok ${directOf(actor, 'ok') ?? '—'}`
      }</td>
<td class="weights">abuse ${num(abuse.weight(actor))} · ok ${num(ok.weight(actor))}</td>
<td>${isBlocked ? html`<strong class="blocked">blocked</strong>` : ''}${
        canEdit
          ? html`<form method="post" action="/console/peers/${isBlocked ? 'unblock' : 'block'}" class="inline">${csrfField(session)}<input type="hidden" name="actor" value="${actor}">${isBlocked ? '' : html`<input name="reason" placeholder="reason" size="12">`}<button>${isBlocked ? 'Unblock' : 'Block'}</button></form>${
              p && p.following !== 'none' ? html`<form method="post" action="/console/peers/unfollow" class="inline">${csrfField(session)}<input type="hidden" name="actor" value="${actor}"><button>Unfollow</button></form>` : ''
            }`
          : ''
      }</td></tr>`;
    });
    const changes = await trust.changes(20);
    res.send(
      page(
        { title: 'Peers & trust', session, active: '/console/peers', flash: messages(req).flash },
        html`${canEdit ? html`<form method="post" action="/console/peers/follow" class="follow">${csrfField(session)}<label>Follow <input name="target" required placeholder="https://big.example/actor or @vouch@big.example" size="50"></label><button>Follow</button></form>` : ''}
<p class="hint">Direct trust is yours to set, from 0 to 1, per polarity: <em>abuse</em> is how far you believe the peer's abuse flags, <em>ok</em> its claims that media is fine. Effective weights include what your peers vouch for (at most δ = ${trust.policy.trust.delta} of their own, ${trust.policy.trust.hops} hops) and learned penalties.</p>
<table class="peers"><thead><tr><th>peer</th><th>we follow</th><th>follows us</th><th>direct trust</th><th>effective weight</th><th></th></tr></thead><tbody>${rows}</tbody></table>
${actors.length === 0 ? html`<p class="empty">No peers yet: follow a bigger instance to share its scans.</p>` : ''}
<h2>Trust graph (${polarity})</h2>
<p><a href="/console/peers?polarity=abuse">abuse flags</a> · <a href="/console/peers?polarity=ok">ok claims</a></p>
${trustGraphSvg(polarity === 'ok' ? ok : abuse, blocked)}
<h2>Recent trust changes</h2>
<table><thead><tr><th>when</th><th>who</th><th>what</th><th>detail</th></tr></thead><tbody>${changes.map(
          (c) => html`<tr><td>${formatTime(c.at)}</td><td>${c.actor}</td><td>${c.kind}</td><td><code>${JSON.stringify(c.detail)}</code></td></tr>`,
        )}</tbody></table>`,
      ),
    );
  });

  const done = async (req: Request, res: Response, action: string, detail: Record<string, unknown>, message: string) => {
    const user = req.consoleSession!.user.username;
    await accounts.record(user, action, detail, req.ip ?? null);
    redirectWithMessage(req, res, '/console/peers', message);
  };

  router.post('/peers/follow', admin, async (req, res) => {
    const { target } = parseBody(forms.follow, req.body);
    const peer = await federation.follow(target);
    await done(req, res, 'peer.follow', { actor: peer.actor }, `Follow request sent to ${peer.actor}.`);
  });
  for (const action of ['approve', 'reject', 'unfollow'] as const) {
    router.post(`/peers/${action}`, admin, async (req, res) => {
      const { actor } = parseBody(forms.actor, req.body);
      await federation[action](actor);
      await done(req, res, `peer.${action}`, { actor }, `${action}: ${actor}`);
    });
  }
  router.post('/peers/block', admin, async (req, res) => {
    const { actor, reason } = parseBody(forms.block, req.body);
    await trust.block(actor, req.consoleSession!.user.username, reason || undefined);
    await done(req, res, 'trust.block', { actor, reason }, `Blocked ${actor}.`);
  });
  router.post('/peers/unblock', admin, async (req, res) => {
    const { actor } = parseBody(forms.actor, req.body);
    await trust.unblock(actor, req.consoleSession!.user.username);
    await done(req, res, 'trust.unblock', { actor }, `Unblocked ${actor}.`);
  });
  router.post('/peers/trust', admin, async (req, res) => {
    const { actor, abuse, ok } = parseBody(forms.trust, req.body);
    const user = req.consoleSession!.user.username;
    if (typeof abuse === 'number') await trust.setTrust(actor, 'abuse', abuse, user);
    if (typeof ok === 'number') await trust.setTrust(actor, 'ok', ok, user);
    if (typeof abuse !== 'number' && typeof ok !== 'number') throw new HttpError(400, 'bad_form', 'give abuse and/or ok trust');
    await done(req, res, 'trust.set', { actor, abuse, ok }, `Trust in ${actor} set: abuse ${abuse === '' || abuse === undefined ? 'unchanged' : abuse}, ok ${ok === '' || ok === undefined ? 'unchanged' : ok}.`);
  });

  return router;
}

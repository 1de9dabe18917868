// Policy (thresholds per label, fail-open/closed, trust flow, spot checks, retention) and console users.
// Viewers may read the policy; only admins change it or manage users.
import express, { type Router } from 'express';
import { z } from 'zod';
import type { TrustService } from '../trust/service.js';
import type { AbuseLabel } from '../trust/decide.js';
import { AccountError, ROLES, isRole, roleAtLeast, type ConsoleAccounts } from './accounts.js';
import { html } from './html.js';
import { csrfField, formatTime, page } from './layout.js';
import { messages, redirectWithMessage, requireRole } from './session.js';
import { HttpError, parseBody } from '../http/errors.js';

const ABUSE_LABELS: AbuseLabel[] = ['csam', 'sexual', 'gore', 'hate', 'spam'];
const num = (v: unknown) => (typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN);

/** Turns the policy form into a policy document over the current one; parsePolicy then checks it. */
function policyFromForm(current: Record<string, unknown>, form: Record<string, unknown>): Record<string, unknown> {
  const doc = structuredClone(current) as {
    version: string;
    labels: Record<string, { blockProbability: number; minEvidence: number }>;
    allow: { maxAbuseProbability: number; minEvidence: number; requireIndependent: number };
    trust: { delta: number; hops: number };
    spotCheckShare: number;
    failMode: { default: string; labels: Record<string, string> };
    quarantineRetentionDays?: number;
  };
  doc.version = typeof form.version === 'string' && form.version.trim() ? form.version.trim() : doc.version;
  for (const label of ABUSE_LABELS) {
    doc.labels[label] = { blockProbability: num(form[`${label}.blockProbability`]), minEvidence: num(form[`${label}.minEvidence`]) };
    const mode = form[`${label}.failMode`];
    if (mode === 'open' || mode === 'closed') doc.failMode.labels[label] = mode;
    else delete doc.failMode.labels[label];
  }
  doc.failMode.default = String(form['failMode.default']);
  doc.allow = {
    maxAbuseProbability: num(form['allow.maxAbuseProbability']),
    minEvidence: num(form['allow.minEvidence']),
    requireIndependent: num(form['allow.requireIndependent']),
  };
  doc.trust = { delta: num(form['trust.delta']), hops: num(form['trust.hops']) };
  doc.spotCheckShare = num(form.spotCheckShare);
  if (typeof form.quarantineRetentionDays === 'string' && form.quarantineRetentionDays.trim() !== '') doc.quarantineRetentionDays = num(form.quarantineRetentionDays);
  else delete doc.quarantineRetentionDays;
  return doc;
}

const userForm = z.object({
  username: z.string().trim(),
  role: z.string().refine(isRole, 'unknown role'),
  password: z.string(),
});

export function adminPages(deps: { trust: TrustService; accounts: ConsoleAccounts; defaultRetentionDays: number; quarantineOn: boolean }): Router {
  const { trust, accounts } = deps;
  const router = express.Router();
  const admin = requireRole('admin');

  const renderPolicy = (req: express.Request, error?: string) => {
    const session = req.consoleSession!;
    const canEdit = roleAtLeast(session.user.role, 'admin');
    const info = trust.policyInfo();
    const p = info.policy;
    // Bounds as loose as the schema's (which the server checks and names); any precision.
    const field = (name: string, value: number, attrs: { min: number; max: number; step: number | 'any' }) =>
      html`<input name="${name}" type="number" value="${value}" min="${attrs.min}" max="${attrs.max}" step="${attrs.step}" ${canEdit ? '' : 'disabled'} required>`;
    const modeSelect = (name: string, value: string | undefined, allowDefault: boolean) =>
      html`<select name="${name}" ${canEdit ? '' : 'disabled'}>${allowDefault ? html`<option value="" ${value === undefined ? 'selected' : ''}>(default)</option>` : ''}<option value="open" ${value === 'open' ? 'selected' : ''}>open: let through</option><option value="closed" ${value === 'closed' ? 'selected' : ''}>closed: refuse</option></select>`;
    return page(
      { title: 'Policy', session, active: '/console/policy', flash: messages(req).flash, error },
      html`<p>Policy <strong>${p.version}</strong> (${info.hash.slice(0, 12)}…), set ${formatTime(info.setAt)}. Every change is recorded; explanations name the policy that made them.</p>
<form method="post" action="/console/policy" class="policy">${csrfField(session)}
<label>Version name <input name="version" value="${p.version}" maxlength="100" ${canEdit ? '' : 'disabled'}></label>
<table><caption>Per label</caption><thead><tr><th>label</th><th>block at probability</th><th>min evidence</th><th>no decision in time, this label at stake</th></tr></thead><tbody>
${ABUSE_LABELS.map(
  (l) => html`<tr><td>${l}</td><td>${field(`${l}.blockProbability`, p.labels[l].blockProbability, { min: 0.5, max: 1, step: 'any' })}</td><td>${field(`${l}.minEvidence`, p.labels[l].minEvidence, { min: 0, max: 1000, step: 'any' })}</td><td>${modeSelect(`${l}.failMode`, p.failMode.labels[l], true)}</td></tr>`,
)}
</tbody></table>
<fieldset><legend>Allow (the stricter bar)</legend>
<label>abuse probability at most ${field('allow.maxAbuseProbability', p.allow.maxAbuseProbability, { min: 0, max: 0.5, step: 'any' })}</label>
<label>ok evidence at least ${field('allow.minEvidence', p.allow.minEvidence, { min: 0, max: 1000, step: 'any' })}</label>
<label>independent classifiers (or a human) ${field('allow.requireIndependent', p.allow.requireIndependent, { min: 1, max: 10, step: 1 })}</label></fieldset>
<fieldset><legend>When nothing decides in time</legend><label>Media nobody suspected ${modeSelect('failMode.default', p.failMode.default, false)}</label></fieldset>
<fieldset><legend>Trust and spot checks</legend>
<label>δ (share a peer passes on) ${field('trust.delta', p.trust.delta, { min: 0, max: 1, step: 'any' })}</label>
<label>hops ${field('trust.hops', p.trust.hops, { min: 0, max: 10, step: 1 })}</label>
<label>spot-check share ${field('spotCheckShare', p.spotCheckShare, { min: 0, max: 1, step: 'any' })}</label></fieldset>
<fieldset><legend>Quarantine retention</legend>
<label>keep quarantined media at least <input name="quarantineRetentionDays" type="number" min="0" max="36500" step="1" value="${p.quarantineRetentionDays ?? ''}" placeholder="${deps.defaultRetentionDays}" ${canEdit ? '' : 'disabled'}> days</label>
<p class="hint">Empty: ${deps.defaultRetentionDays} days (VOUCH_QUARANTINE_RETENTION_DAYS). Applies to media quarantined from now on; past it, items wait for an admin to delete them. ${deps.quarantineOn ? '' : 'Quarantine is off (VOUCH_QUARANTINE_KEY is not set): blocked media is refused but not kept.'}</p></fieldset>
${canEdit ? html`<button type="submit">Save policy</button>` : ''}
</form>`,
    );
  };

  router.get('/policy', requireRole('viewer'), (req, res) => {
    res.send(renderPolicy(req));
  });
  router.post('/policy', admin, async (req, res) => {
    const user = req.consoleSession!.user.username;
    const document = policyFromForm(trust.policy as unknown as Record<string, unknown>, req.body as Record<string, unknown>);
    try {
      const policy = await trust.setPolicy(document, user);
      await accounts.record(user, 'policy.set', { version: policy.version }, req.ip ?? null);
    } catch (err) {
      if (err instanceof z.ZodError) {
        res.status(400).send(renderPolicy(req, err.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')));
        return;
      }
      throw err;
    }
    redirectWithMessage(req, res, '/console/policy', 'Policy saved.');
  });

  router.get('/users', admin, async (req, res) => {
    const session = req.consoleSession!;
    const [users, events] = await Promise.all([accounts.list(), accounts.events(30)]);
    res.send(
      page(
        { title: 'Users', session, active: '/console/users', ...messages(req) },
        html`<table><thead><tr><th>user</th><th>role</th><th>since</th><th></th></tr></thead><tbody>${users.map(
          (u) => html`<tr><td>${u.username}</td><td>${u.role}</td><td>${formatTime(u.createdAt)}</td><td>${
            u.username === session.user.username
              ? html`(you) <a href="/console/account">change your password</a>`
              : html`<form method="post" action="/console/users/${u.disabled ? 'enable' : 'disable'}" class="inline">${csrfField(session)}<input type="hidden" name="username" value="${u.username}"><button>${u.disabled ? 'Enable' : 'Disable'}</button></form>
<form method="post" action="/console/users/role" class="inline user-role">${csrfField(session)}<input type="hidden" name="username" value="${u.username}"><select name="role">${ROLES.map((r) => html`<option ${r === u.role ? 'selected' : ''}>${r}</option>`)}</select><button>Set role</button></form>
<form method="post" action="/console/users/password" class="inline user-password">${csrfField(session)}<input type="hidden" name="username" value="${u.username}"><input name="password" type="password" minlength="12" required autocomplete="new-password" placeholder="new password"><button>Set password</button></form>`
          }</td></tr>`,
        )}</tbody></table>
<h2>Add a user</h2>
<form method="post" action="/console/users" class="new-user">${csrfField(session)}
<label>Name <input name="username" required pattern="[a-z0-9][a-z0-9._\\-]{1,62}"></label>
<label>Role <select name="role">${ROLES.map((r) => html`<option>${r}</option>`)}</select></label>
<label>Password <input name="password" type="password" required minlength="12" autocomplete="new-password"></label>
<button>Add</button></form>
<h2>Recent console activity</h2>
<table><thead><tr><th>when</th><th>who</th><th>what</th><th>detail</th><th>from</th></tr></thead><tbody>${events.map(
          (e) => html`<tr><td>${formatTime(e.at)}</td><td>${e.username}</td><td>${e.action}</td><td><code>${JSON.stringify(e.detail)}</code></td><td>${e.ip ?? ''}</td></tr>`,
        )}</tbody></table>`,
      ),
    );
  });
  router.post('/users', admin, async (req, res) => {
    const { username, role, password } = parseBody(userForm, req.body);
    try {
      await accounts.create(username, password, role as (typeof ROLES)[number], req.consoleSession!.user.username);
    } catch (err) {
      if (err instanceof AccountError) return redirectWithMessage(req, res, '/console/users', err.message, 'error');
      throw err;
    }
    redirectWithMessage(req, res, '/console/users', `Added ${username} (${role}).`);
  });
  // Another user's role or password (one's own role stays: an admin cannot lock the console out).
  for (const change of ['role', 'password'] as const) {
    router.post(`/users/${change}`, admin, async (req, res) => {
      const body = req.body as Record<string, unknown>;
      const username = String(body.username ?? '');
      const actor = req.consoleSession!.user.username;
      if (username === actor) throw new HttpError(400, 'bad_form', 'change your own password on your account page; your role stays');
      try {
        if (change === 'role') {
          const role = String(body.role ?? '');
          if (!isRole(role)) throw new HttpError(400, 'bad_form', 'unknown role');
          await accounts.setRole(username, role, actor);
          return redirectWithMessage(req, res, '/console/users', `${username} is now ${role}.`);
        }
        await accounts.setPassword(username, String(body.password ?? ''), actor);
        redirectWithMessage(req, res, '/console/users', `New password set for ${username}; their sessions ended.`);
      } catch (err) {
        if (err instanceof AccountError) return redirectWithMessage(req, res, '/console/users', err.message, 'error');
        throw err;
      }
    });
  }

  // Anyone's own password, with the current one.
  router.get('/account', requireRole('viewer'), (req, res) => {
    const session = req.consoleSession!;
    res.send(
      page(
        { title: 'Your account', session, ...messages(req) },
        html`<p>${session.user.username}, ${session.user.role}.</p>
<form method="post" action="/console/account/password" class="login">${csrfField(session)}
<label>Current password <input name="current" type="password" required autocomplete="current-password"></label>
<label>New password <input name="password" type="password" required minlength="12" autocomplete="new-password"></label>
<button>Change password</button></form>
<p class="hint">Changing it signs you out everywhere.</p>`,
      ),
    );
  });
  router.post('/account/password', requireRole('viewer'), async (req, res) => {
    const body = req.body as Record<string, unknown>;
    const username = req.consoleSession!.user.username;
    if (!(await accounts.checkPassword(username, String(body.current ?? '')))) {
      return redirectWithMessage(req, res, '/console/account', 'The current password is wrong.', 'error');
    }
    try {
      await accounts.setPassword(username, String(body.password ?? ''), username);
    } catch (err) {
      if (err instanceof AccountError) return redirectWithMessage(req, res, '/console/account', err.message, 'error');
      throw err;
    }
    res.redirect(303, '/console/login');
  });

  for (const action of ['disable', 'enable'] as const) {
    router.post(`/users/${action}`, admin, async (req, res) => {
      const username = String((req.body as Record<string, unknown>).username ?? '');
      if (username === req.consoleSession!.user.username) throw new HttpError(400, 'bad_form', 'you cannot disable yourself');
      try {
        await accounts.setDisabled(username, action === 'disable', req.consoleSession!.user.username);
      } catch (err) {
        if (err instanceof AccountError) throw new HttpError(404, 'not_found', err.message);
        throw err;
      }
      redirectWithMessage(req, res, '/console/users', `${action}d ${username}.`);
    });
  }
  return router;
}

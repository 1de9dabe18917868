// The admin web console, served by the server at /console: server-rendered pages, one small
// script for the review queue's reveal and keyboard shortcuts, no CDN. Accounts come from
// `vouch users add`; roles are viewer < moderator < admin.
import { join } from 'node:path';
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import { ipKeyGenerator, rateLimit } from 'express-rate-limit';
import { PROJECT_ROOT } from '../config/paths.js';
import { videoHashOptions, type Config } from '../config/index.js';
import type { Metrics } from '../config/metrics.js';
import type { VerdictService } from '../verdicts/index.js';
import type { Federation } from '../federation/index.js';
import type { TrustService } from '../trust/service.js';
import type { ScanningServices } from '../review/scanning-services.js';
import type { CheckpointWitness, LogCheckpoints, TransparencyLog } from '../log/index.js';
import { FederationError } from '../federation/index.js';
import { HttpError } from '../http/errors.js';
import { ReviewConflictError, ReviewInputError, ReviewNotFoundError } from '../review/index.js';
import { QuarantineError } from '../scanning/quarantine.js';
import { quarantineStatus } from '../http/quarantine-routes.js';
import { OutboundRequestError } from '../federation/safe-fetch.js';
import type { ConsoleAccounts } from './accounts.js';
import { html } from './html.js';
import { page } from './layout.js';
import { checkOrigin, loadSession, requireRole, safeNext, sessionCookie } from './session.js';
import { reviewPages } from './review-pages.js';
import { verdictPages } from './verdict-pages.js';
import { peerPages } from './peer-pages.js';
import { adminPages } from './admin-pages.js';
import { quarantinePages } from './quarantine-pages.js';
import { statusPages } from './status-pages.js';

export { ConsoleAccounts } from './accounts.js';

const CONSOLE_ASSETS_DIR = join(PROJECT_ROOT, 'assets', 'console');

export interface ConsoleDeps {
  config: Config;
  metrics: Metrics;
  verdicts: VerdictService;
  federation: Federation;
  trust: TrustService;
  scanning: ScanningServices;
  transparency: { log: TransparencyLog; checkpoints: LogCheckpoints; witness: CheckpointWitness };
  accounts: ConsoleAccounts;
}

// Same-origin everything; no inline script or style; images also from blob: (a revealed image).
const CSP = "default-src 'self'; img-src 'self' blob:; script-src 'self'; style-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

export function consoleRouter(deps: ConsoleDeps): Router {
  const { config, accounts } = deps;
  const publicOrigin = new URL(config.publicUrl).origin;
  const secureCookie = config.publicUrl.startsWith('https:');
  const router = express.Router();

  router.use((_req, res, next) => {
    res.set({
      'content-security-policy': CSP,
      'x-content-type-options': 'nosniff',
      // same-origin, not no-referrer: with no-referrer Chromium sends `Origin: null` on form posts.
      'referrer-policy': 'same-origin',
      'x-frame-options': 'DENY',
      'cache-control': 'no-store',
    });
    next();
  });
  router.use('/assets', express.static(CONSOLE_ASSETS_DIR, { index: false, fallthrough: false }));
  router.use(express.urlencoded({ extended: false, limit: '64kb', parameterLimit: 100 }));
  router.use(checkOrigin(publicOrigin));
  router.use(loadSession(accounts));

  const loginPage = (next: string, error?: string) =>
    page(
      { title: 'Sign in', error },
      html`<form method="post" action="/console/login" class="login">
<input type="hidden" name="next" value="${next}">
<label>Name <input name="username" autocomplete="username" required autofocus></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
<button type="submit">Sign in</button></form>
<p class="hint">Accounts are made on the server: <code>vouch users add NAME --role admin</code>.</p>`,
    );

  router.get('/login', (req, res) => {
    if (req.consoleSession) return res.redirect(303, safeNext(req.query.next));
    res.send(loginPage(safeNext(req.query.next)));
  });
  router.post(
    '/login',
    // Failed sign-ins only, per 15 minutes: 10 per address and account name, 30 per address, and
    // 100 per account name from anywhere (slows a spread-out guesser; a lock-out needs many addresses).
    ...[
      { limit: 10, key: (ip: string, name: string) => `${ip}|${name}` },
      { limit: 30, key: (ip: string) => ip },
      { limit: 100, key: (_ip: string, name: string) => `name:${name}` },
    ].map(({ limit, key }) =>
      rateLimit({
        windowMs: 15 * 60_000,
        limit,
        skipSuccessfulRequests: true,
        standardHeaders: 'draft-8',
        legacyHeaders: false,
        keyGenerator: (req) => key(ipKeyGenerator(req.ip ?? ''), String((req.body as Record<string, unknown>)?.username ?? '').trim().toLowerCase().slice(0, 64)),
      }),
    ),
    async (req, res) => {
      const body = req.body as Record<string, unknown>;
      const username = typeof body.username === 'string' ? body.username.trim().toLowerCase() : '';
      const password = typeof body.password === 'string' ? body.password : '';
      const next = safeNext(body.next);
      const signedIn = password.length > 0 && password.length <= 1024 ? await accounts.signIn(username, password, req.ip ?? null) : undefined;
      if (!signedIn) {
        res.status(401).send(loginPage(next, 'Wrong name or password.'));
        return;
      }
      const maxAge = Math.floor((signedIn.session.expiresAt.getTime() - Date.now()) / 1000);
      res.setHeader('set-cookie', sessionCookie(signedIn.token, secureCookie, maxAge));
      res.redirect(303, next);
    },
  );
  router.post('/logout', requireRole('viewer'), async (req, res) => {
    await accounts.signOut(req.consoleToken!, req.consoleSession!.user.username, req.ip ?? null);
    res.setHeader('set-cookie', sessionCookie('', secureCookie, 0));
    res.redirect(303, '/console/login');
  });

  const { scanning } = deps;
  const { limits, tools } = videoHashOptions(config);
  router.use(reviewPages({ review: scanning.review, quarantine: scanning.quarantine, accounts, video: { limits, tools } }));
  router.use(verdictPages({ verdicts: deps.verdicts, review: scanning.review, quarantine: scanning.quarantine, intake: scanning.intake }));
  router.use(peerPages({ federation: deps.federation, trust: deps.trust, accounts }));
  router.use(quarantinePages({ quarantine: scanning.quarantine, dataDir: config.dataDir, accounts }));
  router.use(adminPages({ trust: deps.trust, accounts, defaultRetentionDays: config.quarantine.retentionDays, quarantineOn: scanning.quarantine !== undefined }));
  router.use(
    statusPages({
      verdicts: deps.verdicts,
      metrics: deps.metrics,
      federation: deps.federation,
      scanning,
      review: scanning.review,
      indexSize: () => Object.values(deps.verdicts.matcher.size).reduce((a, b) => a + b, 0),
      accounts,
      transparency: deps.transparency,
    }),
  );
  router.use((_req, _res, next) => next(new HttpError(404, 'not_found', 'no such page')));

  // Errors as pages (a script asking gets the same status and a short text).
  router.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    let status = 500;
    let message = 'Something went wrong; the server log has the details.';
    if (err instanceof HttpError || err instanceof FederationError) ({ status, message } = err);
    else if (err instanceof ReviewNotFoundError) [status, message] = [404, err.message];
    else if (err instanceof ReviewInputError) [status, message] = [400, err.message];
    else if (err instanceof ReviewConflictError) [status, message] = [409, err.message];
    else if (err instanceof QuarantineError && quarantineStatus(err) < 500) [status, message] = [quarantineStatus(err), err.message];
    else if (err instanceof OutboundRequestError) [status, message] = [502, err.message];
    else if (typeof err === 'object' && err !== null && 'status' in err) {
      // http-errors from body parsing and static files: keep their 4xx; their text only if meant to be shown.
      const e = err as { status: unknown; expose?: boolean; type?: string; message?: string };
      if (typeof e.status === 'number' && e.status >= 400 && e.status < 500) {
        status = e.status;
        message = e.type ? 'The form could not be read.' : e.expose ? String(e.message) : status === 404 ? 'Not found.' : 'The request was refused.';
      }
    }
    if (status >= 500) req.log.error({ err }, 'console request failed');
    if (req.get('accept')?.includes('text/html')) {
      res.status(status).send(page({ title: status === 403 ? 'Not allowed' : status === 404 ? 'Not found' : 'That did not work', session: req.consoleSession, error: message }, html`<p><a href="/console/">Back to the console</a></p>`));
    } else {
      res.status(status).type('text/plain').send(message);
    }
  });
  return router;
}

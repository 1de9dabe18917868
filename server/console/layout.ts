// The console's page frame: navigation by role, the CSRF token for scripts, flash messages.
import type { ConsoleSession, Role } from './accounts.js';
import { roleAtLeast } from './accounts.js';
import { html, type SafeHtml } from './html.js';

const NAV: Array<{ path: string; title: string; role: Role }> = [
  { path: '/console/', title: 'Health', role: 'viewer' },
  { path: '/console/review', title: 'Review', role: 'moderator' },
  { path: '/console/verdicts', title: 'Verdicts', role: 'viewer' },
  { path: '/console/peers', title: 'Peers & trust', role: 'viewer' },
  { path: '/console/policy', title: 'Policy', role: 'viewer' },
  { path: '/console/quarantine', title: 'Quarantine', role: 'admin' },
  { path: '/console/log', title: 'Log', role: 'viewer' },
  { path: '/console/users', title: 'Users', role: 'admin' },
];

export interface PageOptions {
  title: string;
  session?: ConsoleSession;
  /** The nav path to highlight. */
  active?: string;
  /** A short message from the last action (shown once). */
  flash?: string;
  error?: string;
}

export function page(options: PageOptions, body: SafeHtml): string {
  const { session } = options;
  const nav = session
    ? html`<nav><span class="brand">Vouch</span>${NAV.filter((n) => roleAtLeast(session.user.role, n.role)).map(
        (n) => html`<a href="${n.path}" class="${n.path === options.active ? 'active' : ''}">${n.title}</a>`,
      )}<form method="post" action="/console/logout" class="signout"><input type="hidden" name="_csrf" value="${session.csrfToken}"><a href="/console/account" class="account">${session.user.username} (${session.user.role})</a><button type="submit">Sign out</button></form></nav>`
    : html`<nav><span class="brand">Vouch</span></nav>`;
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
${session ? html`<meta name="csrf-token" content="${session.csrfToken}">` : ''}
<title>${options.title} · Vouch</title>
<link rel="stylesheet" href="/console/assets/console.css">
<script src="/console/assets/console.js" defer></script>
</head>
<body>
${nav}
<main>
<h1>${options.title}</h1>
${options.flash ? html`<p class="flash" role="status">${options.flash}</p>` : ''}
${options.error ? html`<p class="error" role="alert">${options.error}</p>` : ''}
${body}
</main>
</body>
</html>`.value;
}

export function formatTime(date: Date | string | null | undefined): string {
  if (!date) return '—';
  const d = typeof date === 'string' ? new Date(date) : date;
  return d.toISOString().replace('T', ' ').slice(0, 19) + 'Z';
}

export function csrfField(session: ConsoleSession): SafeHtml {
  return html`<input type="hidden" name="_csrf" value="${session.csrfToken}">`;
}

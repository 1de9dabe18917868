// Sign-in, sessions and CSRF for the console. The session cookie is HttpOnly, SameSite=Strict,
// scoped to /console and Secure whenever the public URL is https. Every state-changing request
// must carry the session's CSRF token (form field `_csrf` or header `x-csrf-token`) and come from
// our own origin as the browser tells it (Sec-Fetch-Site, or Origin from older browsers).
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import { parse as parseCookie, serialize as serializeCookie } from 'cookie';
import { roleAtLeast, type ConsoleAccounts, type ConsoleSession, type Role } from './accounts.js';
import { HttpError } from '../http/errors.js';

export const SESSION_COOKIE = 'vouch_session';
const UNSAFE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

declare module 'express-serve-static-core' {
  interface Request {
    consoleSession?: ConsoleSession;
    consoleToken?: string;
  }
}

export function sessionCookie(token: string, secure: boolean, maxAgeSeconds: number): string {
  return serializeCookie(SESSION_COOKIE, token, { httpOnly: true, sameSite: 'strict', secure, path: '/console', maxAge: maxAgeSeconds });
}

/** Loads the session named by the cookie, if any, onto the request. */
export function loadSession(accounts: ConsoleAccounts) {
  return async (req: Request, _res: Response, next: NextFunction) => {
    const token = parseCookie(req.get('cookie') ?? '')[SESSION_COOKIE];
    if (token) {
      const session = await accounts.session(token);
      if (session) {
        req.consoleSession = session;
        req.consoleToken = token;
      }
    }
    next();
  };
}

/** Refuses a request from another origin (the browser tells us in Origin / Sec-Fetch-Site). */
export function checkOrigin(publicOrigin: string) {
  return (req: Request, _res: Response, next: NextFunction) => {
    if (!UNSAFE_METHODS.has(req.method)) return next();
    // Browsers send Sec-Fetch-Site; older ones at least Origin.
    const site = req.get('sec-fetch-site');
    const origin = req.get('origin');
    const foreign = site !== undefined ? site !== 'same-origin' && site !== 'none' : origin !== undefined && origin !== publicOrigin;
    if (foreign) return next(new HttpError(403, 'cross_origin', 'this request came from another site'));
    next();
  };
}

/** For pages: a visitor without a session goes to the sign-in page; too low a role gets 403. */
export function requireRole(role: Role) {
  return (req: Request, res: Response, next: NextFunction) => {
    const session = req.consoleSession;
    if (!session) {
      if (req.method === 'GET') return res.redirect(303, `/console/login?next=${encodeURIComponent(req.originalUrl)}`);
      return next(new HttpError(401, 'signed_out', 'sign in first'));
    }
    if (!roleAtLeast(session.user.role, role)) return next(new HttpError(403, 'forbidden', `this needs the ${role} role`));
    if (UNSAFE_METHODS.has(req.method)) {
      const body = req.body as Record<string, unknown> | undefined;
      const given = String(req.get('x-csrf-token') ?? (typeof body?._csrf === 'string' ? body._csrf : ''));
      const expected = Buffer.from(session.csrfToken);
      const presented = Buffer.from(given);
      if (presented.length !== expected.length || !timingSafeEqual(presented, expected)) {
        return next(new HttpError(403, 'csrf', 'missing or wrong CSRF token: reload the page and try again'));
      }
    }
    next();
  };
}

/** Where to go after signing in: only a path inside the console, never another site. */
export function safeNext(value: unknown): string {
  return typeof value === 'string' && /^\/console(\/[\w\-./?=&%]*)?$/.test(value) && !value.includes('//') ? value : '/console/';
}

/**
 * Messages after an action travel in the redirect's query string, signed with the session's CSRF
 * token, so that a link someone else crafted cannot put words in the console's mouth.
 */
const flashSignature = (session: ConsoleSession, kind: string, message: string) =>
  createHmac('sha256', session.csrfToken).update(`${kind}\0${message}`).digest('base64url').slice(0, 22);

export function redirectWithMessage(req: Request, res: Response, path: string, message: string, kind: 'done' | 'error' = 'done'): void {
  const signature = flashSignature(req.consoleSession!, kind, message);
  res.redirect(303, `${path}?${kind}=${encodeURIComponent(message)}&sig=${signature}`);
}

/** The signed message of the last action, if the query carries one. */
export function messages(req: Request): { flash?: string; error?: string } {
  const session = req.consoleSession;
  const sig = typeof req.query.sig === 'string' ? req.query.sig : '';
  const read = (kind: 'done' | 'error') => {
    const message = req.query[kind];
    if (!session || typeof message !== 'string') return undefined;
    const expected = Buffer.from(flashSignature(session, kind, message));
    const given = Buffer.from(sig);
    return given.length === expected.length && timingSafeEqual(given, expected) ? message : undefined;
  };
  return { flash: read('done'), error: read('error') };
}

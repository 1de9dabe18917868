// Bearer-token guards (the admin API, scanner nodes). Tokens are compared as SHA-256 digests, in
// constant time whatever their length.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import { HttpError } from './errors.js';

export function bearerMatches(req: Request, expected: Buffer): boolean {
  const match = /^Bearer (.+)$/.exec(req.get('authorization') ?? '');
  const presented = createHash('sha256').update(match?.[1] ?? '').digest();
  return match !== null && timingSafeEqual(presented, expected);
}

/** Middleware admitting only requests bearing `token`; 503 when no token is configured. */
export function requireBearer(token: string | undefined, who: string, disabledMessage: string) {
  const expected = token ? createHash('sha256').update(token).digest() : undefined;
  return (req: Request, _res: Response, next: NextFunction) => {
    if (!expected) return next(new HttpError(503, `${who}_disabled`, disabledMessage));
    if (!bearerMatches(req, expected)) return next(new HttpError(401, 'unauthorized', `a valid ${who} bearer token is required`));
    next();
  };
}

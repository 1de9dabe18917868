// POST /actor/inbox ahead of the general stack: a busy peer posts hundreds of activities a second,
// and the request log, the routers before federation's and Express's response helpers cost about
// as much CPU as storing a verdict. This handler, mounted first, reads the body itself and answers
// an accepted activity directly, with the same checks (body size, and everything federation's
// inbox checks) and the same answer; a refusal goes through the request log and the app's error
// handler like any other. A body declared larger than the limit is refused before it is read.
// Compressed bodies and inbox URLs with a query string fall through to federation's own route,
// which answers them as before.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { RequestHandler } from 'express';
import { HttpError } from './errors.js';
import { MAX_INBOX_BYTES, type Federation } from '../federation/index.js';

/** Where peers POST activities. */
export const INBOX_PATHS: ReadonlySet<string> = new Set(['/actor/inbox', '/inbox']);

/** The body, refused (413) past `limit` bytes without reading further. */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      req.off('data', onData);
      fn();
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) settle(() => reject(new HttpError(413, 'too_large', `request body exceeds ${limit} bytes`)));
      else chunks.push(chunk);
    };
    req.on('data', onData);
    req.on('end', () => settle(() => resolve(Buffer.concat(chunks, size))));
    req.on('error', () => settle(() => reject(new HttpError(400, 'aborted', 'the request was aborted'))));
    req.on('close', () => settle(() => reject(new HttpError(400, 'aborted', 'the request was aborted'))));
  });
}

/**
 * The inbox handler to mount before everything else. `logRequests` is the app's request logger,
 * run only for a refusal: accepted deliveries are counted in /metrics, not logged.
 */
export function inboxAheadOfStack(federation: Federation, logRequests: RequestHandler): RequestHandler {
  return (req, res, next) => {
    if (req.method !== 'POST' || !INBOX_PATHS.has(req.url)) {
      next();
      return;
    }
    const refuse = (err: unknown) => {
      // The unread rest of a body refused for its size is not drained: the connection closes after the answer.
      if (err instanceof HttpError && err.status === 413) res.setHeader('connection', 'close');
      logRequests(req, res, () => next(err));
    };
    if (Number(req.headers['content-length']) > MAX_INBOX_BYTES) {
      refuse(new HttpError(413, 'too_large', `request body exceeds ${MAX_INBOX_BYTES} bytes`));
      return;
    }
    const encoding = req.headers['content-encoding'];
    if (encoding !== undefined && encoding !== 'identity') {
      next();
      return;
    }
    readBody(req, MAX_INBOX_BYTES)
      .then(async (body) => {
        const answer = JSON.stringify(await federation.receiveInbox(req, body));
        res.writeHead(202, {
          'content-type': 'application/json; charset=utf-8',
          'content-length': Buffer.byteLength(answer),
          'x-request-id': randomUUID(),
        });
        res.end(answer);
      })
      .catch(refuse);
  };
}

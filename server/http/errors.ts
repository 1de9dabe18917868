import type { z } from 'zod';
import type { Request, RequestHandler } from 'express';

/** An error the client caused or should see, with its HTTP status and a stable code. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** The status for an image the hashing pipeline refused: 413 for size, 422 for the rest. */
export function rejectionStatus(code: string): number {
  return code === 'too_large' ? 413 : 422;
}

/** Validates a request body, answering 400 with every bad field named. */
export function parseBody<T>(schema: z.ZodType<T>, body: unknown): T {
  const result = schema.safeParse(body);
  if (!result.success) {
    const detail = result.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ');
    throw new HttpError(400, 'bad_request', detail);
  }
  return result.data;
}

/**
 * Refuses (413) a request whose declared Content-Length exceeds `limitBytes` without reading its
 * body (`limit`: per request, for routes that take two kinds of body): a body parser would read (and discard) all of it first, waiting on a client that may never
 * send it. The connection is closed after the answer for the same reason.
 */
export function refuseDeclaredOversize(limit: number | ((req: Request) => number)): RequestHandler {
  return (req, res, next) => {
    const limitBytes = typeof limit === 'number' ? limit : limit(req);
    if (Number(req.headers['content-length']) > limitBytes) {
      res.setHeader('connection', 'close');
      next(new HttpError(413, 'too_large', `request body exceeds ${limitBytes} bytes`));
      return;
    }
    next();
  };
}

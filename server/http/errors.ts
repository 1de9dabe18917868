import type { z } from 'zod';

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

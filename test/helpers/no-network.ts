// Tests that must never reach the network (contexts come from the bundle, keys from fixtures):
// any fetch during the file is a failure.
import { afterAll, beforeAll, expect, vi } from 'vitest';

/**
 * Replaces fetch for the whole file with one that throws, and checks at the end that nobody called
 * it; returns the spy, for tests that check at a point of their own.
 */
export function forbidNetwork(what: string) {
  const fetchSpy = vi.fn(async () => {
    throw new Error(`network access attempted during ${what}`);
  });
  let realFetch: typeof globalThis.fetch;
  beforeAll(() => {
    realFetch = globalThis.fetch;
    globalThis.fetch = fetchSpy as unknown as typeof globalThis.fetch;
  });
  afterAll(() => {
    globalThis.fetch = realFetch;
    expect(fetchSpy).not.toHaveBeenCalled();
  });
  return fetchSpy;
}

// The admin API of a server under test, as the integration tests between servers call it.
import { expect } from 'vitest';

export interface Reachable {
  url: string;
}

export function adminApi(token: string) {
  return {
    /** An admin API call; the JSON answer (undefined for 204) with its status. */
    async admin(i: Reachable, method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }> {
      const res = await fetch(`${i.url}/api/v1/admin${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: res.status, body: res.status === 204 ? undefined : await res.json() };
    },
    /** Media bytes through `POST /api/v1/media` (200 expected): the decision. */
    async submit(i: Reachable, bytes: Buffer, query = '') {
      const res = await fetch(`${i.url}/api/v1/media${query}`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'image/jpeg' }, body: bytes });
      expect(res.status).toBe(200);
      return res.json();
    },
  };
}

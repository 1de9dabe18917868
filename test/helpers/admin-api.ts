// The admin API of a server under test, as the integration tests between servers call it.
import { expect } from 'vitest';
import { eventually } from './process.js';

export interface Reachable {
  url: string;
}

export interface Peer extends Reachable {
  actor: string;
}

export function adminApi(token: string) {
  /** An admin API call; the JSON answer (undefined for 204) with its status. */
  const admin = async (i: Reachable, method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }> => {
    const res = await fetch(`${i.url}/api/v1/admin${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: res.status === 204 ? undefined : await res.json() };
  };
  return {
    admin,
    /** `from` follows `to`, which approves; `from` then trusts `to` at `weight` in both polarities. */
    async follow(from: Peer, to: Peer, weight = 1): Promise<void> {
      expect((await admin(from, 'POST', '/peers/follow', { target: to.actor })).status).toBe(202);
      await eventually(async () => (await admin(to, 'POST', '/peers/approve', { actor: from.actor })).status === 200, 20_000, 'the follow to be approved');
      await eventually(async () => {
        const { peers } = (await admin(from, 'GET', '/peers')).body as { peers: Array<{ actor: string; following: string }> };
        return peers.some((p) => p.actor === to.actor && p.following === 'accepted');
      }, 20_000, 'the Accept');
      expect((await admin(from, 'PUT', '/trust', { peer: to.actor, abuse: weight, ok: weight })).status).toBe(200);
    },
    /** Media bytes through `POST /api/v1/media` (200 expected): the decision. */
    async submit(i: Reachable, bytes: Buffer, query = '') {
      const res = await fetch(`${i.url}/api/v1/media${query}`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'image/jpeg' }, body: bytes });
      expect(res.status).toBe(200);
      return res.json();
    },
  };
}

// `vouch audit URL`: everything the auditor needs from the peer, fetched without a server of our
// own — its actor (for the log key and proof keys), then the log through server/log's auditor.
import type { KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import { OutboundRequestError, blockedRange, createSafeFetcher } from '../federation/safe-fetch.js';
import { auditLog, logOrigin, type AuditReport } from '../log/index.js';
import { verifierKey } from '../../shared/merkle/checkpoint.js';
import { multibaseToEd25519, verifyObject } from '../../shared/crypto/data-integrity.js';

export interface AuditPeerOptions {
  url: string;
  all: boolean;
  out?: { path: string; format: 'jsonl' | 'csv' };
  stateDir: string;
  allowPrivateNetworks: string[];
  progress?: { update(done: number, total: number): void; stop(): void };
}

/** A peer that cannot be audited as asked: the CLI shows its message alone. */
export class AuditError extends Error {}

/**
 * The SSRF guard's refusal in an auditor's terms: one setting opens both plain http and private
 * addresses, so name it rather than blame http alone.
 */
function refusal(err: OutboundRequestError, url: URL): string {
  const setting = 'VOUCH_ALLOW_PRIVATE_NETWORKS (CIDRs, e.g. 127.0.0.0/8 for this machine)';
  if (err.reason === 'blocked_address') return `${err.message}: the audit reaches private addresses only inside ${setting}`;
  if (err.reason === 'bad_url' && url.protocol === 'http:') {
    const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
    const range = isIP(host) === 0 ? null : blockedRange(host);
    return (
      `${url.origin} refused: ${range ? `${host} is a ${range} address, and ` : ''}` +
      `the audit uses plain http and private addresses only inside ${setting}; audit a public instance over https`
    );
  }
  return err.message;
}

export async function auditPeer(options: AuditPeerOptions): Promise<AuditReport> {
  const safeFetch = createSafeFetcher({ allowPrivate: options.allowPrivateNetworks, maxBodyBytes: 32 * 1024 * 1024, timeoutMs: 60_000 });
  const get = async (url: string, accept: string) => {
    const res = await safeFetch(url, { accept }).catch((err: unknown) => {
      throw err instanceof OutboundRequestError ? new AuditError(refusal(err, new URL(url))) : err;
    });
    if (res.status !== 200) throw new AuditError(`GET ${url} answered ${res.status}`);
    return res.body.toString('utf8');
  };
  const getJson = async (url: string, accept: string): Promise<unknown> => {
    const text = await get(url, accept);
    try {
      return JSON.parse(text);
    } catch {
      throw new AuditError(`GET ${url} did not answer JSON: is this a Vouch instance?`);
    }
  };
  let base: URL;
  try {
    base = new URL(options.url);
  } catch {
    throw new AuditError(`"${options.url}" is not a URL: give the instance's base URL (https://vouch.example) or its actor URL`);
  }
  const actorUrl = base.pathname.endsWith('/actor') ? base.href : `${base.origin}/actor`;
  const actor = (await getJson(actorUrl, 'application/activity+json')) as {
    id?: string;
    assertionMethod?: Array<{ id?: string; type?: string; controller?: string; publicKeyMultibase?: string }>;
  };
  if (actor.id !== actorUrl) throw new AuditError(`the actor at ${actorUrl} names itself ${String(actor.id)}`);
  const proofKeys = new Map<string, KeyObject>();
  for (const method of actor.assertionMethod ?? []) {
    if (method.type === 'Multikey' && method.controller === actorUrl && method.id?.startsWith(base.origin) && method.publicKeyMultibase) {
      proofKeys.set(method.id, multibaseToEd25519(method.publicKeyMultibase));
    }
  }
  const logKey = [...proofKeys.values()][0];
  if (!logKey) throw new AuditError(`${actorUrl} lists no Ed25519 assertion key: it cannot sign a log`);
  try {
    return await auditLog({
      baseUrl: base.origin,
      logVerifierKey: verifierKey(logOrigin(base.host), logKey, 'ed25519'),
      fetchJson: (url) => getJson(url, 'application/json'),
      fetchText: (url) => get(url, 'text/plain'),
      stateDir: options.stateDir,
      all: options.all,
      out: options.out,
      // Each entry is a signed activity: its object must carry a valid proof by the actor's key.
      verifyEntry: async (entry) => {
        const object = (entry as { object?: unknown }).object;
        if (typeof object !== 'object' || object === null || !('proof' in object)) return; // tombstones carry no proof
        await verifyObject(object as Record<string, unknown>, async (method) => {
          const key = proofKeys.get(method);
          if (!key) throw new AuditError(`proof key ${method} is not one of ${actorUrl}'s`);
          return key;
        });
      },
      onProgress: (done, total) => options.progress?.update(done, total),
    });
  } finally {
    options.progress?.stop();
  }
}

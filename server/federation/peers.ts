// Peers: remote Vouch actors, fetched with signed GETs and cached with their keys. Owns the peers
// table. Keys are re-fetched when a signature fails against a stale cache (key rotation).
import type { KeyObject } from 'node:crypto';
import type { Db } from '../store/index.js';
import type { Logger } from '../config/logger.js';
import { OutboundRequestError, type SafeFetch } from './safe-fetch.js';
import type { Identity } from './identity.js';
import { signRequest } from '../../shared/crypto/http-signature.js';
import { loadPublicKey } from '../../shared/crypto/keys.js';
import { multibaseToEd25519 } from '../../shared/crypto/data-integrity.js';

/** Bigger than any actor or collection page we serve; a peer sending more is misbehaving. */
const MAX_DOCUMENT_BYTES = 512 * 1024;
/**
 * Peer rows are read on every inbox POST (keys, follow state): a short in-memory cache spares the
 * database. This process's own writes update it at once; another replica's follow-state change
 * is seen within this time.
 */
const PEER_CACHE_MS = 30_000;
/** A cached key younger than this is not re-fetched on a failed signature (no fetch amplification). */
const KEY_REFRESH_MIN_AGE_MS = 60_000;

export class FederationError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export type FollowingState = 'none' | 'pending' | 'accepted' | 'rejected';
export type FollowerState = 'none' | 'pending' | 'approved' | 'rejected';

export interface Peer {
  actor: string;
  inbox: string | null;
  sharedInbox: string | null;
  outbox: string | null;
  following: FollowingState;
  follower: FollowerState;
  followActivityId: string | null;
  keyId: string | null;
  publicKeyPem: string | null;
  proofKeys: Record<string, string>;
  fetchedAt: Date | null;
  caughtUpTo: Date | null;
  /** Ask this peer for verdicts before scanning (the admin's choice), at its lookup endpoint. */
  pullOnMiss: boolean;
  lookupEndpoint: string | null;
}

type PeerRow = {
  actor_uri: string;
  inbox: string | null;
  shared_inbox: string | null;
  outbox: string | null;
  following_state: string;
  follower_state: string;
  follow_activity_id: string | null;
  key_id: string | null;
  public_key_pem: string | null;
  proof_keys: Record<string, string> | null;
  fetched_at: Date | null;
  caught_up_to: Date | null;
  pull_on_miss: boolean;
  lookup_endpoint: string | null;
};

function toPeer(r: PeerRow): Peer {
  return {
    actor: r.actor_uri,
    inbox: r.inbox,
    sharedInbox: r.shared_inbox,
    outbox: r.outbox,
    following: r.following_state as FollowingState,
    follower: r.follower_state as FollowerState,
    followActivityId: r.follow_activity_id,
    keyId: r.key_id,
    publicKeyPem: r.public_key_pem,
    proofKeys: r.proof_keys ?? {},
    fetchedAt: r.fetched_at,
    caughtUpTo: r.caught_up_to,
    pullOnMiss: r.pull_on_miss,
    lookupEndpoint: r.lookup_endpoint,
  };
}

function sameOrigin(url: unknown, origin: string): url is string {
  if (typeof url !== 'string') return false;
  try {
    return new URL(url).origin === origin;
  } catch {
    return false;
  }
}

/** The id of a value that may be a link or an embedded object with an id. */
function idOf(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && value !== null && typeof (value as { id?: unknown }).id === 'string') {
    return (value as { id: string }).id;
  }
  return undefined;
}

export class PeerDirectory {
  private readonly cache = new Map<string, { peer: Peer | undefined; at: number }>();
  /** Parsed keys by their text: parsing a PEM costs more than verifying a signature with it. */
  private readonly keys = new Map<string, KeyObject>();

  constructor(
    private readonly db: Db,
    private readonly identity: Identity,
    private readonly safeFetch: SafeFetch,
    private readonly logger: Logger,
  ) {}

  /** GET signed with our RSA key (authorized fetch), JSON out. */
  async signedGetJson(url: string, timeoutMs?: number): Promise<unknown> {
    const target = new URL(url);
    const signed = signRequest({
      method: 'GET',
      url: target,
      headers: { accept: 'application/activity+json' },
      keyId: this.identity.rsaKeyId,
      privateKey: this.identity.rsaPrivateKey,
    });
    const headers: Record<string, string> = { accept: 'application/activity+json, application/ld+json' };
    for (const [name, value] of Object.entries(signed)) if (value !== undefined) headers[name.toLowerCase()] = value;
    // No redirects: the signature covers this exact target, and an actor must live where it says.
    const res = await this.safeFetch(target, { headers, maxBodyBytes: MAX_DOCUMENT_BYTES, timeoutMs });
    if (res.status !== 200) throw new FederationError(502, 'peer_fetch_failed', `GET ${target.href} answered ${res.status}`);
    try {
      return JSON.parse(res.body.toString('utf8'));
    } catch {
      throw new FederationError(502, 'peer_fetch_failed', `GET ${target.href} did not return JSON`);
    }
  }

  async get(actor: string): Promise<Peer | undefined> {
    const cached = this.cache.get(actor);
    if (cached && Date.now() - cached.at < PEER_CACHE_MS) return cached.peer;
    const row = await this.db.selectFrom('peers').selectAll().where('actor_uri', '=', actor).executeTakeFirst();
    const peer = row ? toPeer(row as PeerRow) : undefined;
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(actor, { peer, at: Date.now() });
    return peer;
  }

  async list(): Promise<Peer[]> {
    const rows = await this.db.selectFrom('peers').selectAll().orderBy('actor_uri').execute();
    return rows.map((r) => toPeer(r as PeerRow));
  }

  /**
   * Fetches an actor document and caches it. Everything in it that we rely on must sit on the
   * actor's own origin: the inbox we deliver to, the key that signs for it, its proof keys.
   */
  async refresh(actorUrl: string): Promise<Peer> {
    let origin: string;
    try {
      origin = new URL(actorUrl).origin;
    } catch {
      throw new FederationError(400, 'bad_actor', `"${actorUrl}" is not a URL`);
    }
    const doc = (await this.signedGetJson(actorUrl)) as Record<string, unknown>;
    if (typeof doc !== 'object' || doc === null || doc.id !== actorUrl) {
      throw new FederationError(502, 'bad_actor', `actor document at ${actorUrl} does not have that id`);
    }
    const inbox = doc.inbox;
    if (!sameOrigin(inbox, origin)) throw new FederationError(502, 'bad_actor', 'actor inbox is not on its own origin');
    const endpoints = (doc.endpoints ?? {}) as Record<string, unknown>;
    const sharedInbox = sameOrigin(endpoints.sharedInbox, origin) ? endpoints.sharedInbox : null;
    const outbox = sameOrigin(doc.outbox, origin) ? doc.outbox : null;
    const lookupEndpoint = sameOrigin(endpoints.vouchLookup, origin) ? endpoints.vouchLookup : null;
    const publicKey = doc.publicKey as Record<string, unknown> | undefined;
    if (!publicKey || !sameOrigin(publicKey.id, origin) || idOf(publicKey.owner) !== actorUrl || typeof publicKey.publicKeyPem !== 'string') {
      throw new FederationError(502, 'bad_actor', 'actor publicKey is missing, not its own or not on its origin');
    }
    try {
      loadPublicKey(publicKey.publicKeyPem);
    } catch (err) {
      throw new FederationError(502, 'bad_actor', `actor publicKey is unusable: ${(err as Error).message}`);
    }
    const proofKeys: Record<string, string> = {};
    const methods = Array.isArray(doc.assertionMethod) ? doc.assertionMethod : doc.assertionMethod ? [doc.assertionMethod] : [];
    for (const method of methods as Array<Record<string, unknown>>) {
      if (method?.type !== 'Multikey' || !sameOrigin(method.id, origin) || idOf(method.controller) !== actorUrl) continue;
      if (typeof method.publicKeyMultibase !== 'string') continue;
      try {
        multibaseToEd25519(method.publicKeyMultibase);
      } catch {
        continue; // not an Ed25519 Multikey: unusable for our proofs, not fatal for the actor
      }
      proofKeys[method.id] = method.publicKeyMultibase;
    }
    const values = {
      inbox,
      shared_inbox: sharedInbox as string | null,
      outbox: outbox as string | null,
      lookup_endpoint: lookupEndpoint as string | null,
      key_id: publicKey.id,
      public_key_pem: publicKey.publicKeyPem,
      proof_keys: JSON.stringify(proofKeys),
      fetched_at: new Date(),
      updated_at: new Date(),
    };
    const row = await this.db
      .insertInto('peers')
      .values({ actor_uri: actorUrl, ...values })
      .onConflict((oc) => oc.column('actor_uri').doUpdateSet(values))
      .returningAll()
      .executeTakeFirstOrThrow();
    this.cache.delete(actorUrl);
    this.logger.info({ actor: actorUrl, keyId: publicKey.id }, 'peer actor fetched');
    return toPeer(row as PeerRow);
  }

  /** The public key for an HTTP signature's keyId, fetched when unknown or (`stale`) refreshed. */
  async keyFor(keyId: string, actor: string, options: { refresh?: boolean } = {}): Promise<KeyObject> {
    let peer = await this.get(actor);
    const fresh = peer?.fetchedAt && Date.now() - peer.fetchedAt.getTime() < KEY_REFRESH_MIN_AGE_MS;
    if (!peer?.publicKeyPem || peer.keyId !== keyId || (options.refresh && !fresh)) {
      peer = await this.refresh(actor);
    }
    if (peer.keyId !== keyId || !peer.publicKeyPem) {
      throw new FederationError(401, 'unknown_key', `keyId ${keyId} is not the key of ${actor}`);
    }
    return this.keyObject(`pem:${peer.publicKeyPem}`, () => loadPublicKey(peer!.publicKeyPem!));
  }

  /** An Ed25519 proof key the actor lists under assertionMethod; refreshed once if unknown. */
  async proofKeyFor(verificationMethod: string, actor: string): Promise<KeyObject> {
    let peer = await this.get(actor);
    if (!peer?.proofKeys[verificationMethod]) {
      const fresh = peer?.fetchedAt && Date.now() - peer.fetchedAt.getTime() < KEY_REFRESH_MIN_AGE_MS;
      if (!peer || !fresh) peer = await this.refresh(actor);
    }
    const multibase = peer.proofKeys[verificationMethod];
    if (!multibase) throw new FederationError(401, 'unknown_key', `${verificationMethod} is not an assertion key of ${actor}`);
    return this.keyObject(`mb:${multibase}`, () => multibaseToEd25519(multibase));
  }

  private keyObject(text: string, parse: () => KeyObject): KeyObject {
    let key = this.keys.get(text);
    if (!key) {
      if (this.keys.size > 10_000) this.keys.clear();
      key = parse();
      this.keys.set(text, key);
    }
    return key;
  }

  /**
   * Resolves `https://host/actor`, `vouch@host` or `acct:vouch@host` to an actor URL via WebFinger.
   * With `allowHttp` (test meshes), a host that takes no TLS connection is asked over plain http.
   */
  async resolve(target: string, allowHttp = false): Promise<string> {
    if (/^https?:\/\//.test(target)) return target;
    const match = /^(?:acct:)?@?([^@\s/]+)@([^@\s/]+)$/.exec(target);
    if (!match) throw new FederationError(400, 'bad_target', `"${target}" is neither an actor URL nor a user@host handle`);
    const path = `/.well-known/webfinger?resource=${encodeURIComponent(`acct:${match[1]}@${match[2]}`)}`;
    const get = (scheme: 'https' | 'http') => this.safeFetch(`${scheme}://${match[2]}${path}`, { accept: 'application/jrd+json', maxBodyBytes: 64 * 1024 });
    const res = await get('https').catch((err: unknown) => {
      if (allowHttp && err instanceof OutboundRequestError && err.reason === 'connection_failed') return get('http');
      throw err;
    });
    if (res.status !== 200) throw new FederationError(502, 'webfinger_failed', `WebFinger for ${target} answered ${res.status}`);
    let doc: { links?: Array<{ rel?: string; type?: string; href?: string }> };
    try {
      doc = JSON.parse(res.body.toString('utf8'));
    } catch {
      throw new FederationError(502, 'webfinger_failed', `WebFinger for ${target} did not return JSON`);
    }
    const self = doc.links?.find((l) => l.rel === 'self' && /activity\+json|ld\+json/.test(l.type ?? ''));
    if (!self?.href) throw new FederationError(502, 'webfinger_failed', `WebFinger for ${target} has no ActivityPub link`);
    return self.href;
  }

  async setFollowing(actor: string, state: FollowingState, followActivityId?: string): Promise<void> {
    await this.db
      .updateTable('peers')
      .set({ following_state: state, updated_at: new Date(), ...(followActivityId === undefined ? {} : { follow_activity_id: followActivityId }) })
      .where('actor_uri', '=', actor)
      .execute();
    this.cache.delete(actor);
  }

  async setFollower(actor: string, state: FollowerState): Promise<void> {
    await this.db.updateTable('peers').set({ follower_state: state, updated_at: new Date() }).where('actor_uri', '=', actor).execute();
    this.cache.delete(actor);
  }

  async setPullOnMiss(actor: string, enabled: boolean): Promise<void> {
    await this.db.updateTable('peers').set({ pull_on_miss: enabled, updated_at: new Date() }).where('actor_uri', '=', actor).execute();
    this.cache.delete(actor);
  }

  async setIncomingFollow(actor: string, activityId: string): Promise<void> {
    await this.db.updateTable('peers').set({ incoming_follow_id: activityId }).where('actor_uri', '=', actor).execute();
  }

  async setCaughtUpTo(actor: string, when: Date): Promise<void> {
    await this.db.updateTable('peers').set({ caught_up_to: when }).where('actor_uri', '=', actor).execute();
    this.cache.delete(actor);
  }

  /** Where to deliver to approved followers: one shared inbox per instance where offered. */
  async followerInboxes(): Promise<string[]> {
    const rows = await this.db.selectFrom('peers').select(['inbox', 'shared_inbox']).where('follower_state', '=', 'approved').execute();
    return [...new Set(rows.map((r) => r.shared_inbox ?? r.inbox).filter((x): x is string => !!x))];
  }
}

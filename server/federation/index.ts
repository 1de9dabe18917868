// Federation: the instance actor, its inbox and outbox, subscriptions between peers and durable
// delivery. It knows nothing of verdict storage: accepted verdicts go to an InboundVerdictHandler
// that `main` wires in, and the verdicts module calls `publish`.
import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import express, { type Request, type Response, type Router } from 'express';
import type { Db } from '../store/index.js';
import type { Logger } from '../config/logger.js';
import type { Metrics } from '../config/metrics.js';
import type { JobQueue } from '../queue/index.js';
import { HttpSignatureError, keyIdOrigin, parseSignatureHeader, signRequest, verifyRequest } from '../../shared/crypto/http-signature.js';
import { signObject } from '../../shared/crypto/data-integrity.js';
import { AS_CONTEXT_URL, bundledContext, VERDICT_CONTEXT, VOUCH_CONTEXT_URL } from '../../shared/vocab/contexts.js';
import { actorDocument, loadIdentity, nodeinfoDocument, webfingerDocument, ACTOR_USERNAME, type Identity } from './identity.js';
import { FederationError, PeerDirectory, type Peer } from './peers.js';
import { Inbox, type InboundVerdictHandler, type InboxResult } from './inbox.js';
import { Delivery, DELIVERY_QUEUE, type DeliveryJob } from './delivery.js';
import type { SafeFetch } from './safe-fetch.js';
import { ALGORITHM_REGISTRY } from '../../shared/algorithms/index.js';

export { FederationError } from './peers.js';
export { OwnershipError, type InboundVerdictHandler, type AfterCommit } from './inbox.js';
export { DELIVERY_QUEUE, type DeliveryJob } from './delivery.js';
export type { Peer } from './peers.js';
export type { Identity } from './identity.js';

/** Our own signed verdict documents matching these hashes (wired by main to the verdicts module). */
/** Our verdicts about these hashes: algorithm name → lower-case hex digest, each one its algorithm's parser accepted. */
export type VerdictLookup = (hashes: Record<string, string>) => Promise<Record<string, unknown>[]>;

export interface FederationOptions {
  publicUrl: string;
  /** Approve every Follow without the admin (small private meshes). */
  autoApproveFollowers: boolean;
  /** Serve `ok` verdicts to anyone; everything else is for approved followers only. */
  publicOkFeed: boolean;
  /** http:// peers (tests, private meshes); production federation is https only. */
  allowHttp: boolean;
  deliveryConcurrency: number;
  softwareVersion: string;
}

const ACTIVITY_JSON = 'application/activity+json';
/** The largest inbox POST body read (protocol.md: 256 KiB). */
export const MAX_INBOX_BYTES = 256 * 1024;
const PAGE_SIZE = 50;
/** How often recorded activities left unqueued (a crash, the queue away) are queued again. */
const DRAIN_EVERY_MS = 5_000;
const DRAIN_BATCH = 200;

type OutboxRow = { seq: number; activity: Record<string, unknown>; published: Date; restricted: boolean };

export class Federation {
  readonly peers: PeerDirectory;
  private readonly inbox: Inbox;
  private readonly delivery: Delivery;
  private handler: InboundVerdictHandler | undefined;
  private drainTimer: NodeJS.Timeout | undefined;
  private draining: Promise<void> | undefined;
  private drainAgain = false;
  private lookup: VerdictLookup | undefined;

  private constructor(
    private readonly db: Db,
    readonly identity: Identity,
    private readonly options: FederationOptions,
    readonly safeFetcher: SafeFetch,
    private readonly queue: JobQueue<DeliveryJob>,
    private readonly logger: Logger,
    private readonly metrics: Metrics | undefined,
  ) {
    this.peers = new PeerDirectory(db, identity, safeFetcher, logger);
    this.delivery = new Delivery(db, identity, queue, safeFetcher, logger, metrics);
    this.inbox = new Inbox(
      db,
      identity,
      this.peers,
      {
        follow: (actor, id) => this.onFollow(actor, id),
        undoFollow: (actor) => this.peers.setFollower(actor, 'none'),
        accepted: (actor, followId) => this.onAccepted(actor, followId),
        rejected: (actor) => this.peers.setFollowing(actor, 'rejected'),
      },
      () => this.handler,
      logger,
      { allowHttp: options.allowHttp },
    );
  }

  static async open(deps: {
    db: Db;
    options: FederationOptions;
    safeFetch: SafeFetch;
    queue: JobQueue<DeliveryJob>;
    logger: Logger;
    metrics?: Metrics;
  }): Promise<Federation> {
    const identity = await loadIdentity(deps.db, deps.options.publicUrl);
    return new Federation(deps.db, identity, deps.options, deps.safeFetch, deps.queue, deps.logger, deps.metrics);
  }

  setInboundHandler(handler: InboundVerdictHandler): void {
    this.handler = handler;
  }

  /** Answers followers' pull-on-miss lookups from our own verdicts. */
  setLookupHandler(lookup: VerdictLookup): void {
    this.lookup = lookup;
  }

  /**
   * Pull on miss: asks the followed peers the admin enabled it for whether they judged these
   * hashes (signed GET, short timeout, in parallel); what they return is checked like an inbox
   * Create and stored. Returns how many verdicts arrived. A slow or failing peer is skipped.
   * A video is asked about by SHA-256 and MD5 only: a lookup takes one digest per algorithm, and a
   * video's frames would be one lookup each (docs/video.md).
   */
  async pullVerdicts(hashes: { sha256: string; pdq?: string; md5?: string }, timeoutMs = 1_500): Promise<number> {
    const peers = (await this.peers.list()).filter((p) => p.pullOnMiss && p.following === 'accepted' && p.lookupEndpoint);
    const query = new URLSearchParams(Object.entries(hashes).filter((e): e is [string, string] => typeof e[1] === 'string')).toString();
    const counts = await Promise.all(
      peers.map(async (peer) => {
        try {
          const answer = (await this.peers.signedGetJson(`${peer.lookupEndpoint}?${query}`, timeoutMs)) as { verdicts?: unknown[] };
          let accepted = 0;
          for (const object of (answer.verdicts ?? []).slice(0, 50)) {
            try {
              await this.inbox.acceptPulledVerdict(object, peer.actor);
              accepted++;
            } catch (err) {
              this.logger.warn({ peer: peer.actor, err: (err as Error).message }, 'pulled verdict refused');
            }
          }
          return accepted;
        } catch (err) {
          this.logger.info({ peer: peer.actor, err: (err as Error).message }, 'pull on miss: peer did not answer in time');
          return 0;
        }
      }),
    );
    return counts.reduce((a, b) => a + b, 0);
  }

  /** Starts the delivery workers and the drain that queues recorded activities for delivery. */
  start(): void {
    this.delivery.start(this.options.deliveryConcurrency);
    this.drainTimer = setInterval(() => this.deliverPending(), DRAIN_EVERY_MS);
    this.drainTimer.unref();
    this.deliverPending();
  }

  /** Stops the periodic drain (before the store closes). */
  async stop(): Promise<void> {
    clearInterval(this.drainTimer);
    await this.draining;
  }

  /** Adds an Ed25519 DataIntegrityProof (eddsa-jcs-2022) made with this instance's key. */
  sign<T extends Record<string, unknown>>(object: T): T & { proof: unknown } {
    return signObject(object, { privateKey: this.identity.proofPrivateKey, verificationMethod: this.identity.proofKeyId });
  }

  /** Records an activity in the outbox and queues its delivery to every approved follower. */
  async publish(type: 'Create' | 'Update' | 'Delete', object: Record<string, unknown> | string, restricted: boolean): Promise<Record<string, unknown>> {
    const activity = this.activity(type, object);
    await this.recordWithin(this.db, activity, restricted, null);
    await this.drainPending();
    return activity;
  }

  /** A new activity of ours announcing `object`, not yet recorded anywhere. */
  newActivity(type: 'Create' | 'Update' | 'Delete', object: Record<string, unknown> | string): Record<string, unknown> {
    return this.activity(type, object);
  }

  /**
   * Records an activity in the outbox inside the caller's transaction (so it commits with what it
   * announces), not yet queued: `deliverPending` queues it once committed.
   */
  async recordWithin(trx: Db, activity: Record<string, unknown>, restricted: boolean, logIndex: number | null): Promise<void> {
    await this.record(trx, activity, restricted, { queued: false, logIndex });
  }

  /**
   * Queues delivery of every committed activity not yet queued, oldest first. Never throws (a
   * queue that is away is retried by the next drain, every DRAIN_EVERY_MS); one drain at a time
   * per process, and a drain asked for while one runs runs again after it. Two processes may queue
   * the same activity: the delivery job id makes the second a no-op.
   */
  deliverPending(): void {
    if (this.draining) {
      this.drainAgain = true;
      return;
    }
    this.draining = (async () => {
      do {
        this.drainAgain = false;
        try {
          await this.drainPending();
        } catch (err) {
          this.logger.warn({ err: (err as Error).message }, 'queueing deliveries failed; retrying shortly');
          break;
        }
      } while (this.drainAgain);
    })().finally(() => (this.draining = undefined));
  }

  private async drainPending(): Promise<void> {
    for (;;) {
      const rows = await this.db.selectFrom('outbox').select(['seq', 'id']).where('queued', '=', false).orderBy('seq').limit(DRAIN_BATCH).execute();
      if (rows.length === 0) return;
      const inboxes = await this.peers.followerInboxes();
      for (const row of rows) await this.delivery.enqueue(row.id, inboxes);
      await this.db.updateTable('outbox').set({ queued: true }).where('seq', 'in', rows.map((r) => r.seq)).execute();
      if (rows.length < DRAIN_BATCH) return;
    }
  }

  /** Pushes a signed log checkpoint to followers, who check it against the last they saw and cosign. */
  async publishCheckpoint(checkpoint: { origin: string; treeSize: number; rootHash: string; note: string }): Promise<void> {
    const object = this.sign({
      '@context': [...VERDICT_CONTEXT],
      type: 'Checkpoint',
      id: `${this.checkpointPrefix}${checkpoint.treeSize}`,
      attributedTo: this.identity.actorId,
      ...checkpoint,
      published: new Date().toISOString(),
    });
    await this.publish('Create', object, false);
  }

  /** Publishes our direct trust to followers as a signed TrustStatement (one object, updated). */
  async publishTrustStatement(trust: Array<{ peer: string; polarity: 'abuse' | 'ok'; value: number; label?: string }>): Promise<void> {
    const now = new Date().toISOString();
    const object = this.sign({
      '@context': [...VERDICT_CONTEXT],
      type: 'TrustStatement',
      id: `${this.identity.publicUrl}/trust/statement`,
      attributedTo: this.identity.actorId,
      published: now,
      updated: now,
      trust,
    });
    await this.publish('Update', object, true);
  }

  /** A signed POST straight to a peer (cosignatures: best effort, the next checkpoint retries). */
  async postSigned(url: string, body: Record<string, unknown>): Promise<number> {
    const text = JSON.stringify(body);
    const signed = signRequest({
      method: 'POST',
      url,
      headers: { 'content-type': 'application/json' },
      body: text,
      keyId: this.identity.rsaKeyId,
      privateKey: this.identity.rsaPrivateKey,
    });
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    for (const [name, value] of Object.entries(signed)) if (value !== undefined) headers[name.toLowerCase()] = value;
    const res = await this.safeFetcher(url, { method: 'POST', headers, body: text, maxBodyBytes: 64 * 1024 });
    return res.status;
  }

  /**
   * Which of these objects of ours we published (they have an activity in our outbox): what the
   * feeds can show. Hash-list imports and offline classifications never were.
   */
  async published(objectIds: readonly string[]): Promise<Set<string>> {
    if (objectIds.length === 0) return new Set();
    const rows = await this.db.selectFrom('outbox').select('object_id').distinct().where('object_id', 'in', [...objectIds]).execute();
    return new Set(rows.flatMap((r) => (r.object_id === null ? [] : [r.object_id])));
  }

  /** The approved follower behind a signed request (with its body, for POSTs), or undefined. */
  async approvedFollower(req: Request, body?: Buffer): Promise<string | undefined> {
    const actor = await this.signedBy(req, body);
    return actor && (await this.peers.get(actor))?.follower === 'approved' ? actor : undefined;
  }

  // --- subscriptions -------------------------------------------------------------------------

  async follow(target: string): Promise<Peer> {
    const actor = await this.peers.resolve(target, this.options.allowHttp);
    if (actor === this.identity.actorId) throw new FederationError(400, 'self_follow', 'an instance cannot follow itself');
    const peer = await this.peers.refresh(actor);
    const follow = this.activity('Follow', actor);
    await this.peers.setFollowing(actor, 'pending', follow.id as string);
    await this.send(follow, peer);
    return (await this.peers.get(actor))!;
  }

  async unfollow(actor: string): Promise<void> {
    const peer = await this.requirePeer(actor);
    if (peer.followActivityId) {
      const undo = this.activity('Undo', { id: peer.followActivityId, type: 'Follow', actor: this.identity.actorId, object: actor });
      await this.send(undo, peer);
    }
    await this.peers.setFollowing(actor, 'none');
  }

  async approve(actor: string): Promise<void> {
    const peer = await this.requirePeer(actor);
    if (peer.follower === 'none') throw new FederationError(409, 'no_follow_request', `${actor} has not asked to follow`);
    await this.peers.setFollower(actor, 'approved');
    await this.send(this.activity('Accept', await this.incomingFollow(actor)), peer);
  }

  async reject(actor: string): Promise<void> {
    const peer = await this.requirePeer(actor);
    await this.peers.setFollower(actor, 'rejected');
    await this.send(this.activity('Reject', await this.incomingFollow(actor)), peer);
  }

  /** Fetches what a followed peer published since we last caught up (after downtime). */
  async catchUp(actor: string): Promise<number> {
    const peer = await this.requirePeer(actor);
    if (peer.following !== 'accepted' || !peer.outbox) return 0;
    let url: string | undefined = `${peer.outbox}?since=${encodeURIComponent((peer.caughtUpTo ?? new Date(0)).toISOString())}`;
    let applied = 0;
    let last = peer.caughtUpTo;
    const outboxOrigin = new URL(peer.outbox).origin;
    for (let pages = 0; url && pages < 10_000; pages++) {
      const page = (await this.peers.signedGetJson(url)) as { orderedItems?: unknown[]; next?: unknown };
      for (const item of page.orderedItems ?? []) {
        try {
          const result = await this.inbox.apply(item as Record<string, unknown>, actor, { replay: 'skip' });
          if (result.status === 'accepted') applied++;
        } catch (err) {
          this.logger.warn({ actor, err: (err as Error).message }, 'catch-up: activity refused');
        }
        const published = Date.parse(String((item as { published?: unknown }).published));
        if (Number.isFinite(published) && (!last || published > last.getTime())) last = new Date(published);
      }
      url = typeof page.next === 'string' && new URL(page.next).origin === outboxOrigin ? page.next : undefined;
    }
    if (last) await this.peers.setCaughtUpTo(actor, last);
    return applied;
  }

  /** Catches up with every followed peer; failures are logged, not thrown (peers may be down). */
  async catchUpAll(): Promise<void> {
    for (const peer of await this.peers.list()) {
      if (peer.following !== 'accepted') continue;
      try {
        const applied = await this.catchUp(peer.actor);
        if (applied > 0) this.logger.info({ actor: peer.actor, applied }, 'caught up with peer');
      } catch (err) {
        this.logger.warn({ actor: peer.actor, err: (err as Error).message }, 'catch-up failed');
      }
    }
  }

  /**
   * Forgets received activity ids older than `days`. Safe: a replayed inbox POST needs a signed
   * Date within 300 s, and catch-up skips what is already stored.
   */
  async pruneReplayRecords(days = 7): Promise<number> {
    const result = await this.db.deleteFrom('inbox_seen').where('received_at', '<', new Date(Date.now() - days * 86_400_000)).executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  /** Queue depths and the dead-letter list, for the admin. */
  async deliveryStatus(limit = 100) {
    const [counts, dead] = await Promise.all([this.queue.counts(), this.queue.deadLetters(limit)]);
    return { counts, dead };
  }

  retryDelivery(id: string): Promise<boolean> {
    return this.queue.retryDead(id);
  }

  // --- HTTP ----------------------------------------------------------------------------------

  /** One inbox POST's body, authenticated and applied (answer 202 with the result); counted in /metrics. */
  async receiveInbox(req: Request, body: Buffer): Promise<InboxResult> {
    try {
      const result = await this.inbox.receive(req, body);
      this.metrics?.inbox.inc({ result: result.status });
      return result;
    } catch (err) {
      this.metrics?.inbox.inc({ result: err instanceof FederationError ? err.code : 'error' });
      throw err;
    }
  }

  router(): Router {
    const router = express.Router();
    const send = (res: Response, body: unknown, type = ACTIVITY_JSON) => res.type(type).send(JSON.stringify(body));

    router.get('/.well-known/webfinger', (req, res) => {
      const resource = req.query.resource;
      const mine = [`acct:${ACTOR_USERNAME}@${this.identity.host}`, this.identity.actorId];
      if (typeof resource !== 'string' || !mine.includes(resource)) {
        throw new FederationError(404, 'not_found', 'no such resource here');
      }
      send(res, webfingerDocument(this.identity), 'application/jrd+json');
    });
    router.get('/.well-known/nodeinfo', (_req, res) => {
      res.json({ links: [{ rel: 'http://nodeinfo.diaspora.software/ns/schema/2.1', href: `${this.identity.publicUrl}/nodeinfo/2.1` }] });
    });
    router.get('/nodeinfo/2.1', (_req, res) => {
      send(res, nodeinfoDocument(this.options.softwareVersion), 'application/json; profile="http://nodeinfo.diaspora.software/ns/schema/2.1#"');
    });
    router.get('/ns/v1', (_req, res) => send(res, bundledContext(VOUCH_CONTEXT_URL), 'application/ld+json'));
    router.get('/actor', (_req, res) => send(res, actorDocument(this.identity)));

    // Most inbox POSTs are answered ahead of the app's general stack (server/http/inbox-route.ts);
    // these routes take the rest (compressed bodies, an inbox URL with a query string).
    const inboxBody = express.raw({ type: () => true, limit: MAX_INBOX_BYTES });
    const receive = async (req: Request, res: Response) => {
      res.status(202).json(await this.receiveInbox(req, Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0)));
    };
    router.post('/actor/inbox', inboxBody, receive);
    router.post('/inbox', inboxBody, receive);

    router.get('/actor/outbox', async (req, res) => send(res, await this.outboxCollection(req)));
    // Pull on miss, for approved followers: our signed verdicts about these hashes.
    router.get('/actor/lookup', async (req, res) => {
      if (!(await this.isApprovedFollower(req))) throw new FederationError(401, 'not_a_follower', 'lookups are for approved followers, over signed GET');
      // One parameter per algorithm the registry looks up; a digest its algorithm refuses is ignored.
      const hashes: Record<string, string> = {};
      for (const algorithm of ALGORITHM_REGISTRY.indexed) {
        const text: unknown = req.query[algorithm.name];
        try {
          algorithm.parse(text);
          hashes[algorithm.name] = text as string;
        } catch {
          // not this algorithm's digest
        }
      }
      if (Object.keys(hashes).length === 0) throw new FederationError(400, 'bad_query', `give ${ALGORITHM_REGISTRY.indexed.map((a) => `${a.name}=HEX`).join(' and/or ')}`);
      send(res, { verdicts: this.lookup ? await this.lookup(hashes) : [] });
    });
    router.get('/actor/followers', async (_req, res) => {
      const { count } = await this.db
        .selectFrom('peers')
        .select((eb) => eb.fn.countAll<number>().as('count'))
        .where('follower_state', '=', 'approved')
        .executeTakeFirstOrThrow();
      send(res, { '@context': AS_CONTEXT_URL, id: this.identity.followers, type: 'OrderedCollection', totalItems: Number(count) });
    });
    router.get('/actor/following', async (_req, res) => {
      const { count } = await this.db
        .selectFrom('peers')
        .select((eb) => eb.fn.countAll<number>().as('count'))
        .where('following_state', '=', 'accepted')
        .executeTakeFirstOrThrow();
      send(res, { '@context': AS_CONTEXT_URL, id: this.identity.following, type: 'OrderedCollection', totalItems: Number(count) });
    });
    router.get('/verdicts/:id', async (req, res) => {
      const objectId = `${this.identity.publicUrl}/verdicts/${req.params.id}`;
      const row = await this.db
        .selectFrom('outbox')
        .select(['activity', 'restricted'])
        .where('object_id', '=', objectId)
        .orderBy('seq', 'desc')
        .executeTakeFirst();
      if (!row) throw new FederationError(404, 'not_found', 'no such verdict');
      const open = !row.restricted && this.options.publicOkFeed;
      if (!open && !(await this.isApprovedFollower(req))) {
        throw new FederationError(404, 'not_found', 'no such verdict');
      }
      const activity = row.activity as { type: string; object: unknown };
      if (activity.type === 'Delete') res.status(410);
      send(res, activity.object);
    });
    return router;
  }

  // --- internals -----------------------------------------------------------------------------

  private activity(type: string, object: unknown): Record<string, unknown> {
    return {
      '@context': [AS_CONTEXT_URL, VOUCH_CONTEXT_URL],
      id: `${this.identity.publicUrl}/activities/${randomUUID()}`,
      type,
      actor: this.identity.actorId,
      published: new Date().toISOString(),
      to: [this.identity.followers],
      object,
    };
  }

  private async record(db: Db, activity: Record<string, unknown>, restricted: boolean, state: { queued: boolean; logIndex: number | null }): Promise<void> {
    const object = activity.object;
    const objectId = typeof object === 'string' ? object : ((object as { id?: string }).id ?? null);
    await db
      .insertInto('outbox')
      .values({
        id: activity.id as string,
        type: activity.type as string,
        object_id: objectId,
        restricted,
        activity: JSON.stringify(activity),
        published: new Date(activity.published as string),
        queued: state.queued,
        log_index: state.logIndex,
      })
      .execute();
  }

  /** Follow traffic goes to one peer's own inbox, through the same durable queue. */
  private async send(activity: Record<string, unknown>, peer: Peer): Promise<void> {
    if (!peer.inbox) throw new FederationError(502, 'no_inbox', `${peer.actor} has no inbox`);
    // Queued at once, to this one inbox: the drain sends only to followers.
    await this.record(this.db, activity, true, { queued: true, logIndex: null });
    await this.delivery.enqueue(activity.id as string, [peer.inbox]);
  }

  private async requirePeer(actor: string): Promise<Peer> {
    const peer = await this.peers.get(actor);
    if (!peer) throw new FederationError(404, 'unknown_peer', `${actor} is not a known peer`);
    return peer;
  }

  private async incomingFollow(actor: string): Promise<Record<string, unknown>> {
    const row = await this.db.selectFrom('peers').select('incoming_follow_id').where('actor_uri', '=', actor).executeTakeFirst();
    return { ...(row?.incoming_follow_id ? { id: row.incoming_follow_id } : {}), type: 'Follow', actor, object: this.identity.actorId };
  }

  private async onFollow(actor: string, activityId: string): Promise<void> {
    await this.peers.refresh(actor);
    await this.peers.setIncomingFollow(actor, activityId);
    const peer = (await this.peers.get(actor))!;
    if (peer.follower === 'approved') {
      // A repeated Follow from an approved peer (it lost our Accept): accept again.
      await this.send(this.activity('Accept', await this.incomingFollow(actor)), peer);
      return;
    }
    await this.peers.setFollower(actor, 'pending');
    if (this.options.autoApproveFollowers) await this.approve(actor);
    else this.logger.info({ actor }, 'follow request waiting for approval');
  }

  private async onAccepted(actor: string, followId: string | undefined): Promise<void> {
    const peer = await this.peers.get(actor);
    if (!peer || peer.following !== 'pending') return;
    // An Accept naming some other Follow is not an answer to ours.
    if (followId !== undefined && peer.followActivityId !== null && followId !== peer.followActivityId) return;
    await this.peers.setFollowing(actor, 'accepted');
    // Pull what was published before we subscribed, without holding up the Accept.
    setImmediate(() => void this.catchUp(actor).catch((err) => this.logger.warn({ actor, err: (err as Error).message }, 'initial catch-up failed')));
  }

  /** The actor behind a signed GET, if the signature verifies; undefined for unsigned requests. */
  /** `body`: for POSTs, whose Digest must then match it. */
  private async signedBy(req: Request, body?: Buffer): Promise<string | undefined> {
    const header = req.get('signature');
    if (!header) return undefined;
    // A signature made for another instance must not open our feed (replay across hosts).
    if (req.get('host') !== this.identity.host) return undefined;
    try {
      const { keyId } = parseSignatureHeader(header);
      const actor = keyId.split('#')[0];
      if (keyIdOrigin(keyId) !== new URL(actor).origin) return undefined;
      const publicKey = await this.peers.keyFor(keyId, actor);
      const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : String(v)]));
      verifyRequest({ method: req.method, path: req.originalUrl, headers, publicKey, body });
      return actor;
    } catch (err) {
      if (err instanceof HttpSignatureError || err instanceof FederationError) return undefined;
      throw err;
    }
  }

  private async isApprovedFollower(req: Request): Promise<boolean> {
    return (await this.approvedFollower(req)) !== undefined;
  }

  private get checkpointPrefix(): string {
    return `${this.identity.publicUrl}/log/checkpoints/`;
  }

  private async outboxCollection(req: Request): Promise<Record<string, unknown>> {
    const follower = await this.isApprovedFollower(req);
    const base = this.identity.outbox;
    let query = this.db
      .selectFrom('outbox')
      .select(['seq', 'activity', 'published', 'restricted'])
      .where('type', 'in', ['Create', 'Update', 'Delete'])
      // Checkpoints are pushed, not replayed: an old head fetched later would look like a rollback.
      .where((eb) => eb.or([eb('object_id', 'is', null), eb('object_id', 'not like', `${this.checkpointPrefix}%`)]));
    if (!follower) {
      if (!this.options.publicOkFeed) query = query.where(sql<boolean>`false`);
      else query = query.where('restricted', '=', false);
    }
    const since = typeof req.query.since === 'string' ? new Date(req.query.since) : undefined;
    const after = Number(req.query.after ?? 0);
    const before = Number(req.query.before ?? 0);
    if (since && !Number.isNaN(since.getTime())) {
      // Catch-up pages: oldest first, after the cursor.
      const rows = (await query.where('seq', '>', Number.isSafeInteger(after) ? after : 0).where('published', '>=', since).orderBy('seq').limit(PAGE_SIZE).execute()) as OutboxRow[];
      const last = rows[rows.length - 1];
      return this.page(`${base}?since=${encodeURIComponent(since.toISOString())}&after=${after}`, rows, last && rows.length === PAGE_SIZE ? `${base}?since=${encodeURIComponent(since.toISOString())}&after=${last.seq}` : undefined);
    }
    if (req.query.page !== undefined || before > 0) {
      const rows = (await (before > 0 ? query.where('seq', '<', before) : query).orderBy('seq', 'desc').limit(PAGE_SIZE).execute()) as OutboxRow[];
      const last = rows[rows.length - 1];
      return this.page(`${base}?page=true${before > 0 ? `&before=${before}` : ''}`, rows, last && rows.length === PAGE_SIZE ? `${base}?before=${last.seq}` : undefined);
    }
    const { count } = await query.clearSelect().select((eb) => eb.fn.countAll<number>().as('count')).executeTakeFirstOrThrow();
    return { '@context': AS_CONTEXT_URL, id: base, type: 'OrderedCollection', totalItems: Number(count), first: `${base}?page=true` };
  }

  private page(id: string, rows: OutboxRow[], next: string | undefined): Record<string, unknown> {
    return {
      '@context': [AS_CONTEXT_URL, VOUCH_CONTEXT_URL],
      id,
      type: 'OrderedCollectionPage',
      partOf: this.identity.outbox,
      orderedItems: rows.map((r) => r.activity),
      ...(next ? { next } : {}),
    };
  }
}

// The inbox: authenticates each POST (HTTP signature by a key on the actor's own origin, then the
// object's own Ed25519 proof) and applies the inbox rules before anything is stored.
import type { Request } from 'express';
import type { Db } from '../store/index.js';
import type { Logger } from '../config/logger.js';
import { HttpSignatureError, keyIdOrigin, parseSignatureHeader, verifyRequest } from '../../shared/crypto/http-signature.js';
import { ProofError, verifyObject } from '../../shared/crypto/data-integrity.js';
import { parseActivity, parseCheckpointObject, parseTrustStatement, parseVerdict, parseTombstone, VocabError, type CheckpointObject, type ParsedActivity, type TrustStatementObject } from '../../shared/vocab/objects.js';
import type { Identity } from './identity.js';
import { FederationError, type PeerDirectory } from './peers.js';
import { claimActivities, VerdictGroupCommit, type AfterCommit, type InboundVerdict } from './group-commit.js';

export type { AfterCommit, InboundVerdict } from './group-commit.js';

/**
 * What federation hands accepted verdicts to; `main` wires it to the verdicts module. Verdicts and
 * retractions are stored inside `trx`, the transaction that also records the activity ids as
 * received, so that an activity is either applied and recorded or neither (a crash included).
 */
export interface InboundVerdictHandler {
  /**
   * Stores peers' verdicts (from Creates and Updates; several when they arrived together), each
   * as if stored alone in the order given; must refuse (OwnershipError) one whose stored owner differs.
   */
  verdicts(verdicts: readonly InboundVerdict[], trx: Db): Promise<AfterCommit>;
  /** Retracts a peer's verdict, refusing (OwnershipError) when the stored owner differs. */
  retract(objectId: string, actor: string, trx: Db): Promise<AfterCommit>;
  /** A followed peer's signed TrustStatement (its direct trust, feeding our trust graph). */
  trustStatement?(statement: TrustStatementObject, actor: string): Promise<void>;
  /** A followed peer's signed log checkpoint (the witness checks and cosigns it). */
  checkpoint?(checkpoint: CheckpointObject, actor: string): Promise<void>;
}

/** Thrown by a handler when an actor touches an object it does not own. */
export class OwnershipError extends Error {}

export interface FollowEvents {
  follow(actor: string, activityId: string): Promise<void>;
  undoFollow(actor: string): Promise<void>;
  accepted(actor: string, followId: string | undefined): Promise<void>;
  rejected(actor: string): Promise<void>;
}

export interface InboxOptions {
  allowHttp: boolean;
}

export type InboxResult = { status: 'accepted' | 'ignored'; type: string };

/** Stores what an activity carries inside `trx`; returns the work to do once it has committed. */
type Store = (trx: Db) => Promise<AfterCommit>;
/** How an activity's changes are committed: with its claim for inbox activities, without for pulled verdicts. */
interface Commit {
  /** Runs a Store in a transaction and then its after-commit work. */
  run(store: Store): Promise<void>;
  /** Stores one peer verdict (for inbox activities, in a transaction shared with others arriving together). */
  verdict(item: InboundVerdict): Promise<void>;
}

/** A concurrent delivery of the same activity committed first: this one is a replay. */
class AlreadyApplied extends Error {}

function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    throw new FederationError(400, 'bad_activity', `"${url}" is not a URL`);
  }
}

export class Inbox {
  private readonly groupCommit: VerdictGroupCommit;

  constructor(
    private readonly db: Db,
    private readonly identity: Identity,
    private readonly peers: PeerDirectory,
    private readonly follows: FollowEvents,
    private readonly handler: () => InboundVerdictHandler | undefined,
    private readonly logger: Logger,
    private readonly options: InboxOptions,
  ) {
    this.groupCommit = new VerdictGroupCommit(db, (verdicts, trx) => this.requireHandler().verdicts(verdicts, trx), logger);
  }

  /** Verifies the HTTP signature of an inbox POST; returns the authenticated actor. */
  async authenticate(req: Request, body: Buffer, claimedActor: string): Promise<string> {
    const header = req.get('signature');
    if (!header) throw new FederationError(401, 'missing_signature', 'inbox POSTs must carry an HTTP Signature');
    let keyId: string;
    try {
      keyId = parseSignatureHeader(header).keyId;
      if (keyIdOrigin(keyId) !== originOf(claimedActor)) {
        throw new FederationError(401, 'foreign_key', 'the signing keyId is not on the actor\'s own origin');
      }
    } catch (err) {
      if (err instanceof HttpSignatureError) throw new FederationError(401, err.reason, err.message);
      throw err;
    }
    if (req.get('host') !== this.identity.host) {
      throw new FederationError(401, 'wrong_host', `the request was addressed to ${req.get('host')}, not ${this.identity.host}`);
    }
    const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : String(v)]));
    const verify = async (refresh: boolean) => {
      const publicKey = await this.peers.keyFor(keyId, claimedActor, { refresh });
      verifyRequest({ method: req.method, path: req.originalUrl, headers, body, publicKey });
    };
    try {
      try {
        await verify(false);
      } catch (err) {
        // A peer that rotated its key: re-fetch the actor once and try again.
        if (err instanceof HttpSignatureError && err.reason === 'bad_signature') await verify(true);
        else throw err;
      }
    } catch (err) {
      if (err instanceof HttpSignatureError) throw new FederationError(401, err.reason, err.message);
      throw err;
    }
    return claimedActor;
  }

  /** Parses, authenticates and applies one inbox POST. */
  async receive(req: Request, body: Buffer): Promise<InboxResult> {
    let json: unknown;
    try {
      json = JSON.parse(body.toString('utf8'));
    } catch {
      throw new FederationError(400, 'not_json', 'the body is not JSON');
    }
    const activity = this.parse(() => parseActivity(json, { allowHttp: this.options.allowHttp }));
    const actor = await this.authenticate(req, body, activity.actor);
    return this.applyParsed(activity, json as Record<string, unknown>, actor, { replay: 'reject' });
  }

  /**
   * Applies an activity from an authenticated actor (from the inbox, or from its own outbox
   * during catch-up). Exactly once: a verdict (or its retraction) is stored in the transaction
   * that records the activity id as received, so a crash leaves neither and the redelivery is
   * applied; other activities (follow traffic, checkpoints, trust statements) are idempotent and
   * recorded once applied. An id already recorded was applied: refused (409) or skipped.
   */
  async apply(json: Record<string, unknown>, actor: string, options: { replay: 'reject' | 'skip' } = { replay: 'reject' }): Promise<InboxResult> {
    return this.applyParsed(this.parse(() => parseActivity(json, { allowHttp: this.options.allowHttp })), json, actor, options);
  }

  /** `apply` of an activity already parsed from `json` (the inbox parses it to authenticate). */
  private async applyParsed(activity: ParsedActivity, json: Record<string, unknown>, actor: string, options: { replay: 'reject' | 'skip' }): Promise<InboxResult> {
    if (activity.actor !== actor) throw new FederationError(403, 'actor_mismatch', 'the activity\'s actor is not the signer');
    const actorOrigin = originOf(actor);
    if (originOf(activity.id) !== actorOrigin) throw new FederationError(403, 'foreign_id', 'the activity id is not on the actor\'s origin');
    const replayed = (): InboxResult => {
      if (options.replay === 'skip') return { status: 'ignored', type: activity.type };
      throw new FederationError(409, 'replayed', `activity ${activity.id} was already applied`);
    };
    // A verdict activity is claimed inside the transaction that stores it, which refuses a replay
    // there: asking first would cost every verdict a round trip more.
    const objectType = typeof json.object === 'object' && json.object !== null ? (json.object as { type?: unknown }).type : undefined;
    const claimedWhenStored = activity.type === 'Delete' || ((activity.type === 'Create' || activity.type === 'Update') && objectType === 'Verdict');
    if (!claimedWhenStored) {
      const seen = await this.db.selectFrom('inbox_seen').select('id').where('id', '=', activity.id).executeTakeFirst();
      if (seen) return replayed();
    }
    let recorded = false;
    const commit: Commit = {
      run: async (store) => {
        const after = await this.db.transaction().execute(async (trx) => {
          // Two deliveries at once: the second waits here on the first's uncommitted row, then
          // finds it (applied) or not (rolled back, and this one applies it).
          if (!(await this.claim(trx, activity.id, actor))) throw new AlreadyApplied();
          return store(trx);
        });
        recorded = true;
        await this.afterCommit(after, activity.id);
      },
      verdict: async (item) => {
        const outcome = await this.groupCommit.submit(activity.id, item);
        recorded = true;
        if (outcome === 'replayed') throw new AlreadyApplied();
      },
    };
    try {
      const result = await this.dispatch(activity, json, actor, actorOrigin, commit);
      if (!recorded) await this.claim(this.db, activity.id, actor);
      return result;
    } catch (err) {
      if (err instanceof AlreadyApplied) return replayed();
      throw err;
    }
  }

  /**
   * A Verdict object a followed peer handed us outside an activity (a pull-on-miss answer to our
   * signed GET): the same origin, ownership and proof rules as an inbox Create.
   */
  async acceptPulledVerdict(object: unknown, actor: string): Promise<void> {
    const run = async (store: Store) => {
      await this.afterCommit(await this.db.transaction().execute(store), 'pulled verdict');
    };
    await this.verdictActivity('Create', { object }, actor, originOf(actor), {
      run,
      verdict: (item) => run((trx) => this.requireHandler().verdicts([item], trx)),
    });
  }

  /** Records an activity id as received; false when it already was. */
  private async claim(db: Db, id: string, actor: string): Promise<boolean> {
    return (await claimActivities(db, [{ id, actor }])).size === 1;
  }

  private requireHandler(): InboundVerdictHandler {
    const handler = this.handler();
    if (!handler) throw new FederationError(503, 'not_ready', 'verdict handling is not wired');
    return handler;
  }

  /** The stored activity stays applied whatever happens here: a failure is logged, not answered. */
  private async afterCommit(after: AfterCommit, what: string): Promise<void> {
    try {
      await after();
    } catch (err) {
      this.logger.warn({ activity: what, err: (err as Error).message }, 'stored, but the work after storing it failed');
    }
  }

  private async dispatch(
    activity: ParsedActivity,
    json: Record<string, unknown>,
    actor: string,
    actorOrigin: string,
    commit: Commit,
  ): Promise<InboxResult> {
    const objectId = typeof activity.object === 'string' ? activity.object : (activity.object as { id?: string } | undefined)?.id;
    const objectType = typeof activity.object === 'object' && activity.object ? (activity.object as { type?: string }).type : undefined;
    switch (activity.type) {
      case 'Follow':
        if (objectId !== this.identity.actorId) throw new FederationError(422, 'bad_follow', 'Follow must name this instance\'s actor');
        await this.follows.follow(actor, activity.id);
        return { status: 'accepted', type: 'Follow' };
      case 'Undo':
        if (objectType === 'Follow' || objectType === undefined) {
          await this.follows.undoFollow(actor);
          return { status: 'accepted', type: 'Undo' };
        }
        return { status: 'ignored', type: 'Undo' };
      case 'Accept':
      case 'Reject': {
        const follow = activity.object as { type?: string; object?: unknown } | string;
        const followId = typeof follow === 'string' ? follow : (follow as { id?: string }).id;
        if (activity.type === 'Accept') await this.follows.accepted(actor, followId);
        else await this.follows.rejected(actor);
        return { status: 'accepted', type: activity.type };
      }
      case 'Create':
      case 'Update':
      case 'Delete':
        await this.verdictActivity(activity.type, json, actor, actorOrigin, commit);
        return { status: 'accepted', type: activity.type };
      default:
        return { status: 'ignored', type: activity.type };
    }
  }

  private async verdictActivity(type: 'Create' | 'Update' | 'Delete', json: Record<string, unknown>, actor: string, actorOrigin: string, commit: Commit) {
    const peer = await this.peers.get(actor);
    if (peer?.following !== 'accepted') {
      throw new FederationError(403, 'not_followed', 'verdicts are accepted only from peers this instance follows');
    }
    const handler = this.requireHandler();
    const object = json.object;
    if (type === 'Delete') {
      const id = typeof object === 'string' ? object : this.parse(() => parseTombstone(object, { allowHttp: this.options.allowHttp })).id;
      if (originOf(id) !== actorOrigin) throw new FederationError(403, 'foreign_object', 'the object is not on the actor\'s origin');
      await this.owned(() => commit.run((trx) => handler.retract(id, actor, trx)));
      return;
    }
    const objectType = typeof object === 'object' && object !== null ? (object as { type?: unknown }).type : undefined;
    if (objectType === 'Checkpoint' && type === 'Create') {
      const checkpoint = this.parse(() => parseCheckpointObject(object, { allowHttp: this.options.allowHttp }));
      if (originOf(checkpoint.id) !== actorOrigin || checkpoint.attributedTo !== actor) {
        throw new FederationError(403, 'foreign_object', 'the checkpoint is not the actor\'s own');
      }
      await this.verifyProof(object as Record<string, unknown>, actor, actorOrigin);
      await handler.checkpoint?.(checkpoint, actor);
      return;
    }
    if (objectType === 'TrustStatement') {
      const statement = this.parse(() => parseTrustStatement(object, { allowHttp: this.options.allowHttp }));
      if (originOf(statement.id) !== actorOrigin || statement.attributedTo !== actor) {
        throw new FederationError(403, 'foreign_object', 'the trust statement is not the actor\'s own');
      }
      await this.verifyProof(object as Record<string, unknown>, actor, actorOrigin);
      await handler.trustStatement?.(statement, actor);
      return;
    }
    if (objectType !== 'Verdict') {
      // Only Verdicts and Checkpoints are ours to handle; other object types are acknowledged and ignored.
      return;
    }
    const verdict = this.parse(() => parseVerdict(object, { allowHttp: this.options.allowHttp }));
    if (originOf(verdict.id) !== actorOrigin) throw new FederationError(403, 'foreign_object', 'the verdict id is not on the actor\'s origin');
    if (verdict.attributedTo !== actor) throw new FederationError(403, 'foreign_object', 'the verdict is attributed to another actor');
    if (verdict.supersedes && originOf(verdict.supersedes) !== actorOrigin) {
      throw new FederationError(403, 'foreign_object', 'a verdict can only supersede its own issuer\'s verdicts');
    }
    await this.verifyProof(object as Record<string, unknown>, actor, actorOrigin);
    await this.owned(() => commit.verdict({ verdict, document: object as Record<string, unknown>, actor }));
  }

  /** The object's own Ed25519 proof, by a key the actor lists on its own origin. */
  private async verifyProof(object: Record<string, unknown>, actor: string, actorOrigin: string): Promise<void> {
    try {
      await verifyObject(object, (method) => {
        if (originOf(method) !== actorOrigin) throw new FederationError(403, 'foreign_key', 'the proof key is not on the actor\'s origin');
        return this.peers.proofKeyFor(method, actor);
      });
    } catch (err) {
      if (err instanceof ProofError) throw new FederationError(401, `proof_${err.reason}`, `object proof rejected: ${err.message}`);
      throw err;
    }
  }

  private parse<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      if (err instanceof VocabError) throw new FederationError(422, 'invalid_object', err.message);
      throw err;
    }
  }

  private async owned(fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (err) {
      if (err instanceof OwnershipError) throw new FederationError(403, 'not_owner', err.message);
      throw err;
    }
  }
}

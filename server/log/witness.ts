/**
 * Witnessing peers' logs: what a follower does with each checkpoint a peer delivers.
 *
 * Peers are each other's witnesses (C2SP tlog-witness, by push). For every checkpoint received we
 * verify the log's signature, then compare with the last checkpoint we hold of that log:
 *  - larger size: fetch the consistency proof from ours to theirs and verify it; on success we
 *    store it and return a `cosignature/v1` line over it (sent back to the log's owner);
 *  - same size: the root must be identical, or the log signed two different trees of one size
 *    (a fork);
 *  - smaller size: it may be a late delivery (queues retry), which is harmless if it is a prefix
 *    of what we hold: we fetch the proof from it to our latest; if that fails the log has gone
 *    back to a tree we never saw (a rollback). Smaller checkpoints are never cosigned.
 * Each failure is kept in `log_alerts` with BOTH signed notes as evidence: two signed heads that
 * cannot both be true. A note whose signature does not verify is refused (a NoteError), never
 * an alert: anyone can send junk, only the log's key can make evidence.
 *
 * Where to fetch proofs and send cosignatures comes from the peer's log metadata document (its
 * actor's `endpoints.vouchLog`), see `LogEndpointDirectory`; peers from before that document
 * existed get the paths they always served.
 *
 * The consistency proof is fetched outside any transaction (PGlite has one connection, and a
 * peer may be slow); the insert then re-checks, under a per-log advisory lock, that the latest
 * checkpoint is still the one we checked against, and starts over if another delivery won.
 */
import type { KeyObject } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import { z } from 'zod';
import { cosign, NoteError, openCheckpoint, verifierKey } from '../../shared/merkle/checkpoint.js';
import { emptyRoot } from '../../shared/merkle/tree.js';
import { verifyConsistency } from '../../shared/merkle/verify.js';
import type { Database } from '../store/schema.js';

type Db = Kysely<Database>;

export type AlertKind = 'fork' | 'rollback' | 'inconsistent';

export interface EvidenceCheckpoint {
  readonly size: number;
  /** Standard base64 of the root hash. */
  readonly rootHash: string;
  /** The signed note, exactly as received. */
  readonly note: string;
}

export interface AlertEvidence {
  readonly reason: string;
  /** What we held before (verified then). */
  readonly previous: EvidenceCheckpoint;
  /** What the log sent now (its signature verified). */
  readonly received: EvidenceCheckpoint;
  /** The consistency proof the log served, base64 hashes, when one was involved. */
  readonly proof?: readonly string[];
  readonly proofFrom?: number;
  readonly proofTo?: number;
}

export interface LogAlert {
  readonly id: number;
  readonly logOrigin: string;
  readonly kind: AlertKind;
  readonly evidence: AlertEvidence;
  readonly createdAt: Date;
}

export interface CheckpointSummary {
  readonly origin: string;
  readonly size: number;
  readonly rootHash: Uint8Array;
}

export type ReceiveResult =
  /** Verified (first checkpoint of this log, consistent extension, or the same head again). */
  | { readonly status: 'cosigned'; readonly checkpoint: CheckpointSummary; readonly cosignature: string; readonly previousSize: number | null }
  /** Older than the latest we hold, and a prefix of it: kept, not cosigned. */
  | { readonly status: 'stale'; readonly checkpoint: CheckpointSummary; readonly latestSize: number }
  /** Contradicts what we hold: kept as evidence, not cosigned. */
  | { readonly status: 'alert'; readonly checkpoint: CheckpointSummary; readonly alert: LogAlert };

export interface ReceiveCheckpointInput {
  /** The signed note as delivered (other cosignatures on it are ignored). */
  note: string;
  /** The log's verifier key (`origin+keyid+base64`), from the peer's actor. */
  logVerifierKey: string;
  /**
   * Fetches GET /log/proof/consistency?from=&to= from the log. Resolve null when the log ANSWERS
   * that it cannot serve that proof (a 4xx): a log that cannot prove its own checkpoints extend
   * each other is evidence. Throw on transport failures (timeouts, 5xx): not evidence, retry later.
   */
  fetchConsistencyProof: (from: number, to: number) => Promise<Uint8Array[] | null>;
}

export interface CheckpointWitnessOptions {
  /** Our witness key name (e.g. our host); the cosignature key ID is derived from it. */
  name: string;
  /** Our Ed25519 private key. */
  privateKey: KeyObject;
  /** Clock for cosignature timestamps (ms since the epoch). */
  now?: () => number;
  /** Called with each new alert (log line, metric). */
  onAlert?: (alert: LogAlert) => void;
}

interface Stored {
  size: number;
  root: Uint8Array;
  note: string;
}

const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}

const MAX_ATTEMPTS = 5;

/** A peer log's endpoints that its witnesses use. */
export interface PeerLogEndpoints {
  /** GET ?from=&to=: the consistency proof. */
  readonly consistencyProof: string;
  /** POST {"cosignature", "size"}: where our cosignature goes. */
  readonly cosignatures: string;
}

/** What a peer's log metadata must hold for witnessing (other fields are the peer's business). */
const witnessMetadataSchema = z.object({ consistency_proof: z.url(), cosignatures: z.url() });

const ENDPOINTS_CACHE_MS = 60 * 60_000;
const ENDPOINTS_CACHE_MAX = 10_000;

function onOrigin(url: string, origin: string): boolean {
  try {
    return new URL(url).origin === origin;
  } catch {
    return false;
  }
}

/**
 * Finds each peer log's witness endpoints: the actor's `endpoints.vouchLog` names the metadata
 * document, which names them. Every URL must sit on the actor's own origin. A peer whose actor
 * has no `vouchLog` (older versions) gets the fixed paths those versions served. Results are
 * cached for an hour; a fetch failure throws (the delivery is retried), never falls back.
 */
export class LogEndpointDirectory {
  private readonly cache = new Map<string, { endpoints: PeerLogEndpoints; at: number }>();

  constructor(
    /** A signed GET returning parsed JSON; throws on non-200 or transport failure. */
    private readonly fetchJson: (url: string) => Promise<unknown>,
    private readonly now: () => number = Date.now,
  ) {}

  async endpointsOf(actor: string): Promise<PeerLogEndpoints> {
    const cached = this.cache.get(actor);
    if (cached && this.now() - cached.at < ENDPOINTS_CACHE_MS) return cached.endpoints;
    const endpoints = await this.discover(actor);
    if (this.cache.size >= ENDPOINTS_CACHE_MAX) this.cache.clear();
    this.cache.set(actor, { endpoints, at: this.now() });
    return endpoints;
  }

  private async discover(actor: string): Promise<PeerLogEndpoints> {
    const { origin } = new URL(actor);
    const doc = (await this.fetchJson(actor)) as { endpoints?: { vouchLog?: unknown } } | null;
    const metadataUrl = doc?.endpoints?.vouchLog;
    if (metadataUrl === undefined) {
      return { consistencyProof: `${origin}/log/proof/consistency`, cosignatures: `${origin}/log/cosignatures` };
    }
    if (typeof metadataUrl !== 'string' || !onOrigin(metadataUrl, origin)) {
      throw new Error(`${actor}: endpoints.vouchLog is not a URL on the actor's origin`);
    }
    const parsed = witnessMetadataSchema.safeParse(await this.fetchJson(metadataUrl));
    if (!parsed.success) throw new Error(`${metadataUrl}: the log metadata lacks consistency_proof or cosignatures URLs`);
    const { consistency_proof: consistencyProof, cosignatures } = parsed.data;
    if (!onOrigin(consistencyProof, origin) || !onOrigin(cosignatures, origin)) {
      throw new Error(`${metadataUrl}: the log's endpoints must be on the actor's origin ${origin}`);
    }
    return { consistencyProof, cosignatures };
  }
}

export class CheckpointWitness {
  /** Our `cosignature/v1` verifier key: what the log's owner needs to check our cosignatures. */
  readonly verifierKey: string;
  private readonly name: string;
  private readonly privateKey: KeyObject;
  private readonly now: () => number;
  private readonly onAlert: (alert: LogAlert) => void;

  constructor(
    private readonly db: Db,
    options: CheckpointWitnessOptions,
  ) {
    if (options.privateKey?.type !== 'private' || options.privateKey.asymmetricKeyType !== 'ed25519') {
      throw new NoteError('invalid_argument', 'the witness key must be an Ed25519 private KeyObject');
    }
    this.name = options.name;
    this.privateKey = options.privateKey;
    this.now = options.now ?? Date.now;
    this.onAlert = options.onAlert ?? (() => {});
    this.verifierKey = verifierKey(options.name, options.privateKey, 'cosignature/v1');
  }

  /**
   * Checks a peer's checkpoint against the last one we hold of that log; see the module comment.
   * Throws a NoteError when the note is not validly signed by `logVerifierKey`, and whatever
   * `fetchConsistencyProof` throws (a transport failure is not evidence: retry later).
   */
  async receiveCheckpoint(input: ReceiveCheckpointInput): Promise<ReceiveResult> {
    const opened = openCheckpoint(input.note, input.logVerifierKey);
    const { origin, size, rootHash } = opened.checkpoint;
    const summary: CheckpointSummary = { origin, size, rootHash };
    const received: Stored = { size, root: rootHash, note: input.note };

    if (size === 0 && !equalBytes(rootHash, emptyRoot())) {
      const latest = (await this.latestRow(origin)) ?? received;
      return this.raise(origin, 'inconsistent', summary, latest, received, 'a checkpoint of size 0 must have the empty-tree root SHA-256("")');
    }

    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const latest = await this.latestRow(origin);
      if (!latest) {
        if (await this.store(origin, received, null)) return this.cosigned(summary, opened.text, null);
        continue;
      }
      const same = latest.size === size ? latest : size < latest.size ? await this.rowAt(origin, size) : null;
      if (same) {
        if (!equalBytes(same.root, rootHash)) {
          return this.raise(origin, 'fork', summary, same, received, `two different roots signed for size ${size}`);
        }
        if (size === latest.size) return this.cosigned(summary, opened.text, latest.size);
        return { status: 'stale', checkpoint: summary, latestSize: latest.size };
      }
      if (size > latest.size) {
        if (latest.size > 0) {
          const proof = await input.fetchConsistencyProof(latest.size, size);
          const verdict = proof
            ? verifyConsistency(latest.size, size, proof, latest.root, rootHash)
            : { ok: false as const, reason: `the log refuses to serve the consistency proof ${latest.size} -> ${size}` };
          if (!verdict.ok) {
            return this.raise(
              origin,
              'inconsistent',
              summary,
              latest,
              received,
              `checkpoint ${size} does not extend checkpoint ${latest.size}: ${verdict.reason}`,
              proof ? { proof, from: latest.size, to: size } : undefined,
            );
          }
        }
        if (await this.store(origin, received, latest.size)) return this.cosigned(summary, opened.text, latest.size);
        continue;
      }
      // size < latest.size, and never seen at that size.
      if (size > 0) {
        const proof = await input.fetchConsistencyProof(size, latest.size);
        const verdict = proof
          ? verifyConsistency(size, latest.size, proof, rootHash, latest.root)
          : { ok: false as const, reason: `the log refuses to serve the consistency proof ${size} -> ${latest.size}` };
        if (!verdict.ok) {
          return this.raise(
            origin,
            'rollback',
            summary,
            latest,
            received,
            `the log went back to size ${size} after signing size ${latest.size}, and cannot show its tree of size ${size} is a prefix of it: ${verdict.reason}`,
            proof ? { proof, from: size, to: latest.size } : undefined,
          );
        }
      }
      if (await this.store(origin, received, latest.size)) return { status: 'stale', checkpoint: summary, latestSize: latest.size };
    }
    throw new Error(`checkpoints of ${origin} keep arriving concurrently; gave up after ${MAX_ATTEMPTS} attempts`);
  }

  /** The latest checkpoint we hold of a log. */
  async latest(logOrigin: string): Promise<{ size: number; rootHash: Uint8Array; note: string } | null> {
    const row = await this.latestRow(logOrigin);
    return row ? { size: row.size, rootHash: row.root, note: row.note } : null;
  }

  /** Every log we witness: its latest size and when that checkpoint arrived. */
  async watched(): Promise<Array<{ logOrigin: string; size: number; receivedAt: Date }>> {
    const rows = await this.db
      .selectFrom('peer_checkpoints')
      .select((eb) => ['log_origin', eb.fn.max('size').as('size'), eb.fn.max('received_at').as('received_at')])
      .groupBy('log_origin')
      .orderBy('log_origin')
      .execute();
    return rows.map((r) => ({ logOrigin: r.log_origin, size: Number(r.size), receivedAt: new Date(r.received_at) }));
  }

  /** Alerts, newest first. */
  async alerts(filter: { logOrigin?: string; limit?: number } = {}): Promise<LogAlert[]> {
    let q = this.db.selectFrom('log_alerts').selectAll().orderBy('id', 'desc').limit(Math.min(Math.max(filter.limit ?? 100, 1), 1000));
    if (filter.logOrigin !== undefined) q = q.where('log_origin', '=', filter.logOrigin);
    const rows = await q.execute();
    return rows.map((r) => ({
      id: Number(r.id),
      logOrigin: r.log_origin,
      kind: r.kind,
      evidence: (typeof r.evidence === 'string' ? JSON.parse(r.evidence) : r.evidence) as AlertEvidence,
      createdAt: new Date(r.created_at),
    }));
  }

  // --- internals -----------------------------------------------------------------------------

  private cosigned(checkpoint: CheckpointSummary, text: string, previousSize: number | null): ReceiveResult {
    const cosignature = cosign(text, this.name, this.privateKey, Math.floor(this.now() / 1000));
    return { status: 'cosigned', checkpoint, cosignature, previousSize };
  }

  private async latestRow(origin: string, db: Db = this.db): Promise<Stored | null> {
    const row = await db
      .selectFrom('peer_checkpoints')
      .select(['size', 'root', 'note'])
      .where('log_origin', '=', origin)
      .orderBy('size', 'desc')
      .limit(1)
      .executeTakeFirst();
    return row ? { size: Number(row.size), root: new Uint8Array(row.root), note: row.note } : null;
  }

  private async rowAt(origin: string, size: number): Promise<Stored | null> {
    const row = await this.db
      .selectFrom('peer_checkpoints')
      .select(['size', 'root', 'note'])
      .where('log_origin', '=', origin)
      .where('size', '=', size)
      .executeTakeFirst();
    return row ? { size: Number(row.size), root: new Uint8Array(row.root), note: row.note } : null;
  }

  /**
   * Stores a verified checkpoint if the latest one is still `expectedLatest` (null: none), under
   * a per-log lock; false means another delivery changed it and the caller must check again.
   */
  private async store(origin: string, cp: Stored, expectedLatest: number | null): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      await sql`SELECT pg_advisory_xact_lock(hashtext(${`vouch-witness:${origin}`}))`.execute(trx);
      const latest = await this.latestRow(origin, trx);
      if ((latest?.size ?? null) !== expectedLatest) return false;
      const clash = await trx
        .selectFrom('peer_checkpoints')
        .select('root')
        .where('log_origin', '=', origin)
        .where('size', '=', cp.size)
        .executeTakeFirst();
      if (clash) return equalBytes(new Uint8Array(clash.root), cp.root) ? true : false;
      await trx.insertInto('peer_checkpoints').values({ log_origin: origin, size: cp.size, root: cp.root, note: cp.note }).execute();
      return true;
    });
  }

  private async raise(
    origin: string,
    kind: AlertKind,
    checkpoint: CheckpointSummary,
    previous: Stored,
    received: Stored,
    reason: string,
    proof?: { proof: readonly Uint8Array[]; from: number; to: number },
  ): Promise<ReceiveResult> {
    const evidence: AlertEvidence = {
      reason,
      previous: { size: previous.size, rootHash: b64(previous.root), note: previous.note },
      received: { size: received.size, rootHash: b64(received.root), note: received.note },
      ...(proof ? { proof: proof.proof.map(b64), proofFrom: proof.from, proofTo: proof.to } : {}),
    };
    // The same contradiction delivered again is the same evidence: one alert.
    const existing = await this.db
      .selectFrom('log_alerts')
      .selectAll()
      .where('log_origin', '=', origin)
      .where('kind', '=', kind)
      .where(sql<boolean>`evidence -> 'received' ->> 'note' = ${received.note}`)
      .where(sql<boolean>`evidence -> 'previous' ->> 'note' = ${previous.note}`)
      .limit(1)
      .executeTakeFirst();
    if (existing) {
      const alert: LogAlert = {
        id: Number(existing.id),
        logOrigin: existing.log_origin,
        kind: existing.kind,
        evidence: (typeof existing.evidence === 'string' ? JSON.parse(existing.evidence) : existing.evidence) as AlertEvidence,
        createdAt: new Date(existing.created_at),
      };
      return { status: 'alert', checkpoint, alert };
    }
    const row = await this.db
      .insertInto('log_alerts')
      .values({ log_origin: origin, kind, evidence: JSON.stringify(evidence) })
      .returning(['id', 'created_at'])
      .executeTakeFirstOrThrow();
    const alert: LogAlert = { id: Number(row.id), logOrigin: origin, kind, evidence, createdAt: new Date(row.created_at) };
    try {
      this.onAlert(alert);
    } catch {
      // the alert is stored; a failing hook must not hide it
    }
    return { status: 'alert', checkpoint, alert };
  }
}

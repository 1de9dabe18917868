/**
 * Signed checkpoints of this instance's log, and the cosignatures its witnesses return (followers
 * by signed POST, outside witnesses in answer to tlog-witness add-checkpoint: witness-client.ts).
 *
 * A checkpoint is a C2SP tlog-checkpoint body (origin `<host>/vouch-log`, size, base64 root)
 * signed as a C2SP signed note with the instance's Ed25519 key under the key name = origin.
 * Ed25519 is deterministic, so two replicas signing the same size produce the same bytes: the
 * table keeps one note per size and a second insert is a no-op. Cosignatures (`cosignature/v1`
 * lines) are verified against the stored checkpoint before they are kept, and served appended to
 * it, so anyone fetching the checkpoint sees who has witnessed it.
 */
import type { KeyObject } from 'node:crypto';
import type { Kysely } from 'kysely';
import {
  appendSignatureLines,
  formatCheckpoint,
  NoteError,
  openNote,
  parseVerifierKey,
  signNote,
  verifierKey,
} from '../../shared/merkle/checkpoint.js';
import type { Database } from '../store/schema.js';
import type { TransparencyLog } from './store.js';

type Db = Kysely<Database>;

/** The origin line (and key name) of the log of the instance at `host` (`example.org`, `127.0.0.1:8080`). */
export function logOrigin(host: string): string {
  return `${host}/vouch-log`;
}

export interface LogCheckpointsOptions {
  /** `<host>/vouch-log` (see {@link logOrigin}); also the signing key's name. */
  origin: string;
  /** The instance's Ed25519 private key. */
  privateKey: KeyObject;
}

export interface SignedCheckpoint {
  readonly size: number;
  readonly root: Uint8Array;
  /** The signed note (checkpoint body, blank line, the log's signature line). */
  readonly note: string;
  /** False when the size had not changed since the last checkpoint (nothing new was signed). */
  readonly created: boolean;
}

export interface CheckpointSchedule {
  /** Sign a checkpoint at least this often while entries arrive (ms). */
  everyMs?: number;
  /** Sign as soon as this many entries were appended (through this process) since the last one. */
  afterAppends?: number;
  /** Sign once right away (default true), so a fresh log serves a checkpoint. */
  signOnStart?: boolean;
  /** Called with each NEW checkpoint (to deliver it to followers as a Checkpoint object). */
  onCheckpoint?: (checkpoint: SignedCheckpoint) => void | Promise<void>;
  /** Signing or onCheckpoint failures (default: ignored; the next tick retries). */
  onError?: (err: unknown) => void;
}

export interface CheckpointScheduler {
  /** Signs now (waits for a signing already under way). */
  signNow(): Promise<SignedCheckpoint>;
  /** Stops the timer and the append listener; waits for a signing under way. */
  stop(): Promise<void>;
}

export interface CosignatureResult {
  /** Size of the checkpoint the cosignature verified against. */
  readonly size: number;
  /** The witness's key name. */
  readonly witness: string;
  /** False when this witness had already cosigned that checkpoint (the first line is kept). */
  readonly added: boolean;
}

/** How many recent checkpoints a cosignature without a size is tried against. */
const COSIGN_LOOKBACK = 16;

export class LogCheckpoints {
  readonly origin: string;
  /** Verifier key string of the log (`origin+keyid+base64`): what peers and auditors trust. */
  readonly verifierKey: string;
  private readonly privateKey: KeyObject;
  private signing: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly db: Db,
    private readonly log: TransparencyLog,
    options: LogCheckpointsOptions,
  ) {
    if (options.privateKey?.type !== 'private' || options.privateKey.asymmetricKeyType !== 'ed25519') {
      throw new NoteError('invalid_argument', 'the log signing key must be an Ed25519 private KeyObject');
    }
    this.origin = options.origin;
    this.privateKey = options.privateKey;
    this.verifierKey = verifierKey(options.origin, options.privateKey, 'ed25519');
  }

  /**
   * Signs and stores a checkpoint for the current size; a no-op returning the last checkpoint
   * (created: false) when the size has not changed since. Calls in one process are serialised.
   */
  signCheckpoint(): Promise<SignedCheckpoint> {
    // Queued, not shared: a call made while a signing runs must see the appends made since.
    const next = this.signing.catch(() => {}).then(() => this.signOnce());
    this.signing = next;
    return next;
  }

  private async signOnce(): Promise<SignedCheckpoint> {
    const last = await this.db.selectFrom('log_checkpoints').select(['size', 'root', 'note']).orderBy('size', 'desc').limit(1).executeTakeFirst();
    const head = await this.log.head();
    if (last && Number(last.size) >= head.size) {
      return { size: Number(last.size), root: new Uint8Array(last.root), note: last.note, created: false };
    }
    const note = signNote(formatCheckpoint({ origin: this.origin, size: head.size, rootHash: head.root }), this.origin, this.privateKey);
    const inserted = await this.db
      .insertInto('log_checkpoints')
      .values({ size: head.size, root: head.root, note })
      .onConflict((oc) => oc.column('size').doNothing())
      .returning('size')
      .executeTakeFirst();
    if (!inserted) {
      // Another replica signed this size first: serve what is stored.
      const stored = await this.db.selectFrom('log_checkpoints').select(['size', 'root', 'note']).where('size', '=', head.size).executeTakeFirstOrThrow();
      return { size: Number(stored.size), root: new Uint8Array(stored.root), note: stored.note, created: false };
    }
    return { size: head.size, root: head.root, note, created: true };
  }

  /** The latest signed checkpoint as signed (no cosignatures), or null before the first. */
  async latestSigned(): Promise<SignedCheckpoint | null> {
    const last = await this.db.selectFrom('log_checkpoints').select(['size', 'root', 'note']).orderBy('size', 'desc').limit(1).executeTakeFirst();
    return last ? { size: Number(last.size), root: new Uint8Array(last.root), note: last.note, created: false } : null;
  }

  /** The largest size the witness with this verifier key cosigned, or null if it never did. */
  async largestCosignedBy(witnessVerifierKey: string): Promise<number | null> {
    const row = await this.db
      .selectFrom('log_cosignatures')
      .select((eb) => eb.fn.max('size').as('size'))
      .where('witness', '=', witnessVerifierKey)
      .executeTakeFirst();
    return row?.size === null || row?.size === undefined ? null : Number(row.size);
  }

  /** The latest checkpoint with every cosignature collected for it, or null before the first. */
  async latestCheckpoint(): Promise<string | null> {
    const last = await this.db.selectFrom('log_checkpoints').select(['size', 'note']).orderBy('size', 'desc').limit(1).executeTakeFirst();
    return last ? this.withCosignatures(Number(last.size), last.note) : null;
  }

  /** Our most recent checkpoints, newest first, with the witnesses that cosigned each. */
  async recent(limit = 20): Promise<Array<{ size: number; createdAt: Date; witnesses: string[] }>> {
    const rows = await this.db.selectFrom('log_checkpoints').select(['size', 'created_at']).orderBy('size', 'desc').limit(limit).execute();
    const sizes = rows.map((r) => Number(r.size));
    const cosigs = sizes.length ? await this.db.selectFrom('log_cosignatures').select(['size', 'witness']).where('size', 'in', sizes).execute() : [];
    return rows.map((r) => ({
      size: Number(r.size),
      createdAt: new Date(r.created_at),
      witnesses: cosigs.filter((c) => Number(c.size) === Number(r.size)).map((c) => c.witness),
    }));
  }

  /** Each witness that ever cosigned our log: the largest size it cosigned, and when. */
  async witnesses(): Promise<Array<{ witness: string; size: number; at: Date }>> {
    const rows = await this.db
      .selectFrom('log_cosignatures')
      .select((eb) => ['witness', eb.fn.max('size').as('size'), eb.fn.max('received_at').as('at')])
      .groupBy('witness')
      .orderBy('witness')
      .execute();
    return rows.map((r) => ({ witness: r.witness, size: Number(r.size), at: new Date(r.at) }));
  }

  /** The checkpoint signed at exactly `size`, with its cosignatures, or null. */
  async checkpointAt(size: number): Promise<string | null> {
    if (!Number.isSafeInteger(size) || size < 0) return null;
    const row = await this.db.selectFrom('log_checkpoints').select(['size', 'note']).where('size', '=', size).executeTakeFirst();
    return row ? this.withCosignatures(Number(row.size), row.note) : null;
  }

  private async withCosignatures(size: number, note: string): Promise<string> {
    const lines = await this.db.selectFrom('log_cosignatures').select('line').where('size', '=', size).orderBy('received_at').orderBy('witness').execute();
    return appendSignatureLines(
      note,
      lines.map((l) => l.line),
    );
  }

  /**
   * Verifies a witness's `cosignature/v1` line against our stored checkpoint (the one at `size`,
   * or the most recent ones when no size is given) and keeps it. Throws a {@link NoteError} when
   * it verifies against none.
   */
  async addCosignature(line: string, witnessVerifierKey: string, size?: number): Promise<CosignatureResult> {
    const witness = parseVerifierKey(witnessVerifierKey);
    if (witness.type !== 'cosignature/v1') {
      throw new NoteError('malformed_key', `witness key ${witness.name} is not a cosignature/v1 key`);
    }
    if (typeof line !== 'string') throw new NoteError('malformed_note', 'cosignature line must be a string');
    const normalized = line.endsWith('\n') ? line : `${line}\n`;
    if (normalized.indexOf('\n') !== normalized.length - 1) throw new NoteError('malformed_note', 'a cosignature is exactly one signature line');
    let query = this.db.selectFrom('log_checkpoints').select(['size', 'note']).orderBy('size', 'desc');
    query = size === undefined ? query.limit(COSIGN_LOOKBACK) : query.where('size', '=', size);
    const candidates = await query.execute();
    if (candidates.length === 0) {
      throw new NoteError('unverified_note', size === undefined ? 'no checkpoint has been signed yet' : `no checkpoint was signed at size ${size}`);
    }
    let lastError: unknown;
    for (const candidate of candidates) {
      try {
        // Only the witness key is trusted here: the note opens iff the cosignature verifies.
        openNote(appendSignatureLines(candidate.note, [normalized]), [witness]);
      } catch (err) {
        if (!(err instanceof NoteError)) throw err;
        if (err.code === 'malformed_note') throw err;
        lastError = err;
        continue;
      }
      const inserted = await this.db
        .insertInto('log_cosignatures')
        .values({ size: Number(candidate.size), witness: witness.vkey, line: normalized })
        .onConflict((oc) => oc.columns(['size', 'witness']).doNothing())
        .returning('size')
        .executeTakeFirst();
      return { size: Number(candidate.size), witness: witness.name, added: inserted !== undefined };
    }
    const why = lastError instanceof Error ? `: ${lastError.message}` : '';
    throw new NoteError(
      'invalid_signature',
      `cosignature by ${witness.name} does not verify against ${size === undefined ? 'any recent checkpoint' : `the checkpoint of size ${size}`}${why}`,
    );
  }

  /**
   * Signs checkpoints on a schedule: every `everyMs`, and after `afterAppends` entries appended
   * through this process's {@link TransparencyLog}. Each new checkpoint goes to `onCheckpoint`.
   */
  startCheckpointing(schedule: CheckpointSchedule = {}): CheckpointScheduler {
    const { everyMs, afterAppends, signOnStart = true, onCheckpoint, onError = () => {} } = schedule;
    if (everyMs !== undefined && (!Number.isFinite(everyMs) || everyMs <= 0)) throw new RangeError('everyMs must be a positive number');
    if (afterAppends !== undefined && (!Number.isSafeInteger(afterAppends) || afterAppends <= 0)) {
      throw new RangeError('afterAppends must be a positive integer');
    }
    let stopped = false;
    let pending = 0;
    let inFlight: Promise<unknown> = Promise.resolve();
    const run = (): Promise<SignedCheckpoint> => {
      pending = 0;
      const p = this.signCheckpoint().then(async (cp) => {
        if (cp.created && onCheckpoint) await onCheckpoint(cp);
        return cp;
      });
      inFlight = p.catch(onError);
      return p;
    };
    const tick = () => {
      if (!stopped) void run().catch(() => {});
    };
    const timer = everyMs !== undefined ? setInterval(tick, everyMs) : undefined;
    timer?.unref();
    const unsubscribe =
      afterAppends !== undefined
        ? this.log.onAppend((_result, count) => {
            pending += count;
            if (pending >= afterAppends) tick();
          })
        : () => {};
    if (signOnStart) tick();
    return {
      signNow: run,
      stop: async () => {
        stopped = true;
        if (timer) clearInterval(timer);
        unsubscribe();
        await inFlight;
      },
    };
  }
}

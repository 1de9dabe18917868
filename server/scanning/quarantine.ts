// Quarantine: where blocked media is KEPT. Some jurisdictions require evidence of abuse material to
// be preserved and reported, so Vouch never silently deletes what it blocked (docs/architecture.md,
// Pipeline step 6 "Act"). The bytes are encrypted at rest (AES-256-GCM, key from configuration),
// every access is logged in the same transaction as the access, an item can be exported as a report
// bundle for the authorities, and deletion happens only by explicit admin action with a reason,
// leaving a tombstone row and the whole access log behind.
//
// On disk: <dataDir>/quarantine/<sha256[0:2]>/<sha256>.bin (directories 0700, files 0600, written
// to a temp file, fsynced and renamed into place). One file:
//
//   offset  0  4 bytes  magic "VQF1"
//   offset  4  4 bytes  key id: the first 4 bytes of SHA-256(key) (8 hex digits; never the key)
//   offset  8 12 bytes  random IV, fresh per write
//   offset 20 16 bytes  GCM tag
//   offset 36           ciphertext (as long as the plaintext)
//
// The GCM additional data is a domain string, the magic, the key id and the item's SHA-256, so a
// file edited, truncated, or swapped with another item's file fails authentication instead of
// decrypting to the wrong bytes. The IV travels in the file (not the database) so that two processes
// quarantining the same media at once each leave a self-consistent file whichever rename wins.
//
// Metadata (migrations/0005_quarantine.sql): the `quarantine` row (hashes, source, decision, key id,
// times, retention, release, tombstone) and the append-only `quarantine_access` log.
//
// Retention: retain_until = quarantined_at + retentionDays (moved later when the same media is
// quarantined again). Nothing is deleted automatically when it passes: whether evidence may or must
// be destroyed depends on the jurisdiction, on open reports and on legal holds this software knows
// nothing about, and a deletion cannot be undone. `list({ expiredOnly: true })` shows the items past
// retention so that an admin decides, and `delete()` records who decided and why.
import { createCipheriv, createDecipheriv, createHash, createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import { chmod, mkdir, mkdtemp, open, readdir, readFile, rename, rm, rmdir, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import type { Selectable } from 'kysely';
import { SOFTWARE_VERSION } from '../config/paths.js';
import type { Db } from '../store/index.js';
import type { QuarantineAccessTable, QuarantineAction, QuarantineTable } from '../store/schema.js';
import type { Decision } from '../trust/decide.js';

export type { QuarantineAction } from '../store/schema.js';

// ---------------------------------------------------------------------------------------------
// Errors

export class QuarantineError extends Error {
  override name = 'QuarantineError';
}

/** The key is unusable: not 32 bytes, or not the key an item was encrypted under (rotated/misconfigured). */
export class QuarantineKeyError extends QuarantineError {
  override name = 'QuarantineKeyError';
}

/** The stored item does not match its record: modified, truncated, swapped or missing ciphertext. */
export class QuarantineIntegrityError extends QuarantineError {
  override name = 'QuarantineIntegrityError';
}

export class QuarantineNotFoundError extends QuarantineError {
  override name = 'QuarantineNotFoundError';
}

/** The item was deleted by an admin: its metadata and log remain, its bytes do not. */
export class QuarantineDeletedError extends QuarantineError {
  override name = 'QuarantineDeletedError';
}

/** A call was missing something it needs (actor, reason), or its input was inconsistent. */
export class QuarantineInputError extends QuarantineError {
  override name = 'QuarantineInputError';
}

// ---------------------------------------------------------------------------------------------
// Types

/** What was decided about the media, as kept with the item (and in export bundles). */
export interface QuarantineDecision {
  outcome: string;
  label: string | null;
  /** One readable sentence: why it was blocked. */
  summary: string;
  decidedBy?: string;
  localVerdict?: { uri: string; issuer: string; label: string; confidence: number; method: string; classifier: string | null };
  /** The strongest counted peer verdicts (at most 5). */
  top?: Array<{ uri: string; issuer: string; label: string; confidence: number; method: string; classifier: string | null; distance: number; weight: number; contribution: number }>;
  policy?: { version: string; hash: string };
}

export type QuarantineState = 'held' | 'released' | 'deleted';

export interface QuarantineItem {
  id: number;
  /** Hex. */
  sha256: string;
  /** Hex, when known. */
  pdq: string | null;
  byteSize: number;
  format: string | null;
  source: string;
  decision: QuarantineDecision;
  /** Which key encrypted it: first 8 hex digits of SHA-256(key). */
  keyId: string;
  quarantinedAt: Date;
  retainUntil: Date;
  releasedAt: Date | null;
  deletedAt: Date | null;
  deletedBy: string | null;
  deleteReason: string | null;
  state: QuarantineState;
  /** Past retention and not deleted: awaiting an admin's decision. */
  expired: boolean;
}

export interface QuarantineAccessEntry {
  id: number;
  itemId: number;
  actor: string;
  action: QuarantineAction;
  reason: string | null;
  at: Date;
}

export interface QuarantineOptions {
  db: Db;
  /** Files go under <dataDir>/quarantine. */
  dataDir: string;
  /** AES-256 key: exactly 32 bytes (VOUCH_QUARANTINE_KEY, base64). */
  key: Buffer;
  /** How long an item is kept at least; 0 makes items due for review at once. A function is asked
   * at each quarantining (the policy can change it at run time). */
  retentionDays: number | (() => number);
  /** Clock (tests). */
  now?: () => Date;
}

export interface PutInput {
  bytes: Uint8Array;
  /** Hex SHA-256 of `bytes`, as the pipeline computed it; checked against the bytes. */
  sha256: string;
  /** Hex PDQ hash, when the media was decodable. */
  pdq?: string | null;
  /** A MIME type or a sharp format name (`jpeg`, `image/png`, …); names the file in export bundles. */
  format?: string | null;
  /** Where the media came from (`pict-rs`, `api`, `sweep:/srv/pictrs/files/…`, a URL). */
  source: string;
  /** The trust engine's Decision (summarised here), or a summary already. */
  decision: Decision | QuarantineDecision;
  /** Who quarantined it (`system:pict-rs`, an admin name). */
  actor: string;
  /** Logged with the event; defaults to the outcome, label and source. */
  reason?: string;
}

export interface ReadOptions {
  actor: string;
  reason: string;
  /** `view` (e.g. a blurred preview in a review tool) or `reveal` (the media in full): both return the bytes. */
  action: 'view' | 'reveal';
}

export interface ActorReason {
  actor: string;
  reason: string;
}

export interface ExportOptions extends ActorReason {
  /** The bundle directory to create: it must not exist, or be an empty directory. */
  outDir: string;
}

export interface ExportResult {
  /** Absolute path of the bundle directory. */
  dir: string;
  /** File name -> hex SHA-256, as listed in SHA256SUMS (which is itself not listed). */
  files: Record<string, string>;
  /** Name of the media file in the bundle. */
  mediaFile: string;
}

export interface ListOptions {
  /** Only items past their retention date and not deleted. */
  expiredOnly?: boolean;
  /** Only items neither released nor deleted. */
  heldOnly?: boolean;
  /** Default 100, at most 1000. */
  limit?: number;
  /** Item id cursor: only items with a smaller id (newest first). */
  before?: number;
}

// ---------------------------------------------------------------------------------------------
// Keys

const KEY_BYTES = 32;
const MAGIC = Buffer.from('VQF1', 'ascii');
const HEADER_BYTES = 4 + 4 + 12 + 16;
const AAD_DOMAIN = Buffer.from('vouch-quarantine/1\0', 'ascii');
const DAY_MS = 86_400_000;

/** Decodes VOUCH_QUARANTINE_KEY (base64 of 32 bytes). The value is never echoed in errors. */
export function parseQuarantineKey(text: string): Buffer {
  const trimmed = text.trim();
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(trimmed) || trimmed.length % 4 !== 0) {
    throw new QuarantineKeyError('the quarantine key is not valid base64: generate one with `openssl rand -base64 32`');
  }
  const key = Buffer.from(trimmed, 'base64');
  checkKeyLength(key);
  return key;
}

function checkKeyLength(key: unknown): asserts key is Buffer {
  if (!Buffer.isBuffer(key) || key.length !== KEY_BYTES) {
    const got = Buffer.isBuffer(key) ? `${key.length} bytes` : 'no key';
    throw new QuarantineKeyError(
      `the quarantine key must be exactly ${KEY_BYTES} bytes (AES-256), got ${got}: generate one with \`openssl rand -base64 32\``,
    );
  }
}

/** First 8 hex digits of SHA-256(key): names a key without revealing it. */
export function quarantineKeyId(key: Buffer): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 8);
}

// ---------------------------------------------------------------------------------------------
// Helpers

const HEX64 = /^[0-9a-f]{64}$/;

function hexOf(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function requireText(name: string, value: unknown): string {
  if (typeof value !== 'string' || value.trim() === '') throw new QuarantineInputError(`${name} is required (a non-empty string)`);
  return value.trim();
}

function isDecision(d: Decision | QuarantineDecision): d is Decision {
  return typeof (d as Decision).explanation === 'object' && (d as Decision).explanation !== null;
}

/** The part of the trust engine's Decision kept with a quarantined item. */
export function summarizeDecision(decision: Decision): QuarantineDecision {
  const e = decision.explanation;
  const lv = e.localVerdict;
  return {
    outcome: decision.outcome,
    label: decision.label,
    summary: e.reason,
    decidedBy: e.decidedBy,
    ...(lv
      ? { localVerdict: { uri: lv.uri, issuer: lv.issuer, label: lv.label, confidence: lv.confidence, method: lv.method, classifier: lv.classifier } }
      : {}),
    top: e.top
      .filter((c) => !c.deduplicated)
      .slice(0, 5)
      .map((c) => ({
        uri: c.uri,
        issuer: c.issuer,
        label: c.label,
        confidence: c.confidence,
        method: c.method,
        classifier: c.classifier,
        distance: c.distance,
        weight: c.weight,
        contribution: c.contribution,
      })),
    policy: { version: e.policy.version, hash: e.policy.hash },
  };
}

function normaliseDecision(d: Decision | QuarantineDecision): QuarantineDecision {
  if (d === null || typeof d !== 'object') throw new QuarantineInputError('decision is required');
  const out = isDecision(d) ? summarizeDecision(d) : d;
  if (typeof out.outcome !== 'string' || out.outcome === '') throw new QuarantineInputError('decision.outcome is required');
  if (out.label !== null && typeof out.label !== 'string') throw new QuarantineInputError('decision.label must be a string or null');
  if (typeof out.summary !== 'string') throw new QuarantineInputError('decision.summary is required');
  return out;
}

const EXTENSIONS: Record<string, string> = {
  jpeg: 'jpg', jpg: 'jpg', png: 'png', gif: 'gif', webp: 'webp', avif: 'avif', heif: 'heif', heic: 'heic',
  tiff: 'tiff', tif: 'tiff', bmp: 'bmp', svg: 'svg', 'svg+xml': 'svg', jxl: 'jxl', mp4: 'mp4', webm: 'webm',
  quicktime: 'mov', mov: 'mov',
};

function extensionFor(format: string | null): string {
  if (!format) return 'bin';
  const name = format.toLowerCase().split(';')[0].trim().replace(/^(image|video)\//, '');
  return EXTENSIONS[name] ?? 'bin';
}

/** Writes `data` to `path` atomically: a 0600 temp file beside it, fsynced, renamed into place. */
async function writeFileAtomic(path: string, data: Uint8Array[]): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await open(tmp, 'wx', 0o600);
  try {
    for (const chunk of data) await handle.write(chunk);
    await handle.sync();
  } catch (err) {
    await handle.close().catch(() => {});
    await rm(tmp, { force: true });
    throw err;
  }
  await handle.close();
  try {
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  await syncDir(dirname(path));
}

async function syncDir(dir: string): Promise<void> {
  // Makes the rename durable; not every platform can fsync a directory, which is fine.
  try {
    const handle = await open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    /* best effort */
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

type Row = Selectable<QuarantineTable>;

// ---------------------------------------------------------------------------------------------
// The quarantine

function checkRetention(days: number): number {
  if (!Number.isFinite(days) || days < 0) throw new QuarantineInputError(`retentionDays must be a number >= 0, got ${String(days)}`);
  return days;
}

export class Quarantine {
  readonly root: string;
  readonly keyId: string;
  readonly #retentionDays: () => number;
  readonly #db: Db;
  readonly #key: KeyObject;
  readonly #now: () => Date;

  constructor(options: QuarantineOptions) {
    checkKeyLength(options.key);
    const retention = options.retentionDays;
    this.#retentionDays = typeof retention === 'function' ? retention : () => retention;
    checkRetention(this.#retentionDays());
    this.#db = options.db;
    // A KeyObject: the key bytes never show up when this object is logged or inspected.
    this.#key = createSecretKey(Buffer.from(options.key));
    this.keyId = quarantineKeyId(options.key);
    this.root = resolve(options.dataDir, 'quarantine');
    this.#now = options.now ?? (() => new Date());
  }

  /** Days an item quarantined now is kept at least. */
  get retentionDays(): number {
    return checkRetention(this.#retentionDays());
  }

  /** Where an item's ciphertext lives. */
  filePath(sha256: string): string {
    if (!HEX64.test(sha256)) throw new QuarantineInputError('sha256 must be 64 lower-case hex digits');
    return join(this.root, sha256.slice(0, 2), `${sha256}.bin`);
  }

  /**
   * Keeps `bytes`, encrypted. The same media again (same SHA-256) is the same item: the event is
   * logged again, retention runs from the latest event, and bytes whose file is gone (deleted by an
   * admin, or lost) are stored again. A released item stays released.
   */
  async put(input: PutInput): Promise<QuarantineItem> {
    const actor = requireText('actor', input.actor);
    const source = requireText('source', input.source);
    if (!(input.bytes instanceof Uint8Array)) throw new QuarantineInputError('bytes must be a Uint8Array');
    const sha256 = String(input.sha256 ?? '').toLowerCase();
    if (!HEX64.test(sha256)) throw new QuarantineInputError('sha256 must be 64 hex digits');
    if (sha256Hex(input.bytes) !== sha256) throw new QuarantineInputError('sha256 does not match the bytes given');
    const pdq = input.pdq ? input.pdq.toLowerCase() : null;
    if (pdq !== null && !HEX64.test(pdq)) throw new QuarantineInputError('pdq must be 64 hex digits');
    const decision = normaliseDecision(input.decision);
    const format = input.format?.trim() || null;
    const now = this.#now();
    const retainUntil = new Date(now.getTime() + this.retentionDays * DAY_MS);
    const label = decision.label ? `/${decision.label}` : '';
    const path = this.filePath(sha256);
    await this.ensureDir(dirname(path));

    const row = await this.#db.transaction().execute(async (trx) => {
      const shaBytes = Buffer.from(sha256, 'hex');
      let existing = await trx.selectFrom('quarantine').selectAll().where('sha256', '=', shaBytes).forUpdate().executeTakeFirst();
      let current: Row | undefined;
      let note = '';
      if (!existing) {
        current = await trx
          .insertInto('quarantine')
          .values({
            sha256: shaBytes,
            pdq: pdq ? Buffer.from(pdq, 'hex') : null,
            byte_size: input.bytes.byteLength,
            format,
            source,
            decision: JSON.stringify(decision),
            key_id: this.keyId,
            quarantined_at: now,
            retain_until: retainUntil,
          })
          .onConflict((oc) => oc.column('sha256').doNothing())
          .returningAll()
          .executeTakeFirst();
        // Written inside the transaction: if the file cannot be written, no record claims it was kept.
        if (current) await this.writeEncrypted(path, sha256, input.bytes);
        // Else another process quarantined it a moment ago (its transaction has committed).
        else existing = await trx.selectFrom('quarantine').selectAll().where('sha256', '=', shaBytes).forUpdate().executeTakeFirstOrThrow();
      }
      if (existing) {
        const wasDeleted = existing.deleted_at !== null;
        const restore = wasDeleted || !(await exists(path));
        if (restore) await this.writeEncrypted(path, sha256, input.bytes);
        note = wasDeleted ? ' (quarantined again after its deletion: stored again)' : restore ? ' (quarantined again: its missing file was stored again)' : ' (quarantined again)';
        const keepUntil = existing.retain_until.getTime() > retainUntil.getTime() ? existing.retain_until : retainUntil;
        current = await trx
          .updateTable('quarantine')
          .set({
            retain_until: keepUntil,
            ...(restore ? { key_id: this.keyId, deleted_at: null, deleted_by: null, delete_reason: null } : {}),
            ...(existing.pdq === null && pdq ? { pdq: Buffer.from(pdq, 'hex') } : {}),
            ...(existing.format === null && format ? { format } : {}),
          })
          .where('id', '=', existing.id)
          .returningAll()
          .executeTakeFirstOrThrow();
      }
      const reason = input.reason?.trim() || `${decision.outcome}${label} from ${source}${note}`;
      await this.logAccess(trx, Number(current!.id), actor, 'quarantine', reason, now);
      return current!;
    });
    return this.toItem(row);
  }

  async get(id: number): Promise<QuarantineItem | undefined> {
    const row = await this.#db.selectFrom('quarantine').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? this.toItem(row) : undefined;
  }

  async getBySha256(sha256: string): Promise<QuarantineItem | undefined> {
    const hex = sha256.toLowerCase();
    if (!HEX64.test(hex)) throw new QuarantineInputError('sha256 must be 64 hex digits');
    const row = await this.#db.selectFrom('quarantine').selectAll().where('sha256', '=', Buffer.from(hex, 'hex')).executeTakeFirst();
    return row ? this.toItem(row) : undefined;
  }

  /** Newest first. */
  async list(options: ListOptions = {}): Promise<QuarantineItem[]> {
    const limit = Math.max(1, Math.min(1000, Math.floor(options.limit ?? 100)));
    let query = this.#db.selectFrom('quarantine').selectAll().orderBy('id', 'desc').limit(limit);
    if (options.before !== undefined) query = query.where('id', '<', options.before);
    if (options.expiredOnly) query = query.where('deleted_at', 'is', null).where('retain_until', '<=', this.#now());
    if (options.heldOnly) query = query.where('deleted_at', 'is', null).where('released_at', 'is', null);
    const rows = await query.execute();
    return rows.map((r) => this.toItem(r));
  }

  /** Decrypts an item's bytes. The access is logged in the same transaction: no bytes without a log row. */
  async read(id: number, options: ReadOptions): Promise<Buffer> {
    const actor = requireText('actor', options.actor);
    const reason = requireText('reason', options.reason);
    if (options.action !== 'view' && options.action !== 'reveal') throw new QuarantineInputError("action must be 'view' or 'reveal'");
    return this.#db.transaction().execute(async (trx) => {
      // FOR SHARE: a concurrent delete waits until this read has committed.
      const row = await trx.selectFrom('quarantine').selectAll().where('id', '=', id).forShare().executeTakeFirst();
      if (!row) throw new QuarantineNotFoundError(`no quarantined item ${id}`);
      if (row.deleted_at) throw new QuarantineDeletedError(`quarantined item ${id} was deleted (its bytes are gone; its record and access log remain)`);
      const bytes = await this.decrypt(row);
      await this.logAccess(trx, Number(row.id), actor, options.action, reason, this.#now());
      return bytes;
    });
  }

  /**
   * Writes a report bundle for the authorities into `outDir`: the original bytes, metadata.json,
   * access-log.json (this export included) and SHA256SUMS (`sha256sum -c SHA256SUMS` checks it).
   * The bundle holds the media IN THE CLEAR: files 0600, directory 0700.
   */
  async exportBundle(id: number, options: ExportOptions): Promise<ExportResult> {
    const actor = requireText('actor', options.actor);
    const reason = requireText('reason', options.reason);
    const outDir = resolve(requireText('outDir', options.outDir));
    if (await exists(outDir)) {
      const info = await stat(outDir);
      if (!info.isDirectory() || (await readdir(outDir)).length > 0) {
        throw new QuarantineInputError(`export directory ${outDir} already exists and is not empty`);
      }
    }
    await mkdir(dirname(outDir), { recursive: true });
    let staging: string | undefined;
    let placed = false;
    try {
      return await this.#db.transaction().execute(async (trx) => {
        const row = await trx.selectFrom('quarantine').selectAll().where('id', '=', id).forShare().executeTakeFirst();
        if (!row) throw new QuarantineNotFoundError(`no quarantined item ${id}`);
        if (row.deleted_at) throw new QuarantineDeletedError(`quarantined item ${id} was deleted: there are no bytes to export`);
        const bytes = await this.decrypt(row);
        const at = this.#now();
        await this.logAccess(trx, Number(row.id), actor, 'export', reason, at);
        const log = await trx.selectFrom('quarantine_access').selectAll().where('item_id', '=', row.id).orderBy('id').execute();
        const item = this.toItem(row);

        const mediaFile = `media.${extensionFor(item.format)}`;
        const metadata = {
          format: 'vouch-quarantine-export/1',
          software: `vouch ${SOFTWARE_VERSION}`,
          exported: { at: at.toISOString(), by: actor, reason },
          item: {
            id: item.id,
            sha256: item.sha256,
            pdq: item.pdq,
            byteSize: item.byteSize,
            format: item.format,
            source: item.source,
            quarantinedAt: item.quarantinedAt.toISOString(),
            releasedAt: item.releasedAt?.toISOString() ?? null,
            state: item.state,
          },
          decision: item.decision,
          // The date only: the period it came from may have changed since (the policy sets it).
          retention: { retainUntil: item.retainUntil.toISOString() },
          media: { file: mediaFile, sha256: item.sha256, byteSize: item.byteSize },
        };
        const accessLog = log.map((entry) => {
          const e = this.toEntry(entry);
          return { id: e.id, actor: e.actor, action: e.action, reason: e.reason, at: e.at.toISOString() };
        });
        const contents: Array<[string, Uint8Array]> = [
          [mediaFile, bytes],
          ['metadata.json', Buffer.from(`${JSON.stringify(metadata, null, 2)}\n`, 'utf8')],
          ['access-log.json', Buffer.from(`${JSON.stringify(accessLog, null, 2)}\n`, 'utf8')],
        ];
        const files: Record<string, string> = {};
        for (const [name, data] of contents) files[name] = sha256Hex(data);
        const sums = Object.entries(files).map(([name, hash]) => `${hash}  ${name}\n`).join('');

        // Staged beside the target and renamed into place: a bundle is there whole or not at all.
        staging = await mkdtemp(join(dirname(outDir), `.${basename(outDir)}.partial-`));
        await chmod(staging, 0o700);
        for (const [name, data] of [...contents, ['SHA256SUMS', Buffer.from(sums, 'utf8')] as [string, Uint8Array]]) {
          const handle = await open(join(staging, name), 'wx', 0o600);
          try {
            await handle.write(data);
            await handle.sync();
          } finally {
            await handle.close();
          }
        }
        if (await exists(outDir)) await rmdir(outDir);
        await rename(staging, outDir);
        staging = undefined;
        placed = true;
        return { dir: outDir, files, mediaFile };
      });
    } catch (err) {
      if (staging) await rm(staging, { recursive: true, force: true });
      // The export was not logged (the transaction failed): no bundle either.
      if (placed) await rm(outDir, { recursive: true, force: true });
      throw err;
    }
  }

  /** A false positive: marks the item released. Its bytes stay until an admin deletes them. False if already released. */
  async release(id: number, options: ActorReason): Promise<boolean> {
    const actor = requireText('actor', options.actor);
    const reason = requireText('reason', options.reason);
    return this.#db.transaction().execute(async (trx) => {
      const row = await trx.selectFrom('quarantine').select(['id', 'released_at']).where('id', '=', id).forUpdate().executeTakeFirst();
      if (!row) throw new QuarantineNotFoundError(`no quarantined item ${id}`);
      if (row.released_at) return false;
      const now = this.#now();
      await trx.updateTable('quarantine').set({ released_at: now }).where('id', '=', id).execute();
      await this.logAccess(trx, id, actor, 'release', reason, now);
      return true;
    });
  }

  /**
   * Deletes the item's bytes: only on an admin's explicit request, with a reason. The record stays
   * as a tombstone (deleted_at/by/reason) and the access log stays whole. False if already deleted.
   */
  async delete(id: number, options: ActorReason): Promise<boolean> {
    const actor = requireText('actor', options.actor);
    const reason = requireText('reason', options.reason);
    const result = await this.#db.transaction().execute(async (trx) => {
      const row = await trx.selectFrom('quarantine').select(['id', 'sha256', 'deleted_at']).where('id', '=', id).forUpdate().executeTakeFirst();
      if (!row) throw new QuarantineNotFoundError(`no quarantined item ${id}`);
      const sha256 = hexOf(row.sha256);
      if (row.deleted_at) return { deleted: false, sha256 };
      const now = this.#now();
      await trx.updateTable('quarantine').set({ deleted_at: now, deleted_by: actor, delete_reason: reason }).where('id', '=', id).execute();
      await this.logAccess(trx, id, actor, 'delete', reason, now);
      return { deleted: true, sha256 };
    });
    // After the tombstone is committed: a crash in between leaves a file that a repeated delete
    // removes, never a deleted file without its tombstone. Under the row lock, and only while the
    // item is still deleted, so that a put storing the media again meanwhile keeps its file.
    await this.#db.transaction().execute(async (trx) => {
      const row = await trx.selectFrom('quarantine').select('deleted_at').where('id', '=', id).forUpdate().executeTakeFirst();
      if (row?.deleted_at) await rm(this.filePath(result.sha256), { force: true });
    });
    return result.deleted;
  }

  /** Every event on an item, oldest first. */
  async accessLog(id: number): Promise<QuarantineAccessEntry[]> {
    const rows = await this.#db.selectFrom('quarantine_access').selectAll().where('item_id', '=', id).orderBy('id').execute();
    return rows.map((r) => this.toEntry(r));
  }

  // -------------------------------------------------------------------------------------------

  private async ensureDir(dir: string): Promise<void> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    // mkdir leaves existing directories' modes alone; these are ours.
    await chmod(this.root, 0o700);
    await chmod(dir, 0o700);
  }

  private aad(keyIdBytes: Buffer, sha256: string): Buffer {
    return Buffer.concat([AAD_DOMAIN, MAGIC, keyIdBytes, Buffer.from(sha256, 'hex')]);
  }

  private async writeEncrypted(path: string, sha256: string, bytes: Uint8Array): Promise<void> {
    const keyIdBytes = Buffer.from(this.keyId, 'hex');
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv);
    cipher.setAAD(this.aad(keyIdBytes, sha256));
    const ciphertext = Buffer.concat([cipher.update(bytes), cipher.final()]);
    const tag = cipher.getAuthTag();
    await writeFileAtomic(path, [MAGIC, keyIdBytes, iv, tag, ciphertext]);
  }

  private async decrypt(row: Row): Promise<Buffer> {
    const id = Number(row.id);
    const sha256 = hexOf(row.sha256);
    const path = this.filePath(sha256);
    let file: Buffer;
    try {
      file = await readFile(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new QuarantineIntegrityError(`quarantined item ${id}: its encrypted file ${path} is missing`);
      }
      throw err;
    }
    if (file.length < HEADER_BYTES || !file.subarray(0, 4).equals(MAGIC)) {
      throw new QuarantineIntegrityError(`quarantined item ${id}: ${path} is not a quarantine file (bad header)`);
    }
    const fileKeyId = file.subarray(4, 8).toString('hex');
    if (fileKeyId !== row.key_id) {
      throw new QuarantineIntegrityError(`quarantined item ${id}: its file names key ${fileKeyId} but its record says key ${row.key_id}`);
    }
    if (row.key_id !== this.keyId) {
      throw new QuarantineKeyError(
        `quarantined item ${id} was encrypted under quarantine key ${row.key_id}, but the configured key is ${this.keyId}: the key was changed or rotated; configure the key this item was stored under`,
      );
    }
    const ciphertext = file.subarray(HEADER_BYTES);
    if (ciphertext.length !== Number(row.byte_size)) {
      throw new QuarantineIntegrityError(`quarantined item ${id}: its file holds ${ciphertext.length} bytes, its record says ${Number(row.byte_size)}`);
    }
    let plaintext: Buffer;
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.#key, file.subarray(8, 20));
      decipher.setAAD(this.aad(file.subarray(4, 8), sha256));
      decipher.setAuthTag(file.subarray(20, 36));
      plaintext = Buffer.concat([decipher.update(ciphertext), decipher.final()]);
    } catch {
      throw new QuarantineIntegrityError(
        `quarantined item ${id}: its file failed authentication (modified, or another item's file put in its place)`,
      );
    }
    // Cannot differ once GCM authenticated the SHA-256 in the additional data; checked all the same.
    if (sha256Hex(plaintext) !== sha256) throw new QuarantineIntegrityError(`quarantined item ${id}: decrypted bytes do not match its SHA-256`);
    return plaintext;
  }

  private async logAccess(trx: Db, itemId: number, actor: string, action: QuarantineAction, reason: string | null, at: Date): Promise<void> {
    await trx.insertInto('quarantine_access').values({ item_id: itemId, actor, action, reason, at }).execute();
  }

  private toItem(row: Row): QuarantineItem {
    const deleted = row.deleted_at !== null;
    const now = this.#now().getTime();
    return {
      id: Number(row.id),
      sha256: hexOf(row.sha256),
      pdq: row.pdq ? hexOf(row.pdq) : null,
      byteSize: Number(row.byte_size),
      format: row.format,
      source: row.source,
      decision: (typeof row.decision === 'string' ? JSON.parse(row.decision) : row.decision) as QuarantineDecision,
      keyId: row.key_id,
      quarantinedAt: row.quarantined_at,
      retainUntil: row.retain_until,
      releasedAt: row.released_at,
      deletedAt: row.deleted_at,
      deletedBy: row.deleted_by,
      deleteReason: row.delete_reason,
      state: deleted ? 'deleted' : row.released_at ? 'released' : 'held',
      expired: !deleted && row.retain_until.getTime() <= now,
    };
  }

  private toEntry(row: Selectable<QuarantineAccessTable>): QuarantineAccessEntry {
    return {
      id: Number(row.id),
      itemId: Number(row.item_id),
      actor: row.actor,
      action: row.action,
      reason: row.reason,
      at: row.at,
    };
  }
}

/**
 * The auditor: verifies a Vouch instance's transparency log from the outside, with nothing but
 * its HTTP API and the log's public key (no server needed: `vouch audit URL` calls this).
 *
 * What it checks, in order, and what each failure says:
 *  1. the checkpoint's signature by the log key                                  (`signature`)
 *  2. consistency with every checkpoint saved in `stateDir` by earlier audits:
 *     same size with another root (`fork`), a smaller size than seen before (`rollback`), or a
 *     consistency proof that does not verify (`inconsistent`)
 *  3. the entries: every index present (`entry_missing`), each served leaf hash equal to the
 *     hash of the served entry (`leaf_hash_mismatch`), each entry's place in the signed tree
 *     (`inclusion`: by rebuilding the whole tree when all entries are fetched, which costs one
 *     hash per entry instead of one proof per entry, then locating the entries that differ with
 *     a few inclusion proofs; or by inclusion proofs of sampled entries), each version-2 entry's
 *     public part well formed (`entry_malformed`) and, where the private part is served, that it
 *     opens the entry: its digest, the subject commitment, and a public part that says what the
 *     signed activity says (`private_mismatch`, entry.ts), and each activity's own signature
 *     through `verifyEntry` (`entry_invalid`)
 * A version-2 entry's public part is served to anyone, so an anonymous auditor recomputes every
 * leaf of such a log (withheld private parts included) and so checks every public part.
 * It exports what it fetched (JSONL or CSV) and saves the checkpoint for the next audit only
 * when everything verified, so a failed audit never moves the baseline.
 */
import { createHash, randomInt } from 'node:crypto';
import { createWriteStream, mkdirSync, readFileSync, renameSync, writeFileSync, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import { NoteError, openCheckpoint, type OpenedCheckpoint } from '../../shared/merkle/checkpoint.js';
import { inclusionPlan, leafHash, MemoryTree, frontier, nodeHash, splitPoint, HASH_SIZE } from '../../shared/merkle/tree.js';
import { verifyConsistency, verifyInclusion } from '../../shared/merkle/verify.js';
import { decodeEntry, ENTRY_VERSION_MEMBER, openPrivatePart, type PublicPart } from './entry.js';
import { decodeHashes, ENTRIES_PAGE_MAX, entryBytes, fromBase64, privateBytes, toBase64, type WireEntry } from './format.js';

export type AuditFailureKind =
  | 'fetch' // a request to the log failed or answered garbage
  | 'signature' // the checkpoint is not validly signed by the log key (or a witness's cosignature fails)
  | 'state' // the saved state from earlier audits is unreadable
  | 'fork' // two different signed roots for one size
  | 'rollback' // the log is smaller than an earlier audit saw
  | 'inconsistent' // the consistency proof from a saved checkpoint does not verify
  | 'entry_missing' // an index below the checkpoint size was not served
  | 'entry_unexpected' // an entry outside the requested range, or twice
  | 'entry_malformed' // an entry or its leaf hash cannot be decoded
  | 'leaf_hash_mismatch' // the served entry does not hash to the served leaf hash
  | 'private_mismatch' // a served private part does not open its version-2 entry
  | 'inclusion' // the entry is not the leaf the signed tree holds at its index
  | 'root_mismatch' // the served entries do not hash to the signed root
  | 'entry_invalid' // verifyEntry refused the entry (e.g. its object proof)
  | 'export'; // the export file could not be written

export interface AuditFailure {
  readonly kind: AuditFailureKind;
  readonly index?: number;
  readonly message: string;
}

export interface AuditOptions {
  /** The instance's base URL (the log API is under `${baseUrl}/log/`). */
  baseUrl: string;
  /** The log's verifier key `origin+keyid+base64` (published by the instance's actor). */
  logVerifierKey: string;
  /** GET a URL and parse JSON; throw on any non-2xx answer. */
  fetchJson: (url: string) => Promise<unknown>;
  /** GET a URL as text; throw on any non-2xx answer. */
  fetchText: (url: string) => Promise<string>;
  /** Where checkpoints verified by earlier audits are kept (one JSON file per log origin). */
  stateDir: string;
  /** Re-verifies one entry (the parsed JSON of the signed activity); throws to refuse it. */
  verifyEntry?: (entry: unknown, index: number) => Promise<void>;
  /** Fetch and check every entry (implied by `out`); otherwise a sample. */
  all?: boolean;
  /** Entries checked besides the first and last when not `all` (default 64). */
  sample?: number;
  /** Export the fetched entries. */
  out?: { path: string; format: 'jsonl' | 'csv' };
  /** Witness verifier keys (`cosignature/v1`) whose cosignatures on the checkpoint must verify. */
  witnessKeys?: readonly string[];
  /** Entries per page request (≤ 1000, the server's maximum). */
  pageSize?: number;
  /** Failures listed in the report at most (default 1000); the rest are counted. */
  maxFailures?: number;
  /** Inclusion proofs fetched at most to locate entries that differ from the signed tree (default 4096). */
  maxLocateProofs?: number;
  /** Progress: entries checked so far, and the total to check. */
  onProgress?: (done: number, total: number) => void;
}

export interface AuditReport {
  /** True only when everything verified. */
  readonly ok: boolean;
  readonly checkpoint: { readonly origin: string; readonly size: number; readonly rootHash: string; readonly note: string } | null;
  /** Cosignatures on the checkpoint by the given witness keys, all verified. */
  readonly cosignatures: readonly { readonly name: string; readonly timestamp?: number }[];
  /** Checkpoints from earlier audits this one was checked against. */
  readonly previous: readonly { readonly size: number; readonly rootHash: string }[];
  /**
   * checked: entries fetched; withheld: version-1 entries not served; publicParts: version-2
   * entries (public part read); privateWithheld: those whose private part was not served;
   * privateOpened: private parts that opened their entry; verified: activities `verifyEntry` accepted.
   */
  readonly entries: {
    readonly mode: 'all' | 'sample';
    readonly checked: number;
    readonly withheld: number;
    readonly publicParts: number;
    readonly privateWithheld: number;
    readonly privateOpened: number;
    readonly verified: number;
  };
  readonly exported: { readonly path: string; readonly format: 'jsonl' | 'csv'; readonly count: number } | null;
  /** Whether the checkpoint was saved to `stateDir` as the baseline for the next audit. */
  readonly stateSaved: boolean;
  readonly failures: readonly AuditFailure[];
  /** Failures beyond `maxFailures`, not listed. */
  readonly failuresOmitted: number;
}

/** One saved checkpoint (state file). */
interface SavedCheckpoint {
  size: number;
  rootHash: string;
  note: string;
  auditedAt: string;
}

interface StateFile {
  origin: string;
  logVerifierKey: string;
  checkpoints: SavedCheckpoint[];
}

const DEFAULT_SAMPLE = 64;
const DEFAULT_MAX_FAILURES = 1000;
const DEFAULT_MAX_LOCATE_PROOFS = 4096;
const b64 = toBase64;

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}

const errorMessage = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** State file name for a log origin: readable, and collision-free thanks to the hash suffix. */
export function stateFileName(origin: string): string {
  const readable = origin.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 80);
  const tag = createHash('sha256').update(origin, 'utf8').digest('hex').slice(0, 8);
  return `${readable}-${tag}.json`;
}

class Failures {
  readonly list: AuditFailure[] = [];
  omitted = 0;
  constructor(private readonly max: number) {}
  add(kind: AuditFailureKind, message: string, index?: number): void {
    if (this.list.length >= this.max) {
      this.omitted++;
      return;
    }
    this.list.push(index === undefined ? { kind, message } : { kind, index, message });
  }
  get count(): number {
    return this.list.length + this.omitted;
  }
}

// --- export ------------------------------------------------------------------------------------

const CSV_COLUMNS = [
  'index',
  'leaf_hash',
  'version',
  'withheld',
  'activity_type',
  'activity_id',
  'actor',
  'published',
  'object_type',
  'object_id',
  'label',
  'confidence',
  'method',
  'classifier',
  'object_published',
  'expires',
  'supersedes',
  'deleted',
  'subjects',
  'entry',
] as const;

/** What an auditor could read of one entry: its version, what everyone may count, and the signed activity when served. */
interface EntryView {
  readonly version: 1 | 2 | null;
  /** The public part (version 2) or the activity itself (version 1, when served). */
  readonly described: Record<string, unknown> | null;
  /** The signed activity: a served version-1 entry, or a version-2 entry's opened private part. */
  readonly activity: Record<string, unknown> | null;
}

function csvField(v: unknown): string {
  const s = v === undefined || v === null ? '' : typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : JSON.stringify(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

const record = (v: unknown): Record<string, unknown> => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {});

function csvRow(wire: WireEntry, bytes: Uint8Array | null, view: EntryView): string {
  const a = view.described ?? {};
  const o = record(a.object);
  const subject = record(view.activity?.object).subject;
  const classifier = record(o.classifier);
  const subjects = Array.isArray(subject)
    ? subject
        .map((s) => (s && typeof s === 'object' ? `${String((s as Record<string, unknown>).algorithm)}:${String((s as Record<string, unknown>).digest)}` : ''))
        .join(' ')
    : '';
  const entryText = bytes === null ? '' : wire.entry_base64 !== undefined ? `base64:${wire.entry_base64}` : Buffer.from(bytes).toString('utf8');
  const values: Record<(typeof CSV_COLUMNS)[number], unknown> = {
    index: wire.index,
    leaf_hash: wire.leaf_hash,
    version: view.version,
    withheld: view.activity === null,
    activity_type: a.type,
    activity_id: a.id,
    actor: a.actor,
    published: a.published,
    object_type: o.type,
    object_id: o.id ?? (typeof a.object === 'string' ? a.object : undefined),
    label: o.label,
    // Not in a version-2 public part (entry.ts): read from the activity when it was served.
    confidence: record(view.activity?.object).confidence,
    method: o.method,
    classifier: typeof classifier.name === 'string' ? `${classifier.name}@${String(classifier.version)}` : undefined,
    object_published: o.published,
    expires: o.expires,
    supersedes: o.supersedes,
    deleted: o.deleted,
    subjects,
    entry: entryText,
  };
  return CSV_COLUMNS.map((c) => csvField(values[c])).join(',') + '\r\n';
}

class Exporter {
  private stream: WriteStream;
  private error: Error | null = null;
  count = 0;
  constructor(
    readonly path: string,
    readonly format: 'jsonl' | 'csv',
  ) {
    this.stream = createWriteStream(path, { encoding: 'utf8' });
    this.stream.on('error', (err) => {
      this.error = err;
    });
    if (format === 'csv') this.stream.write(CSV_COLUMNS.join(',') + '\r\n');
  }
  async write(wire: WireEntry, bytes: Uint8Array | null, view: EntryView): Promise<void> {
    if (this.error) throw this.error;
    const line = this.format === 'jsonl' ? JSON.stringify(wire) + '\n' : csvRow(wire, bytes, view);
    this.count++;
    if (!this.stream.write(line)) {
      await new Promise<void>((resolve, reject) => {
        this.stream.once('drain', resolve);
        this.stream.once('error', reject);
      });
    }
  }
  async close(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      if (this.error) return reject(this.error);
      this.stream.once('error', reject);
      this.stream.end(() => resolve());
    });
  }
}

// --- the audit ---------------------------------------------------------------------------------

export async function auditLog(options: AuditOptions): Promise<AuditReport> {
  const base = options.baseUrl.replace(/\/+$/, '');
  const failures = new Failures(options.maxFailures ?? DEFAULT_MAX_FAILURES);
  const pageSize = Math.min(Math.max(Math.floor(options.pageSize ?? ENTRIES_PAGE_MAX), 1), ENTRIES_PAGE_MAX);
  const entriesStats = {
    mode: options.all || options.out ? ('all' as const) : ('sample' as const),
    checked: 0,
    withheld: 0,
    publicParts: 0,
    privateWithheld: 0,
    privateOpened: 0,
    verified: 0,
  };
  const report = (
    checkpoint: AuditReport['checkpoint'],
    extra: Partial<Pick<AuditReport, 'cosignatures' | 'previous' | 'exported' | 'stateSaved'>> = {},
  ): AuditReport => ({
    ok: failures.count === 0,
    checkpoint,
    cosignatures: extra.cosignatures ?? [],
    previous: extra.previous ?? [],
    entries: { ...entriesStats },
    exported: extra.exported ?? null,
    stateSaved: extra.stateSaved ?? false,
    failures: failures.list,
    failuresOmitted: failures.omitted,
  });

  // 1. The checkpoint and its signature.
  let note: string;
  try {
    note = await options.fetchText(`${base}/log/checkpoint`);
  } catch (err) {
    failures.add('fetch', `cannot fetch the checkpoint from ${base}/log/checkpoint: ${errorMessage(err)}`);
    return report(null);
  }
  let opened: OpenedCheckpoint;
  try {
    opened = openCheckpoint(note, options.logVerifierKey, options.witnessKeys ?? []);
  } catch (err) {
    const why = err instanceof NoteError ? `${err.message} (${err.code})` : errorMessage(err);
    failures.add('signature', `the checkpoint served by ${base} does not verify with the log key: ${why}`);
    return report(null);
  }
  const { origin, size, rootHash } = opened.checkpoint;
  const checkpoint = { origin, size, rootHash: b64(rootHash), note };
  const cosignatures = opened.cosignatures.map((s) => (s.timestamp === undefined ? { name: s.name } : { name: s.name, timestamp: s.timestamp }));
  const missingWitnesses = (options.witnessKeys ?? []).filter((vk) => !opened.cosignatures.some((s) => vk.startsWith(`${s.name}+${s.keyId.toString(16).padStart(8, '0')}+`)));
  for (const vk of missingWitnesses) failures.add('signature', `the checkpoint carries no cosignature by witness ${vk.split('+')[0]}`);

  // Inclusion proofs, cached: the locating search asks for some of them twice.
  const proofs = new Map<number, Uint8Array[]>();
  const inclusionProofOf = async (index: number): Promise<Uint8Array[]> => {
    const cached = proofs.get(index);
    if (cached) return cached;
    const body = (await options.fetchJson(`${base}/log/proof/inclusion?index=${index}&size=${size}`)) as { hashes?: unknown } | null;
    const hashes = decodeHashes(body?.hashes, `inclusion proof for entry ${index}:`);
    proofs.set(index, hashes);
    return hashes;
  };

  // 2. Consistency with the checkpoints saved by earlier audits.
  const statePath = join(options.stateDir, stateFileName(origin));
  let state: StateFile = { origin, logVerifierKey: options.logVerifierKey, checkpoints: [] };
  let stateReadable = true;
  try {
    const parsed = JSON.parse(readFileSync(statePath, 'utf8')) as StateFile;
    if (!parsed || !Array.isArray(parsed.checkpoints)) throw new Error('it has no checkpoints list');
    state = parsed;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      stateReadable = false;
      failures.add('state', `the state file ${statePath} from earlier audits is unreadable (${errorMessage(err)}); it is left as it is`);
    }
  }
  const previous: { size: number; rootHash: string }[] = [];
  for (const saved of [...state.checkpoints].sort((x, y) => x.size - y.size)) {
    let savedOpened: OpenedCheckpoint;
    try {
      savedOpened = openCheckpoint(saved.note, options.logVerifierKey);
    } catch (err) {
      failures.add('state', `checkpoint ${saved.size} saved by an earlier audit (${saved.auditedAt}) does not verify with the log key given now: ${errorMessage(err)}`);
      continue;
    }
    const s = savedOpened.checkpoint;
    previous.push({ size: s.size, rootHash: b64(s.rootHash) });
    const when = `saved by an earlier audit on ${saved.auditedAt}`;
    if (s.size === size) {
      if (!equalBytes(s.rootHash, rootHash)) {
        failures.add(
          'fork',
          `fork: the log signed two different trees of size ${size}: root ${b64(rootHash)} now, root ${b64(s.rootHash)} in checkpoint ${s.size} ${when}; both notes carry valid signatures by ${opened.logSignature.name}`,
        );
      }
    } else if (s.size > size) {
      failures.add('rollback', `rollback: the log now serves a checkpoint of size ${size}, smaller than checkpoint ${s.size} ${when}`);
    } else if (s.size > 0) {
      let proof: Uint8Array[];
      try {
        const body = (await options.fetchJson(`${base}/log/proof/consistency?from=${s.size}&to=${size}`)) as { hashes?: unknown } | null;
        proof = decodeHashes(body?.hashes, `consistency proof ${s.size} -> ${size}:`);
      } catch (err) {
        failures.add('inconsistent', `inconsistent with checkpoint ${s.size} ${when}: the log gives no valid consistency proof ${s.size} -> ${size}: ${errorMessage(err)}`);
        continue;
      }
      const verdict = verifyConsistency(s.size, size, proof, s.rootHash, rootHash);
      if (!verdict.ok) {
        failures.add('inconsistent', `inconsistent with checkpoint ${s.size} ${when}: the consistency proof ${s.size} -> ${size} fails (${verdict.code}): ${verdict.reason}`);
      }
    }
  }

  // 3. Entries.
  let exporter: Exporter | null = null;
  if (options.out) {
    try {
      exporter = new Exporter(options.out.path, options.out.format);
    } catch (err) {
      failures.add('export', `cannot write ${options.out.path}: ${errorMessage(err)}`);
    }
  }
  const checkEntry = async (index: number, wire: WireEntry): Promise<Uint8Array | null> => {
    // The leaf hash this entry contributes to the tree, or null when it cannot be known.
    entriesStats.checked++;
    const served = fromBase64(wire.leaf_hash);
    if (!served || served.length !== HASH_SIZE) {
      failures.add('entry_malformed', `entry ${index}: the served leaf hash is not ${HASH_SIZE} bytes of canonical base64`, index);
    }
    let bytes: Uint8Array | null;
    try {
      bytes = entryBytes(wire);
    } catch (err) {
      failures.add('entry_malformed', `entry ${index}: ${errorMessage(err)}`, index);
      return null;
    }
    const view = bytes === null ? { version: null, described: null, activity: null } : readEntry(index, wire, bytes);
    if (exporter) {
      try {
        await exporter.write(wire, bytes, view);
      } catch (err) {
        failures.add('export', `cannot write ${exporter.path}: ${errorMessage(err)}`);
        exporter = null;
      }
    }
    if (bytes === null) {
      entriesStats.withheld++;
      return served && served.length === HASH_SIZE ? served : null;
    }
    const computed = leafHash(bytes);
    if (served && served.length === HASH_SIZE && !equalBytes(computed, served)) {
      failures.add('leaf_hash_mismatch', `entry ${index}: leaf hash mismatch: the served entry hashes to ${b64(computed)} but the log lists leaf hash ${b64(served)}`, index);
    }
    if (options.verifyEntry && view.activity !== null) {
      try {
        await options.verifyEntry(view.activity, index);
        entriesStats.verified++;
      } catch (err) {
        failures.add('entry_invalid', `entry ${index}: proof invalid: ${errorMessage(err)}`, index);
      }
    } else if (options.verifyEntry && view.version === 1) {
      failures.add('entry_invalid', `entry ${index}: proof invalid: the entry is not canonical JSON (JCS)`, index);
    }
    return computed;
  };

  /**
   * Decodes a served entry: a version-2 entry's public part must be well formed and, when its
   * private part is served, that part must open it. A version-1 entry is its activity.
   */
  const readEntry = (index: number, wire: WireEntry, bytes: Uint8Array): EntryView => {
    const marked = typeof wire.entry === 'object' && wire.entry !== null && ENTRY_VERSION_MEMBER in wire.entry;
    let decoded;
    try {
      decoded = decodeEntry(bytes);
    } catch (err) {
      // Bytes that are not JSON were a valid version-1 entry to older auditors: only a marked entry must decode.
      if (marked) failures.add('entry_malformed', `entry ${index}: ${errorMessage(err)}`, index);
      return { version: marked ? 2 : 1, described: null, activity: null };
    }
    if (decoded.version === 1) return { version: 1, described: decoded.activity, activity: decoded.activity };
    entriesStats.publicParts++;
    const described = decoded.public as PublicPart & Record<string, unknown>;
    let served: Uint8Array | null;
    try {
      served = privateBytes(wire);
    } catch (err) {
      failures.add('private_mismatch', `entry ${index}: ${errorMessage(err)}`, index);
      return { version: 2, described, activity: null };
    }
    if (served === null) {
      entriesStats.privateWithheld++;
      return { version: 2, described, activity: null };
    }
    try {
      const opened = openPrivatePart(decoded, served);
      entriesStats.privateOpened++;
      return { version: 2, described, activity: opened.activity };
    } catch (err) {
      failures.add('private_mismatch', `entry ${index}: the private part does not open the entry: ${errorMessage(err)}`, index);
      return { version: 2, described, activity: null };
    }
  };

  const fetchPage = async (start: number, end: number): Promise<Map<number, WireEntry> | null> => {
    let body: unknown;
    try {
      body = await options.fetchJson(`${base}/log/entries?start=${start}&end=${end}`);
    } catch (err) {
      failures.add('fetch', `cannot fetch entries ${start}..${end - 1}: ${errorMessage(err)}`);
      return null;
    }
    const list = (body as { entries?: unknown } | null)?.entries;
    if (!Array.isArray(list)) {
      failures.add('fetch', `entries ${start}..${end - 1}: the answer has no entries list`);
      return null;
    }
    const byIndex = new Map<number, WireEntry>();
    for (const item of list as unknown[]) {
      const index = (item as { index?: unknown } | null)?.index;
      if (typeof index !== 'number' || !Number.isSafeInteger(index)) {
        failures.add('entry_malformed', `entries ${start}..${end - 1}: an entry without a valid index`);
        continue;
      }
      if (index < start || index >= end || byIndex.has(index)) {
        failures.add('entry_unexpected', `entry ${index} was served ${byIndex.has(index) ? 'twice' : `in answer to a request for ${start}..${end - 1}`}`, index);
        continue;
      }
      byIndex.set(index, item as WireEntry);
    }
    return byIndex;
  };

  if (entriesStats.mode === 'all') {
    const tree = new MemoryTree();
    const PLACEHOLDER = new Uint8Array(HASH_SIZE); // a missing or unreadable leaf: never a real hash
    const unknown = new Set<number>();
    let fetchedAll = true;
    for (let start = 0; start < size; start += pageSize) {
      const end = Math.min(start + pageSize, size);
      const page = await fetchPage(start, end);
      if (!page) {
        fetchedAll = false;
        break;
      }
      for (let i = start; i < end; i++) {
        const wire = page.get(i);
        if (!wire) {
          failures.add('entry_missing', `entry ${i} is missing: the log served no entry at index ${i} below the checkpoint size ${size}`, i);
          unknown.add(i);
          tree.appendLeafHash(PLACEHOLDER);
          continue;
        }
        const leaf = await checkEntry(i, wire);
        if (!leaf) unknown.add(i);
        tree.appendLeafHash(leaf ?? PLACEHOLDER);
      }
      options.onProgress?.(end, size);
    }
    if (fetchedAll && size > 0 && !equalBytes(tree.root(), rootHash)) {
      failures.add('root_mismatch', `the ${size} served entries hash to root ${b64(tree.root())}, not to the checkpoint's root ${b64(rootHash)}`);
      await locate(tree, size, rootHash, unknown, inclusionProofOf, failures, options.maxLocateProofs ?? DEFAULT_MAX_LOCATE_PROOFS);
    }
  } else if (size > 0) {
    const count = Math.min(size, Math.max(0, Math.floor(options.sample ?? DEFAULT_SAMPLE)) + 2);
    const picked = new Set<number>([0, size - 1]);
    while (picked.size < count) picked.add(randomInt(0, size));
    const indices = [...picked].sort((x, y) => x - y);
    let done = 0;
    for (const i of indices) {
      const page = await fetchPage(i, i + 1);
      done++;
      if (!page) continue;
      const wire = page.get(i);
      if (!wire) {
        failures.add('entry_missing', `entry ${i} is missing: the log served no entry at index ${i} below the checkpoint size ${size}`, i);
        continue;
      }
      const leaf = await checkEntry(i, wire);
      if (leaf) {
        try {
          const verdict = verifyInclusion(leaf, i, size, await inclusionProofOf(i), rootHash);
          if (!verdict.ok) failures.add('inclusion', `entry ${i}: inclusion proof failed (${verdict.code}): ${verdict.reason}`, i);
        } catch (err) {
          failures.add('inclusion', `entry ${i}: no valid inclusion proof: ${errorMessage(err)}`, i);
        }
      }
      options.onProgress?.(done, indices.length);
    }
  }

  let exported: AuditReport['exported'] = null;
  if (exporter) {
    try {
      await exporter.close();
      exported = { path: exporter.path, format: exporter.format, count: exporter.count };
    } catch (err) {
      failures.add('export', `cannot write ${exporter.path}: ${errorMessage(err)}`);
    }
  }

  // 4. The new baseline, only when everything verified.
  let stateSaved = false;
  if (failures.count === 0 && stateReadable) {
    const kept = state.checkpoints.filter((c) => c.size !== size);
    kept.push({ size, rootHash: b64(rootHash), note, auditedAt: new Date().toISOString() });
    kept.sort((x, y) => x.size - y.size);
    const next: StateFile = { origin, logVerifierKey: options.logVerifierKey, checkpoints: kept };
    try {
      mkdirSync(options.stateDir, { recursive: true });
      const tmp = `${statePath}.${process.pid}.tmp`;
      writeFileSync(tmp, JSON.stringify(next, null, 2) + '\n');
      renameSync(tmp, statePath);
      stateSaved = true;
    } catch (err) {
      failures.add('state', `cannot save the checkpoint to ${statePath}: ${errorMessage(err)}`);
    }
  }
  return report(checkpoint, { cosignatures, previous, exported, stateSaved });
}

// --- locating entries that differ from the signed tree -----------------------------------------

/** MTH(D[lo:hi]) of an RFC-aligned range, from the complete subtrees of `tree`. */
function rangeHash(tree: MemoryTree, lo: number, hi: number): Uint8Array {
  const nodes = frontier(hi - lo).map((n) => tree.node(n.level, n.index + lo / 2 ** n.level));
  let acc = nodes[nodes.length - 1];
  for (let i = nodes.length - 2; i >= 0; i--) acc = nodeHash(nodes[i], acc);
  return acc;
}

/** The element of the inclusion proof of `index` that is MTH(D[a:b]), or null. */
function proofElement(proof: readonly Uint8Array[], index: number, size: number, a: number, b: number): Uint8Array | null {
  const plans = inclusionPlan(index, size);
  if (proof.length !== plans.length) return null;
  for (let i = 0; i < plans.length; i++) {
    const first = plans[i][0];
    const last = plans[i][plans[i].length - 1];
    const from = first.index * 2 ** first.level;
    const to = (last.index + 1) * 2 ** last.level;
    if (from === a && to === b) return proof[i];
  }
  return null;
}

/**
 * The served entries do not hash to the signed root: find which ones differ. Walks down from the
 * root, learning the log's hash of each child from its inclusion proofs (authenticated because the
 * two children must hash to their parent, whose hash is already authenticated), and descends only
 * into subtrees whose hash differs from ours: O(d · log n) proofs for d differing entries.
 */
async function locate(
  tree: MemoryTree,
  size: number,
  root: Uint8Array,
  unknown: ReadonlySet<number>,
  proofOf: (index: number) => Promise<Uint8Array[]>,
  failures: Failures,
  maxProofs: number,
): Promise<void> {
  const stack: { lo: number; hi: number; hash: Uint8Array }[] = [{ lo: 0, hi: size, hash: root }];
  const fetched = new Set<number>();
  const budget = async (index: number): Promise<Uint8Array[] | null> => {
    if (!fetched.has(index)) {
      if (fetched.size >= maxProofs) return null;
      fetched.add(index);
    }
    return proofOf(index);
  };
  while (stack.length > 0) {
    const { lo, hi, hash } = stack.pop()!;
    if (equalBytes(rangeHash(tree, lo, hi), hash)) continue;
    if (hi - lo === 1) {
      // A missing or undecodable entry is already reported: it differs by construction.
      if (!unknown.has(lo)) {
        failures.add('inclusion', `entry ${lo}: inclusion proof failed: the served entry is not leaf ${lo} of the signed tree of size ${size}`, lo);
      }
      continue;
    }
    const k = splitPoint(hi - lo);
    let left: Uint8Array | null = null;
    let right: Uint8Array | null = null;
    try {
      const pl = await budget(lo);
      const pr = await budget(lo + k);
      if (!pl || !pr) {
        failures.add('inclusion', `entries ${lo}..${hi - 1} differ from the signed tree; stopped locating them after ${maxProofs} inclusion proofs`);
        return;
      }
      right = proofElement(pl, lo, size, lo + k, hi);
      left = proofElement(pr, lo + k, size, lo, lo + k);
    } catch (err) {
      failures.add('fetch', `cannot fetch the inclusion proofs to locate the entries that differ in ${lo}..${hi - 1}: ${errorMessage(err)}`);
      return;
    }
    if (!left || !right || !equalBytes(nodeHash(left, right), hash)) {
      failures.add('inclusion', `the log's inclusion proofs for entries ${lo} and ${lo + k} do not lead to its signed root of size ${size}`, lo);
      continue;
    }
    stack.push({ lo: lo + k, hi, hash: right }, { lo, hi: lo + k, hash: left });
  }
}

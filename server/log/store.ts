/**
 * The transparency log over PostgreSQL: an append-only RFC 9162 Merkle log (shared/merkle).
 *
 * Why it is shaped this way: every hash that never changes again (a COMPLETE subtree) is stored
 * once, in `log_nodes`, when the leaf that completes it is appended. Everything else (any root,
 * any proof, for the current size or any earlier one) is a fold of at most ~2·log₂ n stored
 * nodes, read with ONE query. Appends are batched: one transaction locks the one-row `log_head`
 * (so appenders in any number of processes serialise), reads the ≤ log₂ n frontier nodes,
 * computes every new row in memory (`appendBatch`) and bulk-inserts entries and nodes with
 * multi-row INSERTs chunked under the stores' bind-parameter limit (`MAX_BIND_PARAMETERS`).
 *
 * There is no update or delete API, and the migration refuses UPDATE/DELETE/TRUNCATE on these
 * tables with triggers: corrections and retractions are new entries.
 *
 * Proofs and roots read the upper levels (subtrees of ≥ 2^CACHED_LEVEL leaves) from memory
 * (`UpperNodes`): complete subtrees never change, so a copy is never stale, whichever process
 * appended them. The ≤ CACHED_LEVEL lower nodes of a proof come from memory too once the
 * background fill (`LowerNodes`, within a memory budget) has them, else from one query.
 */
import { CompiledQuery, sql, type Kysely, type Transaction } from 'kysely';
import {
  appendBatch,
  consistencyPlan,
  emptyRoot,
  frontier,
  HASH_SIZE,
  inclusionPlan,
  leafHash,
  resolvePlans,
  type HashPlan,
  type NodeId,
  type SubtreeHashSource,
} from '../../shared/merkle/tree.js';
import { prepared } from '../store/prepared.js';
import type { Database } from '../store/schema.js';
import { MAX_BIND_PARAMETERS } from '../store/index.js';

type Db = Kysely<Database>;
type Executor = Db | Transaction<Database>;

/** A request outside the log (index ≥ size, size beyond the current size, bad numbers). */
export class LogRangeError extends RangeError {
  override readonly name = 'LogRangeError';
  constructor(
    readonly code: 'invalid_argument' | 'out_of_range',
    message: string,
  ) {
    super(message);
  }
}

/** The stored tree is damaged (a node that must exist is missing): never a caller's fault. */
export class LogIntegrityError extends Error {
  override readonly name = 'LogIntegrityError';
}

export interface LogEntry {
  readonly index: number;
  /** The entry bytes as appended. */
  readonly entry: Uint8Array;
  /** SHA-256(0x00 || entry), as stored when the entry was appended. */
  readonly leafHash: Uint8Array;
  /** A version-2 entry's private part (entry.ts), kept beside it and not hashed into the leaf; null for version 1. */
  readonly private: Uint8Array | null;
}

export interface AppendResult {
  /** Index of the first entry of the batch (= the size before the append). */
  readonly firstIndex: number;
  /** Size after the append. */
  readonly size: number;
  /** Root hash at `size`. */
  readonly root: Uint8Array;
}

export interface TransparencyLogOptions {
  /** Largest entry accepted, in bytes (default 1 MiB): entries are signed activities, not blobs. */
  maxEntryBytes?: number;
  /**
   * About how much memory the lower levels (subtrees of 1 to 32 leaves) may take in the proof
   * cache (default 64 MiB, which holds every level of a 1M-entry log: a proof then reads nothing
   * from the database). Past it the lowest levels are dropped one at a time, and a proof reads
   * those from the database again (one query). 0 keeps only the upper levels.
   */
  proofCacheBytes?: number;
}

/**
 * Subtrees of 2^CACHED_LEVEL leaves and more are always kept in memory: about 2·n/2^CACHED_LEVEL
 * hashes (1 MB at 1M entries, 10 MB at 10M), while a proof then reads at most CACHED_LEVEL nodes.
 */
const CACHED_LEVEL = 6;
/** The lower levels' default budget: every level of a 1M-entry log (2M hashes, 61 MiB). */
const DEFAULT_PROOF_CACHE_BYTES = 64 * 2 ** 20;
/** Nodes read per query while the lower levels are filled. */
const FILL_CHUNK = 20_000;

/** Bind parameters per statement: under PGlite's limit, which is below PostgreSQL's 65,535. */
const MAX_PARAMS = MAX_BIND_PARAMETERS;
const DEFAULT_MAX_ENTRY_BYTES = 1024 * 1024;

function bytes(v: Uint8Array): Uint8Array {
  // pg returns Buffer (a Uint8Array subclass), PGlite Uint8Array: hand out plain views.
  return v.constructor === Uint8Array ? v : new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}

function checkNumber(name: string, v: number): void {
  if (!Number.isSafeInteger(v) || v < 0) throw new LogRangeError('invalid_argument', `${name} must be a non-negative safe integer, got ${String(v)}`);
}

/** Multi-row INSERT in chunks that stay under the bind-parameter limit. */
async function insertRows(db: Executor, table: string, columns: readonly string[], rows: readonly unknown[][]): Promise<void> {
  const per = Math.floor(MAX_PARAMS / columns.length);
  for (let offset = 0; offset < rows.length; offset += per) {
    const chunk = rows.slice(offset, offset + per);
    const params: unknown[] = [];
    const tuples: string[] = [];
    for (const row of chunk) {
      const marks: string[] = [];
      for (const value of row) {
        params.push(value);
        marks.push(`$${params.length}`);
      }
      tuples.push(`(${marks.join(',')})`);
    }
    await db.executeQuery(CompiledQuery.raw(`INSERT INTO ${table} (${columns.join(', ')}) VALUES ${tuples.join(',')}`, params));
  }
}

// Constant text and two array parameters (whatever the proof length): the fastest form measured
// on both PostgreSQL and PGlite, and each (level, idx) is one primary-key probe. Sent as a named
// prepared statement on PostgreSQL (parsed and planned once per connection).
const NODES_SQL = prepared('SELECT 1 AS part, n.level, n.idx, n.hash FROM unnest($1::smallint[], $2::bigint[]) AS q(level, idx) JOIN log_nodes n ON n.level = q.level AND n.idx = q.idx');
const HEAD_SQL = 'SELECT 0 AS part, -1 AS level, size AS idx, NULL::bytea AS hash FROM log_head';
// One level's stored nodes in [$2, $3), for filling the lower levels.
const LEVEL_RANGE_SQL = prepared('SELECT idx, hash FROM log_nodes WHERE level = $1 AND idx >= $2 AND idx < $3 ORDER BY idx');
// One index range per level: the stored upper nodes past those complete at size $3.
const UPPER_SQL = `SELECT 2 AS part, n.level, n.idx, n.hash FROM generate_series(${CACHED_LEVEL}, 62) AS l(level) JOIN log_nodes n ON n.level = l.level AND n.idx >= ($3::bigint >> l.level)`;
const NODES_AND_UPPER_SQL = prepared(`${HEAD_SQL} UNION ALL ${NODES_SQL} UNION ALL ${UPPER_SQL}`);

type NodeRow = { part: number; level: number; idx: number | string; hash: Uint8Array | null };

async function queryNodes(db: Executor, text: string, nodes: readonly NodeId[], extra: unknown[] = []): Promise<{ rows: NodeRow[]; hashes: (Uint8Array | null)[] }> {
  const { rows } = await db.executeQuery<NodeRow>(CompiledQuery.raw(text, [nodes.map((n) => n.level), nodes.map((n) => n.index), ...extra]));
  const found = new Map<string, Uint8Array>();
  for (const row of rows) if (Number(row.part) === 1 && row.hash) found.set(`${Number(row.level)}/${Number(row.idx)}`, bytes(row.hash));
  return { rows, hashes: nodes.map((n) => found.get(`${n.level}/${n.index}`) ?? null) };
}

function headSize(rows: readonly NodeRow[]): number {
  const head = rows.find((row) => Number(row.part) === 0);
  if (!head) throw new LogIntegrityError('log_head is missing: the log tables are damaged');
  return Number(head.idx);
}

/** The stored hashes of `nodes` (in order), in ONE query. A node that is not stored comes back as null. */
async function readNodes(db: Executor, nodes: readonly NodeId[]): Promise<(Uint8Array | null)[]> {
  return (await queryNodes(db, NODES_SQL, nodes)).hashes;
}

/**
 * As readNodes, with the head size and every stored node at levels ≥ CACHED_LEVEL that is not
 * complete at `cachedSize`, all in ONE query, so from one snapshot.
 */
async function readNodesAndUpper(
  db: Executor,
  nodes: readonly NodeId[],
  cachedSize: number,
): Promise<{ size: number; hashes: (Uint8Array | null)[]; upper: { level: number; index: number; hash: Uint8Array }[] }> {
  const { rows, hashes } = await queryNodes(db, NODES_AND_UPPER_SQL, nodes, [cachedSize]);
  const upper = rows.filter((row) => Number(row.part) === 2 && row.hash).map((row) => ({ level: Number(row.level), index: Number(row.idx), hash: bytes(row.hash!) }));
  return { size: headSize(rows), hashes, upper };
}

/**
 * Every complete subtree at levels ≥ CACHED_LEVEL of the tree of `size` leaves, in memory: level
 * ℓ holds nodes 0 … ⌊size/2^ℓ⌋ − 1, packed 32 bytes each. `size` is a size the database had
 * committed, so any size up to it exists without asking the database again.
 */
class UpperNodes {
  size = 0;
  private readonly levels: Uint8Array[] = [];

  /** The cached hash (a copy: callers own proofs) or undefined for a lower or newer node. */
  get(node: NodeId): Uint8Array | undefined {
    if (node.level < CACHED_LEVEL || node.index >= Math.floor(this.size / 2 ** node.level)) return undefined;
    const offset = node.index * HASH_SIZE;
    return this.levels[node.level - CACHED_LEVEL].slice(offset, offset + HASH_SIZE);
  }

  /**
   * Grows the cache to `size` with `rows`: every stored node at levels ≥ CACHED_LEVEL beyond the
   * cached ones, read in the same snapshot as `size`. A gap means a damaged table: nothing is
   * cached then, and the proofs that need the missing node report it.
   */
  extend(size: number, rows: readonly { level: number; index: number; hash: Uint8Array }[]): void {
    if (size <= this.size) return;
    const grown: Uint8Array[] = [];
    for (let level = CACHED_LEVEL; 2 ** level <= size; level++) {
      const have = Math.floor(this.size / 2 ** level);
      const count = Math.floor(size / 2 ** level);
      const old = this.levels[level - CACHED_LEVEL];
      const bytes = old && old.length >= count * HASH_SIZE ? old : new Uint8Array(Math.max(count, 2 * have, 64) * HASH_SIZE);
      if (old && bytes !== old) bytes.set(old.subarray(0, have * HASH_SIZE));
      grown[level - CACHED_LEVEL] = bytes;
    }
    const filled = new Map<number, number>();
    for (const { level, index, hash } of rows) {
      const bytes = grown[level - CACHED_LEVEL];
      if (!bytes || hash.length !== HASH_SIZE || index < Math.floor(this.size / 2 ** level) || index >= Math.floor(size / 2 ** level)) continue;
      bytes.set(hash, index * HASH_SIZE);
      filled.set(level, (filled.get(level) ?? 0) + 1);
    }
    for (let level = CACHED_LEVEL; level - CACHED_LEVEL < grown.length; level++) {
      if ((filled.get(level) ?? 0) !== Math.floor(size / 2 ** level) - Math.floor(this.size / 2 ** level)) return;
    }
    grown.forEach((bytes, i) => (this.levels[i] = bytes));
    this.size = size;
  }
}

/**
 * The complete subtrees below CACHED_LEVEL (levels 0 … CACHED_LEVEL − 1), in memory while the
 * budget allows: level ℓ holds nodes 0 … count − 1, packed. They are filled in the background in
 * chunks, never on a proof's path: the first proofs (and those about entries appended since)
 * read their lower nodes from the database until the fill has caught up. Stored nodes never
 * change, so a node once read is right for ever, in any process. When the log outgrows the
 * budget, the lowest level is dropped, then the next. A missing or malformed stored node stops
 * the filling for good: proofs then read the database and report the damage as before. A failed
 * read (the database out of reach) is tried again with the next catch-up (the log growing).
 */
class LowerNodes {
  /** Lowest level kept; CACHED_LEVEL means none. */
  private lowest = 0;
  private readonly levels: (Uint8Array | undefined)[] = [];
  private readonly counts: number[] = new Array<number>(CACHED_LEVEL).fill(0);
  /** Size (leaves) the filling works towards: a size the database had committed. */
  private target = 0;
  /** The fill under way; resolves false when it failed. */
  private filling: Promise<boolean> | null = null;
  private stopped = false;

  constructor(private readonly budgetBytes: number) {}

  /** The cached hash (a copy: callers own proofs) or undefined. */
  get(node: NodeId): Uint8Array | undefined {
    if (node.level < this.lowest || node.level >= CACHED_LEVEL || node.index >= this.counts[node.level]) return undefined;
    const offset = node.index * HASH_SIZE;
    return this.levels[node.level]!.slice(offset, offset + HASH_SIZE);
  }

  /** Fills up to `size` leaves (joining a fill under way); resolves, never rejects, once caught up or stopped. */
  async catchUp(db: Executor, size: number): Promise<void> {
    this.target = Math.max(this.target, size);
    this.fitBudget();
    while (!this.stopped && this.behind() !== undefined) {
      this.filling ??= this.fill(db)
        .then(
          () => true,
          (err: unknown) => {
            // A damaged table stops the filling for good; another failure (the database out of
            // reach a moment) ends this catch-up only, and the next one tries again.
            if (err instanceof LogIntegrityError) this.stopped = true;
            return false;
          },
        )
        .finally(() => {
          this.filling = null;
        });
      if (!(await this.filling)) return;
    }
  }

  private behind(): number | undefined {
    for (let level = this.lowest; level < CACHED_LEVEL; level++) if (this.counts[level] < Math.floor(this.target / 2 ** level)) return level;
    return undefined;
  }

  /** Drops the lowest levels while what the target size needs of the kept ones exceeds the budget. */
  private fitBudget(): void {
    const need = (from: number) => {
      let bytes = 0;
      for (let level = from; level < CACHED_LEVEL; level++) bytes += Math.floor(this.target / 2 ** level) * HASH_SIZE;
      return bytes;
    };
    while (this.lowest < CACHED_LEVEL && need(this.lowest) > this.budgetBytes) this.levels[this.lowest++] = undefined;
  }

  private async fill(db: Executor): Promise<void> {
    for (let level = this.behind(); level !== undefined && !this.stopped; level = this.behind()) {
      const start = this.counts[level];
      const wanted = Math.floor(this.target / 2 ** level);
      const end = Math.min(wanted, start + FILL_CHUNK);
      const { rows } = await db.executeQuery<{ idx: number | string; hash: Uint8Array }>(CompiledQuery.raw(LEVEL_RANGE_SQL, [level, start, end]));
      if (level < this.lowest) continue; // dropped for the budget meanwhile
      if (rows.length !== end - start) throw new LogIntegrityError(`level ${level} lacks stored nodes in [${start}, ${end})`);
      let bytes = this.levels[level];
      if (!bytes || bytes.length < end * HASH_SIZE) {
        const grown = new Uint8Array(Math.max(wanted, Math.ceil(((bytes?.length ?? 0) / HASH_SIZE) * 1.25)) * HASH_SIZE);
        if (bytes) grown.set(bytes.subarray(0, start * HASH_SIZE));
        bytes = this.levels[level] = grown;
      }
      rows.forEach((row, i) => {
        if (Number(row.idx) !== start + i || row.hash.length !== HASH_SIZE) throw new LogIntegrityError(`stored node (level ${level}, index ${start + i}) is missing or malformed`);
        bytes.set(row.hash, (start + i) * HASH_SIZE);
      });
      this.counts[level] = end;
    }
  }
}

function requireAll(nodes: readonly NodeId[], hashes: readonly (Uint8Array | null)[]): Uint8Array[] {
  return hashes.map((h, i) => {
    if (!h) throw new LogIntegrityError(`stored node (level ${nodes[i].level}, index ${nodes[i].index}) is missing: the log tables are damaged`);
    return h;
  });
}

export class TransparencyLog implements SubtreeHashSource {
  private readonly maxEntryBytes: number;
  private readonly listeners = new Set<(result: AppendResult, count: number) => void>();
  private readonly upper = new UpperNodes();
  private readonly lower: LowerNodes;

  constructor(
    private readonly db: Db,
    options: TransparencyLogOptions = {},
  ) {
    this.maxEntryBytes = options.maxEntryBytes ?? DEFAULT_MAX_ENTRY_BYTES;
    this.lower = new LowerNodes(options.proofCacheBytes ?? DEFAULT_PROOF_CACHE_BYTES);
  }

  /**
   * Fills the proof cache for the current size (within its budget) and resolves when done. Proofs
   * start the filling by themselves; this is for whoever wants it finished first (a bench, a test).
   */
  async warmProofCache(): Promise<void> {
    await this.head();
    await this.lower.catchUp(this.db, this.upper.size);
  }

  /**
   * Appends entries in one transaction, in order; returns the index of the first one and the new
   * size and root. Concurrent calls (from any process) serialise on `log_head`. `keys` (optional,
   * one per entry) name what each entry is about, for `latestIndexOf`; `privateParts` (optional,
   * one per entry) are kept beside version-2 entries. Neither is hashed.
   */
  async append(entries: readonly Uint8Array[], keys?: readonly (string | null)[], privateParts?: readonly (Uint8Array | null)[]): Promise<AppendResult> {
    if (entries.length === 0) {
      this.check(entries, keys, privateParts);
      const size = await this.size();
      return { firstIndex: size, size, root: await this.root(size) };
    }
    const { result, announce } = await this.db.transaction().execute((trx) => this.appendWithin(trx, entries, keys, privateParts));
    announce();
    return result;
  }

  /**
   * Appends entries inside the caller's transaction `trx`, so that they commit (or not) with the
   * caller's own writes: an issued verdict and its log entry are one transaction. The lock on
   * `log_head` is held until that transaction ends. Call `announce` once it has committed.
   */
  async appendWithin(
    trx: Executor,
    entries: readonly Uint8Array[],
    keys?: readonly (string | null)[],
    privateParts?: readonly (Uint8Array | null)[],
  ): Promise<{ result: AppendResult; announce: () => void }> {
    this.check(entries, keys, privateParts);
    if (entries.length === 0) throw new LogRangeError('invalid_argument', 'nothing to append');
    const leafHashes = entries.map(leafHash);
    const head = await sql<{ size: number | string }>`SELECT size FROM log_head WHERE id FOR UPDATE`.execute(trx);
    if (head.rows.length !== 1) throw new LogIntegrityError('log_head is missing: the log tables are damaged');
    const size = Number(head.rows[0].size);
    const front = frontier(size);
    const hashes = await readNodes(trx, front);
    const batch = appendBatch(size, requireAll(front, hashes), leafHashes);
    await insertRows(
      trx,
      'log_entries',
      ['idx', 'entry', 'leaf_hash', 'entry_key', 'private'],
      entries.map((e, i) => [size + i, e, leafHashes[i], keys?.[i] ?? null, privateParts?.[i] ?? null]),
    );
    await insertRows(
      trx,
      'log_nodes',
      ['level', 'idx', 'hash'],
      batch.nodes.map((n) => [n.level, n.index, n.hash]),
    );
    await sql`UPDATE log_head SET size = ${batch.size} WHERE id`.execute(trx);
    const result = { firstIndex: size, size: batch.size, root: batch.root };
    return { result, announce: () => this.announce(result, entries.length) };
  }

  private check(entries: readonly Uint8Array[], keys?: readonly (string | null)[], privateParts?: readonly (Uint8Array | null)[]): void {
    if (keys !== undefined && keys.length !== entries.length) throw new LogRangeError('invalid_argument', 'keys must match entries one to one');
    if (privateParts !== undefined && privateParts.length !== entries.length) throw new LogRangeError('invalid_argument', 'private parts must match entries one to one');
    if (!Array.isArray(entries)) throw new LogRangeError('invalid_argument', 'entries must be an array of byte arrays');
    entries.forEach((e, i) => {
      if (!(e instanceof Uint8Array)) throw new LogRangeError('invalid_argument', `entry ${i} is not a Uint8Array`);
      if (e.length > this.maxEntryBytes) throw new LogRangeError('invalid_argument', `entry ${i} is ${e.length} bytes, above the ${this.maxEntryBytes}-byte limit`);
    });
  }

  private announce(result: AppendResult, count: number): void {
    for (const listener of this.listeners) {
      try {
        listener(result, count);
      } catch {
        // a listener's failure is its own; the append is committed
      }
    }
  }

  /** Calls `listener` after each committed append made through this object; returns an unsubscribe. */
  onAppend(listener: (result: AppendResult, count: number) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Index of the newest entry appended with this key, or null. */
  async latestIndexOf(key: string): Promise<number | null> {
    const row = await this.db.selectFrom('log_entries').select('idx').where('entry_key', '=', key).orderBy('idx', 'desc').limit(1).executeTakeFirst();
    return row ? Number(row.idx) : null;
  }

  /** Stored entries appended with any of these keys, in index order. */
  async entriesByKey(keys: readonly string[]): Promise<Array<{ index: number; key: string; entry: Uint8Array; private: Uint8Array | null }>> {
    if (keys.length === 0) return [];
    const rows = await this.db.selectFrom('log_entries').select(['idx', 'entry_key', 'entry', 'private']).where('entry_key', 'in', keys).orderBy('idx').execute();
    return rows.map((r) => ({ index: Number(r.idx), key: r.entry_key!, entry: bytes(r.entry), private: r.private ? bytes(r.private) : null }));
  }

  /** Current number of entries. */
  async size(): Promise<number> {
    const row = await this.db.selectFrom('log_head').select('size').executeTakeFirst();
    if (!row) throw new LogIntegrityError('log_head is missing: the log tables are damaged');
    return Number(row.size);
  }

  /**
   * Stored entries with start ≤ index < end, in index order. Returns what is stored: a damaged
   * table shows up as a gap, which auditors report.
   */
  async entries(start: number, end: number): Promise<LogEntry[]> {
    checkNumber('start', start);
    checkNumber('end', end);
    if (end < start) throw new LogRangeError('invalid_argument', `end ${end} is before start ${start}`);
    if (end === start) return [];
    const rows = await this.db
      .selectFrom('log_entries')
      .select(['idx', 'entry', 'leaf_hash', 'private'])
      .where('idx', '>=', start)
      .where('idx', '<', end)
      .orderBy('idx')
      .execute();
    return rows.map((r) => ({ index: Number(r.idx), entry: bytes(r.entry), leafHash: bytes(r.leaf_hash), private: r.private ? bytes(r.private) : null }));
  }

  /** One entry, or null if there is none at `index`. */
  async entry(index: number): Promise<LogEntry | null> {
    checkNumber('index', index);
    const [row] = await this.entries(index, index + 1);
    return row ?? null;
  }

  /** Inclusion proof of leaf `index` in the tree of `size` leaves (size ≤ current size). */
  async inclusionProof(index: number, size: number): Promise<Uint8Array[]> {
    checkNumber('index', index);
    checkNumber('size', size);
    if (index >= size) throw new LogRangeError('out_of_range', `leaf index ${index} is outside a tree of size ${size}`);
    return this.resolve(inclusionPlan(index, size), size);
  }

  /** Consistency proof from `from` to `to` leaves (0 < from ≤ to ≤ current size). */
  async consistencyProof(from: number, to: number): Promise<Uint8Array[]> {
    checkNumber('from', from);
    checkNumber('to', to);
    if (from === 0) throw new LogRangeError('out_of_range', 'no consistency proof from the empty tree: every tree extends it');
    if (from > to) throw new LogRangeError('out_of_range', `from ${from} exceeds to ${to}: a log never shrinks`);
    return this.resolve(consistencyPlan(from, to), to);
  }

  /** Root hash at `size` (default: the current size), size ≤ current size. */
  async root(size?: number): Promise<Uint8Array> {
    return (await this.head(size)).root;
  }

  /** Size and root together, from one query: the current head, or the tree at `size`. */
  async head(size?: number): Promise<{ size: number; root: Uint8Array }> {
    if (size === undefined) {
      const current = await this.size();
      return { size: current, root: (await this.resolve([frontier(current)], current, true))[0] };
    }
    checkNumber('size', size);
    return { size, root: (await this.resolve([frontier(size)], size, true))[0] };
  }

  // --- SubtreeHashSource ---------------------------------------------------------------------

  async hashOf(level: number, index: number): Promise<Uint8Array> {
    const [h] = await this.hashesOf([{ level, index }]);
    return h;
  }

  /** Hashes of complete subtrees, one query; throws if one is not stored. */
  async hashesOf(nodes: readonly NodeId[]): Promise<Uint8Array[]> {
    return requireAll(nodes, await readNodes(this.db, nodes));
  }

  // --- internals -----------------------------------------------------------------------------

  /**
   * The nodes of the plans, cached ones from memory, the rest in one query; refuses sizes beyond
   * the head. A size beyond the cached one reads the head and the new upper nodes in that query,
   * and has the lower levels catch up in the background.
   */
  private async resolve(plans: readonly HashPlan[], size: number, root = false): Promise<Uint8Array[]> {
    const nodes = plans.flat();
    const known: (Uint8Array | null)[] = nodes.map((n) => this.upper.get(n) ?? this.lower.get(n) ?? null);
    const missing = nodes.flatMap((_, i) => (known[i] ? [] : [i]));
    const missingNodes = missing.map((i) => nodes[i]);
    let hashes: (Uint8Array | null)[] = [];
    if (size > this.upper.size) {
      // Sizes never shrink: only a size beyond the cached one needs the head.
      const read = await readNodesAndUpper(this.db, missingNodes, this.upper.size);
      this.upper.extend(read.size, read.upper);
      void this.lower.catchUp(this.db, this.upper.size);
      if (size > read.size) throw new LogRangeError('out_of_range', `size ${size} is beyond the current log size ${read.size}`);
      hashes = read.hashes;
    } else if (missing.length > 0) {
      hashes = await readNodes(this.db, missingNodes);
    }
    missing.forEach((nodeIndex, i) => (known[nodeIndex] = hashes[i]));
    if (root && size === 0) return [emptyRoot()];
    const found = requireAll(nodes, known);
    found.forEach((h, i) => {
      if (h.length !== HASH_SIZE) throw new LogIntegrityError(`stored node (level ${nodes[i].level}, index ${nodes[i].index}) is not ${HASH_SIZE} bytes`);
    });
    return resolvePlans(plans, { hashOf: () => Promise.reject(new Error('unused')), hashesOf: async () => found });
  }
}

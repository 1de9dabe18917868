/**
 * Merkle tree core of the transparency log (RFC 9162 §2.1, identical to RFC 6962 hashing).
 *
 * Why it is shaped this way: the log is append-only and lives in a database, so the only hashes we
 * ever store are those of COMPLETE (perfect) subtrees: once leaves [i·2^L, (i+1)·2^L) exist, that
 * node's hash never changes again. Every other hash the RFC talks about (the root of any tree size,
 * the right-edge siblings of a proof) is a right fold of at most ⌈log₂ n⌉ such stored nodes. Proof
 * generation is therefore split in two: a pure *plan* (which stored nodes, in which groups) and a
 * fetch through {@link SubtreeHashSource}, so the store can answer one proof with one batched query
 * of O(log n) rows, for the current size and for any historical size alike.
 *
 * Sizes and indices are JavaScript numbers restricted to safe integers (2^53 − 1 leaves is far
 * beyond any Vouch log); all index arithmetic uses division, never 32-bit bitwise operators.
 */
import { createHash } from 'node:crypto';

/** Byte length of every hash in the tree (SHA-256). */
export const HASH_SIZE = 32;

const LEAF_PREFIX = Uint8Array.of(0x00);
const NODE_PREFIX = Uint8Array.of(0x01);

/** MTH({}) = SHA-256 of the empty string: the root of the empty tree. */
export function emptyRoot(): Uint8Array {
  return new Uint8Array(createHash('sha256').digest());
}

/** Leaf hash: SHA-256(0x00 || entry). */
export function leafHash(entry: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(LEAF_PREFIX).update(entry).digest());
}

/** Interior node hash: SHA-256(0x01 || left || right). */
export function nodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(NODE_PREFIX).update(left).update(right).digest());
}

/** RFC 9162 split point: the largest power of two strictly smaller than n (n ≥ 2). */
export function splitPoint(n: number): number {
  if (!Number.isSafeInteger(n) || n < 2) throw new RangeError(`splitPoint needs an integer n >= 2, got ${n}`);
  let k = 2 ** Math.floor(Math.log2(n - 1)); // a guess; the loops below make it exact
  while (k >= n) k /= 2;
  while (k * 2 < n) k *= 2;
  return k;
}

/** Naive MTH over leaf hashes, straight from the RFC recursion. Reference for tests: O(n). */
export function rootFromLeafHashes(hashes: readonly Uint8Array[]): Uint8Array {
  const mth = (lo: number, hi: number): Uint8Array => {
    const n = hi - lo;
    if (n === 0) return emptyRoot();
    if (n === 1) return hashes[lo];
    const k = splitPoint(n);
    return nodeHash(mth(lo, lo + k), mth(lo + k, hi));
  };
  return mth(0, hashes.length);
}

/** Naive MTH over raw entries. Reference for tests: O(n). */
export function rootFromLeaves(entries: readonly Uint8Array[]): Uint8Array {
  return rootFromLeafHashes(entries.map(leafHash));
}

// ---------------------------------------------------------------------------------------------
// Stored complete subtrees
// ---------------------------------------------------------------------------------------------

/** A complete subtree: level L, index i covers leaves [i·2^L, (i+1)·2^L). Level 0 = leaves. */
export interface NodeId {
  readonly level: number;
  readonly index: number;
}

/** A complete subtree with its hash: the row the store persists. */
export interface SubtreeNode extends NodeId {
  readonly hash: Uint8Array;
}

/**
 * Read access to the hashes of complete subtrees. Implementations must only be asked for nodes
 * that are complete at the tree size being served, and must throw if a node is not stored.
 */
export interface SubtreeHashSource {
  hashOf(level: number, index: number): Promise<Uint8Array>;
  /** Optional batched read (one query for a whole proof); same order as `nodes`. */
  hashesOf?(nodes: readonly NodeId[]): Promise<Uint8Array[]>;
}

/**
 * One proof element (or root) as the right fold of complete subtrees, left to right:
 * hash = H(n0, H(n1, … H(n_{k-2}, n_{k-1}))). A single node is the common case.
 */
export type HashPlan = readonly NodeId[];

function assertSize(name: string, v: number): void {
  if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`${name} must be a non-negative safe integer, got ${v}`);
}

/**
 * The complete subtrees whose right fold is MTH(D[start:end]), largest first. Valid for the
 * ranges the RFC recursion produces (start aligned to the largest power of two ≤ end − start).
 */
function cover(start: number, end: number): NodeId[] {
  const nodes: NodeId[] = [];
  let cursor = start;
  let remaining = end - start;
  while (remaining > 0) {
    let size = 1;
    let level = 0;
    while (size * 2 <= remaining) {
      size *= 2;
      level++;
    }
    if (cursor % size !== 0) throw new Error(`internal: range [${start}, ${end}) is not RFC-aligned`);
    nodes.push({ level, index: cursor / size });
    cursor += size;
    remaining -= size;
  }
  return nodes;
}

/** Complete subtrees decomposing [0, size), left to right: what `rootAt(size)` folds. */
export function frontier(size: number): NodeId[] {
  assertSize('size', size);
  return cover(0, size);
}

/** Plan of PATH(index, D[0:size]) (RFC 9162 §2.1.3.1), proof order (leaf side first). */
export function inclusionPlan(index: number, size: number): HashPlan[] {
  assertSize('index', index);
  assertSize('size', size);
  if (index >= size) throw new RangeError(`leaf index ${index} is outside a tree of size ${size}`);
  const topDown: HashPlan[] = [];
  let start = 0;
  let n = size;
  let m = index;
  while (n > 1) {
    const k = splitPoint(n);
    if (m < k) {
      topDown.push(cover(start + k, start + n)); // PATH(m, D[0:k]) : MTH(D[k:n])
      n = k;
    } else {
      topDown.push(cover(start, start + k)); // PATH(m − k, D[k:n]) : MTH(D[0:k])
      start += k;
      m -= k;
      n -= k;
    }
  }
  return topDown.reverse();
}

/**
 * Plan of PROOF(size1, D[0:size2]) = SUBPROOF(size1, D[size2], true) (RFC 9162 §2.1.4.1), proof
 * order. Defined for 0 < size1 ≤ size2; equal sizes give the empty proof.
 */
export function consistencyPlan(size1: number, size2: number): HashPlan[] {
  assertSize('size1', size1);
  assertSize('size2', size2);
  if (size1 === 0) throw new RangeError('no consistency proof from the empty tree: any tree extends it');
  if (size1 > size2) throw new RangeError(`size1 ${size1} exceeds size2 ${size2}`);
  const topDown: HashPlan[] = [];
  let start = 0;
  let m = size1;
  let n = size2;
  let b = true;
  while (m !== n) {
    const k = splitPoint(n);
    if (m <= k) {
      topDown.push(cover(start + k, start + n)); // SUBPROOF(m, D[0:k], b) : MTH(D[k:n])
      n = k;
    } else {
      topDown.push(cover(start, start + k)); // SUBPROOF(m − k, D[k:n], false) : MTH(D[0:k])
      start += k;
      m -= k;
      n -= k;
      b = false;
    }
  }
  if (!b) topDown.push(cover(start, start + n)); // SUBPROOF(m, D[m], false) = {MTH(D[m])}
  return topDown.reverse();
}

/** Length of the inclusion proof for (index, size); 0 ≤ index < size. */
export function inclusionProofLength(index: number, size: number): number {
  return inclusionPlan(index, size).length;
}

/** Length of the consistency proof for (size1, size2); 0 < size1 ≤ size2. */
export function consistencyProofLength(size1: number, size2: number): number {
  return consistencyPlan(size1, size2).length;
}

/** Reads every node of the plans (batched when the source can) and folds each group. */
export async function resolvePlans(plans: readonly HashPlan[], src: SubtreeHashSource): Promise<Uint8Array[]> {
  const nodes = plans.flat();
  const hashes = src.hashesOf ? await src.hashesOf(nodes) : await Promise.all(nodes.map((n) => src.hashOf(n.level, n.index)));
  if (hashes.length !== nodes.length) throw new Error(`hash source returned ${hashes.length} hashes for ${nodes.length} nodes`);
  hashes.forEach((h, i) => {
    if (!(h instanceof Uint8Array) || h.length !== HASH_SIZE) {
      throw new Error(`hash source returned a malformed hash for node (${nodes[i].level}, ${nodes[i].index})`);
    }
  });
  let next = 0;
  return plans.map((plan) => {
    const group = hashes.slice(next, next + plan.length);
    next += plan.length;
    let acc = group[group.length - 1];
    for (let i = group.length - 2; i >= 0; i--) acc = nodeHash(group[i], acc);
    return acc;
  });
}

/** MTH(D[0:size]) from stored complete subtrees: at most ⌈log₂ size⌉ reads. */
export async function rootAt(size: number, src: SubtreeHashSource): Promise<Uint8Array> {
  assertSize('size', size);
  if (size === 0) return emptyRoot();
  const [root] = await resolvePlans([frontier(size)], src);
  return root;
}

/** Inclusion proof for leaf `index` in the tree of `size` leaves (RFC 9162 §2.1.3.1). */
export async function inclusionProof(index: number, size: number, src: SubtreeHashSource): Promise<Uint8Array[]> {
  return resolvePlans(inclusionPlan(index, size), src);
}

/** Consistency proof from `from` to `to` leaves (RFC 9162 §2.1.4.1); 0 < from ≤ to. */
export async function consistencyProof(from: number, to: number, src: SubtreeHashSource): Promise<Uint8Array[]> {
  return resolvePlans(consistencyPlan(from, to), src);
}

// ---------------------------------------------------------------------------------------------
// Appending
// ---------------------------------------------------------------------------------------------

/**
 * The stored nodes that {@link completedNodesOnAppend} will read when leaf `leafIndex` is
 * appended (left siblings of the newly completed nodes, bottom-up). All lie in `frontier(leafIndex)`.
 */
export function appendSiblings(leafIndex: number): NodeId[] {
  assertSize('leafIndex', leafIndex);
  const out: NodeId[] = [];
  let index = leafIndex;
  let level = 0;
  while (index % 2 === 1) {
    out.push({ level, index: index - 1 });
    index = (index - 1) / 2;
    level++;
  }
  return out;
}

/**
 * Rows to persist when leaf `leafIndex` (= the tree size before the append) is added: the leaf
 * itself, then every parent that this leaf completes, bottom-up. `getHash` is asked only for
 * the nodes listed by {@link appendSiblings}.
 */
export function completedNodesOnAppend(
  leafIndex: number,
  leafHashValue: Uint8Array,
  getHash: (level: number, index: number) => Uint8Array,
): SubtreeNode[] {
  assertSize('leafIndex', leafIndex);
  if (leafHashValue.length !== HASH_SIZE) throw new RangeError(`leaf hash must be ${HASH_SIZE} bytes`);
  const rows: SubtreeNode[] = [{ level: 0, index: leafIndex, hash: leafHashValue }];
  let { level, index, hash } = rows[0];
  while (index % 2 === 1) {
    hash = nodeHash(getHash(level, index - 1), hash);
    index = (index - 1) / 2;
    level++;
    rows.push({ level, index, hash });
  }
  return rows;
}

/**
 * Appends a batch of leaf hashes to a tree of `size` leaves whose frontier hashes are known
 * (`frontierHashes[i]` is the hash of `frontier(size)[i]`). Returns every row to persist and the
 * new root, so a store appends a batch with one read of ≤ ⌈log₂ n⌉ rows and one bulk insert.
 */
export function appendBatch(
  size: number,
  frontierHashes: readonly Uint8Array[],
  leafHashes: readonly Uint8Array[],
): { nodes: SubtreeNode[]; size: number; root: Uint8Array } {
  const front = frontier(size);
  if (frontierHashes.length !== front.length) {
    throw new RangeError(`a tree of size ${size} has ${front.length} frontier nodes, got ${frontierHashes.length} hashes`);
  }
  const known = new Map<string, Uint8Array>();
  const key = (level: number, index: number): string => `${level}/${index}`;
  front.forEach((n, i) => known.set(key(n.level, n.index), frontierHashes[i]));
  const get = (level: number, index: number): Uint8Array => {
    const h = known.get(key(level, index));
    if (!h) throw new Error(`internal: node (${level}, ${index}) missing during append`);
    return h;
  };
  const nodes: SubtreeNode[] = [];
  let n = size;
  for (const lh of leafHashes) {
    for (const row of completedNodesOnAppend(n, lh, get)) {
      known.set(key(row.level, row.index), row.hash);
      nodes.push(row);
    }
    n++;
  }
  const hashes = frontier(n).map((f) => get(f.level, f.index));
  return { nodes, size: n, root: foldRight(hashes) };
}

function foldRight(hashes: readonly Uint8Array[]): Uint8Array {
  if (hashes.length === 0) return emptyRoot();
  let acc = hashes[hashes.length - 1];
  for (let i = hashes.length - 2; i >= 0; i--) acc = nodeHash(hashes[i], acc);
  return acc;
}

/**
 * In-memory log holding every complete subtree hash, maintained on append exactly as the store
 * maintains its table. Serves proofs for its current size and any earlier size.
 */
export class MemoryTree implements SubtreeHashSource {
  /** levels[L][i] = hash of complete node (L, i). */
  private readonly levels: Uint8Array[][] = [[]];

  /** Number of leaves. */
  get size(): number {
    return this.levels[0].length;
  }

  /** Appends an entry; returns its leaf index. */
  append(entry: Uint8Array): number {
    return this.appendLeafHash(leafHash(entry));
  }

  /** Appends a precomputed leaf hash; returns its leaf index. */
  appendLeafHash(hash: Uint8Array): number {
    const index = this.size;
    for (const row of completedNodesOnAppend(index, hash, (l, i) => this.node(l, i))) {
      (this.levels[row.level] ??= []).push(row.hash);
    }
    return index;
  }

  /** Synchronous read of a complete node; throws if the node is not complete. */
  node(level: number, index: number): Uint8Array {
    const h = this.levels[level]?.[index];
    if (!h) throw new RangeError(`node (${level}, ${index}) is not a complete subtree of a tree of size ${this.size}`);
    return h;
  }

  async hashOf(level: number, index: number): Promise<Uint8Array> {
    return this.node(level, index);
  }

  /** Root at the current size (or an earlier one). */
  root(size: number = this.size): Uint8Array {
    assertSize('size', size);
    if (size > this.size) throw new RangeError(`size ${size} exceeds the tree size ${this.size}`);
    return foldRight(frontier(size).map((n) => this.node(n.level, n.index)));
  }
}

/**
 * Verification of Merkle inclusion and consistency proofs: RFC 9162 §2.1.3.2 and §2.1.4.2.
 *
 * Why it is written this way: this is the code that runs on the *other* side (followers, the audit
 * CLI, anyone holding a proof bundle), so it trusts nothing it is given. The RFC loops are kept
 * verbatim (fn/sn bit walking), and every input is checked first so that a rejection says why:
 * callers get a `ProofVerdict` with a stable `code` (for metrics, HTTP answers, audit reports)
 * and a human `reason`. `assertVerified` turns a verdict into a thrown `ProofError`.
 *
 * Edge rules follow the transparency-dev/merkle conformance vectors (test/fixtures/merkle):
 *  - inclusion needs index < size, so nothing is ever included in the empty tree;
 *  - a consistency proof FROM size 0 is rejected (it proves nothing: every tree extends the empty
 *    one; a follower without a previous checkpoint simply has nothing to check);
 *  - equal sizes need an empty proof and byte-identical roots.
 * Leaf hashes, proof hashes and roots must be 32 bytes, with one exception the vectors require:
 * equal-size consistency only compares the two roots byte for byte (no hashing is involved).
 *
 * What a verifier cannot check: the size itself. A root does not commit to its tree size (the
 * 3-leaf root H(H(l0,l1), l2) is also a valid-looking 4-leaf root whose right child is l2), and a
 * proof verified under a wrong size of the same proof length passes. Size and root must always be
 * taken together from one signed checkpoint, never from separate, unauthenticated inputs.
 */
import { consistencyProofLength, HASH_SIZE, inclusionProofLength, nodeHash } from './tree.js';

export type ProofFailureCode =
  | 'invalid_size' // a size or index is not a non-negative safe integer
  | 'index_out_of_range' // inclusion: index >= size
  | 'size_order' // consistency: size1 > size2
  | 'empty_tree' // consistency: size1 = 0
  | 'hash_length' // a leaf hash, proof hash or root is not 32 bytes
  | 'proof_length' // the proof does not have the exact length the sizes require
  | 'root_mismatch' // inclusion (or equal-size consistency): computed root differs
  | 'root1_mismatch' // consistency: the proof does not reproduce the old root
  | 'root2_mismatch'; // consistency: the proof does not reproduce the new root

export type ProofVerdict = { readonly ok: true } | { readonly ok: false; readonly code: ProofFailureCode; readonly reason: string };

export class ProofError extends Error {
  override readonly name = 'ProofError';
  constructor(
    readonly code: ProofFailureCode,
    message: string,
  ) {
    super(message);
  }
}

/** Throws a {@link ProofError} carrying the verdict's code and reason unless it is ok. */
export function assertVerified(verdict: ProofVerdict): void {
  if (!verdict.ok) throw new ProofError(verdict.code, verdict.reason);
}

const OK: ProofVerdict = Object.freeze({ ok: true });

function fail(code: ProofFailureCode, reason: string): ProofVerdict {
  return { ok: false, code, reason };
}

function badNumber(name: string, v: number): ProofVerdict | null {
  return Number.isSafeInteger(v) && v >= 0 ? null : fail('invalid_size', `${name} must be a non-negative safe integer, got ${v}`);
}

function badHashes(proof: readonly Uint8Array[]): ProofVerdict | null {
  for (let i = 0; i < proof.length; i++) {
    if (proof[i].length !== HASH_SIZE) {
      return fail('hash_length', `proof hash ${i} is ${proof[i].length} bytes, expected ${HASH_SIZE}`);
    }
  }
  return null;
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

const odd = (x: number): boolean => x % 2 === 1;
const half = (x: number): number => Math.floor(x / 2);

/**
 * Verifies that `leafHash` is leaf `index` of the tree of `size` leaves with root `root`
 * (RFC 9162 §2.1.3.2).
 */
export function verifyInclusion(
  leafHash: Uint8Array,
  index: number,
  size: number,
  proof: readonly Uint8Array[],
  root: Uint8Array,
): ProofVerdict {
  const pre = badNumber('index', index) ?? badNumber('size', size);
  if (pre) return pre;
  // 1. leaf_index must be < tree_size.
  if (index >= size) return fail('index_out_of_range', `leaf index ${index} is outside a tree of size ${size}`);
  if (leafHash.length !== HASH_SIZE) return fail('hash_length', `leaf hash is ${leafHash.length} bytes, expected ${HASH_SIZE}`);
  if (root.length !== HASH_SIZE) return fail('hash_length', `root is ${root.length} bytes, expected ${HASH_SIZE}`);
  const bad = badHashes(proof);
  if (bad) return bad;
  const want = inclusionProofLength(index, size);
  if (proof.length !== want) {
    return fail('proof_length', `inclusion proof for leaf ${index} of ${size} needs ${want} hashes, got ${proof.length}`);
  }

  // 2.-5. The RFC walk.
  let fn = index;
  let sn = size - 1;
  let r = leafHash;
  for (const p of proof) {
    if (sn === 0) return fail('proof_length', 'inclusion proof is longer than the path to the root');
    if (odd(fn) || fn === sn) {
      r = nodeHash(p, r);
      while (!odd(fn) && fn !== 0) {
        fn = half(fn);
        sn = half(sn);
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = half(fn);
    sn = half(sn);
  }
  if (sn !== 0) return fail('proof_length', 'inclusion proof is shorter than the path to the root');
  if (!equal(r, root)) return fail('root_mismatch', `inclusion proof for leaf ${index} does not lead to the root of size ${size}`);
  return OK;
}

/**
 * Verifies that the tree of `size2` leaves with root `root2` extends the tree of `size1` leaves
 * with root `root1` (RFC 9162 §2.1.4.2).
 */
export function verifyConsistency(
  size1: number,
  size2: number,
  proof: readonly Uint8Array[],
  root1: Uint8Array,
  root2: Uint8Array,
): ProofVerdict {
  const pre = badNumber('size1', size1) ?? badNumber('size2', size2);
  if (pre) return pre;
  if (size1 > size2) return fail('size_order', `size1 ${size1} exceeds size2 ${size2}: a log never shrinks`);
  if (size1 === 0) return fail('empty_tree', 'no consistency proof from the empty tree: every tree extends it');
  if (size1 === size2) {
    if (proof.length !== 0) return fail('proof_length', `equal sizes need an empty proof, got ${proof.length} hashes`);
    if (!equal(root1, root2)) return fail('root_mismatch', `two different roots for the same size ${size1}`);
    return OK;
  }
  if (root1.length !== HASH_SIZE) return fail('hash_length', `root1 is ${root1.length} bytes, expected ${HASH_SIZE}`);
  if (root2.length !== HASH_SIZE) return fail('hash_length', `root2 is ${root2.length} bytes, expected ${HASH_SIZE}`);
  const bad = badHashes(proof);
  if (bad) return bad;
  const want = consistencyProofLength(size1, size2);
  // 1. An empty consistency_path fails (0 < size1 < size2 always needs at least one hash).
  if (proof.length !== want) {
    return fail('proof_length', `consistency proof ${size1} -> ${size2} needs ${want} hashes, got ${proof.length}`);
  }

  // 2. If size1 is an exact power of two, root1 is the implicit first element.
  let path = proof;
  if (isPowerOfTwo(size1)) path = [root1, ...proof];
  // 3.-4.
  let fn = size1 - 1;
  let sn = size2 - 1;
  while (odd(fn)) {
    fn = half(fn);
    sn = half(sn);
  }
  // 5.
  let fr = path[0];
  let sr = path[0];
  // 6.
  for (const c of path.slice(1)) {
    if (sn === 0) return fail('proof_length', 'consistency proof is longer than the path to the root');
    if (odd(fn) || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      while (!odd(fn) && fn !== 0) {
        fn = half(fn);
        sn = half(sn);
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = half(fn);
    sn = half(sn);
  }
  // 7.
  if (sn !== 0) return fail('proof_length', 'consistency proof is shorter than the path to the root');
  if (!equal(fr, root1)) return fail('root1_mismatch', `consistency proof does not reproduce the root of size ${size1}`);
  if (!equal(sr, root2)) return fail('root2_mismatch', `consistency proof does not reproduce the root of size ${size2}`);
  return OK;
}

function isPowerOfTwo(n: number): boolean {
  while (n > 1 && n % 2 === 0) n /= 2;
  return n === 1;
}

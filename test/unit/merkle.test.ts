/**
 * Merkle core: conformance vectors (transparency-dev/merkle), exhaustive small trees against the
 * RFC 9162 recursive definitions, random large trees, and the storage-facing append helpers.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  appendBatch,
  appendSiblings,
  completedNodesOnAppend,
  consistencyPlan,
  consistencyProof,
  consistencyProofLength,
  emptyRoot,
  frontier,
  inclusionPlan,
  inclusionProof,
  inclusionProofLength,
  leafHash,
  MemoryTree,
  nodeHash,
  rootAt,
  rootFromLeafHashes,
  rootFromLeaves,
  splitPoint,
  type NodeId,
  type SubtreeHashSource,
} from '../../shared/merkle/tree.js';
import { assertVerified, ProofError, verifyConsistency, verifyInclusion } from '../../shared/merkle/verify.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const b64 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'base64'));
const entry = (i: number): Uint8Array => new TextEncoder().encode(`entry ${i}`);

// ---------------------------------------------------------------------------------------------
// Independent references: the RFC 9162 recursions, verbatim, over an array of leaf hashes.
// ---------------------------------------------------------------------------------------------

/** Memoized MTH(D[lo:hi]) over a fixed array of leaf hashes (naive, from the RFC recursion). */
function naiveMth(d: readonly Uint8Array[]): (lo: number, hi: number) => Uint8Array {
  const memo = new Map<string, Uint8Array>();
  const mth = (lo: number, hi: number): Uint8Array => {
    const key = `${lo}:${hi}`;
    let r = memo.get(key);
    if (!r) {
      const n = hi - lo;
      r = n === 0 ? emptyRoot() : n === 1 ? d[lo] : nodeHash(mth(lo, lo + splitPoint(n)), mth(lo + splitPoint(n), hi));
      memo.set(key, r);
    }
    return r;
  };
  return mth;
}

/** PATH(m, D[lo:hi]) (RFC 9162 §2.1.3.1), verbatim. */
function refPath(mth: (lo: number, hi: number) => Uint8Array, m: number, lo: number, hi: number): Uint8Array[] {
  const n = hi - lo;
  if (n === 1) return [];
  const k = splitPoint(n);
  if (m < k) return [...refPath(mth, m, lo, lo + k), mth(lo + k, hi)];
  return [...refPath(mth, m - k, lo + k, hi), mth(lo, lo + k)];
}

/** SUBPROOF(m, D[lo:hi], b) (RFC 9162 §2.1.4.1), verbatim. */
function refSubproof(mth: (lo: number, hi: number) => Uint8Array, m: number, lo: number, hi: number, b: boolean): Uint8Array[] {
  const n = hi - lo;
  if (m === n) return b ? [] : [mth(lo, hi)];
  const k = splitPoint(n);
  if (m <= k) return [...refSubproof(mth, m, lo, lo + k, b), mth(lo + k, hi)];
  return [...refSubproof(mth, m - k, lo + k, hi, false), mth(lo, lo + k)];
}

/** Go's closed-form proof lengths (transparency-dev/merkle), in BigInt: an independent oracle. */
function bitLen(x: bigint): number {
  return x === 0n ? 0 : x.toString(2).length;
}
function popCount(x: bigint): number {
  return [...x.toString(2)].filter((c) => c === '1').length;
}
function goInclusionLength(index: number, size: number): number {
  const inner = bitLen(BigInt(index) ^ BigInt(size - 1));
  return inner + popCount(BigInt(index) >> BigInt(inner));
}
function goConsistencyLength(size1: number, size2: number): number {
  if (size1 === size2) return 0;
  const inner0 = bitLen(BigInt(size1 - 1) ^ BigInt(size2 - 1));
  const border = popCount(BigInt(size1 - 1) >> BigInt(inner0));
  let shift = 0;
  while ((BigInt(size1) >> BigInt(shift)) % 2n === 0n) shift++;
  const start = BigInt(size1) === 1n << BigInt(shift) ? 0 : 1;
  return start + inner0 - shift + border;
}

/** Wraps a source and counts hash reads. */
function counting(src: SubtreeHashSource): SubtreeHashSource & { reads: number } {
  const c = {
    reads: 0,
    async hashOf(level: number, index: number) {
      c.reads++;
      return src.hashOf(level, index);
    },
  };
  return c;
}

const flipBit = (proof: Uint8Array[], i: number): Uint8Array[] =>
  proof.map((h, j) => (j === i ? Uint8Array.from(h, (b, k) => (k === 0 ? b ^ 0x10 : b)) : h));

// ---------------------------------------------------------------------------------------------
// Hashing basics
// ---------------------------------------------------------------------------------------------

describe('RFC 9162 hashing', () => {
  it('hashes leaves, nodes and the empty tree with domain separation', () => {
    expect(hex(emptyRoot())).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    // RFC 6962 test vector leaf: the empty entry.
    expect(hex(leafHash(new Uint8Array()))).toBe('6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d');
    const l = leafHash(Uint8Array.of(1));
    const r = leafHash(Uint8Array.of(2));
    const manual = createHash('sha256').update(Uint8Array.of(1)).update(l).update(r).digest();
    expect(hex(nodeHash(l, r))).toBe(manual.toString('hex'));
  });

  it('reproduces the RFC 6962 reference roots of the 8-leaf tree', () => {
    // Leaves and roots from the certificate-transparency / transparency-dev test suites.
    const leaves = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'].map(
      (h) => new Uint8Array(Buffer.from(h, 'hex')),
    );
    const roots = [
      '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
      'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
      'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
      '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
      '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
      'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
      '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
    ];
    const tree = new MemoryTree();
    leaves.forEach((e, i) => {
      tree.append(e);
      expect(hex(rootFromLeaves(leaves.slice(0, i + 1)))).toBe(roots[i]);
      expect(hex(tree.root())).toBe(roots[i]);
    });
  });

  it('splits at the largest power of two below n', () => {
    const expected: Record<number, number> = { 2: 1, 3: 2, 4: 2, 5: 4, 8: 4, 9: 8, 1024: 512, 1025: 1024 };
    for (const [n, k] of Object.entries(expected)) expect(splitPoint(Number(n))).toBe(k);
    expect(splitPoint(2 ** 53 - 1)).toBe(2 ** 52);
    expect(splitPoint(2 ** 52 + 1)).toBe(2 ** 52);
    expect(splitPoint(2 ** 52)).toBe(2 ** 51);
    expect(() => splitPoint(1)).toThrow(RangeError);
  });
});

// ---------------------------------------------------------------------------------------------
// Conformance vectors
// ---------------------------------------------------------------------------------------------

interface InclusionVector {
  leafIdx: number;
  treeSize: number;
  root: string;
  leafHash: string;
  proof: string[] | null;
  desc: string;
  wantErr: boolean;
}
interface ConsistencyVector {
  size1: number;
  size2: number;
  root1: string;
  root2: string;
  proof: string[] | null;
  desc: string;
  wantErr: boolean;
}

const vectorDir = new URL('../fixtures/merkle/', import.meta.url);
const vectorFiles = readdirSync(vectorDir).filter((f) => f.endsWith('.json')).sort();
const inclusionFiles = vectorFiles.filter((f) => f.startsWith('inclusion__'));
const consistencyFiles = vectorFiles.filter((f) => f.startsWith('consistency__'));
const readVector = <T>(f: string): T => JSON.parse(readFileSync(new URL(f, vectorDir), 'utf8')) as T;

describe('transparency-dev/merkle conformance vectors', () => {
  it('reads all 196 vectors', () => {
    expect(inclusionFiles).toHaveLength(98);
    expect(consistencyFiles).toHaveLength(98);
    expect(vectorFiles).toHaveLength(196);
  });

  it.each(inclusionFiles)('%s', (f) => {
    const v = readVector<InclusionVector>(f);
    const verdict = verifyInclusion(b64(v.leafHash), v.leafIdx, v.treeSize, (v.proof ?? []).map(b64), b64(v.root));
    expect(verdict.ok, `${v.desc}: ${verdict.ok ? 'accepted' : verdict.reason}`).toBe(!v.wantErr);
  });

  it.each(consistencyFiles)('%s', (f) => {
    const v = readVector<ConsistencyVector>(f);
    const verdict = verifyConsistency(v.size1, v.size2, (v.proof ?? []).map(b64), b64(v.root1), b64(v.root2));
    expect(verdict.ok, `${v.desc}: ${verdict.ok ? 'accepted' : verdict.reason}`).toBe(!v.wantErr);
  });
});

// ---------------------------------------------------------------------------------------------
// Exhaustive small trees
// ---------------------------------------------------------------------------------------------

describe('proofs from stored subtrees, every size 1..64', () => {
  const N = 64;
  const tree = new MemoryTree();
  const hashes: Uint8Array[] = [];
  for (let i = 0; i < N; i++) {
    tree.append(entry(i));
    hashes.push(leafHash(entry(i)));
  }
  const naiveRoots = [emptyRoot(), ...hashes.map((_, i) => rootFromLeafHashes(hashes.slice(0, i + 1)))];

  it('rootAt(size) equals the naive root for every size 0..64', async () => {
    for (let n = 0; n <= N; n++) {
      expect(hex(await rootAt(n, tree))).toBe(hex(naiveRoots[n]));
      expect(hex(tree.root(n))).toBe(hex(naiveRoots[n]));
    }
  });

  const mth = naiveMth(hashes);
  const same = (a: Uint8Array[], b: Uint8Array[]): boolean => a.map(hex).join() === b.map(hex).join();

  // These loops run ~100k checks: failures are collected and asserted once (expect() per check
  // would dominate the run time).
  it('inclusion proofs equal PATH(m, D[n]), verify, and every tampering fails', async () => {
    const failures: string[] = [];
    const check = (cond: boolean, what: string): void => {
      if (!cond) failures.push(what);
    };
    let checked = 0;
    for (let n = 1; n <= N; n++) {
      const root = naiveRoots[n];
      for (let m = 0; m < n; m++) {
        const at = `leaf ${m} size ${n}`;
        const src = counting(tree);
        const proof = await inclusionProof(m, n, src);
        check(same(proof, refPath(mth, m, 0, n)), `${at}: proof differs from PATH(m, D[n])`);
        check(proof.length <= Math.ceil(Math.log2(n)), `${at}: proof longer than ceil(log2 n)`);
        check(src.reads <= 2 * Math.ceil(Math.log2(n)), `${at}: ${src.reads} reads`);
        check(verifyInclusion(hashes[m], m, n, proof, root).ok, `${at}: valid proof rejected`);

        const rejected = (what: string, h: Uint8Array, i: number, s: number, p: Uint8Array[], r: Uint8Array, code?: string): void => {
          const v = verifyInclusion(h, i, s, p, r);
          check(!v.ok && (code === undefined || v.code === code), `${at}: ${what} ${v.ok ? 'accepted' : `rejected as ${v.code}`}`);
        };
        for (let i = 0; i < proof.length; i++) {
          rejected(`bit flip in hash ${i}`, hashes[m], m, n, flipBit(proof, i), root, 'root_mismatch');
          rejected(`hash ${i} dropped`, hashes[m], m, n, proof.filter((_, j) => j !== i), root, 'proof_length');
        }
        rejected('hash appended', hashes[m], m, n, [...proof, root], root, 'proof_length');
        rejected('hash prepended', hashes[m], m, n, [root, ...proof], root, 'proof_length');
        for (const wrong of [m - 1, m + 1, m ^ 1, m ^ 2]) {
          if (wrong < 0 || wrong === m) continue;
          rejected(`index ${wrong}`, hashes[m], wrong, n, proof, root);
          if (wrong < n) rejected(`leaf ${wrong} swapped in`, hashes[wrong], m, n, proof, root, 'root_mismatch');
        }
        // A wrong size is caught exactly when it changes the proof length: the root does not
        // commit to the size on its own (see 'size is authenticated by the checkpoint' below).
        for (const s of [n - 1, n + 1, 2 * n]) {
          if (s <= m || s === n) continue;
          const accepted = verifyInclusion(hashes[m], m, s, proof, root).ok;
          check(accepted === (inclusionProofLength(m, s) === proof.length), `${at}: claimed size ${s} accepted=${accepted}`);
        }
        rejected('foreign leaf', leafHash(entry(1000)), m, n, proof, root, 'root_mismatch');
        if (n > 1) rejected('older root', hashes[m], m, n, proof, naiveRoots[n - 1], 'root_mismatch');
        checked++;
      }
    }
    expect(failures).toEqual([]);
    expect(checked).toBe((N * (N + 1)) / 2);
  });

  it('consistency proofs equal PROOF(m, D[n]), verify, and every tampering fails', async () => {
    const failures: string[] = [];
    const check = (cond: boolean, what: string): void => {
      if (!cond) failures.push(what);
    };
    let checked = 0;
    for (let n = 1; n <= N; n++) {
      for (let m = 1; m <= n; m++) {
        const at = `${m} -> ${n}`;
        const src = counting(tree);
        const proof = await consistencyProof(m, n, src);
        check(same(proof, refSubproof(mth, m, 0, n, true)), `${at}: proof differs from PROOF(m, D[n])`);
        check(proof.length <= Math.ceil(Math.log2(n)) + 1, `${at}: proof too long`);
        check(proof.length === goConsistencyLength(m, n), `${at}: length differs from the closed form`);
        check(src.reads <= 2 * Math.ceil(Math.log2(n)) + 1, `${at}: ${src.reads} reads`);
        const [r1, r2] = [naiveRoots[m], naiveRoots[n]];
        check(verifyConsistency(m, n, proof, r1, r2).ok, `${at}: valid proof rejected`);

        const rejected = (what: string, s1: number, s2: number, p: Uint8Array[], a: Uint8Array, b: Uint8Array): void => {
          check(!verifyConsistency(s1, s2, p, a, b).ok, `${at}: ${what} accepted`);
        };
        for (let i = 0; i < proof.length; i++) {
          rejected(`bit flip in hash ${i}`, m, n, flipBit(proof, i), r1, r2);
          rejected(`hash ${i} dropped`, m, n, proof.filter((_, j) => j !== i), r1, r2);
        }
        rejected('hash appended', m, n, [...proof, r2], r1, r2);
        rejected('hash prepended', m, n, [r1, ...proof], r1, r2);
        if (m < n) {
          rejected('swapped roots', m, n, proof, r2, r1);
          rejected('wrong root1', m, n, proof, naiveRoots[m - 1], r2);
          rejected('wrong root2', m, n, proof, r1, naiveRoots[n - 1]);
          for (const s1 of [m - 1, m + 1]) {
            if (s1 >= 1 && s1 < n && consistencyProofLength(s1, n) !== proof.length) rejected(`size1 ${s1}`, s1, n, proof, r1, r2);
          }
          for (const s2 of [n - 1, n + 1]) {
            if (s2 > m && consistencyProofLength(m, s2) !== proof.length) rejected(`size2 ${s2}`, m, s2, proof, r1, r2);
          }
        }
        checked++;
      }
    }
    expect(failures).toEqual([]);
    expect(checked).toBe((N * (N + 1)) / 2);
  });

  it('refuses to generate meaningless proofs', async () => {
    await expect(inclusionProof(5, 5, tree)).rejects.toThrow(RangeError);
    await expect(inclusionProof(0, 0, tree)).rejects.toThrow(RangeError);
    await expect(inclusionProof(-1, 5, tree)).rejects.toThrow(RangeError);
    await expect(inclusionProof(1.5, 5, tree)).rejects.toThrow(RangeError);
    await expect(consistencyProof(0, 5, tree)).rejects.toThrow(RangeError);
    await expect(consistencyProof(6, 5, tree)).rejects.toThrow(RangeError);
    expect(await consistencyProof(5, 5, tree)).toEqual([]);
    // Nodes beyond the tree are refused by the source itself.
    await expect(rootAt(N + 1, tree)).rejects.toThrow(/not a complete subtree/);
  });
});

// ---------------------------------------------------------------------------------------------
// Verifier edge cases
// ---------------------------------------------------------------------------------------------

describe('size is authenticated by the checkpoint, not by the root', () => {
  it('accepts a proof under another size whose proof has the same shape (RFC 9162 property)', async () => {
    // The 3-leaf root H(H(l0,l1), l2) has the shape of a 4-leaf root whose right subtree hash is
    // l2: the verifier cannot tell a leaf hash from a node hash. Hence size and root must always
    // come together from one signed checkpoint.
    const tree = new MemoryTree();
    for (let i = 0; i < 4; i++) tree.append(entry(i));
    const proof = await inclusionProof(0, 3, tree);
    expect(verifyInclusion(leafHash(entry(0)), 0, 3, proof, tree.root(3))).toEqual({ ok: true });
    expect(verifyInclusion(leafHash(entry(0)), 0, 4, proof, tree.root(3))).toEqual({ ok: true });
    const cproof = await consistencyProof(1, 3, tree);
    expect(verifyConsistency(1, 4, cproof, tree.root(1), tree.root(3))).toEqual({ ok: true });
  });
});

describe('verifier rejections carry a reason', () => {
  const tree = new MemoryTree();
  for (let i = 0; i < 10; i++) tree.append(entry(i));

  it('names the failure', async () => {
    const proof = await inclusionProof(3, 10, tree);
    const root = tree.root();
    const lh = leafHash(entry(3));
    const code = (v: ReturnType<typeof verifyInclusion>): string => (v.ok ? 'ok' : v.code);
    expect(code(verifyInclusion(lh, 3, 10, proof, root))).toBe('ok');
    expect(code(verifyInclusion(lh, 10, 10, proof, root))).toBe('index_out_of_range');
    expect(code(verifyInclusion(lh, 3, -1, proof, root))).toBe('invalid_size');
    expect(code(verifyInclusion(lh, 3, 2 ** 53, proof, root))).toBe('invalid_size');
    expect(code(verifyInclusion(lh.subarray(1), 3, 10, proof, root))).toBe('hash_length');
    expect(code(verifyInclusion(lh, 3, 10, [...proof.slice(1), new Uint8Array(31)], root))).toBe('hash_length');
    expect(code(verifyInclusion(lh, 3, 10, proof.slice(1), root))).toBe('proof_length');
    expect(code(verifyInclusion(lh, 3, 10, proof, emptyRoot()))).toBe('root_mismatch');

    const cproof = await consistencyProof(3, 10, tree);
    const c = (v: ReturnType<typeof verifyConsistency>): string => (v.ok ? 'ok' : v.code);
    expect(c(verifyConsistency(3, 10, cproof, tree.root(3), root))).toBe('ok');
    expect(c(verifyConsistency(10, 3, cproof, tree.root(3), root))).toBe('size_order');
    expect(c(verifyConsistency(0, 10, [], emptyRoot(), root))).toBe('empty_tree');
    expect(c(verifyConsistency(10, 10, [], root, root))).toBe('ok');
    expect(c(verifyConsistency(10, 10, [root], root, root))).toBe('proof_length');
    expect(c(verifyConsistency(10, 10, [], tree.root(9), root))).toBe('root_mismatch');
    expect(c(verifyConsistency(3, 10, cproof, tree.root(4), root))).toBe('root1_mismatch');
    expect(c(verifyConsistency(3, 10, cproof, tree.root(3), tree.root(9)))).toBe('root2_mismatch');

    expect(() => assertVerified(verifyConsistency(3, 10, cproof, tree.root(4), root))).toThrow(ProofError);
    try {
      assertVerified(verifyInclusion(lh, 3, 10, proof.slice(1), root));
    } catch (e) {
      expect(e).toBeInstanceOf(ProofError);
      expect((e as ProofError).code).toBe('proof_length');
      expect((e as ProofError).message).toMatch(/needs 4 hashes, got 3/);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Large trees
// ---------------------------------------------------------------------------------------------

/** Deterministic PRNG (mulberry32) so failures reproduce. */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('random sizes up to 100k with MemoryTree', () => {
  const N = 100_000;
  const tree = new MemoryTree();
  const hashes: Uint8Array[] = [];
  for (let i = 0; i < N; i++) hashes.push(leafHash(entry(i)));
  for (const h of hashes) tree.appendLeafHash(h);
  const rand = rng(9162);
  const pick = (max: number): number => 1 + Math.floor(rand() * max); // 1..max

  it('matches the naive root at random sizes', async () => {
    const sizes = [1, 2, 3, 65_536, 65_537, N, ...Array.from({ length: 4 }, () => pick(N))];
    for (const n of sizes) {
      const src = counting(tree);
      expect(hex(await rootAt(n, src))).toBe(hex(rootFromLeafHashes(hashes.slice(0, n))));
      expect(src.reads).toBeLessThanOrEqual(Math.ceil(Math.log2(n)) || 1);
    }
  });

  it('inclusion and consistency proofs verify, are short, and cost O(log n) reads', async () => {
    const roots = new Map<number, Uint8Array>();
    const rootOf = (n: number): Uint8Array => {
      let r = roots.get(n);
      if (!r) roots.set(n, (r = tree.root(n)));
      return r;
    };
    for (let t = 0; t < 500; t++) {
      const n = pick(N);
      const m = Math.floor(rand() * n);
      const bound = Math.ceil(Math.log2(n));
      const src = counting(tree);
      const proof = await inclusionProof(m, n, src);
      expect(proof.length).toBeLessThanOrEqual(bound);
      expect(proof.length).toBe(goInclusionLength(m, n));
      expect(src.reads).toBeLessThanOrEqual(2 * bound);
      expect(verifyInclusion(hashes[m], m, n, proof, rootOf(n))).toEqual({ ok: true });
      if (proof.length > 0) expect(verifyInclusion(hashes[m], m, n, flipBit(proof, t % proof.length), rootOf(n)).ok).toBe(false);

      const s1 = pick(n);
      const csrc = counting(tree);
      const cproof = await consistencyProof(s1, n, csrc);
      expect(cproof.length).toBeLessThanOrEqual(bound + 1);
      expect(cproof.length).toBe(goConsistencyLength(s1, n));
      expect(csrc.reads).toBeLessThanOrEqual(2 * bound + 1);
      expect(verifyConsistency(s1, n, cproof, rootOf(s1), rootOf(n))).toEqual({ ok: true });
      if (cproof.length > 0) expect(verifyConsistency(s1, n, flipBit(cproof, t % cproof.length), rootOf(s1), rootOf(n)).ok).toBe(false);
    }
  });

  it('matches the naive RFC recursion on a sample of a 100k tree', async () => {
    const mth = naiveMth(hashes);
    for (let t = 0; t < 5; t++) {
      const n = pick(4096);
      const m = Math.floor(rand() * n);
      expect((await inclusionProof(m, n, tree)).map(hex)).toEqual(refPath(mth, m, 0, n).map(hex));
      const s1 = pick(n);
      expect((await consistencyProof(s1, n, tree)).map(hex)).toEqual(refSubproof(mth, s1, 0, n, true).map(hex));
    }
  });
});

describe('sizes beyond 2^32 (virtual periodic tree)', () => {
  // Leaves repeat with period 16, so node (L, i) depends only on L and i mod 2^(4-L): any node of
  // a 2^52-leaf tree is computable, and wrong 53-bit index arithmetic shows up as a failed proof.
  const P = 4;
  const table: Uint8Array[][] = [Array.from({ length: 2 ** P }, (_, i) => leafHash(entry(i)))];
  for (let L = 1; L <= 53; L++) {
    const below = table[L - 1];
    const width = Math.max(1, below.length / 2);
    table.push(Array.from({ length: width }, (_, i) => nodeHash(below[(2 * i) % below.length], below[(2 * i + 1) % below.length])));
  }
  const virtual: SubtreeHashSource = {
    async hashOf(level, index) {
      const row = table[level];
      return row[index % row.length];
    },
  };
  const rand = rng(6962);

  it('proofs for huge indices verify against rootAt and have the closed-form length', async () => {
    const sizes = [2 ** 32, 2 ** 32 + 1, 2 ** 40 + 12345, 2 ** 52 + 7, 2 ** 53 - 1];
    for (let t = 0; t < 50; t++) sizes.push(Math.floor(rand() * 2 ** 53) + 1);
    for (const n of sizes) {
      const m = Math.floor(rand() * n);
      const root = await rootAt(n, virtual);
      const proof = await inclusionProof(m, n, virtual);
      expect(proof.length).toBe(goInclusionLength(m, n));
      expect(verifyInclusion(table[0][m % 16], m, n, proof, root)).toEqual({ ok: true });
      const s1 = 1 + Math.floor(rand() * n);
      const cproof = await consistencyProof(s1, n, virtual);
      expect(cproof.length).toBe(goConsistencyLength(s1, n));
      expect(verifyConsistency(s1, n, cproof, await rootAt(s1, virtual), root)).toEqual({ ok: true });
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Append helpers (what the store uses)
// ---------------------------------------------------------------------------------------------

describe('append helpers', () => {
  it('completedNodesOnAppend returns the leaf and every parent it completes', () => {
    const tree = new MemoryTree();
    for (let i = 0; i < 7; i++) tree.append(entry(i));
    const lh = leafHash(entry(7));
    const asked: NodeId[] = [];
    const rows = completedNodesOnAppend(7, lh, (level, index) => {
      asked.push({ level, index });
      return tree.node(level, index);
    });
    expect(rows.map(({ level, index }) => [level, index])).toEqual([
      [0, 7],
      [1, 3],
      [2, 1],
      [3, 0],
    ]);
    expect(asked).toEqual(appendSiblings(7));
    expect(asked).toEqual([
      { level: 0, index: 6 },
      { level: 1, index: 2 },
      { level: 2, index: 0 },
    ]);
    expect(hex(rows[3].hash)).toBe(hex(rootFromLeaves(Array.from({ length: 8 }, (_, i) => entry(i)))));
    expect(completedNodesOnAppend(8, lh, () => {
      throw new Error('an even leaf completes nothing');
    })).toHaveLength(1);
  });

  it('appendSiblings lie in the frontier of the current size', () => {
    for (let n = 0; n < 300; n++) {
      const f = frontier(n).map((x) => `${x.level}/${x.index}`);
      for (const s of appendSiblings(n)) expect(f).toContain(`${s.level}/${s.index}`);
    }
  });

  it('appendBatch produces exactly the nodes MemoryTree stores, and the new root', () => {
    const all = Array.from({ length: 200 }, (_, i) => leafHash(entry(i)));
    const tree = new MemoryTree();
    const rand = rng(1);
    let size = 0;
    while (size < all.length) {
      const batch = all.slice(size, size + 1 + Math.floor(rand() * 20));
      const frontierHashes = frontier(size).map((n) => tree.node(n.level, n.index));
      const result = appendBatch(size, frontierHashes, batch);
      for (const h of batch) tree.appendLeafHash(h);
      expect(result.size).toBe(tree.size);
      expect(hex(result.root)).toBe(hex(rootFromLeafHashes(all.slice(0, tree.size))));
      for (const row of result.nodes) expect(hex(row.hash)).toBe(hex(tree.node(row.level, row.index)));
      // Every node completed by the batch is returned, once.
      const completedBefore = (s: number): number => {
        let c = 0;
        for (let L = 0, w = 1; w <= s; L++, w *= 2) c += Math.floor(s / w);
        return c;
      };
      expect(result.nodes).toHaveLength(completedBefore(tree.size) - completedBefore(size));
      size = tree.size;
    }
    expect(() => appendBatch(3, [], [all[3]])).toThrow(/frontier/);
  });

  it('plans name each stored node at most once and stay within the tree', () => {
    const failures: string[] = [];
    const within = (x: NodeId, n: number): boolean => (x.index + 1) * 2 ** x.level <= n;
    for (let n = 1; n <= 128; n++) {
      for (let m = 0; m < n; m++) {
        const nodes = inclusionPlan(m, n).flat();
        if (new Set(nodes.map((x) => `${x.level}/${x.index}`)).size !== nodes.length) failures.push(`inclusion ${m}@${n}: duplicate node`);
        if (!nodes.every((x) => within(x, n))) failures.push(`inclusion ${m}@${n}: node outside the tree`);
      }
      for (let m = 1; m <= n; m++) {
        if (!consistencyPlan(m, n).flat().every((x) => within(x, n))) failures.push(`consistency ${m}->${n}: node outside the tree`);
      }
    }
    expect(failures).toEqual([]);
  });
});

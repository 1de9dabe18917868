// Transparency log figures:
// - log_append_per_s_pglite / _postgres: entries of ~300 bytes (JCS-like JSON) appended per
//   second through TransparencyLog.append, in batches of 1,000, into the 1M-entry log below
//   (postgres only when VOUCH_BENCH_DATABASE_URL is set; a throwaway schema, dropped after);
// - inclusion_proof_ms_at_1M, consistency_proof_ms_at_1M: median time of one proof through
//   TransparencyLog in a log of 1,000,000 entries, random index / old size, with its proof cache
//   filled (log_proof_cache_fill_s_at_1M: how long that took); _upper_cache_only: the same with
//   only the levels of >= 64 leaves cached (one SQL query a proof);
// - inclusion_proof_bytes_at_1M, consistency_proof_bytes_at_1M: the largest proof seen, in bytes.
// The 1M log is NOT appended through the API (that would take minutes): its leaf hashes (entry i =
// the 8-byte big-endian i) and every complete subtree are generated inside the database with
// generate_series and sha256(), level by level, then the root is checked against MemoryTree. The
// entries themselves are not stored (proofs never read them).
// Proof figures come from PostgreSQL when VOUCH_BENCH_DATABASE_URL is set, else from PGlite;
// both are printed with a suffix when both ran.
import { randomBytes, randomInt } from 'node:crypto';
import { rmSync } from 'node:fs';
import { sql } from 'kysely';
import pg from 'pg';
import { TransparencyLog } from '../server/log/store.js';
import { openStore, type Store } from '../server/store/index.js';
import { MemoryTree } from '../shared/merkle/tree.js';
import { tempDir } from '../test/helpers/services.js';
import { round, type BenchResult } from './result.js';

const MILLION = 1_000_000;
const APPEND_BATCH = 1_000;
const APPEND_BATCHES = 20;
const PROOF_SAMPLES = 500;

interface Backend {
  name: 'pglite' | 'postgres';
  store: Store;
  cleanup(): Promise<void>;
}

async function openBackend(name: 'pglite' | 'postgres'): Promise<Backend> {
  const dataDir = tempDir('vouch-bench-log-');
  if (name === 'pglite') {
    const store = await openStore({ dataDir });
    return { name, store, cleanup: async () => rmSync(dataDir, { recursive: true, force: true }) };
  }
  const url = process.env.VOUCH_BENCH_DATABASE_URL!;
  const schema = `vouch_bench_${randomBytes(6).toString('hex')}`;
  const store = await openStore({ dataDir, databaseUrl: url, databaseSchema: schema });
  return {
    name,
    store,
    async cleanup() {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await client.end();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** A ~300-byte entry shaped like the JCS of a signed Create{Verdict}. */
function entry(i: number): Uint8Array {
  const digest = randomBytes(32).toString('hex');
  const text = `{"actor":"https://bench.example/actor","id":"https://bench.example/verdicts/${i}/create","object":{"confidence":0.9,"id":"https://bench.example/verdicts/${i}","label":"spam","method":"hashlist","subject":[{"algorithm":"sha256","digest":"${digest}"}],"type":"Verdict"},"type":"Create"}`;
  return new Uint8Array(Buffer.from(text, 'utf8'));
}

async function appendRate(backend: Backend): Promise<number> {
  const log = new TransparencyLog(backend.store.db);
  const batches = Array.from({ length: APPEND_BATCHES + 1 }, (_, b) => Array.from({ length: APPEND_BATCH }, (_, i) => entry(b * APPEND_BATCH + i)));
  await log.append(batches[0]); // warm-up
  const started = performance.now();
  for (const batch of batches.slice(1)) await log.append(batch);
  const seconds = (performance.now() - started) / 1000;
  return (APPEND_BATCH * APPEND_BATCHES) / seconds;
}

/** Fills an EMPTY log with 1M synthetic entries and all their complete subtrees, in the database. */
async function fillMillion(store: Store): Promise<void> {
  const db = store.db;
  // Proofs read only log_nodes and log_head: the entries themselves are not stored.
  await sql`INSERT INTO log_nodes (level, idx, hash) SELECT 0, g, sha256('\\x00'::bytea || int8send(g)) FROM generate_series(0, ${MILLION - 1}::bigint) AS g`.execute(db);
  for (let level = 1; 2 ** level <= MILLION; level++) {
    await sql`INSERT INTO log_nodes (level, idx, hash)
      SELECT ${level}::smallint, a.idx / 2, sha256('\\x01'::bytea || a.hash || b.hash)
      FROM log_nodes a JOIN log_nodes b ON b.level = a.level AND b.idx = a.idx + 1
      WHERE a.level = ${level - 1}::smallint AND a.idx % 2 = 0`.execute(db);
  }
  await sql`UPDATE log_head SET size = ${MILLION}`.execute(db);
  await sql`ANALYZE log_nodes`.execute(db);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

interface ProofTimes {
  inclusionMs: number;
  consistencyMs: number;
  inclusionBytes: number;
  consistencyBytes: number;
}

/** Median times of random inclusion and consistency proofs at 1M through `log`. */
async function timeProofs(log: TransparencyLog): Promise<ProofTimes> {
  for (let i = 0; i < 50; i++) await log.inclusionProof(randomInt(0, MILLION), MILLION); // warm-up
  const inclusion: number[] = [];
  let inclusionBytes = 0;
  for (let i = 0; i < PROOF_SAMPLES; i++) {
    const index = randomInt(0, MILLION);
    const t = performance.now();
    const proof = await log.inclusionProof(index, MILLION);
    inclusion.push(performance.now() - t);
    inclusionBytes = Math.max(inclusionBytes, proof.length * 32);
  }
  const consistency: number[] = [];
  let consistencyBytes = 0;
  for (let i = 0; i < PROOF_SAMPLES; i++) {
    const from = randomInt(1, MILLION);
    const t = performance.now();
    const proof = await log.consistencyProof(from, MILLION);
    consistency.push(performance.now() - t);
    consistencyBytes = Math.max(consistencyBytes, proof.length * 32);
  }
  return { inclusionMs: median(inclusion), consistencyMs: median(consistency), inclusionBytes, consistencyBytes };
}

/**
 * Proofs at 1M with the whole proof cache (every level, filled first: the fill time is a figure
 * too) and with the upper levels only (`proofCacheBytes: 0`: one query a proof, the path a log
 * past its cache budget takes for its lowest levels).
 */
async function proofFigures(backend: Backend): Promise<{ cached: ProofTimes; uncached: ProofTimes; cacheFillS: number }> {
  const log = new TransparencyLog(backend.store.db);
  const fillStart = performance.now();
  await fillMillion(backend.store);
  const fillSeconds = (performance.now() - fillStart) / 1000;
  // The in-database fill must be the RFC 9162 tree: compare its root with MemoryTree's.
  const memory = new MemoryTree();
  const buf = Buffer.alloc(8);
  for (let i = 0; i < MILLION; i++) {
    buf.writeBigInt64BE(BigInt(i));
    memory.append(buf);
  }
  if (Buffer.compare(await log.root(), memory.root()) !== 0) throw new Error(`${backend.name}: the bulk-filled log's root differs from MemoryTree's`);
  console.error(`# log bench (${backend.name}): 1M-entry log filled in ${fillSeconds.toFixed(1)} s inside the database (not through append)`);

  const warmStart = performance.now();
  await log.warmProofCache();
  const cacheFillS = (performance.now() - warmStart) / 1000;
  const cached = await timeProofs(log);
  const uncached = await timeProofs(new TransparencyLog(backend.store.db, { proofCacheBytes: 0 }));
  return { cached, uncached, cacheFillS };
}

export async function benchLog(): Promise<BenchResult[]> {
  const names: Backend['name'][] = process.env.VOUCH_BENCH_DATABASE_URL ? ['pglite', 'postgres'] : ['pglite'];
  const results: BenchResult[] = [];
  const proofs = new Map<string, Awaited<ReturnType<typeof proofFigures>>>();
  for (const name of names) {
    // One fresh database each (opening PGlite costs seconds): fill to 1M, time the proofs, then
    // time appends into that 1M-entry log.
    const backend = await openBackend(name);
    try {
      proofs.set(name, await proofFigures(backend));
      results.push({ name: `log_append_per_s_${name}`, value: Math.round(await appendRate(backend)), unit: 'entries/s' });
    } finally {
      await backend.store.close();
      await backend.cleanup();
    }
  }
  const primary = proofs.get('postgres') ?? proofs.get('pglite')!;
  results.push(
    { name: 'inclusion_proof_ms_at_1M', value: round(primary.cached.inclusionMs), unit: 'ms' },
    { name: 'consistency_proof_ms_at_1M', value: round(primary.cached.consistencyMs), unit: 'ms' },
    { name: 'inclusion_proof_bytes_at_1M', value: primary.cached.inclusionBytes, unit: 'B' },
    { name: 'consistency_proof_bytes_at_1M', value: primary.cached.consistencyBytes, unit: 'B' },
    { name: 'log_proof_cache_fill_s_at_1M', value: round(primary.cacheFillS, 2), unit: 's' },
  );
  for (const [name, p] of proofs) {
    const suffix = proofs.size > 1 ? `_${name}` : '';
    if (proofs.size > 1) {
      results.push(
        { name: `inclusion_proof_ms_at_1M${suffix}`, value: round(p.cached.inclusionMs), unit: 'ms' },
        { name: `consistency_proof_ms_at_1M${suffix}`, value: round(p.cached.consistencyMs), unit: 'ms' },
      );
    }
    results.push(
      { name: `inclusion_proof_ms_at_1M_upper_cache_only${suffix}`, value: round(p.uncached.inclusionMs), unit: 'ms' },
      { name: `consistency_proof_ms_at_1M_upper_cache_only${suffix}`, value: round(p.uncached.consistencyMs), unit: 'ms' },
    );
  }
  return results;
}

// The transparency log's in-memory upper levels (server/log/store.ts): one log object appends,
// another on the same database (standing for a second process, whose cache sees none of those
// appends) serves proofs and roots while the log grows past several cached levels; every answer
// must equal an in-memory recomputation, and sizes beyond the head are still refused. Once the
// lower levels are filled too, a proof reads nothing from the database. On PostgreSQL the node
// reads go out as a named prepared statement (server/store/prepared.ts).
import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consistencyProof, inclusionProof, MemoryTree } from '../../shared/merkle/tree.js';
import { LogRangeError, TransparencyLog } from '../../server/log/store.js';
import { openStore, type Store } from '../../server/store/index.js';
import { STORE_BACKENDS } from '../helpers/services.js';

/** Batch sizes whose running totals cross 64, 128, … 1024 leaves, at odd sizes in between. */
const BATCHES = [1, 62, 1, 1, 70, 129, 3, 250, 1, 500, 7];

for (const backend of STORE_BACKENDS) {
  describe.skipIf(!backend.available)(`log proof cache on ${backend.name}`, () => {
    const handle = backend.create();
    let store: Store;

    beforeAll(async () => {
      store = await openStore(handle.config);
    });

    afterAll(async () => {
      await store?.close();
      await handle.cleanup();
    });

    it('serves exact proofs and roots from a second log object while the first appends', async () => {
      const writer = new TransparencyLog(store.db);
      const reader = new TransparencyLog(store.db);
      const memory = new MemoryTree();
      const sizes: number[] = [];
      for (const count of BATCHES) {
        const entries = Array.from({ length: count }, () => new Uint8Array(randomBytes(40)));
        await writer.append(entries);
        for (const e of entries) memory.append(e);
        const size = memory.size;
        sizes.push(size);
        // At the new size (the reader's cache must grow) and at every earlier size (cached).
        for (const at of [size, ...sizes.slice(0, -1)]) {
          expect(Buffer.from(await reader.root(at)).equals(Buffer.from(await memory.root(at)))).toBe(true);
          for (const index of new Set([0, at - 1, Math.floor(at / 2), Math.floor((at * 2) / 3)])) {
            expect((await reader.inclusionProof(index, at)).map((h) => Buffer.from(h).toString('hex'))).toEqual(
              (await inclusionProof(index, at, memory)).map((h) => Buffer.from(h).toString('hex')),
            );
          }
          for (const from of new Set([1, Math.max(1, at - 1), Math.ceil(at / 3), 64].filter((f) => f <= at))) {
            expect((await reader.consistencyProof(from, at)).map((h) => Buffer.from(h).toString('hex'))).toEqual(
              (await consistencyProof(from, at, memory)).map((h) => Buffer.from(h).toString('hex')),
            );
          }
        }
        // Beyond the head: refused, however much is cached.
        await expect(reader.inclusionProof(0, size + 1)).rejects.toBeInstanceOf(LogRangeError);
        await expect(reader.root(size + 1)).rejects.toThrow(/beyond the current log size/);
      }
    });

    it('hands out copies: changing a returned proof changes no later answer', async () => {
      const log = new TransparencyLog(store.db);
      const size = await log.size();
      await log.inclusionProof(5, size); // fills this object's cache: the next answer comes from it
      const first = await log.inclusionProof(5, size);
      const expected = first.map((h) => Buffer.from(h).toString('hex'));
      for (const h of first) h.fill(0);
      expect((await log.inclusionProof(5, size)).map((h) => Buffer.from(h).toString('hex'))).toEqual(expected);
    });

    it('serves proofs from memory alone once warmed, and reads one query a proof with no lower-level budget', async () => {
      let queries = 0;
      const counted = store.db.withPlugin({
        transformQuery: (args) => args.node,
        transformResult: async (args) => {
          queries++;
          return args.result;
        },
      });
      const warmed = new TransparencyLog(counted);
      const lean = new TransparencyLog(counted, { proofCacheBytes: 0 });
      const partial = new TransparencyLog(counted, { proofCacheBytes: 2048 }); // level 5 only, of the lower ones
      for (const log of [warmed, lean, partial]) await log.warmProofCache();
      const size = await warmed.size();
      const memory = new MemoryTree();
      for (const e of await warmed.entries(0, size)) memory.append(e.entry);
      const hex = (proof: Uint8Array[]) => proof.map((h) => Buffer.from(h).toString('hex'));
      for (const index of [0, 1, 63, 64, 500, size - 2, size - 1]) {
        const expected = hex(await inclusionProof(index, size, memory));
        queries = 0;
        expect(hex(await warmed.inclusionProof(index, size))).toEqual(expected);
        expect(queries).toBe(0);
        expect(hex(await lean.inclusionProof(index, size))).toEqual(expected);
        expect(queries).toBeLessThanOrEqual(1); // none where every node is an upper one
        expect(hex(await partial.inclusionProof(index, size))).toEqual(expected);
      }
      queries = 0;
      await lean.inclusionProof(500, size); // its 6 lower siblings are below the upper levels
      expect(queries).toBe(1);
      for (const from of [1, 3, 65, 700, size - 1]) {
        const expected = hex(await consistencyProof(from, size, memory));
        queries = 0;
        expect(hex(await warmed.consistencyProof(from, size))).toEqual(expected);
        expect(queries).toBe(0);
        expect(hex(await lean.consistencyProof(from, size))).toEqual(expected);
        expect(queries).toBeLessThanOrEqual(1);
        expect(hex(await partial.consistencyProof(from, size))).toEqual(expected);
      }
      // Entries appended elsewhere: the first answer at the new size reads the head, and is exact.
      await new TransparencyLog(store.db).append([new Uint8Array(randomBytes(40)), new Uint8Array(randomBytes(40))]);
      memory.append((await warmed.entries(size, size + 1))[0].entry);
      memory.append((await warmed.entries(size + 1, size + 2))[0].entry);
      expect(hex(await warmed.inclusionProof(size + 1, size + 2))).toEqual(hex(await inclusionProof(size + 1, size + 2, memory)));
      await warmed.warmProofCache();
      queries = 0;
      expect(hex(await warmed.consistencyProof(size, size + 2))).toEqual(hex(await consistencyProof(size, size + 2, memory)));
      expect(queries).toBe(0);
    });

    it('fills the lower levels again after a failed read (the database out of reach a moment), stopping for good only on a damaged table', async () => {
      // A stand-in for a lost connection: the fill's level reads (rows of idx and hash only) fail
      // while `outage` holds; every other query goes through.
      let outage = true;
      let queries = 0;
      const flaky = store.db.withPlugin({
        transformQuery: (args) => args.node,
        transformResult: async (args) => {
          queries++;
          const row = args.result.rows[0] as Record<string, unknown> | undefined;
          if (outage && row && 'hash' in row && !('part' in row)) throw Object.assign(new Error('Connection terminated unexpectedly'), { code: '08006' });
          return args.result;
        },
      });
      await new TransparencyLog(store.db).append(Array.from({ length: 600 }, () => new Uint8Array(randomBytes(40))));
      const log = new TransparencyLog(flaky);
      await log.warmProofCache();
      const size = await log.size();
      queries = 0;
      await log.inclusionProof(500, size);
      expect(queries).toBe(1); // its lower siblings: not cached, the fill failed
      outage = false;
      await log.warmProofCache();
      queries = 0;
      await log.inclusionProof(500, size);
      expect(queries).toBe(0);
    });

    // PGlite has no named statements to look at: the test exists for PostgreSQL only (not skipped elsewhere).
    if (backend.name === 'postgres')
      it('reads proof nodes through a named prepared statement, planned once per connection', async () => {
        const log = new TransparencyLog(store.db);
        const size = await log.size();
        await log.inclusionProof(3, size); // fills the cache
        const expected = (await log.inclusionProof(3, size)).map((h) => Buffer.from(h).toString('hex'));
        // The pool hands back its most recently released connection: the one that served the proof.
        const { rows } = await sql<{ statement: string }>`SELECT statement FROM pg_prepared_statements WHERE name LIKE 'vouch_prepared_%'`.execute(store.db);
        expect(rows.some((row) => row.statement.includes('FROM unnest($1::smallint[], $2::bigint[])'))).toBe(true);
        for (let i = 0; i < 3; i++) expect((await log.inclusionProof(3, size)).map((h) => Buffer.from(h).toString('hex'))).toEqual(expected);
      });
  });
}

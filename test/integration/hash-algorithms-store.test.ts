// The hash_algorithms table on both backends: filled from the registry at start, the foreign key
// from verdict_subjects checks algorithm and digest length, and a store that disagrees with the
// registry about a digest length is refused.
import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALGORITHM_REGISTRY, AlgorithmRegistry } from '../../shared/algorithms/index.js';
import { fileDigestAlgorithm } from '../../shared/algorithms/hex-digest.js';
import { openStore, type Store } from '../../server/store/index.js';
import { HashAlgorithmMismatchError, syncHashAlgorithms } from '../../server/store/hash-algorithms.js';
import { STORE_BACKENDS } from '../helpers/services.js';

for (const backend of STORE_BACKENDS) {
  describe.skipIf(!backend.available)(`hash_algorithms on ${backend.name}`, () => {
    let handle: ReturnType<typeof backend.create>;
    let store: Store;
    let verdictId: number;

    beforeAll(async () => {
      handle = backend.create();
      store = await openStore(handle.config);
      const row = await store.db
        .insertInto('verdicts')
        .values({
          uri: `https://a.example/verdicts/${randomBytes(8).toString('hex')}`,
          issuer: 'https://a.example/actor',
          is_local: false,
          label: 'spam',
          confidence: 1,
          method: 'human',
          source: 'test',
          published: new Date(),
          document: '{}',
        })
        .returning('id')
        .executeTakeFirstOrThrow();
      verdictId = row.id;
    });

    afterAll(async () => {
      await store?.close();
      await handle?.cleanup();
    });

    it('holds every registered algorithm with its digest length', async () => {
      const rows = await store.db.selectFrom('hash_algorithms').selectAll().orderBy('name').execute();
      expect(rows).toEqual(
        ALGORITHM_REGISTRY.all.map((a) => ({ name: a.name, digest_bytes: a.digestBytes })).sort((a, b) => a.name.localeCompare(b.name)),
      );
    });

    it('accepts a subject of each registered algorithm at its length, refuses other lengths and unknown names', async () => {
      const insert = (algorithm: string, bytes: number) =>
        store.db.insertInto('verdict_subjects').values({ verdict_id: verdictId, algorithm, digest: randomBytes(bytes), quality: null }).execute();
      for (const a of ALGORITHM_REGISTRY.all) await insert(a.name, a.digestBytes);
      await expect(insert('md5', 32)).rejects.toThrow(/foreign key/);
      await expect(insert('phash64', 32)).rejects.toThrow(/foreign key/);
      await expect(insert('tmk', 32)).rejects.toThrow(/foreign key/);
    });

    it('adds the algorithms a registry brings, and refuses one the store knows by another length', async () => {
      const extra = new AlgorithmRegistry([...ALGORITHM_REGISTRY.all, fileDigestAlgorithm('sha1', 'SHA-1 (test)', 20)]);
      await syncHashAlgorithms(store.db, extra);
      await store.db.insertInto('verdict_subjects').values({ verdict_id: verdictId, algorithm: 'sha1', digest: randomBytes(20), quality: null }).execute();
      const disagreeing = new AlgorithmRegistry([fileDigestAlgorithm('sha1', 'SHA-1 as 16 bytes (test)', 16)]);
      await expect(syncHashAlgorithms(store.db, disagreeing)).rejects.toThrow(HashAlgorithmMismatchError);
      // The refusal changed nothing: the store's algorithm and its subject stay.
      const count = await sql<{ n: number }>`SELECT count(*)::int AS n FROM verdict_subjects WHERE algorithm = 'sha1'`.execute(store.db);
      expect(count.rows[0].n).toBe(1);
    });
  });
}

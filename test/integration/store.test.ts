// The store and the verdicts over it, on both backends: embedded PGlite and the real PostgreSQL.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore, type Store } from '../../server/store/index.js';
import { VerdictService } from '../../server/verdicts/index.js';
import { parseHashList } from '../../server/verdicts/hash-list.js';
import { STORE_BACKENDS } from '../helpers/services.js';

const ISSUER = 'http://127.0.0.1:8080/actor';

function flipBits(hex: string, bits: number[]): string {
  const bytes = Buffer.from(hex, 'hex');
  for (const bit of bits) bytes[bit >> 3] ^= 1 << (bit & 7);
  return bytes.toString('hex');
}

for (const backend of STORE_BACKENDS) {
  describe.skipIf(!backend.available)(`store on ${backend.name}`, () => {
    let handle: ReturnType<typeof backend.create>;
    let store: Store;
    let verdicts: VerdictService;
    const pdq = randomBytes(32).toString('hex');
    const sha = randomBytes(32).toString('hex');

    beforeAll(async () => {
      handle = backend.create();
      store = await openStore(handle.config);
      verdicts = new VerdictService(store.db, ISSUER, 'http://127.0.0.1:8080');
      await verdicts.loadIndex();
    });

    afterAll(async () => {
      await store?.close();
      await handle?.cleanup();
    });

    it('applies migrations once: reopening is a no-op', async () => {
      await store.close();
      store = await openStore(handle.config);
      store = await openStore(handle.config).then(async (second) => {
        await store.close();
        return second;
      });
      verdicts = new VerdictService(store.db, ISSUER, 'http://127.0.0.1:8080');
      const tables = await store.db.introspection.getTables();
      expect(tables.map((t) => t.name)).toEqual(
        expect.arrayContaining(['media', 'verdicts', 'verdict_subjects', 'peers', 'sweep_files', 'decisions']),
      );
    });

    it('imports a hash list idempotently and finds its verdicts exactly and near', async () => {
      const list = parseHashList(`pdq:${pdq},csam,0.9\nsha256:${sha},spam\n`);
      expect(await verdicts.importHashList(list, 'hashlist:partner.csv')).toEqual({ imported: 2, skipped: 0 });
      expect(await verdicts.importHashList(list, 'hashlist:partner.csv')).toEqual({ imported: 0, skipped: 2 });

      const exact = await verdicts.find({ hashes: [{ algorithm: 'sha256', digest: Buffer.from(sha, 'hex') }] });
      expect(exact).toHaveLength(1);
      expect(exact[0]).toMatchObject({ label: 'spam', method: 'hashlist', local: true, distance: 0, matchedBy: 'sha256', issuer: ISSUER });

      const near = await verdicts.find({ hashes: [{ algorithm: 'pdq', digest: Buffer.from(flipBits(pdq, [0, 9, 100, 255]), 'hex') }] });
      expect(near).toHaveLength(1);
      expect(near[0]).toMatchObject({ label: 'csam', confidence: expect.closeTo(0.9, 5), distance: 4, matchedBy: 'pdq' });
      expect(near[0].subjects).toEqual([{ algorithm: 'pdq', digest: pdq }]);

      const far = Array.from({ length: 32 }, (_, i) => i * 8);
      expect(await verdicts.find({ hashes: [{ algorithm: 'pdq', digest: Buffer.from(flipBits(pdq, far), 'hex') }] })).toEqual([]);
    });

    it('rebuilds the same index from the database, without retracted verdicts', async () => {
      const fresh = new VerdictService(store.db, ISSUER, 'http://127.0.0.1:8080');
      await fresh.loadIndex();
      expect(fresh.matcher.size).toEqual({ pdq: 1, sha256: 1, md5: 0, vpdq: 0 });
      const [hit] = await fresh.find({ hashes: [{ algorithm: 'sha256', digest: Buffer.from(sha, 'hex') }] });
      expect(await fresh.retract(hit.id)).toBe(true);
      expect(await fresh.retract(hit.id)).toBe(false);
      expect(await fresh.find({ hashes: [{ algorithm: 'sha256', digest: Buffer.from(sha, 'hex') }] })).toEqual([]);
      const reloaded = new VerdictService(store.db, ISSUER, 'http://127.0.0.1:8080');
      await reloaded.loadIndex();
      expect(reloaded.matcher.size).toEqual({ pdq: 1, sha256: 0, md5: 0, vpdq: 0 });
      // Retracted, not deleted: the row stays as evidence.
      const row = await store.db.selectFrom('verdicts').select('retracted_at').where('id', '=', hit.id).executeTakeFirstOrThrow();
      expect(row.retracted_at).toBeInstanceOf(Date);
    });

    it('pages through more subjects than one load page holds', async () => {
      const many = Array.from({ length: 2_500 }, () => `pdq:${randomBytes(32).toString('hex')},spam,0.5`).join('\n');
      await verdicts.importHashList(parseHashList(many), 'hashlist:bulk');
      const reloaded = new VerdictService(store.db, ISSUER, 'http://127.0.0.1:8080');
      await reloaded.loadIndex(1_000);
      expect(reloaded.matcher.size.pdq).toBe(2_501);
    });

    it('refuses rows the schema forbids', async () => {
      await expect(
        store.db
          .insertInto('verdicts')
          .values({ uri: 'x', issuer: 'y', is_local: true, label: 'nonsense', confidence: 0.5, method: 'human', published: new Date() } as never)
          .execute(),
      ).rejects.toThrow(/check constraint/);
    });
  });
}

// The store and the verdicts over it, on both backends: embedded PGlite and the real PostgreSQL.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { MAX_BIND_PARAMETERS, isStoreUnavailable, openStore, type Store } from '../../server/store/index.js';
import { videoSubjects } from '../../shared/algorithms/index.js';
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

    it('records video verdicts whose frames together pass one statement\'s bind-parameter limit', async () => {
      // 8 videos of 1,800 frames: 14,416 subject rows, 72,080 parameters in one INSERT (PostgreSQL
      // refuses more than 65,535; PGlite took 32,767 and more silently and then answered nothing).
      const videos = Array.from({ length: 8 }, () => ({
        sha256: randomBytes(32).toString('hex'),
        md5: randomBytes(16).toString('hex'),
        frames: Array.from({ length: 1_800 }, (_, i) => ({ pdq: randomBytes(32).toString('hex'), quality: 90, seconds: i })),
      }));
      const ids = await verdicts.recordLocal(videos.map((v) => ({ subjects: videoSubjects(v), label: 'csam' as const, confidence: 1, method: 'human' as const })));
      expect(ids).toHaveLength(8);
      const stored = await store.db.selectFrom('verdict_subjects').select((eb) => eb.fn.countAll<string>().as('n')).where('verdict_id', 'in', ids).executeTakeFirstOrThrow();
      expect(Number(stored.n)).toBe(8 * 1_802);
      const reloaded = new VerdictService(store.db, ISSUER, 'http://127.0.0.1:8080');
      await reloaded.loadIndex();
      expect(reloaded.matcher.size.vpdq).toBe(8 * 1_800);
      expect((await reloaded.find({ hashes: [{ algorithm: 'md5', digest: Buffer.from(videos[7].md5, 'hex') }] })).map((m) => m.id)).toEqual([ids[7]]);
    });

    // node-postgres sends the parameter count in 16 bits: PostgreSQL then reports a protocol
    // violation (08P01, SQLSTATE class 08). That is a wrong query, not a lost server: callers that
    // retry an unreachable database (the inbox's group commit) must not retry it forever.
    if (backend.name === 'postgres')
      it('a statement over PostgreSQL\'s bind-parameter limit is a query error, not an unreachable database', async () => {
        const values = Array.from({ length: 65_536 }, (_, i) => i);
        const err: unknown = await sql`SELECT 1 WHERE -1 IN (${sql.join(values)})`.execute(store.db).then(() => undefined, (e: unknown) => e);
        expect(err).toMatchObject({ code: '08P01' });
        expect(isStoreUnavailable(err)).toBe(false);
        const { rows } = await sql<{ one: number }>`SELECT 1 AS one`.execute(store.db);
        expect(rows).toEqual([{ one: 1 }]);
      });

    // Only PGlite mishandles an oversized statement; PostgreSQL takes up to 65,535 parameters.
    if (backend.name === 'pglite')
      it('refuses a statement with more bind parameters than PGlite handles, and keeps answering', async () => {
        const values = Array.from({ length: MAX_BIND_PARAMETERS + 1 }, (_, i) => i);
        await expect(sql`SELECT ${sql.join(values)} IS NOT NULL AS big`.execute(store.db)).rejects.toThrow(/bind parameters/);
        const { rows } = await sql<{ one: number }>`SELECT 1 AS one`.execute(store.db);
        expect(rows).toEqual([{ one: 1 }]);
      });
  });
}

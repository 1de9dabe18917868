// The log entries that issuing and the start-up repair write, on each store: every activity about
// our verdicts is logged as a version-2 entry whose private part opens to exactly the activity the
// outbox holds, with a fresh salt and no digest in the public part. The repair (what an older
// version, publishing in steps, left half-done) appends a version-2 entry for an outbox activity
// missing from the log, matches one already logged (as version 1 by an older version, or as
// version 2) instead of logging it twice, and logs the Delete of a verdict retracted without one.
// The publisher is a stand-in for federation (signing and delivery are tested there): it records
// activities in the real outbox, and the log is the real one.
import { randomBytes, randomUUID } from 'node:crypto';
import canonicalize from 'canonicalize';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeEntry, openPrivatePart, type PrivatePart } from '../../server/log/entry.js';
import { TransparencyLog } from '../../server/log/store.js';
import { openStore, type Store } from '../../server/store/index.js';
import { VerdictService, type VerdictPublisher } from '../../server/verdicts/index.js';
import { STORE_BACKENDS } from '../helpers/services.js';

const BASE = 'https://here.example';
const ACTOR = `${BASE}/actor`;
const jcs = (value: unknown) => new Uint8Array(Buffer.from(canonicalize(value)!, 'utf8'));

for (const backend of STORE_BACKENDS) {
  describe.skipIf(!backend.available)(`log entries written by issuing and by the start-up repair on ${backend.name}`, () => {
    const handle = backend.create();
    let store: Store;
    let log: TransparencyLog;
    let verdicts: VerdictService;
    const digests: string[] = [];

    beforeAll(async () => {
      store = await openStore(handle.config);
      log = new TransparencyLog(store.db);
      const publisher: VerdictPublisher = {
        sign: (object) => ({ ...object, proof: { type: 'DataIntegrityProof', proofValue: 'stand-in' } }),
        activity: (type, object) => ({ id: `${BASE}/activities/${randomUUID()}`, type, actor: ACTOR, published: new Date().toISOString(), to: [`${ACTOR}/followers`], object }),
        record: async (trx, activity, restricted, logIndex) => {
          await trx
            .insertInto('outbox')
            .values({
              id: activity.id as string,
              type: activity.type as string,
              object_id: (activity.object as { id: string }).id,
              restricted,
              activity: JSON.stringify(activity),
              published: new Date(activity.published as string),
              queued: true,
              log_index: logIndex,
            })
            .execute();
        },
        deliverPending: () => {},
        log,
      };
      verdicts = new VerdictService(store.db, ACTOR, BASE, publisher);
    });

    afterAll(async () => {
      await store?.close();
      await handle.cleanup();
    });

    const issue = async () => {
      const digest = randomBytes(32).toString('hex');
      digests.push(digest);
      return verdicts.issue({ subjects: [{ algorithm: 'sha256', digest }], label: 'csam', confidence: 0.9731, method: 'human' });
    };
    const outbox = async (uri: string) =>
      (await store.db.selectFrom('outbox').select(['seq', 'id', 'type', 'activity', 'log_index']).where('object_id', '=', uri).orderBy('seq').execute()).map((r) => ({
        ...r,
        activity: (typeof r.activity === 'string' ? JSON.parse(r.activity) : r.activity) as Record<string, unknown>,
      }));
    /** The private part of the entry at `index`, opened against its version-2 entry (throws otherwise). */
    const opened = async (index: number): Promise<PrivatePart> => {
      const stored = (await log.entry(index))!;
      const decoded = decodeEntry(stored.entry);
      if (decoded.version !== 2 || stored.private === null) throw new Error(`entry ${index} is not a version-2 entry with its private part`);
      for (const digest of digests) expect(Buffer.from(stored.entry).toString('utf8')).not.toContain(digest);
      return openPrivatePart(decoded, stored.private);
    };

    it('logs each issued verdict as a version-2 entry that opens to the activity in the outbox, fresh salt each', async () => {
      const [a, b] = [await issue(), await issue()];
      const [ra] = await outbox(a.uri);
      const [rb] = await outbox(b.uri);
      const [pa, pb] = [await opened(ra.log_index!), await opened(rb.log_index!)];
      expect(canonicalize(pa.activity)).toBe(canonicalize(ra.activity));
      expect(canonicalize(pb.activity)).toBe(canonicalize(rb.activity));
      expect(pa.salt).not.toBe(pb.salt);
      // The public part says what everyone may count, and not the confidence (entry.ts).
      const decoded = decodeEntry((await log.entry(ra.log_index!))!.entry);
      expect(decoded.version === 2 && decoded.public.object).toMatchObject({ id: a.uri, label: 'csam', method: 'human' });
      expect(decoded.version === 2 && 'confidence' in decoded.public.object).toBe(false);
    });

    it('repairs at start with version-2 entries, and matches what is logged already instead of logging it twice', async () => {
      const [unlogged, loggedV1, loggedV2, retracted] = [await issue(), await issue(), await issue(), await issue()];
      // As an older version could leave them: an Update recorded in the outbox but never logged; one
      // recorded and logged (as version 1, its JCS) but not marked so; a logged Create not marked so;
      // a verdict retracted in its row without its Delete.
      const [createOfUnlogged] = await outbox(unlogged.uri);
      const update = { ...createOfUnlogged.activity, id: `${BASE}/activities/${randomUUID()}`, type: 'Update' };
      const [createOfV1] = await outbox(loggedV1.uri);
      const updateV1 = { ...createOfV1.activity, id: `${BASE}/activities/${randomUUID()}`, type: 'Update' };
      const v1 = await log.append([jcs(updateV1)], [loggedV1.uri]);
      for (const [uri, activity] of [
        [unlogged.uri, update],
        [loggedV1.uri, updateV1],
      ] as const) {
        await store.db
          .insertInto('outbox')
          .values({ id: activity.id, type: 'Update', object_id: uri, restricted: true, activity: JSON.stringify(activity), published: new Date(), queued: true, log_index: null })
          .execute();
      }
      const [createOfV2] = await outbox(loggedV2.uri);
      await store.db.updateTable('outbox').set({ log_index: null }).where('seq', '=', createOfV2.seq).execute();
      await store.db.updateTable('verdicts').set({ retracted_at: new Date() }).where('uri', '=', retracted.uri).execute();
      const sizeBefore = await log.size();

      expect(await verdicts.repairPublications()).toEqual({ logged: 1, published: 1 });

      // Two new entries: the unlogged Update and the missing Delete, both version 2.
      expect(await log.size()).toBe(sizeBefore + 2);
      const [, updateRow] = await outbox(unlogged.uri);
      expect(updateRow.log_index).toBeGreaterThanOrEqual(sizeBefore);
      expect(canonicalize((await opened(updateRow.log_index!)).activity)).toBe(canonicalize(update));
      const [, deleteRow] = await outbox(retracted.uri);
      expect(deleteRow.type).toBe('Delete');
      const deletion = await opened(deleteRow.log_index!);
      expect(canonicalize(deletion.activity)).toBe(canonicalize(deleteRow.activity));
      expect(deletion.activity.object).toMatchObject({ id: retracted.uri, type: 'Tombstone' });
      // Matched, not logged again: the version-1 entry, and the version-2 Create.
      expect((await outbox(loggedV1.uri))[1].log_index).toBe(v1.firstIndex);
      expect((await outbox(loggedV2.uri))[0].log_index).toBe(createOfV2.log_index);
      // Every salt in the log is its own.
      const salts = (await log.entries(0, await log.size())).flatMap((e) => (e.private ? [(JSON.parse(Buffer.from(e.private).toString('utf8')) as PrivatePart).salt] : []));
      expect(new Set(salts).size).toBe(salts.length);
      // Nothing is left to repair.
      expect(await verdicts.repairPublications()).toEqual({ logged: 0, published: 0 });
    });
  });
}

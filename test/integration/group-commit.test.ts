// Group commit of inbox verdicts (server/federation/group-commit.ts) on both stores, with the real
// verdict store behind it: activities submitted together share transactions, yet each is applied
// exactly once and answered as if it had been stored alone (a replay, a second activity about one
// verdict, a verdict another actor owns).
import { randomBytes, randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore, type Store } from '../../server/store/index.js';
import { VerdictService, VerdictOwnershipError } from '../../server/verdicts/index.js';
import { VerdictGroupCommit, type InboundVerdict } from '../../server/federation/group-commit.js';
import { createLogger } from '../../server/config/logger.js';
import type { VerdictObject } from '../../shared/vocab/objects.js';
import { encodeVpdq, VPDQ_MAX_FRAMES } from '../../shared/hashing/vpdq.js';
import { STORE_BACKENDS } from '../helpers/services.js';

const PEER = 'https://peer.example/actor';

function verdictFrom(actor: string, overrides: Partial<VerdictObject> = {}): InboundVerdict {
  const verdict: VerdictObject = {
    '@context': ['https://www.w3.org/ns/activitystreams', 'https://w3id.org/vouch/v1'],
    type: 'Verdict',
    id: `https://peer.example/verdicts/${randomUUID()}`,
    attributedTo: actor,
    subject: [{ algorithm: 'sha256', digest: randomBytes(32).toString('hex') }],
    label: 'spam',
    confidence: 0.9,
    method: 'human',
    published: new Date(Date.now() - 60_000).toISOString(),
    ...overrides,
  };
  return { verdict, document: { ...verdict }, actor };
}

const activityId = () => `https://peer.example/activities/${randomUUID()}`;

for (const backend of STORE_BACKENDS) {
  describe.skipIf(!backend.available)(`group commit of inbox verdicts on ${backend.name}`, () => {
    const handle = backend.create();
    let store: Store;
    let verdicts: VerdictService;
    let groupCommit: VerdictGroupCommit;

    const count = async (query: ReturnType<typeof sql<{ n: string }>>) => Number((await query.execute(store.db)).rows[0].n);
    const stored = (uri: string) => count(sql<{ n: string }>`SELECT count(*) AS n FROM verdicts WHERE uri = ${uri}`);
    const claimed = (id: string) => count(sql<{ n: string }>`SELECT count(*) AS n FROM inbox_seen WHERE id = ${id}`);

    beforeAll(async () => {
      store = await openStore(handle.config);
      verdicts = new VerdictService(store.db, 'https://here.example/actor', 'https://here.example');
      const index = (received: readonly InboundVerdict[], trx: typeof store.db) => verdicts.receiveWithin(trx, received).then((add) => async () => add());
      groupCommit = new VerdictGroupCommit(store.db, index, createLogger({ logLevel: 'warn' }), { maxBatch: 16, maxInFlight: 1, maxPending: 1_000 });
    });

    afterAll(async () => {
      await store?.close();
      await handle.cleanup();
    });

    it('stores verdicts arriving together in shared transactions, each with its claim, and indexes them', async () => {
      const items = Array.from({ length: 40 }, () => ({ id: activityId(), item: verdictFrom(PEER) }));
      const outcomes = await Promise.all(items.map(({ id, item }) => groupCommit.submit(id, item)));
      expect(outcomes).toEqual(items.map(() => 'applied'));
      for (const { id, item } of items) {
        expect(await stored(item.verdict.id)).toBe(1);
        expect(await claimed(id)).toBe(1);
        expect(verdicts.matchIds({ hashes: [{ algorithm: 'sha256', digest: Buffer.from(item.verdict.subject[0].digest!, 'hex') }] })).toHaveLength(1);
      }
      // Rows written by one transaction share its xmin: 40 verdicts submitted in one turn of the
      // event loop, at most 16 per transaction, one transaction at a time: 16, 16 and 8.
      const uris = items.map(({ item }) => item.verdict.id);
      const transactions = await count(sql<{ n: string }>`SELECT count(DISTINCT xmin::text) AS n FROM verdicts WHERE uri = ANY(${uris})`);
      expect(transactions).toBe(3);
    });

    it('applies an activity delivered several times at once exactly once: the others are replays', async () => {
      const id = activityId();
      const item = verdictFrom(PEER);
      const others = Array.from({ length: 10 }, () => groupCommit.submit(activityId(), verdictFrom(PEER)));
      const outcomes = await Promise.all([groupCommit.submit(id, item), groupCommit.submit(id, item), groupCommit.submit(id, item), ...others]);
      expect(outcomes.slice(0, 3).sort()).toEqual(['applied', 'replayed', 'replayed']);
      expect(outcomes.slice(3)).toEqual(others.map(() => 'applied'));
      expect(await groupCommit.submit(id, item)).toBe('replayed');
      expect(await stored(item.verdict.id)).toBe(1);
      expect(await claimed(id)).toBe(1);
    });

    it('applies two activities about one verdict arriving together as if one after the other: the newer version wins', async () => {
      const created = verdictFrom(PEER);
      const newSubject = [{ algorithm: 'sha256' as const, digest: randomBytes(32).toString('hex') }];
      const updated: InboundVerdict = {
        ...created,
        verdict: { ...created.verdict, label: 'csam', subject: newSubject, updated: new Date().toISOString() },
      };
      // The update first: the create, older, must not overwrite it whichever is stored first.
      const outcomes = await Promise.all([groupCommit.submit(activityId(), updated), groupCommit.submit(activityId(), created)]);
      expect(outcomes).toEqual(['applied', 'applied']);
      expect(await stored(created.verdict.id)).toBe(1);
      const [row] = (await sql<{ label: string }>`SELECT label FROM verdicts WHERE uri = ${created.verdict.id}`.execute(store.db)).rows;
      expect(row.label).toBe('csam');
      const [id] = verdicts.matchIds({ hashes: [{ algorithm: 'sha256', digest: Buffer.from(newSubject[0].digest, 'hex') }] });
      expect(id).toBeDefined();
      expect(verdicts.matchIds({ hashes: [{ algorithm: 'sha256', digest: Buffer.from(created.verdict.subject[0].digest!, 'hex') }] })).toEqual([]);
    });

    it('stores two versions of one verdict handed over in one call in their order: a newer replaces, an older does not', async () => {
      const created = verdictFrom(PEER);
      const newer: InboundVerdict = { ...created, verdict: { ...created.verdict, label: 'gore', updated: new Date().toISOString() } };
      const older: InboundVerdict = { ...created, verdict: { ...created.verdict, label: 'hate' } };
      const index = await store.db.transaction().execute((trx) => verdicts.receiveWithin(trx, [created, newer, older]));
      index();
      expect(await stored(created.verdict.id)).toBe(1);
      const [row] = (await sql<{ label: string }>`SELECT label FROM verdicts WHERE uri = ${created.verdict.id}`.execute(store.db)).rows;
      expect(row.label).toBe('gore');
      expect(await count(sql<{ n: string }>`SELECT count(*) AS n FROM verdict_subjects s JOIN verdicts v ON v.id = s.verdict_id WHERE v.uri = ${created.verdict.id}`)).toBe(1);
      expect(verdicts.matchIds({ hashes: [{ algorithm: 'sha256', digest: Buffer.from(created.verdict.subject[0].digest!, 'hex') }] })).toHaveLength(1);
    });

    it('refuses one verdict another actor owns without failing the others stored with it', async () => {
      const hijacked = verdictFrom(PEER);
      // Stored first under another issuer (two actors on one origin): PEER may not overwrite it.
      expect(await groupCommit.submit(activityId(), { ...hijacked, actor: 'https://peer.example/other-actor' })).toBe('applied');
      const hijackId = activityId();
      const honest = Array.from({ length: 20 }, () => ({ id: activityId(), item: verdictFrom(PEER) }));
      const results = await Promise.allSettled([
        ...honest.slice(0, 10).map(({ id, item }) => groupCommit.submit(id, item)),
        groupCommit.submit(hijackId, { ...hijacked, verdict: { ...hijacked.verdict, label: 'ok', updated: new Date().toISOString() } }),
        ...honest.slice(10).map(({ id, item }) => groupCommit.submit(id, item)),
      ]);
      const refused = results.splice(10, 1)[0];
      expect(refused.status).toBe('rejected');
      expect((refused as PromiseRejectedResult).reason).toBeInstanceOf(VerdictOwnershipError);
      expect(results).toEqual(honest.map(() => ({ status: 'fulfilled', value: 'applied' })));
      for (const { id, item } of honest) {
        expect(await stored(item.verdict.id)).toBe(1);
        expect(await claimed(id)).toBe(1);
      }
      // Alone, it is refused the same way.
      await expect(groupCommit.submit(hijackId, { ...hijacked, verdict: { ...hijacked.verdict, label: 'ok', updated: new Date().toISOString() } })).rejects.toBeInstanceOf(VerdictOwnershipError);
      // Refused, so not recorded as received, and the stored verdict is unchanged.
      expect(await claimed(hijackId)).toBe(0);
      const [row] = (await sql<{ label: string; issuer: string }>`SELECT label, issuer FROM verdicts WHERE uri = ${hijacked.verdict.id}`.execute(store.db)).rows;
      expect(row).toEqual({ label: 'spam', issuer: 'https://peer.example/other-actor' });
    });

    it('answers a whole batch at once when the database is out of reach, without trying each activity again alone', async () => {
      // A stand-in for PostgreSQL going away mid-batch: the store throws node-postgres's lost-connection
      // error (stopping the real server would take the other test files' database with it).
      let calls = 0;
      const lost = new VerdictGroupCommit(
        store.db,
        async () => {
          calls++;
          throw Object.assign(new Error('Connection terminated unexpectedly'), { code: '08006' });
        },
        createLogger({ logLevel: 'silent' }),
        { maxBatch: 16, maxInFlight: 1, maxPending: 1_000 },
      );
      const items = Array.from({ length: 5 }, () => ({ id: activityId(), item: verdictFrom(PEER) }));
      const results = await Promise.allSettled(items.map(({ id, item }) => lost.submit(id, item)));
      expect(results.map((r) => r.status)).toEqual(items.map(() => 'rejected'));
      expect(calls).toBe(1);
      for (const { id, item } of items) {
        expect(await stored(item.verdict.id)).toBe(0);
        expect(await claimed(id)).toBe(0);
      }
    });

    it('refuses an activity at once (503 busy) while the most allowed are waiting for a transaction, and stores those', async () => {
      let release = () => {};
      const gate = new Promise<void>((resolve) => (release = resolve));
      const slow = new VerdictGroupCommit(
        store.db,
        async (received, trx) => {
          await gate;
          return verdicts.receiveWithin(trx, received).then((add) => async () => add());
        },
        createLogger({ logLevel: 'silent' }),
        { maxBatch: 2, maxInFlight: 1, maxPending: 3 },
      );
      // The first two are taken into a transaction at the end of this turn; 3 more fill the waiting list.
      const first = Array.from({ length: 2 }, () => ({ id: activityId(), item: verdictFrom(PEER) }));
      const firstDone = first.map(({ id, item }) => slow.submit(id, item));
      await new Promise((resolve) => setImmediate(resolve));
      const waiting = Array.from({ length: 3 }, () => ({ id: activityId(), item: verdictFrom(PEER) }));
      const waitingDone = waiting.map(({ id, item }) => slow.submit(id, item));
      const refusedId = activityId();
      const refused = verdictFrom(PEER);
      await expect(slow.submit(refusedId, refused)).rejects.toMatchObject({ status: 503, code: 'busy' });
      release();
      expect(await Promise.all([...firstDone, ...waitingDone])).toEqual([...first, ...waiting].map(() => 'applied'));
      expect(await stored(refused.verdict.id)).toBe(0);
      expect(await claimed(refusedId)).toBe(0);
    });

    it('starts the next transaction without waiting for the work after the previous one', async () => {
      let release = () => {};
      const gate = new Promise<void>((resolve) => (release = resolve));
      let batches = 0;
      const slowAfter = new VerdictGroupCommit(
        store.db,
        async (received, trx) => {
          const add = await verdicts.receiveWithin(trx, received);
          const first = batches++ === 0;
          return async () => {
            add();
            if (first) await gate; // a re-decision that takes long
          };
        },
        createLogger({ logLevel: 'silent' }),
        { maxBatch: 16, maxInFlight: 1, maxPending: 1_000 },
      );
      const early = { id: activityId(), item: verdictFrom(PEER) };
      const earlyDone = slowAfter.submit(early.id, early.item);
      await new Promise((resolve) => setImmediate(resolve));
      const late = { id: activityId(), item: verdictFrom(PEER) };
      expect(await slowAfter.submit(late.id, late.item)).toBe('applied');
      expect(await stored(late.item.verdict.id)).toBe(1);
      // Answered only once its own work after committing has run.
      let earlyAnswered = false;
      void earlyDone.then(() => (earlyAnswered = true));
      await new Promise((resolve) => setImmediate(resolve));
      expect(earlyAnswered).toBe(false);
      release();
      expect(await earlyDone).toBe('applied');
    });

    it('stores video verdicts of the most frames arriving together (more subject rows than one statement can bind)', async () => {
      const videos = Array.from({ length: 10 }, () => ({
        id: activityId(),
        item: verdictFrom(PEER, {
          subject: [{ algorithm: 'vpdq', frames: encodeVpdq(Array.from({ length: VPDQ_MAX_FRAMES }, (_, i) => ({ pdq: randomBytes(32).toString('hex'), quality: 90, seconds: i }))) }],
        }),
      }));
      const outcomes = await Promise.all(videos.map(({ id, item }) => groupCommit.submit(id, item)));
      expect(outcomes).toEqual(videos.map(() => 'applied'));
      for (const { item } of videos) expect(await stored(item.verdict.id)).toBe(1);
    });
  });
}

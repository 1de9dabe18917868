// Receiving is exactly once, against real processes on the real PostgreSQL and Redis: follower B
// is killed with SIGKILL four times while issuer A issues verdicts and delivers them to B. A
// verdict B stores is recorded as received in the same transaction, so a kill leaves neither and
// A's redelivery (or B's catch-up) applies it; afterwards B holds every verdict of A's once. The
// same holds when B is killed while verdicts arriving together share transactions (group commit):
// none it answered 202 for is lost.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../helpers/process.js';
import { HAVE_POSTGRES, HAVE_REDIS, POSTGRES_URL } from '../helpers/services.js';
import { FakePeer } from '../helpers/fake-peer.js';
import { admin, count, issuerAndFollower, kill9, start, stopAll, verdictBody, type Instance } from '../helpers/fault-mesh.js';

const VERDICTS = 300;
const ISSUERS = 4;
const KILL_AFTER = [40, 100, 160, 220];

describe.skipIf(!HAVE_POSTGRES || !HAVE_REDIS)('kill -9 of a follower while its peer issues', () => {
  let a: Instance;
  let b: Instance;

  beforeAll(async () => {
    [a, b] = await issuerAndFollower();
  });

  afterAll(() => stopAll([a, b]));

  it('every verdict reaches the follower exactly once', async () => {
    let issued = 0;
    let restarting: Promise<void> | undefined;
    const kills = [...KILL_AFTER];
    const issuer = async () => {
      while (issued < VERDICTS) {
        issued++;
        const res = await admin(a, 'POST', '/verdicts', verdictBody(randomBytes(32).toString('hex')));
        expect(res.status).toBe(201);
        // A kill that falls due while B is still starting waits for it: every kill hits a running B.
        if (kills.length > 0 && issued >= kills[0]) await restarting;
        if (kills.length > 0 && issued >= kills[0] && !restarting) {
          kills.shift();
          // B dies with deliveries in flight, and comes back while A keeps issuing.
          restarting = kill9(b).then(() => start(b)).finally(() => (restarting = undefined));
        }
      }
    };
    await Promise.all(Array.from({ length: ISSUERS }, issuer));
    await restarting;
    expect(kills).toEqual([]);
    expect(await count(a, `SELECT count(*) AS n FROM verdicts WHERE is_local`)).toBe(VERDICTS);

    // B ends with exactly A's verdicts: every one, none twice, none that A does not hold.
    const ours = `SELECT count(*) AS n FROM verdicts WHERE issuer = $1`;
    await eventually(async () => (await count(b, ours, [a.actor])) === VERDICTS, 60_000, `B holding all ${VERDICTS} verdicts`);
    const atA = (await a.db.query<{ uri: string }>('SELECT uri FROM verdicts WHERE is_local ORDER BY uri')).rows.map((r) => r.uri);
    const atB = (await b.db.query<{ uri: string }>('SELECT uri FROM verdicts WHERE issuer = $1 ORDER BY uri', [a.actor])).rows.map((r) => r.uri);
    expect(atB).toEqual(atA);
    // Every Create B recorded as received is one it applied, and each was recorded once.
    const creates = (await a.db.query<{ id: string }>(`SELECT id FROM outbox WHERE type = 'Create' AND object_id LIKE '%/verdicts/%'`)).rows.map((r) => r.id);
    expect(creates).toHaveLength(VERDICTS);
    expect(await count(b, 'SELECT count(*) AS n FROM inbox_seen WHERE id = ANY($1)', [creates])).toBe(VERDICTS);
    // A counts them all delivered: nothing dead-lettered, nothing waiting.
    await eventually(
      async () => {
        const { counts } = (await (await admin(a, 'GET', '/deliveries')).json()) as { counts: Record<string, number> };
        return counts.dead === 0 && counts.waiting === 0 && counts.active === 0 && counts.delayed === 0;
      },
      60_000,
      'A\'s delivery queue empty, nothing dead',
    );
    expect(await count(b, ours, [a.actor])).toBe(VERDICTS);
  }, 180_000);

  it('a follower killed between recording an activity and storing its verdict applies the redelivery', async () => {
    // Hold B's verdict inserts on a table lock, so that B is killed exactly mid-apply.
    const schema = b.env.VOUCH_DATABASE_SCHEMA;
    const blocker = new pg.Client({ connectionString: POSTGRES_URL, options: `-c search_path=${schema}` });
    await blocker.connect();
    try {
      await blocker.query('BEGIN');
      await blocker.query('LOCK TABLE verdicts IN SHARE ROW EXCLUSIVE MODE');
      const issued = (await (await admin(a, 'POST', '/verdicts', verdictBody(randomBytes(32).toString('hex')))).json()) as { id: string };
      const waiting = `SELECT count(*) AS n FROM pg_locks l JOIN pg_class c ON c.oid = l.relation JOIN pg_namespace ns ON ns.oid = c.relnamespace
        WHERE c.relname = 'verdicts' AND ns.nspname = $1 AND NOT l.granted`;
      await eventually(async () => (await count(b, waiting, [schema])) > 0, 20_000, 'B storing the verdict (held by the lock)');
      await kill9(b);
      await blocker.query('ROLLBACK');
      const [{ id: activity }] = (await a.db.query<{ id: string }>(`SELECT id FROM outbox WHERE object_id = $1 AND type = 'Create'`, [issued.id])).rows;
      // Killed mid-apply: the activity is not recorded as received, so nothing will refuse it.
      expect(await count(b, 'SELECT count(*) AS n FROM inbox_seen WHERE id = $1', [activity])).toBe(0);
      expect(await count(b, 'SELECT count(*) AS n FROM verdicts WHERE uri = $1', [issued.id])).toBe(0);
      await start(b);
      await eventually(async () => (await count(b, 'SELECT count(*) AS n FROM verdicts WHERE uri = $1', [issued.id])) === 1, 60_000, 'B applying the redelivered verdict');
      expect(await count(b, 'SELECT count(*) AS n FROM inbox_seen WHERE id = $1', [activity])).toBe(1);
      expect(await count(b, 'SELECT count(*) AS n FROM verdicts WHERE issuer = $1', [a.actor])).toBe(VERDICTS + 1);
    } finally {
      await blocker.end();
    }
  }, 120_000);

  it('a follower killed while committing verdicts that arrived together loses none it answered 202 for', async () => {
    const peer = new FakePeer();
    await peer.start('127.0.0.4');
    try {
      const inbox = `${b.url}/actor/inbox`;
      expect((await admin(b, 'POST', '/peers/follow', { target: peer.actor })).status).toBe(202);
      const follow = await eventually(async () => peer.received.find((x) => x.type === 'Follow'), 20_000, 'the Follow');
      expect((await peer.post(inbox, peer.activity('Accept', follow))).status).toBe(202);
      const activities = Array.from({ length: 400 }, () =>
        peer.activity('Create', peer.signObject(peer.verdict([{ algorithm: 'sha256', digest: randomBytes(32).toString('hex') }]))),
      );
      const verdictOf = (activity: Record<string, unknown>) => (activity.object as { id: string }).id;
      // 32 in flight, so that B commits them in shared transactions; B is killed once 150 are answered.
      const answered = new Map<string, number>();
      let killed: Promise<void> | undefined;
      let next = 0;
      await Promise.all(
        Array.from({ length: 32 }, async () => {
          while (next < activities.length) {
            const activity = activities[next++];
            try {
              answered.set(activity.id as string, (await peer.post(inbox, activity)).status);
            } catch {
              // Cut by the kill: no answer, so nothing promised.
            }
            if (answered.size >= 150) killed ??= kill9(b);
          }
        }),
      );
      await killed;
      expect([...new Set(answered.values())]).toEqual([202]);
      expect(answered.size).toBeLessThan(activities.length);
      const accepted = activities.filter((a) => answered.has(a.id as string));
      const held = `SELECT count(*) AS n FROM verdicts WHERE uri = ANY($1)`;
      // Everything answered 202 was committed before the answer, with its claim.
      expect(await count(b, held, [accepted.map(verdictOf)])).toBe(accepted.length);
      expect(await count(b, 'SELECT count(*) AS n FROM inbox_seen WHERE id = ANY($1)', [accepted.map((a) => a.id)])).toBe(accepted.length);
      // And they were committed together: fewer transactions than verdicts (rows of one share its xmin).
      expect(await count(b, 'SELECT count(DISTINCT xmin::text) AS n FROM verdicts WHERE uri = ANY($1)', [accepted.map(verdictOf)])).toBeLessThan(accepted.length);

      // The peer redelivers everything: what B answered 202 for is a replay; the rest is applied once.
      await start(b);
      for (const activity of activities) {
        const status = (await peer.post(inbox, activity)).status;
        if (answered.has(activity.id as string)) expect(status).toBe(409);
        else expect([202, 409]).toContain(status);
      }
      expect(await count(b, held, [activities.map(verdictOf)])).toBe(activities.length);
      expect(await count(b, 'SELECT count(*) AS n FROM verdicts WHERE issuer = $1', [peer.actor])).toBe(activities.length);
      expect(await count(b, 'SELECT count(*) AS n FROM inbox_seen WHERE id = ANY($1)', [activities.map((a) => a.id)])).toBe(activities.length);
    } finally {
      await peer.stop();
    }
  }, 120_000);
});

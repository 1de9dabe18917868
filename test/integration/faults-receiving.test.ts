// Receiving is exactly once, against real processes on the real PostgreSQL and Redis: follower B
// is killed with SIGKILL four times while issuer A issues verdicts and delivers them to B. A
// verdict B stores is recorded as received in the same transaction, so a kill leaves neither and
// A's redelivery (or B's catch-up) applies it; afterwards B holds every verdict of A's once.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../helpers/process.js';
import { HAVE_POSTGRES, HAVE_REDIS, POSTGRES_URL } from '../helpers/services.js';
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
});

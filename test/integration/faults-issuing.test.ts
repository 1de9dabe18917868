// Issuing is one transaction, against real processes on the real PostgreSQL and Redis: the issuer
// is killed with SIGKILL three times while clients issue verdicts and retry, with the same
// Idempotency-Key, every request that got no answer. Afterwards every stored verdict is in the
// outbox, the transparency log and at the approved follower exactly once, every acknowledged
// verdict is stored, and no request created anything twice. Then the start-up repair completes what an older version, which
// published in steps, could leave half-done.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../helpers/process.js';
import { HAVE_POSTGRES, HAVE_REDIS, POSTGRES_URL } from '../helpers/services.js';
import { ADMIN_TOKEN, admin, count, issuerAndFollower, kill9, start, stopAll, verdictBody, type Instance } from '../helpers/fault-mesh.js';

const REQUESTS = 240;
const CLIENTS = 4;
const KILL_AFTER = [40, 100, 160];

describe.skipIf(!HAVE_POSTGRES || !HAVE_REDIS)('kill -9 of the issuer during issue requests', () => {
  let a: Instance;
  /** An approved follower of A's: what A stored must reach it exactly once, kills and all. */
  let b: Instance;

  beforeAll(async () => {
    [a, b] = await issuerAndFollower();
  });

  afterAll(() => stopAll([a, b]));

  it('stores every acknowledged verdict once, each in the outbox, the log and at the follower exactly once', async () => {
    const digests = Array.from({ length: REQUESTS }, () => randomBytes(32).toString('hex'));
    const keys = digests.map(() => randomBytes(16).toString('hex'));
    const acknowledged = new Map<number, string>();
    let replayed = 0;
    let cut = 0;
    let restarting: Promise<void> | undefined;
    const kills = [...KILL_AFTER];

    // One request until it is answered: a refused connection or a cut answer is retried, same key.
    const issueUntilAnswered = async (n: number) => {
      for (;;) {
        await restarting;
        try {
          const res = await admin(a, 'POST', '/verdicts', verdictBody(digests[n]), { 'idempotency-key': keys[n] });
          if (res.status === 201) {
            if (res.headers.get('idempotent-replayed') === 'true') replayed++;
            acknowledged.set(n, ((await res.json()) as { id: string }).id);
            return;
          }
          if (res.status !== 503) throw new Error(`issue ${n} answered ${res.status}: ${await res.text()}`);
        } catch (err) {
          if (!(err instanceof TypeError)) throw err; // fetch failed: the server is down
          cut++;
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    let next = 0;
    const client = async () => {
      while (next < REQUESTS) {
        const n = next++;
        await issueUntilAnswered(n);
        if (kills.length > 0 && acknowledged.size >= kills[0] && !restarting) {
          kills.shift();
          // Killed while the other clients' requests are in flight, then started again.
          restarting = kill9(a).then(() => start(a)).finally(() => (restarting = undefined));
        }
      }
    };
    await Promise.all(Array.from({ length: CLIENTS }, client));
    await restarting;
    expect(kills).toEqual([]);
    expect(acknowledged.size).toBe(REQUESTS);

    // Every acknowledged verdict is stored, once per request, and is the one the answer named.
    const stored = await a.db.query<{ uri: string; digest: string }>(
      `SELECT v.uri, encode(s.digest, 'hex') AS digest FROM verdicts v JOIN verdict_subjects s ON s.verdict_id = v.id WHERE v.is_local AND v.source = 'admin-api'`,
    );
    expect(stored.rows).toHaveLength(REQUESTS);
    const byDigest = new Map(stored.rows.map((r) => [r.digest, r.uri]));
    expect(byDigest.size).toBe(REQUESTS);
    for (const [n, uri] of acknowledged) expect(byDigest.get(digests[n])).toBe(uri);
    expect(await count(a, 'SELECT count(*) AS n FROM idempotency_keys')).toBe(REQUESTS);

    // Each in the outbox exactly once, with its log entry; the log holds nothing else about them.
    const uris = [...byDigest.values()];
    expect(await count(a, `SELECT count(*) AS n FROM outbox WHERE object_id = ANY($1) AND type = 'Create'`, [uris])).toBe(REQUESTS);
    expect(await count(a, `SELECT count(*) AS n FROM outbox WHERE object_id = ANY($1)`, [uris])).toBe(REQUESTS);
    expect(await count(a, `SELECT count(DISTINCT object_id) AS n FROM outbox WHERE object_id = ANY($1)`, [uris])).toBe(REQUESTS);
    expect(
      await count(a, `SELECT count(*) AS n FROM outbox o JOIN log_entries e ON e.idx = o.log_index AND e.entry_key = o.object_id WHERE o.object_id = ANY($1)`, [uris]),
    ).toBe(REQUESTS);
    expect(await count(a, `SELECT count(*) AS n FROM log_entries WHERE entry_key = ANY($1)`, [uris])).toBe(REQUESTS);
    expect(await count(a, 'SELECT count(*) AS n FROM log_entries')).toBe(await count(a, 'SELECT size AS n FROM log_head'));
    // Every recorded activity gets queued for delivery, those a kill cut off included.
    await eventually(async () => (await count(a, 'SELECT count(*) AS n FROM outbox WHERE NOT queued')) === 0, 15_000, 'the outbox drained into the queue');
    // ...and reaches the follower exactly once: every stored verdict, none twice, nothing else.
    let atFollower = 0;
    await eventually(
      async () => (atFollower = await count(b, `SELECT count(*) AS n FROM verdicts WHERE issuer = $1`, [a.actor])) === REQUESTS,
      60_000,
      `B holding all ${REQUESTS} verdicts`,
    ).catch(async (err: Error) => {
      throw new Error(`${err.message}: it holds ${atFollower}; A's deliveries: ${JSON.stringify(await admin(a, 'GET', '/deliveries').then((r) => r.json(), () => 'unreachable'))}`);
    });
    const atB = (await b.db.query<{ uri: string }>('SELECT uri FROM verdicts WHERE issuer = $1 ORDER BY uri', [a.actor])).rows.map((r) => r.uri);
    expect(atB).toEqual([...uris].sort());
    const creates = (await a.db.query<{ id: string }>(`SELECT id FROM outbox WHERE type = 'Create' AND object_id = ANY($1)`, [uris])).rows.map((r) => r.id);
    expect(await count(b, 'SELECT count(*) AS n FROM inbox_seen WHERE id = ANY($1)', [creates])).toBe(REQUESTS);

    // A retry after the answer came is the first answer again; the same key on another body is refused.
    const again = await admin(a, 'POST', '/verdicts', verdictBody(digests[0]), { 'idempotency-key': keys[0] });
    expect(again.status).toBe(201);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(((await again.json()) as { id: string }).id).toBe(acknowledged.get(0));
    const reused = await admin(a, 'POST', '/verdicts', verdictBody(digests[1]), { 'idempotency-key': keys[0] });
    expect(reused.status).toBe(422);
    expect(await count(a, `SELECT count(*) AS n FROM verdicts WHERE source = 'admin-api'`)).toBe(REQUESTS);
    console.log(`issuing faults: ${REQUESTS} requests, ${KILL_AFTER.length} kills, ${cut} requests cut or refused and retried, ${replayed} answers replayed from a stored key`);
  }, 120_000);

  it('a request killed mid-transaction stored nothing; a lost answer and a concurrent twin get the first answer', async () => {
    // A's verdict inserts are held on a table lock, so that requests stop inside their transaction.
    const schema = a.env.VOUCH_DATABASE_SCHEMA;
    const blocker = new pg.Client({ connectionString: POSTGRES_URL, options: `-c search_path=${schema}` });
    await blocker.connect();
    const waiting = `SELECT count(*) AS n FROM pg_locks l JOIN pg_class c ON c.oid = l.relation JOIN pg_namespace ns ON ns.oid = c.relnamespace
      WHERE c.relname = 'verdicts' AND ns.nspname = $1 AND NOT l.granted`;
    const hold = async () => {
      await blocker.query('BEGIN');
      await blocker.query('LOCK TABLE verdicts IN SHARE ROW EXCLUSIVE MODE');
    };
    const stored = (digest: string) => count(a, `SELECT count(*) AS n FROM verdict_subjects WHERE digest = decode($1, 'hex')`, [digest]);
    try {
      // Killed mid-transaction: nothing stored, and the retry with the same key issues it once.
      const killed = randomBytes(32).toString('hex');
      await hold();
      const cut = admin(a, 'POST', '/verdicts', verdictBody(killed), { 'idempotency-key': 'killed-1' }).catch((err: unknown) => err);
      await eventually(async () => (await count(a, waiting, [schema])) > 0, 20_000, 'the request inside its transaction');
      await kill9(a);
      expect(await cut).toBeInstanceOf(TypeError);
      await blocker.query('ROLLBACK');
      expect(await stored(killed)).toBe(0);
      await start(a);
      const retried = await admin(a, 'POST', '/verdicts', verdictBody(killed), { 'idempotency-key': 'killed-1' });
      expect(retried.status).toBe(201);
      expect(retried.headers.get('idempotent-replayed')).toBeNull();
      expect(await stored(killed)).toBe(1);

      // An answer the client gave up on, and a twin sent meanwhile: one verdict, one answer for all.
      const lost = randomBytes(32).toString('hex');
      await hold();
      const abort = new AbortController();
      const gaveUp = fetch(`${a.url}/api/v1/admin/verdicts`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json', 'idempotency-key': 'lost-1' },
        body: JSON.stringify(verdictBody(lost)),
        signal: abort.signal,
      }).catch((err: unknown) => err);
      await eventually(async () => (await count(a, waiting, [schema])) > 0, 20_000, 'the first request inside its transaction');
      const twin = admin(a, 'POST', '/verdicts', verdictBody(lost), { 'idempotency-key': 'lost-1' });
      await eventually(async () => (await count(a, waiting, [schema])) > 1, 20_000, 'the twin inside its transaction');
      abort.abort();
      expect(await gaveUp).toBeInstanceOf(Error);
      await blocker.query('COMMIT');
      const twinAnswer = await twin;
      expect(twinAnswer.status).toBe(201);
      const again = await admin(a, 'POST', '/verdicts', verdictBody(lost), { 'idempotency-key': 'lost-1' });
      expect(again.status).toBe(201);
      expect(again.headers.get('idempotent-replayed')).toBe('true');
      const [first, second] = [(await twinAnswer.json()) as { id: string }, (await again.json()) as { id: string }];
      expect(second.id).toBe(first.id);
      expect(await stored(lost)).toBe(1);
      expect(await count(a, 'SELECT count(*) AS n FROM outbox WHERE object_id = $1', [first.id])).toBe(1);
    } finally {
      await blocker.end();
    }
  }, 120_000);

  it('PATCH and DELETE with a key change and publish once; a malformed key is a 400', async () => {
    const issued = (await (await admin(a, 'POST', '/verdicts', verdictBody(randomBytes(32).toString('hex')))).json()) as { id: string };
    const id = issued.id.split('/').pop()!;
    for (let i = 0; i < 2; i++) expect((await admin(a, 'PATCH', `/verdicts/${id}`, { label: 'ok' }, { 'idempotency-key': 'patch-1' })).status).toBe(200);
    for (let i = 0; i < 2; i++) expect((await admin(a, 'DELETE', `/verdicts/${id}`, undefined, { 'idempotency-key': 'delete-1' })).status).toBe(204);
    const types = await a.db.query<{ type: string }>('SELECT type FROM outbox WHERE object_id = $1 ORDER BY seq', [issued.id]);
    expect(types.rows.map((r) => r.type)).toEqual(['Create', 'Update', 'Delete']);
    expect((await admin(a, 'PATCH', `/verdicts/${id}`, { label: 'ok' }, { 'idempotency-key': 'bad key' })).status).toBe(400);
  });

  it('completes at start what an older version left half-done', async () => {
    const issue = async () => ((await (await admin(a, 'POST', '/verdicts', verdictBody(randomBytes(32).toString('hex')))).json()) as { id: string }).id;
    const [corrected, retracted, unlogged] = [await issue(), await issue(), await issue()];
    await a.server!.stop();
    // As older versions could leave them when killed between steps: a verdict corrected in its
    // row but never announced, one retracted without its Delete, and an activity in the outbox
    // that never reached the log.
    await a.db.query(`UPDATE verdicts SET label = 'ok', updated = now(), document = jsonb_set(document, '{label}', '"ok"') WHERE uri = $1`, [corrected]);
    await a.db.query(`UPDATE verdicts SET retracted_at = now() WHERE uri = $1`, [retracted]);
    await a.db.query(
      `INSERT INTO outbox (id, type, object_id, restricted, activity, published, queued, log_index)
       SELECT o.id || '-again', 'Update', o.object_id, true, jsonb_set(jsonb_set(o.activity, '{id}', to_jsonb(o.id || '-again')), '{type}', '"Update"'), now(), true, NULL
       FROM outbox o WHERE o.object_id = $1`,
      [unlogged],
    );
    const logSize = await count(a, 'SELECT size AS n FROM log_head');
    await start(a);
    expect(a.server!.logs.join('\n')).toMatch(/"logged":1,"published":2.*completed verdict publications/);
    const activities = async (uri: string) => (await a.db.query<{ type: string }>('SELECT type FROM outbox WHERE object_id = $1 ORDER BY seq', [uri])).rows.map((r) => r.type);
    expect(await activities(corrected)).toEqual(['Create', 'Update']);
    expect(await activities(retracted)).toEqual(['Create', 'Delete']);
    expect(await activities(unlogged)).toEqual(['Create', 'Update']);
    expect(await count(a, 'SELECT size AS n FROM log_head')).toBe(logSize + 3);
    expect(await count(a, `SELECT count(*) AS n FROM outbox WHERE log_index IS NULL AND object_id LIKE '%/verdicts/%'`)).toBe(0);
    const updated = await a.db.query<{ same: boolean }>(
      `SELECT (o.activity->'object') = v.document AS same FROM outbox o JOIN verdicts v ON v.uri = o.object_id WHERE o.object_id = $1 ORDER BY o.seq DESC LIMIT 1`,
      [corrected],
    );
    expect(updated.rows[0].same).toBe(true);
    // Nothing is left to repair: a second start does nothing.
    await a.server!.stop();
    await start(a);
    expect(a.server!.logs.join('\n')).not.toMatch(/completed verdict publications/);
  });
});

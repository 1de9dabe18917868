// The change feed (server/store/change-feed.ts) on the real PostgreSQL: a process's matcher follows
// what another connection (another process) writes — new verdicts, replaced subjects, retractions —
// and a change committed while an older transaction is still open does not make the reader skip
// that older one's change when it commits.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore, type Store } from '../../server/store/index.js';
import { ChangeFeed } from '../../server/store/change-feed.js';
import { VerdictService } from '../../server/verdicts/index.js';
import { Reattestation } from '../../server/verdicts/consensus.js';
import { Decider } from '../../server/verdicts/decider.js';
import { TrustService } from '../../server/trust/service.js';
import { createLogger } from '../../server/config/logger.js';
import { eventually } from '../helpers/process.js';
import { HAVE_POSTGRES, POSTGRES_URL, STORE_BACKENDS } from '../helpers/services.js';

const backend = STORE_BACKENDS.find((b) => b.name === 'postgres')!;

describe.skipIf(!HAVE_POSTGRES)('the change feed', () => {
  let database: ReturnType<typeof backend.create>;
  let store: Store;
  let feed: ChangeFeed;
  let verdicts: VerdictService;
  let consensus: Reattestation;
  /** Connections of "another process": their rows are not this process's own. */
  const others: pg.Client[] = [];

  const other = async () => {
    const client = new pg.Client({ connectionString: POSTGRES_URL, options: `-c search_path=${database.config.databaseSchema}`, application_name: 'another process' });
    await client.connect();
    others.push(client);
    return client;
  };

  /** Inserts a verdict with one SHA-256 subject (a peer's, or a consensus of ours); returns its id. */
  const insert = async (client: pg.Client, sha256: Buffer, kind: 'peer' | 'consensus' = 'peer'): Promise<number> => {
    const { rows } = await client.query<{ id: string }>(
      kind === 'peer'
        ? `INSERT INTO verdicts (uri, issuer, is_local, label, confidence, method, published) VALUES ($1, 'https://other.example/actor', false, 'spam', 1, 'human', now()) RETURNING id`
        : `INSERT INTO verdicts (uri, issuer, is_local, label, confidence, method, published, expires) VALUES ($1, 'https://here.example/actor', true, 'spam', 1, 'consensus', now(), now() + interval '1 day') RETURNING id`,
      [`https://${kind === 'peer' ? 'other' : 'here'}.example/verdicts/${randomBytes(8).toString('hex')}`],
    );
    const id = Number(rows[0].id);
    await client.query(`INSERT INTO verdict_subjects (verdict_id, algorithm, digest) VALUES ($1, 'sha256', $2)`, [id, sha256]);
    return id;
  };

  const matched = (sha256: Buffer) => verdicts.matchIds({ hashes: [{ algorithm: 'sha256', digest: sha256 }] });

  beforeAll(async () => {
    database = backend.create();
    store = await openStore(database.config);
    const logger = createLogger({ logLevel: 'warn' });
    feed = await ChangeFeed.start(store.db, { url: POSTGRES_URL, schema: database.config.databaseSchema }, logger);
    verdicts = new VerdictService(store.db, 'https://here.example/actor', 'https://here.example');
    await verdicts.loadIndex();
    const trust = await TrustService.open(store.db);
    consensus = new Reattestation(verdicts, new Decider(verdicts, trust), trust, logger);
    feed.subscribe({
      verdicts: async (ids, resubjected) => {
        await verdicts.syncIndex(ids, resubjected);
        await consensus.follow(ids);
      },
      trust: (foreign) => trust.reloadChanged(foreign),
      resync: () => verdicts.loadIndex(),
    });
  });

  afterAll(async () => {
    await Promise.all(others.map((c) => c.end()));
    await feed?.close();
    await consensus?.close();
    await store?.close();
    await database?.cleanup();
  });

  it('follows another process: a new verdict, its subjects replaced, its retraction', async () => {
    const client = await other();
    const first = randomBytes(32);
    const id = await insert(client, first);
    await eventually(async () => matched(first).includes(id), 5_000, 'the new verdict in the matcher');

    const second = randomBytes(32);
    await client.query('BEGIN');
    await client.query('DELETE FROM verdict_subjects WHERE verdict_id = $1', [id]);
    await client.query(`INSERT INTO verdict_subjects (verdict_id, algorithm, digest) VALUES ($1, 'sha256', $2)`, [id, second]);
    await client.query('UPDATE verdicts SET updated = now() WHERE id = $1', [id]);
    await client.query('COMMIT');
    await eventually(async () => matched(second).includes(id), 5_000, 'the replaced subject in the matcher');
    expect(matched(first)).toEqual([]);

    await client.query('UPDATE verdicts SET retracted_at = now() WHERE id = $1', [id]);
    await eventually(async () => matched(second).length === 0, 5_000, 'the retraction to drop it');
  });

  it('applies a change committed behind an older open transaction once that one commits, and both', async () => {
    const [older, younger] = [await other(), await other()];
    const [olderHash, youngerHash] = [randomBytes(32), randomBytes(32)];
    await older.query('BEGIN');
    const olderId = await insert(older, olderHash); // its transaction id comes first
    const youngerId = await insert(younger, youngerHash); // committed at once
    // Long enough for the feed to have read (notification and poll) while the older one is open: a
    // reader that moved its high-water mark past the younger row would never read the older one.
    await new Promise((r) => setTimeout(r, 1_500));
    await older.query('COMMIT');
    await eventually(async () => matched(olderHash).includes(olderId) && matched(youngerHash).includes(youngerId), 5_000, 'both verdicts in the matcher');
  });

  it('tracks a consensus verdict another process issued, until it retracts it', async () => {
    const client = await other();
    const before = consensus.liveCount;
    const id = await insert(client, randomBytes(32), 'consensus');
    await eventually(async () => consensus.liveCount === before + 1, 5_000, 'the consensus verdict to be tracked');
    await client.query('UPDATE verdicts SET retracted_at = now() WHERE id = $1', [id]);
    await eventually(async () => consensus.liveCount === before, 5_000, 'the retracted consensus verdict to be dropped');
  });
});

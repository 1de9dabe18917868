// The change feed (migration 0015): how several server processes on one PostgreSQL database keep
// what they hold in memory (the matcher, the trust graph, the policy) in step with what the others,
// and CLI commands, write. Triggers record each change in `change_feed` inside the writing
// transaction and NOTIFY; each process LISTENs on a dedicated connection (not one of the pool's)
// only to learn early that there is something to read, and reads the rows after its high-water
// mark through the pool. A lost notification, a dropped listening connection or a restart of
// PostgreSQL therefore delays a change (until the next poll or reconnect) but never loses it.
import { sql } from 'kysely';
import pg from 'pg';
import type { Logger } from '../config/logger.js';
import { isStoreUnavailable, type Db } from './index.js';
import { OWN_BACKENDS, PROCESS_ORIGIN } from './origin.js';

/** The listening connection's application_name: an operator (or a test) can find it in pg_stat_activity. */
export const LISTENER_APPLICATION_NAME = `vouch change feed ${process.pid}`;

/** What the feed reports: verdicts others changed, and trust or policy changes (ours included, see below). */
export interface ChangeHandlers {
  /** Verdicts another process changed; `resubjected` had subjects replaced or removed (their old ones are unknown). */
  verdicts(ids: number[], resubjected: ReadonlySet<number>): Promise<void>;
  /**
   * Trust or policy rows changed: reload them. `foreign` are the kinds another process changed
   * (this process has not acted on them yet); a reload for this process's own rows heals a local
   * change that raced with a reload.
   */
  trust(foreign: ReadonlySet<string>): Promise<void>;
  /** The feed was out of reach for longer than its rows are kept: reload everything. */
  resync(): Promise<void>;
}

/** Rows read per query while catching up. */
const PAGE = 1_000;
/** Read even without a notification this often: covers a notification lost with its connection. */
const POLL_MS = 1_000;
/** Reconnection delays of the listening connection, doubling up to the last. */
const RECONNECT_MIN_MS = 250;
const RECONNECT_MAX_MS = 5_000;
/** Rows older than this are pruned (hourly housekeeping). */
export const FEED_RETENTION_MS = 24 * 3_600_000;

/** First re-read of rows held back by an older transaction still open; doubles up to POLL_MS. */
const HELD_RETRY_MS = 10;

type FeedRow = { id: number; xact: string; topic: string; ref: number | null; origin: string | null; settled: boolean };

/** Deletes feed rows older than the retention; returns how many. Every process may run it. */
export async function pruneChangeFeed(db: Db, now = Date.now()): Promise<number> {
  const result = await sql`DELETE FROM change_feed WHERE at < ${new Date(now - FEED_RETENTION_MS)}`.execute(db);
  return Number(result.numAffectedRows ?? 0);
}

/**
 * A process's reader of the feed. `ChangeFeed.start` marks where reading begins, before the caller
 * loads its in-memory state, so that nothing committed after that load is missed (a change both
 * loaded and read again is applied twice, which the handlers allow).
 */
export class ChangeFeed {
  private handlers: ChangeHandlers | undefined;
  /** The high-water mark: every row at or below (xact, id) has been applied. */
  private position: { xact: string; id: number };
  /** Rows after the high-water mark already applied (they wait for an older transaction to end). */
  private readonly appliedAhead = new Set<number>();
  private lastRead = Date.now();
  private listener: pg.Client | undefined;
  private reconnectMs = RECONNECT_MIN_MS;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private heldTimer: NodeJS.Timeout | undefined;
  private heldRetryMs = HELD_RETRY_MS;
  private draining: Promise<void> | undefined;
  private again = false;
  private closed = false;

  private constructor(
    private readonly db: Db,
    private readonly connection: { url: string; schema?: string },
    private readonly channel: string,
    start: string,
    private readonly logger: Logger,
  ) {
    this.position = { xact: start, id: 0 };
  }

  static async start(db: Db, connection: { url: string; schema?: string }, logger: Logger): Promise<ChangeFeed> {
    const { xmin, schema } = await ChangeFeed.startingPoint(db);
    return new ChangeFeed(db, connection, `vouch_changes_${schema}`, xmin, logger);
  }

  /**
   * Every transaction below the oldest one still running has ended, and what it wrote is visible
   * to loads that follow; rows from that one on are read from the feed.
   */
  private static async startingPoint(db: Db): Promise<{ xmin: string; schema: string }> {
    const { rows } = await sql<{ xmin: string; schema: string }>`SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS xmin, current_schema() AS schema`.execute(db);
    return rows[0];
  }

  /** Starts listening and applying changes through `handlers`. */
  subscribe(handlers: ChangeHandlers): void {
    this.handlers = handlers;
    this.connect();
    this.pollTimer = setInterval(() => this.wake(), POLL_MS);
    this.pollTimer.unref();
    this.wake();
  }

  /** Reads and applies what is new (at once, or once the read under way ends). */
  private wake(): void {
    if (this.closed || !this.handlers) return;
    if (this.draining) {
      this.again = true;
      return;
    }
    this.draining = this.drain().finally(() => {
      this.draining = undefined;
      if (this.again) {
        this.again = false;
        this.wake();
      }
    });
  }

  private async drain(): Promise<void> {
    const handlers = this.handlers!;
    try {
      if (Date.now() - this.lastRead > FEED_RETENTION_MS / 2) {
        // Rows this process has not read may have been pruned by another: start again from the store.
        const { xmin } = await ChangeFeed.startingPoint(this.db);
        await handlers.resync();
        this.position = { xact: xmin, id: 0 };
        this.appliedAhead.clear();
        this.logger.warn('change feed: out of reach too long; in-memory state reloaded from the store');
      }
      for (;;) {
        // Every committed row is applied as soon as it is read, but the high-water mark moves only
        // over rows whose transaction, and every older one, has ended (settled; they sort first):
        // a row that commits later sorts after it, so none is ever skipped. While an older
        // transaction (on any database of the server) holds rows back, they are read again, shortly
        // since its end notifies nobody, and those already applied are not applied twice.
        const { rows: page } = await sql<FeedRow>`
          SELECT id, xact::text AS xact, topic, ref, origin, xact < pg_snapshot_xmin(pg_current_snapshot()) AS settled FROM change_feed
          WHERE (xact, id) > (${this.position.xact}::xid8, ${this.position.id}::bigint)
          ORDER BY xact, id LIMIT ${PAGE}`.execute(this.db);
        this.lastRead = Date.now();
        const held = page.findIndex((r) => !r.settled);
        const settled = held < 0 ? page : page.slice(0, held);
        if (held >= 0) this.retryHeld();
        else this.heldRetryMs = HELD_RETRY_MS;
        const rows = page.filter((r) => !this.appliedAhead.has(r.id));
        const verdicts = new Set<number>();
        const resubjected = new Set<number>();
        const foreignTrust = new Set<string>();
        let trust = false;
        for (const row of rows) {
          const own = row.origin === PROCESS_ORIGIN;
          if (row.topic === 'verdict' || row.topic === 'subjects') {
            if (own || row.ref === null) continue;
            verdicts.add(Number(row.ref));
            if (row.topic === 'subjects') resubjected.add(Number(row.ref));
          } else {
            trust = true;
            if (!own) foreignTrust.add(row.topic);
          }
        }
        if (verdicts.size > 0) await handlers.verdicts([...verdicts], resubjected);
        if (trust) await handlers.trust(foreignTrust);
        for (const row of settled) this.appliedAhead.delete(row.id);
        if (held >= 0) for (const row of page.slice(held)) this.appliedAhead.add(row.id);
        const last = settled.at(-1);
        if (last) this.position = { xact: last.xact, id: Number(last.id) };
        if (page.length < PAGE || held >= 0) return;
      }
    } catch (err) {
      // Read again on the next poll, from the same high-water mark.
      if (isStoreUnavailable(err)) this.logger.debug({ err }, 'change feed: database unreachable; retrying');
      else this.logger.error({ err }, 'change feed: applying changes failed; retrying');
    }
  }

  /** Reads again soon, then less often, while rows wait for an older transaction to end. */
  private retryHeld(): void {
    if (this.heldTimer || this.closed) return;
    this.heldTimer = setTimeout(() => {
      this.heldTimer = undefined;
      this.wake();
    }, this.heldRetryMs);
    this.heldTimer.unref();
    this.heldRetryMs = Math.min(this.heldRetryMs * 2, POLL_MS);
  }

  /** The listening connection: reopened after any loss, and a read follows each (re)connection. */
  private connect(): void {
    if (this.closed) return;
    const client = new pg.Client({
      connectionString: this.connection.url,
      application_name: LISTENER_APPLICATION_NAME,
      connectionTimeoutMillis: RECONNECT_MAX_MS,
      keepAlive: true,
    });
    let lost = false;
    const onLost = (err?: Error) => {
      if (lost) return;
      lost = true;
      if (this.listener === client) this.listener = undefined;
      client.end().catch(() => {});
      if (this.closed) return;
      this.logger.warn({ err, retryMs: this.reconnectMs }, 'change feed: listening connection lost; reconnecting (changes are read by polling meanwhile)');
      this.reconnectTimer = setTimeout(() => this.connect(), this.reconnectMs);
      this.reconnectTimer.unref();
      this.reconnectMs = Math.min(this.reconnectMs * 2, RECONNECT_MAX_MS);
    };
    client.on('error', onLost);
    client.on('end', () => onLost());
    // A verdict change this process made itself is skipped by the read anyway: not read back at once
    // (a busy inbox would read once per commit), only with the next read for another reason.
    client.on('notification', (n) => {
      if (!(n.payload === 'verdict' && OWN_BACKENDS.has(n.processId))) this.wake();
    });
    client
      .connect()
      .then(() => client.query(`LISTEN ${client.escapeIdentifier(this.channel)}`))
      .then(() => {
        if (lost) return;
        if (this.closed) {
          void client.end().catch(() => {});
          return;
        }
        this.listener = client;
        this.reconnectMs = RECONNECT_MIN_MS;
        this.logger.debug({ channel: this.channel }, 'change feed: listening');
        // Whatever was written while no connection listened.
        this.wake();
      })
      .catch((err: Error) => onLost(err));
  }

  /** Stops listening and polling; waits for a read under way. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.pollTimer);
    clearTimeout(this.heldTimer);
    clearTimeout(this.reconnectTimer);
    const listener = this.listener;
    this.listener = undefined;
    await listener?.end().catch(() => {});
    await this.draining;
  }
}

// Named prepared statements for hot, constant SQL on PostgreSQL. node-postgres sends every query
// unnamed, so the server parses and plans it on each call; for a primary-key probe that is most of
// the time a query costs (a log proof's node read: 0.76 ms unnamed, 0.32 ms named, against 0.30 ms
// for `SELECT 1`, same connection, loaded machine). A text marked with `prepared` is sent named
// instead: parsed once per connection, then only bound and executed. PGlite plans in process and
// is left as it is.
import type pg from 'pg';

const names = new Map<string, string>();

/**
 * Marks `text` (constant SQL with $n parameters, the same text on every call) to be sent as a
 * named prepared statement on PostgreSQL; returns it unchanged. Text built per call must not be
 * marked: each distinct text would hold a statement on every connection for its lifetime.
 */
export function prepared(text: string): string {
  if (!names.has(text)) names.set(text, `vouch_prepared_${names.size + 1}`);
  return text;
}

/** Makes a pool client send the marked texts by name (Kysely calls `query(text, values)`). */
export function sendPreparedByName(client: pg.PoolClient): void {
  const query = client.query.bind(client) as (...args: unknown[]) => unknown;
  const named = (...args: unknown[]) => {
    const [text, values] = args;
    const name = args.length === 2 && typeof text === 'string' && Array.isArray(values) ? names.get(text) : undefined;
    return name ? query({ name, text, values }) : query(...args);
  };
  Object.assign(client, { query: named });
}

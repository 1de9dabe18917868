// Which process wrote a change-feed row (migration 0015): every pool connection of this process
// carries it as its application_name, which the feed's triggers record, so that the process can
// skip the rows it has already applied.
import { randomUUID } from 'node:crypto';

export const PROCESS_ORIGIN = `vouch ${randomUUID()}`;

/**
 * The backend process ids of this process's pool connections (PostgreSQL): a NOTIFY one of them
 * sent announces a change this process made itself, which the feed need not read back at once.
 */
export const OWN_BACKENDS = new Set<number>();

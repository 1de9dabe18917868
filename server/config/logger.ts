// Structured JSON logs (pino). Secrets are redacted by path so a logged request or config object
// can never leak a token or a key.
import { pino, type Logger } from 'pino';
import type { Config } from './index.js';

export type { Logger } from 'pino';

export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers.signature',
  'res.headers["set-cookie"]',
  'adminToken',
  'config.adminToken',
  'databaseUrl',
  'config.databaseUrl',
  'redisUrl',
  'config.redisUrl',
  'scanner.token',
  'config.scanner.token',
  'quarantine.key',
  'config.quarantine.key',
  'mastodon.token',
  'config.mastodon.token',
  'mastodon.webhookSecret',
  'config.mastodon.webhookSecret',
  'req.headers["x-hub-signature"]',
  'req.headers["x-csrf-token"]',
  'validateToken',
  'config.validateToken',
  '*.privateKey',
  '*.privatePem',
];

export function createLogger(config: Pick<Config, 'logLevel'>, destination: NodeJS.WritableStream = process.stdout): Logger {
  return pino(
    { level: config.logLevel, base: { service: 'vouch' }, redact: { paths: REDACTED_PATHS, censor: '[redacted]' } },
    destination as pino.DestinationStream,
  );
}

/**
 * The server's log: asynchronous writes to stdout (a synchronous write per request line was a
 * tenth of the inbox's CPU time). `flush` on shutdown writes what is still queued.
 */
export function createServerLogger(config: Pick<Config, 'logLevel'>): { logger: Logger; flush(): void } {
  // Asynchronous: lines queued while a write is in flight go out together in the next one.
  const destination = pino.destination({ dest: 1, sync: false });
  const logger = pino(
    { level: config.logLevel, base: { service: 'vouch' }, redact: { paths: REDACTED_PATHS, censor: '[redacted]' } },
    destination,
  );
  return { logger, flush: () => destination.flushSync() };
}

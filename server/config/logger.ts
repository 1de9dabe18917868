// Structured logs (pino): JSON lines for services and log collectors, the same records made
// readable (pino-pretty) when they go to a terminal. Secrets are redacted by path so a logged
// request or config object can never leak a token or a key.
import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';
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

const options = (config: Pick<Config, 'logLevel'>): pino.LoggerOptions => ({
  level: config.logLevel,
  base: { service: 'vouch' },
  redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
});

const isTerminal = (stream: NodeJS.WritableStream) => (stream as NodeJS.WriteStream).isTTY === true;

/** One line per record, time of day first, coloured unless NO_COLOR; pid, host and the constant service left out. */
function readable(destination: 1 | NodeJS.WritableStream): pino.DestinationStream {
  return pretty({ destination, sync: true, singleLine: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,service' });
}

export function createLogger(config: Pick<Config, 'logLevel'>, destination: NodeJS.WritableStream = process.stdout): Logger {
  return pino(options(config), isTerminal(destination) ? readable(destination) : (destination as pino.DestinationStream));
}

/**
 * The server's log on stdout: JSON written asynchronously (a synchronous write per request line was
 * a tenth of the inbox's CPU time), or readable lines when stdout is a terminal. `flush` on
 * shutdown writes what is still queued.
 */
export function createServerLogger(config: Pick<Config, 'logLevel'>): { logger: Logger; flush(): void } {
  if (isTerminal(process.stdout)) return { logger: pino(options(config), readable(1)), flush: () => {} };
  // Asynchronous: lines queued while a write is in flight go out together in the next one.
  const destination = pino.destination({ dest: 1, sync: false });
  return { logger: pino(options(config), destination), flush: () => destination.flushSync() };
}

/**
 * Log lines that can repeat many times a second (a dependency down, load shed) go out at most once
 * per interval and key; `log` gets how many were left out since the last line.
 */
export function logThrottle(intervalMs: number): (key: string, log: (unlogged: number) => void) => void {
  const last = new Map<string, { at: number; unlogged: number }>();
  return (key, log) => {
    const now = performance.now();
    const held = last.get(key);
    if (held && now - held.at < intervalMs) {
      held.unlogged++;
      return;
    }
    log(held?.unlogged ?? 0);
    last.set(key, { at: now, unlogged: 0 });
  };
}

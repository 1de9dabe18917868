// The composition root: builds every module from the configuration and wires them together.
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import type { Config } from './config/index.js';
import type { Logger } from './config/logger.js';
import { openStore, type Store } from './store/index.js';
import { VerdictService } from './verdicts/index.js';
import { HashPool } from './scanning/hash-pool.js';
import { createApp } from './http/app.js';

export interface Core {
  config: Config;
  logger: Logger;
  store: Store;
  verdicts: VerdictService;
  close(): Promise<void>;
}

/** The store and the verdicts with their index: what every command needs. */
export async function openCore(config: Config, logger: Logger): Promise<Core> {
  const store = await openStore(config);
  try {
    const verdicts = new VerdictService(store.db, `${config.publicUrl}/actor`, config.publicUrl);
    const started = performance.now();
    await verdicts.loadIndex();
    logger.info({ index: verdicts.matcher.size, ms: Math.round(performance.now() - started), store: store.kind }, 'index loaded');
    return { config, logger, store, verdicts, close: () => store.close() };
  } catch (err) {
    await store.close();
    throw err;
  }
}

export function imageLimits(config: Config) {
  return { maxBytes: config.limits.maxUploadBytes, maxPixels: config.limits.maxPixels, maxFrames: config.limits.maxFrames };
}

export interface RunningServer {
  url: string;
  close(): Promise<void>;
}

/** Starts `vouch serve`: the HTTP server on the configured address. */
export async function startServer(config: Config, logger: Logger): Promise<RunningServer> {
  const core = await openCore(config, logger);
  const hashPool = new HashPool(imageLimits(config), config.hashThreads);
  const app = createApp({ config, logger, store: core.store, verdicts: core.verdicts, hashPool });
  const server: Server = app.listen(config.port, config.host);
  try {
    await once(server, 'listening');
  } catch (err) {
    await Promise.all([hashPool.close(), core.close()]);
    throw err;
  }
  const address = server.address() as AddressInfo;
  const url = `http://${address.address.includes(':') ? `[${address.address}]` : address.address}:${address.port}`;
  logger.info({ url, publicUrl: config.publicUrl }, 'vouch listening');
  return {
    url,
    async close() {
      // Stop accepting, let in-flight requests finish, then release the pool and the store.
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await hashPool.close();
      await core.close();
    },
  };
}

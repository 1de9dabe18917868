// The composition root: builds every module from the configuration and wires them together.
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import type { Config } from './config/index.js';
import { SOFTWARE_VERSION } from './config/paths.js';
import type { Logger } from './config/logger.js';
import { openStore, type Store } from './store/index.js';
import { createQueues, type Queues } from './queue/index.js';
import { createSafeFetcher } from './federation/safe-fetch.js';
import { DELIVERY_QUEUE, Federation, OwnershipError, type DeliveryJob } from './federation/index.js';
import { VerdictOwnershipError, VerdictService } from './verdicts/index.js';
import { HashPool } from './scanning/hash-pool.js';
import { createApp } from './http/app.js';


export interface Core {
  config: Config;
  logger: Logger;
  store: Store;
  verdicts: VerdictService;
  close(): Promise<void>;
}

async function loadIndex(verdicts: VerdictService, store: Store, logger: Logger): Promise<void> {
  const started = performance.now();
  await verdicts.loadIndex();
  logger.info({ index: verdicts.matcher.size, ms: Math.round(performance.now() - started), store: store.kind }, 'index loaded');
}

/** The store and the verdicts with their index, without federation: offline CLI commands. */
export async function openCore(config: Config, logger: Logger): Promise<Core> {
  const store = await openStore(config);
  try {
    const verdicts = new VerdictService(store.db, `${config.publicUrl}/actor`, config.publicUrl);
    await loadIndex(verdicts, store, logger);
    return { config, logger, store, verdicts, close: () => store.close() };
  } catch (err) {
    await store.close();
    throw err;
  }
}

export function imageLimits(config: Config) {
  return { maxBytes: config.limits.maxUploadBytes, maxPixels: config.limits.maxPixels, maxFrames: config.limits.maxFrames };
}

/** Instances sharing one Redis (a test mesh, a hosting provider) keep their queues apart. */
function queuePrefix(publicUrl: string): string {
  return `vouch-${createHash('sha256').update(publicUrl).digest('hex').slice(0, 12)}`;
}

export interface RunningServer {
  url: string;
  federation: Federation;
  close(): Promise<void>;
}

/** Starts `vouch serve`: store, federation, delivery workers and the HTTP server. */
export async function startServer(config: Config, logger: Logger): Promise<RunningServer> {
  const store = await openStore(config);
  const closers: Array<() => Promise<void>> = [() => store.close()];
  const closeAll = async () => {
    for (const close of closers.reverse()) await close().catch((err) => logger.error({ err }, 'shutdown step failed'));
  };
  try {
    const queues: Queues = createQueues({ redisUrl: config.redisUrl, db: store.db, prefix: queuePrefix(config.publicUrl), logger });
    closers.push(() => queues.close());
    const fed = config.federation;
    const federation = await Federation.open({
      db: store.db,
      options: {
        publicUrl: config.publicUrl,
        autoApproveFollowers: fed.autoApproveFollowers,
        publicOkFeed: fed.publicOkFeed,
        allowHttp: fed.allowHttp,
        deliveryConcurrency: fed.deliveryConcurrency,
        softwareVersion: SOFTWARE_VERSION,
      },
      safeFetch: createSafeFetcher({ allowPrivate: fed.allowPrivateNetworks, userAgent: `Vouch/${SOFTWARE_VERSION} (+${config.publicUrl})` }),
      queue: queues.queue<DeliveryJob>(DELIVERY_QUEUE, {
        attempts: fed.deliveryAttempts,
        backoffBaseMs: fed.deliveryBackoffBaseMs,
        backoffMaxMs: fed.deliveryBackoffMaxMs,
      }),
      logger,
    });
    const verdicts = new VerdictService(store.db, federation.identity.actorId, config.publicUrl, {
      sign: (object) => federation.sign(object),
      publish: (type, object, restricted) => federation.publish(type, object, restricted),
    });
    const owned = async (fn: () => Promise<void>) => {
      try {
        await fn();
      } catch (err) {
        if (err instanceof VerdictOwnershipError) throw new OwnershipError(err.message);
        throw err;
      }
    };
    federation.setInboundHandler({
      verdict: (_kind, verdict, document, actor) => owned(() => verdicts.receive(verdict, document, actor)),
      retract: (uri, actor) => owned(() => verdicts.receiveRetraction(uri, actor)),
    });
    await loadIndex(verdicts, store, logger);

    const hashPool = new HashPool(imageLimits(config), config.hashThreads);
    closers.push(() => hashPool.close());
    const app = createApp({ config, logger, store, verdicts, hashPool, federation });
    const server: Server = app.listen(config.port, config.host);
    await once(server, 'listening');
    closers.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    federation.start();
    // Whatever followed peers published while we were down; peers may be down too, so no await.
    void federation.catchUpAll();

    const address = server.address() as AddressInfo;
    const url = `http://${address.address.includes(':') ? `[${address.address}]` : address.address}:${address.port}`;
    logger.info({ url, publicUrl: config.publicUrl, actor: federation.identity.actorId }, 'vouch listening');
    // Shutdown order: stop accepting HTTP, let in-flight requests and jobs finish, then the store.
    return { url, federation, close: closeAll };
  } catch (err) {
    await closeAll();
    throw err;
  }
}

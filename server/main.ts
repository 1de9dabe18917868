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
import { DELIVERY_QUEUE, Federation, FederationError, OwnershipError, type DeliveryJob } from './federation/index.js';
import { VerdictOwnershipError, VerdictService } from './verdicts/index.js';
import { HashPool } from './scanning/hash-pool.js';
import { createApp } from './http/app.js';
import { CheckpointWitness, LogCheckpoints, TransparencyLog, logOrigin, type CheckpointScheduler } from './log/index.js';
import { decodeHashes } from './log/format.js';
import { verifierKey } from '../shared/merkle/checkpoint.js';
import type { CheckpointObject } from '../shared/vocab/objects.js';
import canonicalize from 'canonicalize';


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

export interface TransparencyWiring {
  log: TransparencyLog;
  checkpoints: LogCheckpoints;
  witness: CheckpointWitness;
  scheduler: CheckpointScheduler;
  /** Checks a followed peer's checkpoint against what we saw before, and sends back our cosignature. */
  witnessCheckpoint(checkpoint: CheckpointObject, actor: string): Promise<void>;
}

/**
 * The transparency log: ours (signed on a schedule and after batches of appends, each new
 * checkpoint pushed to followers) and our witness of the peers we follow.
 */
function wireTransparencyLog(store: Store, federation: Federation, config: Config, logger: Logger): TransparencyWiring {
  const { identity } = federation;
  const origin = logOrigin(identity.host);
  const log = new TransparencyLog(store.db);
  const checkpoints = new LogCheckpoints(store.db, log, { origin, privateKey: identity.proofPrivateKey });
  const witness = new CheckpointWitness(store.db, {
    name: origin,
    privateKey: identity.proofPrivateKey,
    onAlert: (alert) => logger.error({ alert }, 'transparency log alert: a peer presented inconsistent checkpoints'),
  });
  const scheduler = checkpoints.startCheckpointing({
    everyMs: config.log.checkpointEveryMs,
    afterAppends: config.log.checkpointAfterAppends,
    onCheckpoint: (c) =>
      federation.publishCheckpoint({ origin, treeSize: c.size, rootHash: Buffer.from(c.root).toString('base64'), note: c.note }),
    onError: (err) => logger.warn({ err }, 'checkpoint signing or delivery failed; retrying on the next tick'),
  });
  return {
    log,
    checkpoints,
    witness,
    scheduler,
    async witnessCheckpoint(checkpoint, actor) {
      const actorUrl = new URL(actor);
      if (checkpoint.origin !== logOrigin(actorUrl.host)) {
        throw new FederationError(403, 'foreign_object', `checkpoint origin ${checkpoint.origin} is not the log of ${actorUrl.host}`);
      }
      const method = (checkpoint.proof as { verificationMethod?: string } | undefined)?.verificationMethod;
      if (!method) throw new FederationError(401, 'proof_missing_proof', 'the checkpoint carries no proof');
      const logKey = verifierKey(checkpoint.origin, await federation.peers.proofKeyFor(method, actor), 'ed25519');
      const result = await witness.receiveCheckpoint({
        note: checkpoint.note,
        logVerifierKey: logKey,
        fetchConsistencyProof: async (from, to) => {
          const proof = (await federation.peers.signedGetJson(`${actorUrl.origin}/log/proof/consistency?from=${from}&to=${to}`)) as { hashes?: unknown };
          return decodeHashes(proof.hashes, 'consistency proof');
        },
      });
      if (result.status === 'cosigned') {
        const status = await federation.postSigned(`${actorUrl.origin}/log/cosignatures`, { cosignature: result.cosignature, size: result.checkpoint.size });
        if (status >= 300) logger.warn({ actor, status }, 'peer did not take our cosignature');
      }
    },
  };
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
    const transparency = wireTransparencyLog(store, federation, config, logger);
    closers.push(() => transparency.scheduler.stop());
    const verdicts = new VerdictService(store.db, federation.identity.actorId, config.publicUrl, {
      sign: (object) => federation.sign(object),
      // Every verdict we issue, correct or retract is appended to the log as the JCS of its activity.
      publish: async (type, object, restricted) => {
        const activity = await federation.publish(type, object, restricted);
        await transparency.log.append([Buffer.from(canonicalize(activity) as string, 'utf8')]);
        return activity;
      },
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
      checkpoint: (checkpoint, actor) => transparency.witnessCheckpoint(checkpoint, actor),
    });
    await loadIndex(verdicts, store, logger);

    const hashPool = new HashPool(imageLimits(config), config.hashThreads);
    closers.push(() => hashPool.close());
    const app = createApp({ config, logger, store, verdicts, hashPool, federation, transparency });
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

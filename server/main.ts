// The composition root: builds every module from the configuration and wires them together.
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { ConfigError, imageLimits, videoHashOptions, videoScanOptions, type Config } from './config/index.js';
import { SOFTWARE_VERSION } from './config/paths.js';
import { Metrics } from './config/metrics.js';
import type { Logger } from './config/logger.js';
import { openStore, type Store } from './store/index.js';
import { ChangeFeed, pruneChangeFeed } from './store/change-feed.js';
import { PROCESS_LOCAL, advisoryLocks } from './store/advisory-lock.js';
import { createQueues, type Queues } from './queue/index.js';
import { createSafeFetcher } from './federation/safe-fetch.js';
import { DELIVERY_QUEUE, Federation, FederationError, OwnershipError, type DeliveryJob } from './federation/index.js';
import { VerdictOwnershipError, VerdictService } from './verdicts/index.js';
import { Decider } from './verdicts/decider.js';
import { storedSubjects } from './verdicts/objects.js';
import { Reattestation } from './verdicts/consensus.js';
import { HashPool } from './scanning/hash-pool.js';
import { createApp } from './http/app.js';
import { ConsoleAccounts } from './console/index.js';
import { MASTODON_QUEUE, MastodonIntegration, type MastodonJob } from './integrations/mastodon.js';
import { TrustService } from './trust/service.js';
import { MediaIntake, SCAN_QUEUE, type ScanJob } from './scanning/intake.js';
import { Quarantine, parseQuarantineKey } from './scanning/quarantine.js';
import { mediaQuery } from './scanning/media.js';
import { ReviewQueue } from './review/index.js';
import type { ScanningServices } from './review/scanning-services.js';
import { scanMedia, startScanner } from './scanning/scanner.js';
import { createClassifier, isBundledModel, type Classifier } from './scanning/classifiers/index.js';
import { CheckpointWitness, LogCheckpoints, TransparencyLog, logOrigin, type CheckpointScheduler } from './log/index.js';
import { PeerCheckpointWitnessing } from './log/peer-witnessing.js';
import { WitnessClient } from './log/witness-client.js';
import type { CheckpointObject } from '../shared/vocab/objects.js';


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

/** Instances sharing one Redis (a test mesh, a hosting provider) keep their queues apart. */
function queuePrefix(publicUrl: string): string {
  return `vouch-${createHash('sha256').update(publicUrl).digest('hex').slice(0, 12)}`;
}

export interface TransparencyWiring {
  log: TransparencyLog;
  checkpoints: LogCheckpoints;
  witness: CheckpointWitness;
  scheduler: CheckpointScheduler;
  /** The outside witnesses (C2SP tlog-witness) asked to cosign each new checkpoint. */
  outsideWitnesses: WitnessClient;
  /** Stops checkpointing and waits for requests to witnesses under way. */
  stop(): Promise<void>;
  /** Checks a followed peer's checkpoint against what we saw before, and sends back our cosignature. */
  witnessCheckpoint(checkpoint: CheckpointObject, actor: string): Promise<void>;
}

/**
 * The transparency log: ours (signed on a schedule and after batches of appends, each new
 * checkpoint pushed to followers) and our witness of the peers we follow.
 */
function wireTransparencyLog(store: Store, federation: Federation, config: Config, logger: Logger, metrics: Metrics): TransparencyWiring {
  const { identity } = federation;
  const origin = logOrigin(identity.host);
  const log = new TransparencyLog(store.db, { proofCacheBytes: config.log.proofCacheMb * 2 ** 20 });
  const checkpoints = new LogCheckpoints(store.db, log, { origin, privateKey: identity.proofPrivateKey });
  const witness = new CheckpointWitness(store.db, {
    name: origin,
    privateKey: identity.proofPrivateKey,
    onAlert: (alert) => {
      metrics.logAlerts.inc({ kind: alert.kind });
      logger.error({ alert }, 'transparency log alert: a peer presented inconsistent checkpoints');
    },
  });
  // Outside witnesses get their own fetcher: no redirects (the operator named each URL), and the
  // private ranges are the federation's (a test mesh), nothing wider.
  const witnessFetch = createSafeFetcher({
    allowPrivate: config.federation.allowPrivateNetworks,
    maxRedirects: 0,
    userAgent: `Vouch/${SOFTWARE_VERSION} (+${config.publicUrl})`,
  });
  const outsideWitnesses = new WitnessClient(log, checkpoints, config.log.witnesses, witnessFetch, logger, {
    onOutcome: (o) => metrics.witnessOutcomes.inc({ witness: o.witness, outcome: o.status === 'failed' ? o.reason : o.status }),
  });
  const scheduler = checkpoints.startCheckpointing({
    everyMs: config.log.checkpointEveryMs,
    afterAppends: config.log.checkpointAfterAppends,
    onCheckpoint: async (c) => {
      outsideWitnesses.checkpointSigned();
      await federation.publishCheckpoint({ origin, treeSize: c.size, rootHash: Buffer.from(c.root).toString('base64'), note: c.note });
    },
    onError: (err) => logger.warn({ err }, 'checkpoint signing or delivery failed; retrying on the next tick'),
  });
  outsideWitnesses.start();
  const peerWitnessing = new PeerCheckpointWitnessing(
    witness,
    {
      proofKeyFor: (method, actor) => federation.peers.proofKeyFor(method, actor),
      signedGetJson: (url) => federation.peers.signedGetJson(url),
      postSigned: (url, body) => federation.postSigned(url, body),
    },
    logger,
  );
  return {
    log,
    checkpoints,
    witness,
    scheduler,
    outsideWitnesses,
    stop: async () => {
      await scheduler.stop();
      await outsideWitnesses.stop();
    },
    witnessCheckpoint: (checkpoint, actor) => peerWitnessing.witnessCheckpoint(checkpoint, actor),
  };
}


/** The Mastodon webhook receiver, when a webhook secret is configured. */
function wireMastodon(config: Config, queues: Queues, intake: MediaIntake, logger: Logger): MastodonIntegration | undefined {
  const { webhookSecret, url, token, accountAction, allowPrivateNetworks } = config.mastodon;
  if ((url === undefined) !== (token === undefined)) throw new ConfigError('VOUCH_MASTODON_URL and VOUCH_MASTODON_TOKEN go together');
  if (url?.startsWith('http:') && allowPrivateNetworks.length === 0) {
    throw new ConfigError('VOUCH_MASTODON_URL is plain http: allowed only to a private address named in VOUCH_MASTODON_ALLOW_PRIVATE_NETWORKS');
  }
  if (!webhookSecret) return undefined;
  // Its own fetcher: the private networks Mastodon lives on are not opened to peers' URLs.
  const safeFetch = createSafeFetcher({ allowPrivate: allowPrivateNetworks, userAgent: `Vouch/${SOFTWARE_VERSION} (+${config.publicUrl})` });
  const queue = queues.queue<MastodonJob>(MASTODON_QUEUE, { attempts: 8, backoffBaseMs: 2_000, backoffMaxMs: 600_000 });
  const integration = new MastodonIntegration({ webhookSecret, url, token, accountAction, maxMediaBytes: config.limits.maxUploadBytes, scanWaitMs: 60_000 }, intake, queue, safeFetch, logger);
  integration.start();
  return integration;
}

/** The configured classifier, for offline use (`vouch scan --classify`). */
export function loadClassifiers(config: Config): Promise<Classifier[]> {
  return classifierLoader(config)();
}

/**
 * Classifies one file with each classifier, as a scanner node would (same decoding): an image
 * whole, a video by frames sampled under the configuration's video limits (videoScanOptions).
 */
export async function classifyFile(classifiers: Classifier[], path: string, config: Config) {
  return scanMedia(await readFile(path), classifiers, videoScanOptions(config));
}

/** VOUCH_CLASSIFIER's list, loaded once (all or none: one that fails to load closes the others). */
function classifierLoader(config: Config): () => Promise<Classifier[]> {
  let loading: Promise<Classifier[]> | undefined;
  const load = async () => {
    const results = await Promise.allSettled(
      config.scanner.classifier.map((spec) => createClassifier(isBundledModel(spec) ? { kind: 'default', model: spec } : { kind: 'onnx', configPath: spec })),
    );
    const loaded = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      await Promise.all(loaded.map((c) => c.close()));
      throw failed.reason;
    }
    const names = loaded.map((c) => `${c.info.name}@${c.info.version}`);
    if (new Set(names).size !== names.length) {
      await Promise.all(loaded.map((c) => c.close()));
      throw new ConfigError(`VOUCH_CLASSIFIER names the same classifier twice (${names.join(', ')})`);
    }
    return loaded;
  };
  return () => (loading ??= load());
}

function wireScanning(
  metrics: Metrics,
  federation: Federation,
  config: Config,
  store: Store,
  queues: Queues,
  verdicts: VerdictService,
  trust: TrustService,
  decider: Decider,
  consensus: Reattestation,
  hashPool: HashPool,
  logger: Logger,
): ScanningServices {
  // auto: scanner nodes when they can exist (Redis) and have been given a secret; else in-process.
  const mode = config.scanner.mode === 'auto' ? (config.redisUrl && config.scanner.token ? 'external' : 'inprocess') : config.scanner.mode;
  const scannerToken = config.scanner.token ?? randomBytes(32).toString('hex');
  if (mode === 'external' && !config.scanner.token) {
    throw new ConfigError('scanner nodes need a shared secret: set VOUCH_SCANNER_TOKEN (or VOUCH_SCANNER=inprocess / off)');
  }
  const quarantine = config.quarantine.key
    ? new Quarantine({ db: store.db, dataDir: config.dataDir, key: parseQuarantineKey(config.quarantine.key), retentionDays: () => trust.policy.quarantineRetentionDays ?? config.quarantine.retentionDays })
    : undefined;
  if (!quarantine) logger.warn('VOUCH_QUARANTINE_KEY is not set: blocked media is refused but not kept as evidence');
  const scanQueue = queues.queue<ScanJob>(SCAN_QUEUE, { attempts: 5, backoffBaseMs: 1_000, backoffMaxMs: 60_000 });
  const intake = new MediaIntake(store.db, verdicts, trust, decider, consensus, hashPool, scanQueue, quarantine, logger, {
    scannerAvailable: mode !== 'off',
    pullOnMiss: (hashes) => federation.pullVerdicts(hashes),
    metrics,
    video: videoHashOptions(config),
  });
  metrics.gauge('vouch_queue_jobs', 'Jobs in the scan and delivery queues, by state', ['queue', 'state'], async () => {
    const depths = { scan: await scanQueue.counts(), deliver: (await federation.deliveryStatus(0)).counts };
    return Object.entries(depths).flatMap(([queue, counts]) =>
      Object.entries(counts).map(([state, value]) => ({ labels: { queue, state }, value })),
    );
  });
  return {
    intake,
    quarantine,
    review: new ReviewQueue(store.db, verdicts, quarantine),
    scannerToken,
    mode,
    scanQueueCounts: () => scanQueue.counts(),
    scannerOptions: {
      queue: scanQueue,
      classifiers: classifierLoader(config),
      token: scannerToken,
      concurrency: config.scanner.concurrency,
      maxBatch: config.scanner.maxBatch,
      video: videoScanOptions(config),
      logger,
    },
  };
}

/** `vouch scanner`: a scanner node on its own, for GPU machines that reach Redis and the server. */
export async function startScannerNode(config: Config, logger: Logger, serverUrl: string): Promise<{ close(): Promise<void> }> {
  if (!config.redisUrl) throw new ConfigError('a scanner node takes its jobs from Redis: set REDIS_URL (without Redis the server scans in-process)');
  if (!config.scanner.token) throw new ConfigError('set VOUCH_SCANNER_TOKEN to the server\'s scanner token');
  const queues = createQueues({ redisUrl: config.redisUrl, prefix: queuePrefix(config.publicUrl), leaseMs: config.queueLeaseMs, logger });
  const loadClassifier = classifierLoader(config);
  const infos = (await loadClassifier()).map((c) => c.info);
  logger.info({ classifiers: infos.map((i) => `${i.name}@${i.version}`), measures: infos.map((i) => i.measures) }, 'scanner node ready');
  startScanner({
    queue: queues.queue<ScanJob>(SCAN_QUEUE, { attempts: 5, backoffBaseMs: 1_000, backoffMaxMs: 60_000 }),
    classifiers: loadClassifier,
    serverUrl: serverUrl.replace(/\/+$/, ''),
    token: config.scanner.token,
    concurrency: config.scanner.concurrency,
    maxBatch: config.scanner.maxBatch,
    video: videoScanOptions(config),
    logger,
  });
  return {
    async close() {
      await queues.close();
      await Promise.all((await loadClassifier()).map((c) => c.close()));
    },
  };
}

export interface RunningServer {
  url: string;
  federation: Federation;
  close(): Promise<void>;
}

/** How long one shutdown step may take before it is abandoned. */
const SHUTDOWN_STEP_MS = 5_000;

/** Starts `vouch serve`: store, federation, delivery workers and the HTTP server. */
export async function startServer(config: Config, logger: Logger): Promise<RunningServer> {
  const store = await openStore(config);
  const closers: Array<() => Promise<void>> = [() => store.close()];
  // A step still waiting after SHUTDOWN_STEP_MS (queues closing against an unreachable Redis) is
  // abandoned, so that shutdown ends whatever is unreachable; the store still closes last.
  const closeAll = async () => {
    for (const close of closers.reverse()) {
      let timer: NodeJS.Timeout | undefined;
      const abandoned = new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          logger.warn({ afterMs: SHUTDOWN_STEP_MS }, 'shutdown step did not finish: abandoned');
          resolve();
        }, SHUTDOWN_STEP_MS);
      });
      await Promise.race([close().catch((err) => logger.error({ err }, 'shutdown step failed')), abandoned]);
      clearTimeout(timer);
    }
  };
  try {
    // Other processes on the same PostgreSQL database: their changes are read from the feed from
    // here on, before anything is loaded into memory.
    const feed = config.databaseUrl ? await ChangeFeed.start(store.db, { url: config.databaseUrl, schema: config.databaseSchema }, logger) : undefined;
    const locks = config.databaseUrl ? advisoryLocks(config.databaseUrl, config.databaseSchema ?? '') : PROCESS_LOCAL;
    closers.push(() => locks.close());
    const metrics = new Metrics();
    const queues: Queues = createQueues({ redisUrl: config.redisUrl, db: store.db, prefix: queuePrefix(config.publicUrl), leaseMs: config.queueLeaseMs, logger });
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
      metrics,
    });
    const transparency = wireTransparencyLog(store, federation, config, logger, metrics);
    closers.push(() => transparency.stop());
    const verdicts = new VerdictService(store.db, federation.identity.actorId, config.publicUrl, {
      sign: (object) => federation.sign(object),
      activity: (type, object) => federation.newActivity(type, object),
      record: (trx, activity, restricted, logIndex) => federation.recordWithin(trx, activity, restricted, logIndex),
      deliverPending: () => federation.deliverPending(),
      log: transparency.log,
    });
    closers.push(() => federation.stop());
    const owned = async <T>(fn: () => Promise<T>): Promise<T> => {
      try {
        return await fn();
      } catch (err) {
        if (err instanceof VerdictOwnershipError) throw new OwnershipError(err.message);
        throw err;
      }
    };
    const trust = await TrustService.open(store.db, (entries) => federation.publishTrustStatement(entries));
    const decider = new Decider(verdicts, trust);
    const consensus = new Reattestation(verdicts, decider, trust, logger, metrics, (sha256) => mediaQuery(store.db, sha256), locks);
    closers.push(() => consensus.close());
    metrics.gauge('vouch_consensus_live', 'Consensus verdicts of ours (re-attestations) not retracted', [], async () => [{ labels: {}, value: consensus.liveCount }]);
    // A verdict that changes (a peer's, or one of our own) may change what we re-attested; so may
    // a change of trust or policy.
    verdicts.onLocalVerdicts((subjectLists) => consensus.revisit(subjectLists));
    trust.onChange((what) => consensus.trustChanged(what));
    federation.setInboundHandler({
      verdicts: (received, trx) =>
        owned(async () => {
          const index = await verdicts.receiveWithin(trx, received);
          return async () => {
            index();
            await consensus.revisit(received.map((r) => storedSubjects(r.verdict.subject)));
          };
        }),
      retract: (uri, actor, trx) =>
        owned(async () => {
          const unindex = await verdicts.receiveRetractionWithin(trx, uri, actor);
          return async () => {
            unindex();
            const retracted = await verdicts.byUri(uri);
            if (retracted) await consensus.revisit([retracted.subjects]);
          };
        }),
      checkpoint: (checkpoint, actor) => transparency.witnessCheckpoint(checkpoint, actor),
      trustStatement: (statement, actor) => trust.receiveStatement(statement, actor),
    });
    federation.setLookupHandler((hashes) => consensus.lookup(hashes));
    const repaired = await verdicts.repairPublications();
    if (repaired.logged + repaired.published > 0) logger.warn(repaired, 'completed verdict publications a crash had left half-done');
    await loadIndex(verdicts, store, logger);
    await consensus.load();
    if (feed) {
      feed.subscribe({
        verdicts: async (ids, resubjected) => {
          await verdicts.syncIndex(ids, resubjected);
          await consensus.follow(ids);
        },
        trust: (foreign) => trust.reloadChanged(foreign),
        resync: async () => {
          await verdicts.loadIndex();
          await trust.reloadChanged(new Set(['policy']));
        },
      });
      closers.push(() => feed.close());
    }

    const hashPool = new HashPool(imageLimits(config), config.hashThreads);
    closers.push(() => hashPool.close());
    const scanning = wireScanning(metrics, federation, config, store, queues, verdicts, trust, decider, consensus, hashPool, logger);
    const accounts = new ConsoleAccounts(store.db);
    const mastodon = wireMastodon(config, queues, scanning.intake, logger);
    const app = createApp({ config, logger, store, verdicts, hashPool, federation, transparency, trust, scanning, metrics, accounts, mastodon });
    const server: Server = app.listen(config.port, config.host);
    await once(server, 'listening');
    closers.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    federation.start();
    // Housekeeping, hourly: replay records and abandoned scan media do not grow without bound.
    const housekeeping = setInterval(() => {
      void Promise.all([federation.pruneReplayRecords(), scanning.intake.pruneAbandoned(), accounts.pruneSessions(), pruneChangeFeed(store.db)])
        .then(([replays, media, sessions, changes]) => logger.debug({ replays, media, sessions, changes }, 'housekeeping'))
        .catch((err) => logger.warn({ err }, 'housekeeping failed'));
    }, 3_600_000);
    housekeeping.unref();
    closers.push(async () => clearInterval(housekeeping));
    if (scanning.mode === 'inprocess') {
      // The in-process scanner talks to this very server over HTTP, exactly as a remote node would.
      startScanner({ ...scanning.scannerOptions, serverUrl: `http://${config.host === '0.0.0.0' ? '127.0.0.1' : config.host}:${(server.address() as AddressInfo).port}` });
    }
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

// The HTTP API. Every error leaves as {"error": {"code", "message"}} with a 4xx/5xx status; input
// is checked before it is used; request bodies are size-capped before they are read.
import { createHash, randomUUID } from 'node:crypto';
import express, { type NextFunction, type Request, type Response } from 'express';
import { pinoHttp } from 'pino-http';
import { Counter } from 'prom-client';
import { HttpError, parseBody, refuseDeclaredOversize, rejectionStatus } from './errors.js';
import { IdempotencyKeys } from './idempotency.js';
import { bearerMatches, requireBearer } from './auth.js';
import { mediaRoutes, scannerRoutes } from './media-routes.js';
import { actorOf, reviewRoutes } from './review-routes.js';
import { quarantineRoutes } from './quarantine-routes.js';
import type { TrustService } from '../trust/service.js';
import type { Metrics } from '../config/metrics.js';
import type { ScanningServices } from '../review/scanning-services.js';
import { logRoutes } from './log-routes.js';
import { inboxAheadOfStack, INBOX_PATHS } from './inbox-route.js';
import { consoleRouter, type ConsoleAccounts } from '../console/index.js';
import { WebhookError, type MastodonIntegration } from '../integrations/mastodon.js';
import type { CheckpointWitness, LogCheckpoints, TransparencyLog } from '../log/index.js';

import type { Config } from '../config/index.js';
import { logThrottle, type Logger } from '../config/logger.js';
import type { Store } from '../store/index.js';
import { isStoreUnavailable, pingStore } from '../store/index.js';
import { VerdictNotFoundError, type Verdict, type VerdictService, type VerdictMatch } from '../verdicts/index.js';
import { FederationError, type Federation } from '../federation/index.js';
import { OutboundRequestError } from '../federation/safe-fetch.js';
import { z } from 'zod';
import { HashListError, parseHashList } from '../verdicts/hash-list.js';
import type { HashPool } from '../scanning/hash-pool.js';
import { recordMedia } from '../scanning/media.js';
import { type QueryHash } from '../matching/matcher.js';
import { ALGORITHM_REGISTRY, DigestFormatError } from '../../shared/algorithms/index.js';
import { LABELS, METHODS, isAlgorithm, isLabel, parseDigest } from '../../shared/vocab/verdict.js';

export interface AppDeps {
  config: Config;
  logger: Logger;
  store: Store;
  verdicts: VerdictService;
  hashPool: HashPool;
  federation: Federation;
  transparency: { log: TransparencyLog; checkpoints: LogCheckpoints; witness: CheckpointWitness; outsideWitnesses: { readonly verifierKeys: readonly string[] } };
  trust: TrustService;
  scanning: ScanningServices;
  metrics: Metrics;
  accounts: ConsoleAccounts;
  /** The Mastodon webhook receiver, when configured. */
  mastodon: MastodonIntegration | undefined;
}

const subjectSchema = z
  .object({
    algorithm: z.string().refine((name) => ALGORITHM_REGISTRY.has(name), { message: `one of ${ALGORITHM_REGISTRY.names.join(', ')}` }),
    digest: z.string().max(1024),
    quality: z.number().int().min(0).max(100).optional(),
  })
  .superRefine((s, ctx) => {
    if (!ALGORITHM_REGISTRY.has(s.algorithm)) return;
    try {
      ALGORITHM_REGISTRY.parseSubject(s);
    } catch (err) {
      if (!(err instanceof DigestFormatError)) throw err;
      ctx.addIssue({ code: 'custom', message: err.message });
    }
  });

const newVerdictSchema = z
  .object({
    subjects: z.array(subjectSchema).min(1).max(16),
    label: z.enum(LABELS),
    confidence: z.number().min(0).max(1),
    method: z.enum(METHODS),
    classifier: z.object({ name: z.string().min(1).max(100), version: z.string().min(1).max(100) }).optional(),
    expires: z.iso.datetime({ offset: true }).optional(),
    supersedes: z.url().optional(),
  })
  .strict()
  .refine((v) => v.method !== 'classifier' || v.classifier, { message: 'method "classifier" needs a classifier {name, version}' });

const verdictPatchSchema = z
  .object({
    label: z.enum(LABELS).optional(),
    confidence: z.number().min(0).max(1).optional(),
    expires: z.iso.datetime({ offset: true }).nullable().optional(),
  })
  .strict();

const actorSchema = z.object({ actor: z.url() }).strict();
const followSchema = z.object({ target: z.string().min(3).max(500) }).strict();

function publicVerdictJson(v: Verdict) {
  return {
    id: v.uri,
    issuer: v.issuer,
    local: v.local,
    label: v.label,
    confidence: v.confidence,
    method: v.method,
    classifier: v.classifier,
    ...(v.basis ? { basis: v.basis } : {}),
    source: v.source,
    published: v.published,
    expires: v.expires,
    supersedes: v.supersedes,
    retracted: v.retracted,
    subjects: v.subjects,
  };
}

function verdictJson(v: VerdictMatch) {
  const { retracted: _retracted, ...rest } = publicVerdictJson(v);
  return { ...rest, matched_by: v.matchedBy, distance: v.distance };
}

// Body limits of the routes below, checked against a declared Content-Length before reading.
const JSON_LIMIT = 256 * 1024;
const HASH_LIST_LIMIT = 64 * 1024 * 1024;
const WEBHOOK_LIMIT = 1024 * 1024;
/** A dependency that answers slower than this counts as down for /healthz. */
const HEALTH_PROBE_MS = 2_000;
/** Busy and unavailable answers: the wait a client is told, and how often each kind is logged. */
const RETRY_AFTER_S = 1;
const SHED_LOG_INTERVAL_MS = 60_000;

/** Answers 'ok' or 'down' for one dependency, a hung probe counting as down. */
async function probe(check: () => Promise<unknown>): Promise<'ok' | 'down'> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'down'>((resolve) => (timer = setTimeout(() => resolve('down'), HEALTH_PROBE_MS)));
  const answer = check().then(
    () => 'ok' as const,
    () => 'down' as const,
  );
  try {
    return await Promise.race([answer, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Query parameters that are signatures: never logged. */
const SECRET_QUERY_PARAMETERS = /([?&](?:signature|sig)=)[^&#]*/gi;

function withoutUrlSecrets(url: string | undefined): string | undefined {
  return url?.replace(SECRET_QUERY_PARAMETERS, '$1[redacted]');
}

function withoutQuerySecrets(query: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  if (!query) return query;
  return Object.fromEntries(Object.entries(query).map(([k, v]) => [k, /^(signature|sig)$/i.test(k) ? '[redacted]' : v]));
}

function singleQuery(req: Request, name: string): string | undefined {
  const value = req.query[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new HttpError(400, 'bad_query', `query parameter "${name}" must be given once`);
  return value;
}

export function createApp(deps: AppDeps): express.Express {
  const { config, logger, store, verdicts, hashPool, federation, transparency, trust, scanning, metrics, accounts, mastodon } = deps;
  const app = express();
  app.disable('x-powered-by');
  // Busy and unavailable answers are counted and logged at most once per interval, not per request:
  // under load they would flood the log.
  const shedAnswers = new Counter({
    name: 'vouch_http_shed_total',
    help: 'Requests answered 503 because the hashing queue or the inbox\'s group commit was full (busy) or the database was unreachable',
    labelNames: ['reason'],
    registers: [metrics.registry],
  });
  const shedLog = logThrottle(SHED_LOG_INTERVAL_MS);
  const shedResponses = new WeakSet<object>();
  // Client addresses (sign-in limits, logs) come from X-Forwarded-For only via proxies named here.
  app.set('trust proxy', config.trustProxy === undefined ? false : /^\d+$/.test(config.trustProxy) ? Number(config.trustProxy) : config.trustProxy);
  const logRequests = pinoHttp({
    logger,
    genReqId: (req, res) => {
      const id = randomUUID();
      res.setHeader('x-request-id', id);
      return id;
    },
    // An accepted inbox POST is the hot path (hundreds a second from busy peers): counted in
    // /metrics, not logged; refused ones still are.
    customLogLevel: (req, res, err) =>
      shedResponses.has(res) || (res.statusCode === 202 && req.method === 'POST' && INBOX_PATHS.has((req as { originalUrl?: string }).originalUrl ?? req.url ?? ''))
        ? 'silent'
        : err || res.statusCode >= 500 ? 'error' : res.statusCode >= 400 ? 'warn' : 'info',
    autoLogging: { ignore: (req) => req.url === '/healthz' || req.url === '/readyz' || req.url === '/metrics' },
    // Signed URLs (a scanner's media fetch, the console's notices) carry their HMAC in the query.
    serializers: { req: (req: { url?: string; query?: Record<string, unknown> }) => ({ ...req, url: withoutUrlSecrets(req.url), query: withoutQuerySecrets(req.query) }) },
  });
  // First: most inbox POSTs, the hot path, are answered ahead of everything below (refusals are
  // still logged, through logRequests).
  app.use(inboxAheadOfStack(federation, logRequests));
  // Browsers ask for /favicon.ico on every console page: answered empty and cached for a week, before
  // the request log, so it neither 404s nor logs a warning per page.
  app.get('/favicon.ico', (_req, res) => {
    res.set('cache-control', 'public, max-age=604800').status(204).end();
  });
  app.use(logRequests);
  // No route takes a body larger than this: refuse a larger declared one before reading any of it.
  // Routes check their own, smaller limits the same way.
  app.use(refuseDeclaredOversize(Math.max(config.limits.maxUploadBytes, HASH_LIST_LIMIT)));

  // Prometheus text format: counts and latencies only, nothing secret (bind or proxy accordingly).
  app.get('/metrics', async (_req, res) => {
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });

  // Each dependency by name: the database, and Redis when the queues live there (probed through the
  // scan queue's counts, which read it). Any one down answers 503.
  app.get('/healthz', async (_req, res) => {
    const [database, redis] = await Promise.all([probe(() => pingStore(store)), config.redisUrl ? probe(() => scanning.scanQueueCounts()) : undefined]);
    const ok = database === 'ok' && redis !== 'down';
    res.status(ok ? 200 : 503).json({ status: ok ? 'ok' : 'unavailable', store: store.kind, database, ...(redis ? { redis } : {}), index: verdicts.matcher.size });
  });
  // For load balancers: whether this process can answer requests, i.e. its database answers. Redis
  // away stalls issuing and delivery, not lookups and hashing, so it does not take a process out.
  app.get('/readyz', async (_req, res) => {
    const database = await probe(() => pingStore(store));
    res.status(database === 'ok' ? 200 : 503).json({ ready: database === 'ok', database });
  });

  const imageLimit = refuseDeclaredOversize(config.limits.maxUploadBytes);
  const imageBody = express.raw({ type: () => true, limit: config.limits.maxUploadBytes });

  app.post('/api/v1/hash', imageLimit, imageBody, async (req, res) => {
    const body = req.body;
    if (!Buffer.isBuffer(body) || body.length === 0) {
      throw new HttpError(400, 'empty', 'request body must hold the image bytes');
    }
    const outcome = await hashPool.hashBytes(body);
    if (!outcome.ok) throw new HttpError(rejectionStatus(outcome.code), outcome.code, outcome.message);
    const h = outcome.hashes;
    if (singleQuery(req, 'record') === 'true') await recordMedia(store.db, h, outcome.byteSize, 'api');
    res.json({
      sha256: h.sha256,
      pdq: h.pdq,
      pdq_quality: h.pdqQuality,
      phash64: h.phash64,
      pipeline: h.pipeline,
      width: h.width,
      height: h.height,
    });
  });

  // Lookups show what the feeds show (server/federation, the outbox and /verdicts/ID): anonymous
  // callers only our own `ok` verdicts, and those only with VOUCH_PUBLIC_OK_FEED; approved
  // followers (signed GET) all of our own verdicts; the admin token everything we hold, peers'
  // verdicts included. A hidden verdict is left out as if it did not exist: no label, digest or
  // distance, which would make the endpoint an oracle for "does my altered copy still match".
  const adminTokenDigest = config.adminToken ? createHash('sha256').update(config.adminToken).digest() : undefined;
  const lookupAudience = async (req: Request): Promise<{ all: boolean; verdict: (v: VerdictMatch) => boolean }> => {
    if (req.get('authorization') !== undefined) {
      if (adminTokenDigest && bearerMatches(req, adminTokenDigest)) return { all: true, verdict: () => true };
      throw new HttpError(401, 'unauthorized', 'a valid admin bearer token is required (or send none)');
    }
    if (req.get('signature') !== undefined && (await federation.approvedFollower(req)) !== undefined) return { all: false, verdict: (v) => v.local };
    return { all: false, verdict: (v) => config.federation.publicOkFeed && v.local && v.label === 'ok' };
  };

  app.get('/api/v1/verdicts', async (req, res) => {
    const visible = await lookupAudience(req);
    // One query parameter per algorithm that is looked up (pdq=HEX, sha256=HEX, md5=HEX).
    const hashes: QueryHash[] = [];
    for (const algorithm of ALGORITHM_REGISTRY.indexed) {
      const hex = singleQuery(req, algorithm.name);
      if (hex === undefined || hex === '') continue;
      try {
        hashes.push({ algorithm: algorithm.name, digest: parseDigest(algorithm.name, hex) });
      } catch (err) {
        throw new HttpError(400, 'bad_hash', (err as Error).message);
      }
    }
    if (hashes.length === 0) throw new HttpError(400, 'bad_query', `give ${ALGORITHM_REGISTRY.indexed.map((a) => `${a.name}=HEX`).join(' or ')}`);
    const widest = ALGORITHM_REGISTRY.widestRadius;
    const maxRaw = singleQuery(req, 'max_distance');
    const maxDistance = maxRaw === undefined ? widest : Number(maxRaw);
    if (!Number.isInteger(maxDistance) || maxDistance < 0 || maxDistance > widest) {
      throw new HttpError(400, 'bad_query', `max_distance must be an integer from 0 to ${widest}`);
    }
    const candidates = (await verdicts.find({ hashes, maxDistance })).filter(visible.verdict);
    // Followers and the public see only what our feeds could have shown them: published verdicts.
    const published = visible.all ? undefined : await federation.published(candidates.map((v) => v.uri));
    res.json({ matches: candidates.filter((v) => published === undefined || published.has(v.uri)).map(verdictJson) });
  });

  const admin = express.Router();
  admin.use(requireBearer(config.adminToken, 'admin', 'admin API is disabled: set VOUCH_ADMIN_TOKEN'));
  admin.post(
    '/hashes',
    refuseDeclaredOversize(HASH_LIST_LIMIT),
    express.text({ type: ['text/plain', 'text/csv'], limit: HASH_LIST_LIMIT }),
    async (req, res) => {
      if (typeof req.body !== 'string') {
        throw new HttpError(415, 'unsupported_media_type', 'send the hash list as text/plain or text/csv');
      }
      const algorithm = singleQuery(req, 'algorithm');
      const label = singleQuery(req, 'label');
      const confidenceRaw = singleQuery(req, 'confidence');
      if (algorithm !== undefined && !isAlgorithm(algorithm)) throw new HttpError(400, 'bad_query', `unknown algorithm "${algorithm}"`);
      if (label !== undefined && !isLabel(label)) throw new HttpError(400, 'bad_query', `unknown label "${label}"`);
      const confidence = confidenceRaw === undefined ? undefined : Number(confidenceRaw);
      if (confidence !== undefined && !(confidence >= 0 && confidence <= 1)) {
        throw new HttpError(400, 'bad_query', 'confidence must be a number from 0 to 1');
      }
      const source = singleQuery(req, 'source') ?? 'hashlist:api';
      let entries;
      try {
        entries = parseHashList(req.body, { algorithm, label, confidence });
      } catch (err) {
        if (err instanceof HashListError) throw new HttpError(400, 'bad_hash_list', err.message);
        throw err;
      }
      const result = await verdicts.importHashList(entries, source.slice(0, 200));
      res.status(201).json(result);
    },
  );
  const jsonLimit = refuseDeclaredOversize(JSON_LIMIT);
  const json = express.json({ limit: JSON_LIMIT, type: ['application/json', 'application/*+json'] });
  const localUri = (id: string) => {
    if (!/^[0-9a-f-]{36}$/.test(id)) throw new HttpError(400, 'bad_id', 'verdict ids are UUIDs');
    return `${config.publicUrl}/verdicts/${id}`;
  };

  // Writes to our verdicts take an Idempotency-Key (server/http/idempotency.ts): the answer is
  // stored in the transaction that issues, corrects or retracts, and replayed to a retry.
  const idempotency = new IdempotencyKeys(store.db);
  admin.post('/verdicts', jsonLimit, json, async (req, res) => {
    const input = parseBody(newVerdictSchema, req.body);
    await idempotency.run(req, res, async (record) => {
      const answer = (v: Verdict) => ({ status: 201, body: publicVerdictJson(v) });
      const verdict = await verdicts
        .issue({ ...input, expires: input.expires ? new Date(input.expires) : undefined, source: 'admin-api' }, record && ((trx, v) => record(trx, answer(v))))
        .catch((err: unknown) => {
          // The verdict named in `supersedes` is not one of ours: a bad request, not a missing page.
          if (err instanceof VerdictNotFoundError) throw new HttpError(400, 'bad_supersedes', err.message);
          throw err;
        });
      return answer(verdict);
    });
  });
  admin.patch('/verdicts/:id', jsonLimit, json, async (req, res) => {
    const patch = parseBody(verdictPatchSchema, req.body);
    const uri = localUri(String(req.params.id));
    await idempotency.run(req, res, async (record) => {
      const answer = (v: Verdict) => ({ status: 200, body: publicVerdictJson(v) });
      const expires = patch.expires === undefined ? undefined : patch.expires === null ? null : new Date(patch.expires);
      const verdict = await verdicts.updateLocal(uri, { ...patch, expires }, record && ((trx, v) => record(trx, answer(v))));
      return answer(verdict);
    });
  });
  admin.delete('/verdicts/:id', async (req, res) => {
    const uri = localUri(String(req.params.id));
    await idempotency.run(req, res, async (record) => {
      const answer = { status: 204, body: undefined };
      await verdicts.retractLocal(uri, record && ((trx) => record(trx, answer)));
      return answer;
    });
  });

  admin.get('/peers', async (_req, res) => {
    const peers = await federation.peers.list();
    res.json({
      peers: peers.map((p) => ({ actor: p.actor, following: p.following, follower: p.follower, inbox: p.inbox, fetched_at: p.fetchedAt, caught_up_to: p.caughtUpTo })),
    });
  });
  admin.post('/peers/follow', jsonLimit, json, async (req, res) => {
    const { target } = parseBody(followSchema, req.body);
    const peer = await federation.follow(target);
    res.status(202).json({ actor: peer.actor, following: peer.following });
  });
  for (const action of ['approve', 'reject', 'unfollow'] as const) {
    admin.post(`/peers/${action}`, jsonLimit, json, async (req, res) => {
      const { actor } = parseBody(actorSchema, req.body);
      await federation[action](actor);
      const peer = await federation.peers.get(actor);
      res.json({ actor, following: peer?.following, follower: peer?.follower });
    });
  }
  admin.post('/peers/pull', jsonLimit, json, async (req, res) => {
    const { actor, enabled } = parseBody(z.object({ actor: z.url(), enabled: z.boolean() }).strict(), req.body);
    if (!(await federation.peers.get(actor))) throw new HttpError(404, 'unknown_peer', `${actor} is not a known peer`);
    await federation.peers.setPullOnMiss(actor, enabled);
    res.json({ actor, pull_on_miss: enabled });
  });
  admin.get('/deliveries', async (_req, res) => {
    res.json(await federation.deliveryStatus());
  });
  admin.post('/deliveries/:id/retry', async (req, res) => {
    const retried = await federation.retryDelivery(String(req.params.id));
    if (!retried) throw new HttpError(404, 'not_found', 'no such dead delivery');
    res.json({ retried });
  });
  admin.get('/log/alerts', async (_req, res) => {
    res.json({ alerts: await transparency.witness.alerts() });
  });
  admin.use(reviewRoutes({ trust, scanning, review: scanning.review }));
  admin.use(quarantineRoutes({ quarantine: scanning.quarantine, dataDir: config.dataDir, actorOf }));
  app.use('/api/v1/admin', admin);
  app.use('/console', consoleRouter({ config, metrics, verdicts, federation, trust, scanning, transparency, accounts }));
  app.get('/', (_req, res) => res.redirect(303, '/console/'));
  // Mastodon's admin webhooks (status.created / status.updated), checked by their HMAC signature.
  app.post('/api/v1/integrations/mastodon/webhook', refuseDeclaredOversize(WEBHOOK_LIMIT), express.raw({ type: () => true, limit: WEBHOOK_LIMIT }), async (req, res) => {
    if (!mastodon) throw new HttpError(503, 'mastodon_disabled', 'set VOUCH_MASTODON_WEBHOOK_SECRET to receive Mastodon webhooks');
    try {
      const queued = await mastodon.receive(Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0), req.get('x-hub-signature'));
      res.status(202).json({ queued });
    } catch (err) {
      if (err instanceof WebhookError) throw new HttpError(err.status, err.code, err.message);
      throw err;
    }
  });
  app.use(mediaRoutes({ config, intake: scanning.intake, safeFetch: federation.safeFetcher }));
  app.use(scannerRoutes({ token: scanning.scannerToken, intake: scanning.intake }));
  app.use(federation.router());
  app.use(logRoutes({ ...transparency, federation, publicOkFeed: config.federation.publicOkFeed }));

  app.use((_req, _res, next) => next(new HttpError(404, 'not_found', 'no such route')));

  // Express 5 forwards rejected promises from async handlers here.
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    let status = 500;
    let code = 'internal';
    let message = 'internal error';
    if (err instanceof FederationError && err.status === 503 && err.code === 'busy') {
      // The inbox's group commit has too many activities waiting (server/federation/group-commit.ts).
      return shed(req, res, 'busy', err.message, err);
    } else if (err instanceof HttpError || err instanceof FederationError) {
      ({ status, code, message } = err);
    } else if (err instanceof VerdictNotFoundError) {
      status = 404;
      code = 'not_found';
      message = err.message;
    } else if (err instanceof OutboundRequestError) {
      status = 502;
      code = `outbound_${err.reason}`;
      message = err.message;
    } else if (err instanceof URIError) {
      // A path parameter with malformed percent-encoding (the router could not decode it).
      status = 400;
      code = 'bad_path';
      message = 'the path is not valid percent-encoding';
    } else if (typeof err === 'object' && err !== null && 'type' in err && 'status' in err) {
      // body-parser errors: too large, malformed, bad charset.
      const e = err as { type: string; status: number; message: string; limit?: number };
      status = e.status;
      code = e.type === 'entity.too.large' ? 'too_large' : e.type.replace(/\W+/g, '_');
      message = e.type === 'entity.too.large' ? `request body exceeds ${e.limit ?? config.limits.maxUploadBytes} bytes` : e.message;
    } else if (typeof err === 'object' && err !== null && 'status' in err && typeof err.status === 'number' && err.status >= 400 && err.status < 500) {
      // Other client errors from body parsing (a body that is not the gzip/deflate/br it claims to be).
      status = err.status;
      code = 'bad_body';
      const encoding = req.get('content-encoding')?.slice(0, 40);
      message = `the request body could not be read${encoding ? ` as ${encoding}` : ''}`;
    } else if (err instanceof Error && /queue is at limit/i.test(err.message)) {
      return shed(req, res, 'busy', 'hashing queue is full, retry shortly', err);
    } else if (isStoreUnavailable(err)) {
      return shed(req, res, 'database_unavailable', 'the database is unreachable, retry shortly', err);
    }
    if (status >= 500) req.log.error({ err }, 'request failed');
    res.status(status).json({ error: { code, message } });
  });

  /** A 503 the client should retry: counted, and logged once per interval with how many there were. */
  function shed(req: Request, res: Response, code: 'busy' | 'database_unavailable', message: string, err: unknown) {
    shedAnswers.inc({ reason: code });
    // `unlogged`: the 503s of this kind since the previous line.
    shedLog(code, (unlogged) =>
      req.log.warn({ code, error: err instanceof Error ? err.message : String(err), unlogged }, `answering 503 ${code} (logged once a minute; vouch_http_shed_total counts them all)`),
    );
    shedResponses.add(res);
    res.setHeader('retry-after', String(RETRY_AFTER_S));
    res.status(503).json({ error: { code, message } });
  }

  return app;
}

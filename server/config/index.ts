// Configuration: an optional JSON file (VOUCH_CONFIG or --config) overlaid by environment
// variables, validated once at start so a typo fails loudly instead of half-working.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';
import type { ImageLimits } from '../../shared/hashing/normalize.js';
import { VPDQ_MAX_FRAMES } from '../../shared/hashing/vpdq.js';
import type { VideoLimits, VideoToolSettings } from '../video/index.js';
import type { FrameSampleOptions } from '../video/frames.js';
import { NoteError, parseVerifierKey } from '../../shared/merkle/checkpoint.js';

const port = z.coerce.number().int().min(0).max(65_535);
const positiveInt = z.coerce.number().int().positive();
/** What a boolean setting accepts from the environment (any case), as error messages name it. */
const BOOLEAN_FORMS = 'true/false, 1/0 or yes/no';
const BOOLEAN_WORDS: Record<string, boolean> = { true: true, false: false, '1': true, '0': false, yes: true, no: false };
/** Every boolean setting: a JSON boolean, or one of BOOLEAN_FORMS in any case; anything else fails. */
const booleanSetting = z.preprocess(
  (v) => (typeof v === 'string' ? (BOOLEAN_WORDS[v.trim().toLowerCase()] ?? v) : v),
  z.boolean({ error: `must be ${BOOLEAN_FORMS}` }),
);

/**
 * A boolean variable outside the configuration (a switch of the test harness or a tool), read as
 * the settings are: unset or empty is false, anything not in BOOLEAN_FORMS a ConfigError.
 */
export function booleanVariable(env: NodeJS.ProcessEnv, name: string): boolean {
  const value = env[name];
  if (value === undefined || value === '') return false;
  const parsed = BOOLEAN_WORDS[value.trim().toLowerCase()];
  if (parsed === undefined) throw new ConfigError(`${name}: must be ${BOOLEAN_FORMS}`);
  return parsed;
}

/**
 * One outside witness (C2SP tlog-witness) the log submits its checkpoints to: its `cosignature/v1`
 * verifier key (which carries its name) and its submission prefix. `name`, when given, must be
 * the key's name: a typo in either shows up at start, not as cosignatures that never verify.
 */
const outsideWitness = z
  .object({
    name: z.string().min(1).optional(),
    vkey: z.string().min(1).max(4096),
    url: z.url({ protocol: /^https?$/ }),
  })
  .strict()
  .superRefine((w, ctx) => {
    let name: string;
    try {
      const key = parseVerifierKey(w.vkey);
      if (key.type !== 'cosignature/v1') {
        ctx.addIssue({ code: 'custom', path: ['vkey'], message: `is a ${key.type} key; a witness key has signature type 0x04 (cosignature/v1, Ed25519)` });
        return;
      }
      name = key.name;
    } catch (err) {
      ctx.addIssue({ code: 'custom', path: ['vkey'], message: err instanceof NoteError ? err.message : 'is not a verifier key' });
      return;
    }
    if (w.name !== undefined && w.name !== name) ctx.addIssue({ code: 'custom', path: ['name'], message: `is not the key's name ${JSON.stringify(name)}` });
    const url = new URL(w.url);
    if (url.username || url.password || url.search || url.hash) {
      ctx.addIssue({ code: 'custom', path: ['url'], message: 'must be a plain submission prefix: no credentials, query or fragment' });
    }
  });

/**
 * VOUCH_WITNESSES: entries separated by commas or newlines, each `<vkey> <submission prefix>`
 * (neither contains white space; a vkey's name cannot).
 */
function parseWitnessList(v: unknown, ctx: { addIssue(issue: { code: 'custom'; message: string }): void }): unknown {
  if (typeof v !== 'string') return v;
  const entries = v
    .split(/[,\n]/)
    .map((entry) => entry.trim())
    .filter(Boolean)
    .map((entry) => entry.split(/\s+/));
  const bad = entries.findIndex((fields) => fields.length !== 2);
  if (bad >= 0) ctx.addIssue({ code: 'custom', message: `entry ${bad + 1} is not "<vkey> <url>" (two fields separated by white space)` });
  return entries.map(([vkey, url]) => ({ vkey, url }));
}

const configSchema = z
  .object({
    dataDir: z.string().min(1).default('./data'),
    databaseUrl: z
      .string()
      .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// URL')
      .optional(),
    databaseSchema: z
      .string()
      .regex(/^[a-z_][a-z0-9_]{0,62}$/, 'must be a lower-case SQL identifier')
      .optional(),
    redisUrl: z.string().regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL').optional(),
    /** How long a job (a delivery, a scan) a process took stays its own without a heartbeat: a
     *  crashed process's jobs run again elsewhere after this (BullMQ: up to twice this). */
    queueLeaseMs: positiveInt.min(1_000).max(600_000).default(30_000),
    host: z.string().min(1).default('127.0.0.1'),
    port: port.default(8080),
    publicUrl: z.url({ protocol: /^https?$/ }).optional(),
    adminToken: z
      .string()
      .min(32, 'must be at least 32 characters (generate one with `openssl rand -hex 32`)')
      .optional(),
    /**
     * Which reverse proxies to believe about the client's address (X-Forwarded-For): a hop count,
     * or addresses/CIDRs/`loopback`/`uniquelocal`, comma-separated. Off by default.
     */
    trustProxy: z
      .string()
      .regex(/^(\d{1,2}|((loopback|linklocal|uniquelocal|[0-9a-fA-F:.]+(\/\d{1,3})?)(\s*,\s*(loopback|linklocal|uniquelocal|[0-9a-fA-F:.]+(\/\d{1,3})?))*))$/, 'must be a hop count, or addresses/CIDRs/loopback/uniquelocal separated by commas')
      .optional(),
    /** Bearer token the generic upload hook (/api/v1/validate) requires, when set. */
    validateToken: z.string().min(32, 'must be at least 32 characters (openssl rand -hex 32)').optional(),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    limits: z
      .object({
        maxUploadBytes: positiveInt.default(50 * 1024 * 1024),
        maxPixels: positiveInt.default(100_000_000),
        maxFrames: positiveInt.default(1_000),
      })
      .prefault({}),
    hashThreads: positiveInt.max(256).optional(),
    /** Video hashing (docs/video.md); the byte and pixel limits are `limits`' as for images. */
    video: z
      .object({
        /** Path of ffmpeg (ffprobe beside it unless `ffprobe` is set); else both from PATH. */
        ffmpeg: z.string().min(1).optional(),
        ffprobe: z.string().min(1).optional(),
        /** vPDQ frames per second of video. */
        framesPerSecond: z.coerce.number().min(0.1).max(5).default(1),
        maxDurationSeconds: positiveInt.max(86_400).default(600),
        maxFrames: positiveInt.default(36_000),
        maxStreams: positiveInt.max(1_000).default(16),
        /** Wall-clock limit of each ffprobe/ffmpeg run. */
        timeoutMs: positiveInt.max(3_600_000).default(300_000),
        /** Memory limit (RLIMIT_DATA) of each ffprobe/ffmpeg run. */
        memoryMb: positiveInt.max(1_048_576).default(512),
        threads: positiveInt.max(64).default(2),
        /** Frames the scanner samples of a video for its models (server/video/frames.ts; at most its MAX_SAMPLED_FRAMES). */
        scanFrames: positiveInt.max(64).default(16),
      })
      .prefault({})
      .refine((v) => Math.ceil(v.maxDurationSeconds * v.framesPerSecond) + 1 <= VPDQ_MAX_FRAMES, {
        message: `maxDurationSeconds x framesPerSecond must stay under ${VPDQ_MAX_FRAMES} frames (what a vPDQ frame list holds)`,
      }),
    federation: z
      .object({
        autoApproveFollowers: booleanSetting.default(false),
        publicOkFeed: booleanSetting.default(false),
        /** http:// peers: test meshes and private networks only. */
        allowHttp: booleanSetting.default(false),
        /** CIDRs outgoing requests may reach despite being private (SSRF guard exceptions). */
        allowPrivateNetworks: z
          .preprocess((v) => (typeof v === 'string' ? v.split(',').map((s) => s.trim()).filter(Boolean) : v), z.array(z.string().regex(/^[0-9a-fA-F:.]+\/\d{1,3}$/, 'must be a CIDR like 10.0.0.0/8')))
          .default([]),
        deliveryAttempts: positiveInt.max(100).default(20),
        deliveryBackoffBaseMs: positiveInt.default(2_000),
        deliveryBackoffMaxMs: positiveInt.default(3_600_000),
        deliveryConcurrency: positiveInt.max(256).default(8),
      })
      .prefault({}),
    scanner: z
      .object({
        /** auto: external scanner nodes when Redis and a scanner token are configured, else in-process. */
        mode: z.enum(['auto', 'inprocess', 'external', 'off']).default('auto'),
        /** Shared secret between the server and its scanner nodes. */
        token: z.string().min(32, 'must be at least 32 characters (openssl rand -hex 32)').optional(),
        /**
         * Comma-separated: `default` and `inception` (the bundled adult-content triage models) and/or
         * paths of ONNX classifier configs. Every scan runs each; two independent models let peers
         * allow on one scan.
         */
        classifier: z
          .string()
          .min(1)
          .default('default')
          .transform((text) => text.split(',').map((s) => s.trim()))
          .pipe(
            z
              .array(z.string().min(1, 'an empty entry in the list'))
              .max(4, 'at most 4 classifiers')
              .refine((list) => new Set(list).size === list.length, 'a classifier is listed twice'),
          ),
        concurrency: positiveInt.max(64).default(2),
        maxBatch: positiveInt.max(256).default(8),
        /** How long an upload (pict-rs, POST /api/v1/media?wait=1) waits for its scan. */
        waitMs: z.coerce.number().int().min(0).max(120_000).default(8_000),
      })
      .prefault({}),
    quarantine: z
      .object({
        /** 32 bytes, base64 (openssl rand -base64 32). Without it, blocked media is refused but not kept. */
        key: z.string().optional(),
        retentionDays: positiveInt.max(36_500).default(365),
      })
      .prefault({}),
    mastodon: z
      .object({
        /** The secret Mastodon shows for the webhook (Administration > Webhooks); turns the receiver on. */
        webhookSecret: z.string().min(16, 'must be at least 16 characters (copy it from Mastodon\'s webhook page)').optional(),
        /** The Mastodon instance's base URL, for reports and account actions through its API. */
        url: z.url({ protocol: /^https?$/ }).optional(),
        /** An admin's access token: scopes write:reports (and admin:write:accounts for an account action). */
        token: z.string().min(16).optional(),
        /** Also act on the account of a status whose media was blocked. */
        accountAction: z.enum(['none', 'sensitive', 'silence', 'suspend']).default('none'),
        /** Private CIDRs the Mastodon fetches (its API, its media) may reach; nothing else may. */
        allowPrivateNetworks: z
          .preprocess((v) => (typeof v === 'string' ? v.split(',').map((s) => s.trim()).filter(Boolean) : v), z.array(z.string().regex(/^[0-9a-fA-F:.]+\/\d{1,3}$/, 'must be a CIDR like 10.0.0.0/8')))
          .default([]),
      })
      .prefault({}),
    log: z
      .object({
        /** Sign a checkpoint at least this often while verdicts are issued. */
        checkpointEveryMs: positiveInt.default(60_000),
        /** ...and as soon as this many entries were appended since the last one. */
        checkpointAfterAppends: positiveInt.default(100),
        /** Memory the log's proof cache may take for its lower levels, in MiB (0: upper levels only). */
        proofCacheMb: z.coerce.number().int().min(0).max(65_536).default(64),
        /** Outside witnesses (C2SP tlog-witness) asked to cosign each new checkpoint. */
        witnesses: z
          .preprocess(
            parseWitnessList,
            z
              .array(outsideWitness, { error: 'must be a list of "<vkey> <url>" entries' })
              .max(32, 'at most 32 witnesses')
              .refine((list) => new Set(list.map((w) => w.vkey)).size === list.length, 'a witness key is listed twice'),
          )
          .default([]),
      })
      .prefault({}),
  })
  .strict();

export type Config = z.infer<typeof configSchema> & { publicUrl: string };

/** The upload limits as the hashing pipeline takes them (the server and the CLI's hash pools). */
export function imageLimits(config: Config): ImageLimits {
  return { maxBytes: config.limits.maxUploadBytes, maxPixels: config.limits.maxPixels, maxFrames: config.limits.maxFrames };
}

/** Video hashing's settings as server/video takes them. */
export function videoHashOptions(config: Config): { limits: VideoLimits; framesPerSecond: number; tools: VideoToolSettings } {
  const v = config.video;
  return {
    limits: {
      ...imageLimits(config),
      maxDurationSeconds: v.maxDurationSeconds,
      maxVideoFrames: v.maxFrames,
      maxStreams: v.maxStreams,
      timeoutMs: v.timeoutMs,
      memoryBytes: v.memoryMb * 2 ** 20,
      threads: v.threads,
    },
    framesPerSecond: v.framesPerSecond,
    tools: { ffmpeg: v.ffmpeg, ffprobe: v.ffprobe },
  };
}

/** How the scanner samples a video for its models: video hashing's limits and ffmpeg, and the frame cap. */
export function videoScanOptions(config: Config): FrameSampleOptions {
  const { limits, tools } = videoHashOptions(config);
  return { maxFrames: config.video.scanFrames, limits, tools };
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

// Environment variable -> config path. Only these are read: an unknown VOUCH_* variable is ignored
// rather than guessed at.
const ENV_KEYS: Record<string, string[]> = {
  VOUCH_DATA_DIR: ['dataDir'],
  DATABASE_URL: ['databaseUrl'],
  VOUCH_DATABASE_SCHEMA: ['databaseSchema'],
  REDIS_URL: ['redisUrl'],
  VOUCH_QUEUE_LEASE_MS: ['queueLeaseMs'],
  VOUCH_HOST: ['host'],
  VOUCH_PORT: ['port'],
  VOUCH_PUBLIC_URL: ['publicUrl'],
  VOUCH_ADMIN_TOKEN: ['adminToken'],
  VOUCH_VALIDATE_TOKEN: ['validateToken'],
  VOUCH_TRUST_PROXY: ['trustProxy'],
  VOUCH_LOG_LEVEL: ['logLevel'],
  VOUCH_MAX_UPLOAD_BYTES: ['limits', 'maxUploadBytes'],
  VOUCH_MAX_PIXELS: ['limits', 'maxPixels'],
  VOUCH_MAX_FRAMES: ['limits', 'maxFrames'],
  VOUCH_HASH_THREADS: ['hashThreads'],
  VOUCH_FFMPEG: ['video', 'ffmpeg'],
  VOUCH_FFPROBE: ['video', 'ffprobe'],
  VOUCH_VIDEO_FPS: ['video', 'framesPerSecond'],
  VOUCH_VIDEO_MAX_SECONDS: ['video', 'maxDurationSeconds'],
  VOUCH_VIDEO_MAX_FRAMES: ['video', 'maxFrames'],
  VOUCH_VIDEO_MAX_STREAMS: ['video', 'maxStreams'],
  VOUCH_VIDEO_TIMEOUT_MS: ['video', 'timeoutMs'],
  VOUCH_VIDEO_MEMORY_MB: ['video', 'memoryMb'],
  VOUCH_VIDEO_THREADS: ['video', 'threads'],
  VOUCH_VIDEO_SCAN_FRAMES: ['video', 'scanFrames'],
  VOUCH_AUTO_APPROVE_FOLLOWERS: ['federation', 'autoApproveFollowers'],
  VOUCH_PUBLIC_OK_FEED: ['federation', 'publicOkFeed'],
  VOUCH_FEDERATION_ALLOW_HTTP: ['federation', 'allowHttp'],
  VOUCH_ALLOW_PRIVATE_NETWORKS: ['federation', 'allowPrivateNetworks'],
  VOUCH_DELIVERY_ATTEMPTS: ['federation', 'deliveryAttempts'],
  VOUCH_DELIVERY_BACKOFF_BASE_MS: ['federation', 'deliveryBackoffBaseMs'],
  VOUCH_DELIVERY_BACKOFF_MAX_MS: ['federation', 'deliveryBackoffMaxMs'],
  VOUCH_DELIVERY_CONCURRENCY: ['federation', 'deliveryConcurrency'],
  VOUCH_CHECKPOINT_EVERY_MS: ['log', 'checkpointEveryMs'],
  VOUCH_SCANNER: ['scanner', 'mode'],
  VOUCH_SCANNER_TOKEN: ['scanner', 'token'],
  VOUCH_CLASSIFIER: ['scanner', 'classifier'],
  VOUCH_SCANNER_CONCURRENCY: ['scanner', 'concurrency'],
  VOUCH_SCANNER_BATCH: ['scanner', 'maxBatch'],
  VOUCH_SCAN_WAIT_MS: ['scanner', 'waitMs'],
  VOUCH_QUARANTINE_KEY: ['quarantine', 'key'],
  VOUCH_QUARANTINE_RETENTION_DAYS: ['quarantine', 'retentionDays'],
  VOUCH_CHECKPOINT_AFTER_APPENDS: ['log', 'checkpointAfterAppends'],
  VOUCH_WITNESSES: ['log', 'witnesses'],
  VOUCH_LOG_PROOF_CACHE_MB: ['log', 'proofCacheMb'],
  VOUCH_MASTODON_WEBHOOK_SECRET: ['mastodon', 'webhookSecret'],
  VOUCH_MASTODON_URL: ['mastodon', 'url'],
  VOUCH_MASTODON_TOKEN: ['mastodon', 'token'],
  VOUCH_MASTODON_ACCOUNT_ACTION: ['mastodon', 'accountAction'],
  VOUCH_MASTODON_ALLOW_PRIVATE_NETWORKS: ['mastodon', 'allowPrivateNetworks'],
};

/** The environment variables Vouch reads, for `--help` and the docs. */
export const ENVIRONMENT_VARIABLES = Object.keys(ENV_KEYS);

function setPath(target: Record<string, unknown>, path: string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    const child = node[key];
    node[key] = typeof child === 'object' && child !== null ? child : {};
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1]] = value;
}

function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config file ${path}: ${(err as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`config file ${path} is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError(`config file ${path} must hold a JSON object`);
  }
  return parsed as Record<string, unknown>;
}

/**
 * Loads and validates the configuration. `overrides` (from CLI flags) win over the environment,
 * which wins over the file. Errors name every bad field at once, never a secret's value.
 */
export function loadConfig(
  env: NodeJS.ProcessEnv = process.env,
  overrides: Record<string, unknown> = {},
): Config {
  const filePath = (overrides.configFile as string | undefined) ?? env.VOUCH_CONFIG;
  const raw: Record<string, unknown> = filePath ? readConfigFile(resolve(filePath)) : {};
  for (const [name, path] of Object.entries(ENV_KEYS)) {
    const value = env[name];
    if (value !== undefined && value !== '') setPath(raw, path, value);
  }
  for (const [key, value] of Object.entries(overrides)) {
    if (key !== 'configFile' && value !== undefined) setPath(raw, key.split('.'), value);
  }
  const result = configSchema.safeParse(raw);
  if (!result.success) {
    // An operator sets variables, not config keys: name the variable a bad value came from.
    const fromEnv = new Map(
      Object.entries(ENV_KEYS)
        .filter(([name, path]) => env[name] !== undefined && env[name] !== '' && overrides[path.join('.')] === undefined)
        .map(([name, path]) => [path.join('.'), name]),
    );
    const lines = result.error.issues.map((issue) => {
      const key = issue.path.join('.');
      const variable = fromEnv.get(key);
      return `  ${key || '(root)'}: ${issue.message}${variable ? ` (set by ${variable})` : ''}`;
    });
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  const config = result.data;
  const publicUrl = (config.publicUrl ?? `http://${config.host}:${config.port}`).replace(/\/+$/, '');
  return { ...config, publicUrl };
}

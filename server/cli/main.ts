#!/usr/bin/env node
// The `vouch` command. Each subcommand loads and validates the configuration, does one job and
// exits non-zero with a clear message on failure: an ordinary mistake gets one line, never a stack
// trace (the handler at the end decides which errors are ordinary).
//
// Only what defining the commands needs is imported here; each command imports its own heavy
// modules when it runs (the server's module graph alone costs ~0.8 s of CPU, and `vouch hash`
// needs none of it).
import { once } from 'node:events';
import { open, readFile, stat } from 'node:fs/promises';
import { availableParallelism, homedir } from 'node:os';
import { basename, join } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import cliProgress from 'cli-progress';
import { ConfigError, ENVIRONMENT_VARIABLES, imageLimits, loadConfig, videoHashOptions, type Config } from '../config/index.js';
import type { Logger } from '../config/logger.js';
import type { Explanation } from '../trust/decide.js';
import { formatExplanation } from './explain.js';
import { AccountError, ConsoleAccounts, MIN_PASSWORD_LENGTH, ROLES, isRole, type Role } from '../console/accounts.js';
import { HashPool } from '../scanning/hash-pool.js';
import { ALGORITHM_REGISTRY } from '../../shared/algorithms/index.js';
import { isAlgorithm, isLabel, type Algorithm, type Label } from '../../shared/vocab/verdict.js';
import { encodeVpdq } from '../../shared/hashing/vpdq.js';

class CliError extends Error {}

/**
 * Classes of the errors an ordinary mistake (a typo, a missing file, a refused address) causes.
 * A command that loads a module throwing one adds its class (`ordinary`): an error of a module
 * that was never loaded cannot have been thrown.
 */
const userErrors = new Set<new (...args: never[]) => Error>([CliError, ConfigError, AccountError]);

function ordinary(...types: Array<new (...args: never[]) => Error>): void {
  for (const type of types) userErrors.add(type);
}

/** The server's modules, for the commands that open the store or run the server or a scanner. */
async function serverModules() {
  const [server, store, safeFetch, onnx] = await Promise.all([
    import('../main.js'),
    import('../store/index.js'),
    import('../federation/safe-fetch.js'),
    import('../scanning/classifiers/onnx.js'),
  ]);
  ordinary(store.StoreLockedError, safeFetch.OutboundRequestError, onnx.ClassifierError);
  return server;
}

/**
 * A system call refused on something the operator chose: a path (ENOENT, EACCES, EEXIST…) or the
 * address to listen on (EADDRINUSE). Their setup to fix, not a bug.
 */
function isSetupError(err: unknown): boolean {
  const { code, path, syscall } = err as { code?: unknown; path?: unknown; syscall?: unknown };
  return err instanceof Error && typeof code === 'string' && /^E[A-Z]+$/.test(code) && (typeof path === 'string' || syscall === 'listen');
}

function configOf(command: Command): Config {
  const opts = command.optsWithGlobals<{ config?: string; dataDir?: string }>();
  return loadConfig(process.env, { configFile: opts.config, dataDir: opts.dataDir });
}

/** The configuration and a logger, for the commands that log. */
async function settings(command: Command, level?: 'info'): Promise<{ config: Config; logger: Logger }> {
  const config = configOf(command);
  const { createLogger } = await import('../config/logger.js');
  // Commands print their results on stdout; logs go to stderr so the two never mix.
  const daemon = command.name() === 'serve' || level === 'info';
  const logger = createLogger({ logLevel: daemon ? config.logLevel : 'warn' }, daemon ? process.stdout : process.stderr);
  return { config, logger };
}

function positiveInteger(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('must be a positive integer');
  return n;
}

function label(value: string): Label {
  if (!isLabel(value)) throw new InvalidArgumentError('must be one of csam, sexual, gore, hate, spam, ok');
  return value;
}

function algorithm(value: string): Algorithm {
  if (!isAlgorithm(value)) throw new InvalidArgumentError(`must be one of ${ALGORITHM_REGISTRY.names.join(', ')}`);
  return value;
}

/** An http(s) URL given on the command line. */
function httpUrl(value: string): string {
  let url: URL | undefined;
  try {
    url = new URL(value);
  } catch {
    // reported below
  }
  if (url?.protocol !== 'http:' && url?.protocol !== 'https:') throw new InvalidArgumentError('must be an http:// or https:// URL, e.g. https://vouch.example');
  return value;
}

function confidence(value: string): number {
  const n = Number(value);
  if (!(n >= 0 && n <= 1)) throw new InvalidArgumentError('must be a number from 0 to 1');
  return n;
}

/** A progress bar with rate and ETA on a terminal; nothing at all when stderr is not one. */
function progressBar(unit: string) {
  if (!process.stderr.isTTY) return { update: () => {}, stop: () => {} };
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: `{bar} {percentage}% | {value}/{total} ${unit} | {rate}/s | ETA {eta_formatted}`,
      etaBuffer: 200,
      hideCursor: true,
    },
    cliProgress.Presets.shades_classic,
  );
  const started = performance.now();
  let running = false;
  return {
    update(done: number, total: number | undefined) {
      if (!running) {
        bar.start(total ?? 0, 0, { rate: '0' });
        running = true;
      }
      if (total !== undefined) bar.setTotal(total);
      const seconds = (performance.now() - started) / 1000;
      bar.update(done, { rate: seconds > 0 ? (done / seconds).toFixed(1) : '0' });
    },
    stop() {
      if (running) bar.stop();
    },
  };
}

const program = new Command()
  .name('vouch')
  .description('Federated hash-attestation server for fediverse admins.')
  .option('-c, --config <file>', 'JSON config file (also VOUCH_CONFIG)')
  .option('--data-dir <dir>', 'data directory for the embedded database (also VOUCH_DATA_DIR; default ./data)')
  .option('--debug', 'print the stack trace of an unexpected error')
  .addHelpText('after', `\nEnvironment variables: ${ENVIRONMENT_VARIABLES.join(', ')}.\nSee docs/operator-guide.md for each one.`)
  .showHelpAfterError('(vouch <command> --help lists its arguments and options)');

program
  .command('serve')
  .description('run the HTTP server (API, health check) until SIGTERM/SIGINT')
  .action(async (_opts, command: Command) => {
    const config = configOf(command);
    const [{ createServerLogger }, { startServer }] = await Promise.all([import('../config/logger.js'), serverModules()]);
    const { logger, flush } = createServerLogger(config);
    const server = await startServer(config, logger);
    let stopping = false;
    const stop = async (signal: string) => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, 'shutting down: finishing in-flight requests');
      await server.close();
      logger.info('stopped');
      flush();
      // A shutdown step abandoned on an unreachable dependency may leave its reconnecting client
      // behind, which would keep the process alive.
      process.exit();
    };
    process.once('SIGTERM', () => void stop('SIGTERM'));
    process.once('SIGINT', () => void stop('SIGINT'));
  });

program
  .command('hash')
  .description('print the hashes of image files, one JSON object per line (of video files, when every file given is a video)')
  .argument('<files...>', 'image files, or video files')
  .option('--video', 'the files are videos (MP4/MOV, WebM/MKV, animated GIF/WebP): print MD5, SHA-256 and vPDQ frames (docs/video.md); the default when every file is a video by its content')
  .action(async (files: string[], opts: { video?: boolean }, command: Command) => {
    const config = configOf(command);
    if (opts.video) return hashVideos(files, config);
    // Told by content, as intake does; a mixed list stays an image run, as before (MP4/WebM refused there, animations hashed by their first frame).
    const { isVideoFile } = await import('../video/index.js');
    if ((await Promise.all(files.map((f) => isVideoFile(f)))).every(Boolean)) return hashVideos(files, config);
    // One thread per core (fewer for fewer files): more only adds memory and contention.
    const pool = new HashPool(imageLimits(config), Math.min(files.length, config.hashThreads ?? availableParallelism()));
    let failed = 0;
    // A reader that stops early (`vouch hash … | head`) ends the command quietly, as other tools do.
    let stdoutError: NodeJS.ErrnoException | undefined;
    process.stdout.on('error', (err: NodeJS.ErrnoException) => (stdoutError ??= err));
    try {
      // A bounded window hashes in parallel; lines come out in the order given, as they finish.
      for await (const { path, outcome } of pool.hashFilesInOrder(files)) {
        if (stdoutError) break;
        let line: string;
        if (outcome.ok) {
          const h = outcome.hashes;
          line = JSON.stringify({ file: path, sha256: h.sha256, pdq: h.pdq, pdq_quality: h.pdqQuality, phash64: h.phash64, pipeline: h.pipeline });
        } else {
          failed++;
          process.stderr.write(`vouch hash: ${path}: ${outcome.message}\n`);
          line = JSON.stringify({ file: path, error: { code: outcome.code, message: outcome.message } });
        }
        // An error instead of the drain is kept by the listener above and ends the loop.
        if (!process.stdout.write(`${line}\n`)) await once(process.stdout, 'drain').catch(() => undefined);
      }
    } finally {
      await pool.close();
    }
    if (stdoutError && stdoutError.code !== 'EPIPE') throw stdoutError;
    if (failed > 0) process.exitCode = 1;
  });

/**
 * `vouch hash --video`: one JSON line per file, in order, one video at a time (each already runs
 * ffmpeg on its own threads); the frame list in its wire form.
 */
async function hashVideos(files: string[], config: Config): Promise<void> {
  const { hashVideoFile, isVideoRejectedError } = await import('../video/index.js');
  const options = videoHashOptions(config);
  let failed = 0;
  let stdoutError: NodeJS.ErrnoException | undefined;
  process.stdout.on('error', (err: NodeJS.ErrnoException) => (stdoutError ??= err));
  for (const path of files) {
    if (stdoutError) break;
    let line: string;
    try {
      const h = await hashVideoFile(path, options);
      line = JSON.stringify({
        file: path, md5: h.md5, sha256: h.sha256, vpdq: encodeVpdq(h.frames), frames_per_second: h.framesPerSecond, pipeline: h.pipeline,
        container: h.container, codec: h.codec, width: h.width, height: h.height, duration_s: h.durationSeconds,
      });
    } catch (err) {
      const code = isVideoRejectedError(err) ? err.code : (err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'EACCES' ? 'unreadable' : undefined;
      if (code === undefined) throw err;
      const message = isVideoRejectedError(err) ? err.message : (err as Error).message;
      failed++;
      process.stderr.write(`vouch hash: ${path}: ${message}\n`);
      line = JSON.stringify({ file: path, error: { code, message } });
    }
    if (!process.stdout.write(`${line}\n`)) await once(process.stdout, 'drain').catch(() => undefined);
  }
  if (stdoutError && stdoutError.code !== 'EPIPE') throw stdoutError;
  if (failed > 0) process.exitCode = 1;
}

program
  .command('scan')
  .description('sweep a directory tree: hash, record and decide about every file as the server would; resumes where it stopped')
  .argument('<dir>', 'directory to sweep (e.g. the pict-rs files directory)')
  .option('-r, --report <file>', 'append the JSONL report here instead of stdout')
  .option('-q, --quarantine', 'keep files decided block or review in the encrypted quarantine (VOUCH_QUARANTINE_KEY), then remove them from the folder')
  .option('--delete-matches', 'DELETE files decided block (destroys evidence; review is left in place)')
  .option('--threads <n>', 'hashing threads (default: all cores)', positiveInteger)
  .option('--source <name>', 'source name recorded with each media row')
  .option('--classify', 'classify images and videos (by sampled frames) the decision leaves unknown or disputed (VOUCH_CLASSIFIER; recorded as local verdicts), then decide again')
  // Checked below: `--quarantine DIR` was the old form, and deserves more than "too many arguments".
  .allowExcessArguments()
  .action(async (dir: string, opts: { report?: string; quarantine?: boolean; deleteMatches?: boolean; threads?: number; source?: string; classify?: boolean }, command: Command) => {
    if (command.args.length > 1) {
      throw new CliError(
        opts.quarantine
          ? `--quarantine takes no folder: files go into the encrypted quarantine in the data directory (vouch scan ${dir} --quarantine)`
          : `scan takes one folder, got ${command.args.length}`,
      );
    }
    if (opts.quarantine && opts.deleteMatches) throw new CliError('choose --quarantine or --delete-matches, not both');
    const root = await stat(dir).catch((err: NodeJS.ErrnoException) => {
      throw new CliError(`cannot scan ${dir}: ${err.code === 'ENOENT' ? 'no such directory' : err.message}`);
    });
    if (!root.isDirectory()) throw new CliError(`cannot scan ${dir}: not a directory (give the folder to sweep)`);
    const { config, logger } = await settings(command);
    const [{ classifyFile, loadClassifiers, openCore }, { Sweeper }, { Quarantine, QuarantineKeyError, parseQuarantineKey }, { TrustService }, { Decider }] = await Promise.all([
      serverModules(),
      import('../scanning/sweep.js'),
      import('../scanning/quarantine.js'),
      import('../trust/service.js'),
      import('../verdicts/decider.js'),
    ]);
    let quarantineKey: Buffer | undefined;
    if (opts.quarantine) {
      if (!config.quarantine.key) throw new CliError('--quarantine keeps files encrypted: set VOUCH_QUARANTINE_KEY (the server\'s key; `openssl rand -base64 32` for a new one)');
      try {
        quarantineKey = parseQuarantineKey(config.quarantine.key);
      } catch (err) {
        if (err instanceof QuarantineKeyError) throw new CliError(`VOUCH_QUARANTINE_KEY: ${err.message}`);
        throw err;
      }
    }
    const report = opts.report
      ? await open(opts.report, 'a').catch((err: Error) => {
          throw new CliError(`cannot write the report to ${opts.report}: ${err.message}`);
        })
      : undefined;
    const core = await openCore(config, logger);
    const pool = new HashPool(imageLimits(config), opts.threads ?? config.hashThreads);
    const out = report ? report.createWriteStream() : process.stdout;
    const bar = progressBar('files');
    try {
      // The server's trust and policy, read-only here: a sweep changes neither, so nothing is published.
      const trust = await TrustService.open(core.store.db);
      const quarantine = quarantineKey
        ? new Quarantine({ db: core.store.db, dataDir: config.dataDir, key: quarantineKey, retentionDays: () => trust.policy.quarantineRetentionDays ?? config.quarantine.retentionDays })
        : undefined;
      const sweeper = new Sweeper(core.store.db, core.verdicts, new Decider(core.verdicts, trust), pool, videoHashOptions(config));
      const classifiers = opts.classify ? await loadClassifiers(config) : undefined;
      const summary = await sweeper.sweep({
        classify: classifiers ? (path) => classifyFile(classifiers, path, config) : undefined,
        root: dir,
        quarantine,
        deleteBlocked: opts.deleteMatches,
        source: opts.source,
        report: (line) => {
          if (!out.write(`${JSON.stringify(line)}\n`)) return new Promise((r) => out.once('drain', () => r()));
        },
        progress: (done, total) => bar.update(done, total),
      });
      bar.stop();
      await Promise.all((classifiers ?? []).map((c) => c.close()));
      process.stderr.write(
        `vouch scan: ${summary.files} files: ${summary.unknown} unknown, ${summary.matched} matched; ` +
          `decided ${summary.block} block, ${summary.review} review, ${summary.allow} allow; ` +
          `${summary.quarantined} quarantined, ${summary.deleted} deleted, ${summary.errors} errors, ${summary.skipped} already done\n`,
      );
    } finally {
      bar.stop();
      if (out !== process.stdout) await new Promise<void>((r) => out.end(() => r()));
      await pool.close();
      await core.close();
    }
  });

program
  .command('import-hashes')
  .description('import a hash list (one pdq/sha256 hash per line, optional label and confidence columns) as local verdicts')
  .argument('<file>', 'the list; lines are HASH[,LABEL[,CONFIDENCE]] where HASH is pdq:HEX, sha256:HEX or bare HEX with --algorithm')
  .addOption(new Option('-a, --algorithm <name>', 'algorithm of bare hashes (pdq, sha256, phash64)').argParser(algorithm))
  .addOption(new Option('-l, --label <label>', 'label of lines without one').argParser(label))
  .addOption(new Option('--confidence <p>', 'confidence of lines without one (default 1)').argParser(confidence))
  .option('--source <name>', 'where the list came from (default: hashlist:<file name>)')
  .action(async (file: string, opts: { algorithm?: Algorithm; label?: Label; confidence?: number; source?: string }, command: Command) => {
    const { config, logger } = await settings(command);
    const [{ openCore }, { HashListError, parseHashList }] = await Promise.all([serverModules(), import('../verdicts/hash-list.js')]);
    ordinary(HashListError);
    const text = await readFile(file, 'utf8').catch((err: Error) => {
      throw new CliError(`cannot read ${file}: ${err.message}`);
    });
    const entries = parseHashList(text, opts);
    const core = await openCore(config, logger);
    try {
      const result = await core.verdicts.importHashList(entries, opts.source ?? `hashlist:${basename(file)}`);
      process.stdout.write(`${JSON.stringify(result)}\n`);
    } finally {
      await core.close();
    }
  });

/** Where the commands that talk to a running server find it. */
const serverOption = () => new Option('-s, --server <url>', 'the server\'s address (default: VOUCH_HOST:VOUCH_PORT)').argParser(httpUrl);

/** The admin API of a running server: PGlite allows one process, so live changes go through it. */
async function adminRequest(command: Command, method: string, path: string, body?: unknown): Promise<unknown> {
  const config = configOf(command);
  const opts = command.optsWithGlobals<{ server?: string }>();
  const base = (opts.server ?? `http://${config.host === '0.0.0.0' ? '127.0.0.1' : config.host}:${config.port}`).replace(/\/+$/, '');
  if (!config.adminToken) throw new CliError('set VOUCH_ADMIN_TOKEN to the server\'s admin token');
  let res: Response;
  try {
    res = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${config.adminToken}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    });
  } catch (err) {
    throw new CliError(`cannot reach the Vouch server at ${base}: ${(err as Error).message}`);
  }
  const text = await res.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : {};
  } catch {
    throw new CliError(`${method} ${path}: ${res.status} (not JSON)`);
  }
  if (!res.ok) {
    const error = (json as { error?: { code?: string; message?: string } }).error;
    throw new CliError(`${method} ${path}: ${res.status} ${error?.code ?? ''}: ${error?.message ?? text}`);
  }
  return json;
}

const peers = program
  .command('peers')
  .description('federation peers of a running server (through its admin API; needs VOUCH_ADMIN_TOKEN)')
  .addOption(serverOption());

peers
  .command('list')
  .description('list peers with the state of following in both directions')
  .action(async (_opts, command: Command) => {
    const { peers: list } = (await adminRequest(command, 'GET', '/api/v1/admin/peers')) as {
      peers: Array<{ actor: string; following: string; follower: string }>;
    };
    if (list.length === 0) process.stdout.write('no peers yet\n');
    for (const p of list) process.stdout.write(`${p.actor}\tyou follow: ${p.following}\tfollows you: ${p.follower}\n`);
  });

peers
  .command('follow')
  .description('subscribe to a peer\'s verdict feed (its admin must approve)')
  .argument('<target>', 'actor URL or handle (vouch@host)')
  .action(async (target: string, _opts, command: Command) => {
    const result = await adminRequest(command, 'POST', '/api/v1/admin/peers/follow', { target });
    process.stdout.write(`${JSON.stringify(result)}\n`);
  });

for (const [action, description] of [
  ['approve', 'approve a peer\'s follow request: it may then read our restricted feed'],
  ['reject', 'reject a peer\'s follow request (or revoke an approval)'],
  ['unfollow', 'unsubscribe from a peer\'s feed'],
] as const) {
  peers
    .command(action)
    .description(description)
    .argument('<actor>', 'the peer\'s actor URL')
    .action(async (actor: string, _opts, command: Command) => {
      const result = await adminRequest(command, 'POST', `/api/v1/admin/peers/${action}`, { actor });
      process.stdout.write(`${JSON.stringify(result)}\n`);
    });
}

const quarantine = program
  .command('quarantine')
  .description('the quarantine of a running server (through its admin API; needs VOUCH_ADMIN_TOKEN)')
  .addOption(serverOption());
quarantine
  .command('list')
  .description('kept items, newest first')
  .option('--expired', 'only items past their retention date')
  .action(async (opts: { expired?: boolean }, command: Command) => {
    const { items } = (await adminRequest(command, 'GET', `/api/v1/admin/quarantine${opts.expired ? '?expired=true' : ''}`)) as {
      items: Array<{ id: number; sha256: string; state: string; source: string; retainUntil: string; decision: { outcome: string; label: string | null } }>;
    };
    if (items.length === 0) process.stdout.write('nothing kept\n');
    for (const i of items) process.stdout.write(`${i.id}\t${i.state}\t${i.decision.outcome} ${i.decision.label ?? ''}\tuntil ${i.retainUntil}\t${i.source}\t${i.sha256}\n`);
  });
quarantine
  .command('show')
  .description('one item with its access log')
  .argument('<id>', 'item id', positiveInteger)
  .action(async (id: number, _opts, command: Command) => {
    process.stdout.write(`${JSON.stringify(await adminRequest(command, 'GET', `/api/v1/admin/quarantine/${id}`), null, 2)}\n`);
  });
for (const [action, description] of [
  ['export', 'write a report bundle (media unencrypted, metadata, access log, SHA256SUMS) under the server\'s data directory'],
  ['release', 'mark a false positive (the bytes stay until deleted)'],
  ['delete', 'delete the bytes for good (the record and access log stay)'],
] as const) {
  quarantine
    .command(action)
    .description(description)
    .argument('<id>', 'item id', positiveInteger)
    .requiredOption('-r, --reason <text>', 'why (recorded in the access log)')
    .action(async (id: number, opts: { reason: string }, command: Command) => {
      process.stdout.write(`${JSON.stringify(await adminRequest(command, 'POST', `/api/v1/admin/quarantine/${id}/${action}`, { reason: opts.reason }))}\n`);
    });
}

program
  .command('deliveries')
  .description('delivery queue depths and failed (dead-letter) deliveries of a running server')
  .addOption(serverOption())
  .action(async (_opts, command: Command) => {
    process.stdout.write(`${JSON.stringify(await adminRequest(command, 'GET', '/api/v1/admin/deliveries'), null, 2)}\n`);
  });

program
  .command('scanner')
  .description('run a scanner node: classify media for the server from the Redis queue (GPU machines: see docs/scanner.md)')
  .requiredOption('-s, --server <url>', 'the Vouch server the scanner fetches media from and reports to', httpUrl)
  .action(async (opts: { server: string }, command: Command) => {
    const { config, logger } = await settings(command, 'info');
    const { startScannerNode } = await serverModules();
    const node = await startScannerNode(config, logger, opts.server);
    const stop = async () => {
      logger.info('scanner stopping: finishing jobs in flight');
      await node.close();
    };
    process.once('SIGTERM', () => void stop());
    process.once('SIGINT', () => void stop());
  });

const trustCommand = program
  .command('trust')
  .description('direct trust in peers, per polarity (through the admin API of a running server)')
  .addOption(serverOption());

trustCommand
  .command('set')
  .description('trust a peer\'s abuse flags (--abuse) and/or its "known safe" claims (--ok), each 0..1')
  .argument('<peer>', 'the peer\'s actor URL')
  .addOption(new Option('--abuse <trust>', 'trust in its abuse labels').argParser(confidence))
  .addOption(new Option('--ok <trust>', 'trust in its ok labels').argParser(confidence))
  .addOption(new Option('--label <label>', 'only for this abuse label').argParser(label))
  .action(async (peer: string, opts: { abuse?: number; ok?: number; label?: Label }, command: Command) => {
    if (opts.abuse === undefined && opts.ok === undefined) throw new CliError('give --abuse and/or --ok');
    const result = await adminRequest(command, 'PUT', '/api/v1/admin/trust', { peer, ...opts });
    process.stdout.write(`${JSON.stringify(result)}\n`);
  });

trustCommand
  .command('list')
  .description('direct trust and its recent changes')
  .action(async (_opts, command: Command) => {
    process.stdout.write(`${JSON.stringify(await adminRequest(command, 'GET', '/api/v1/admin/trust'), null, 2)}\n`);
  });

program
  .command('explain')
  .description('what Vouch decides about an image, a video or a hash now, and why (verdicts, issuers, trust paths, weights, thresholds)')
  .argument('<hash-or-file>', 'a SHA-256, PDQ or MD5 hex hash (prefix sha256:, pdq: or md5:), or an image or video file (a video by SHA-256 and MD5, and by its frames when the server has seen it)')
  .addOption(serverOption())
  .option('--json', 'print the raw explanation')
  .action(async (target: string, opts: { json?: boolean }, command: Command) => {
    let query: string;
    const prefixed = /^(?:(sha256|pdq):([0-9a-f]{64})|(md5):([0-9a-f]{32}))$/i.exec(target);
    if (prefixed) query = prefixed[1] ? `${prefixed[1].toLowerCase()}=${prefixed[2].toLowerCase()}` : `md5=${prefixed[4].toLowerCase()}`;
    else if (/^[0-9a-f]{64}$/i.test(target)) query = `sha256=${target.toLowerCase()}`;
    else {
      const isFile = await stat(target).then((s) => s.isFile(), () => false);
      if (!isFile) {
        throw new CliError(`${target} is neither a file nor a PDQ/SHA-256 digest (64 hex characters, optionally prefixed pdq: or sha256:) or md5:HEX`);
      }
      const config = configOf(command);
      const { hashVideoFile, isVideoFile, isVideoRejectedError } = await import('../video/index.js');
      if (await isVideoFile(target)) {
        // By SHA-256 and MD5: the server adds the frames of a video it has recorded.
        const video = await hashVideoFile(target, videoHashOptions(config)).catch((err: unknown) => {
          throw isVideoRejectedError(err) ? new CliError(`${target}: ${err.message}`) : err;
        });
        query = `sha256=${video.sha256}&md5=${video.md5}`;
      } else {
        const pool = new HashPool(imageLimits(config), 1);
        try {
          const outcome = await pool.hashFile(target);
          if (!outcome.ok) throw new CliError(`${target}: ${outcome.message}`);
          query = `sha256=${outcome.hashes.sha256}&pdq=${outcome.hashes.pdq}&phash64=${outcome.hashes.phash64}`;
        } finally {
          await pool.close();
        }
      }
    }
    const result = (await adminRequest(command, 'GET', `/api/v1/admin/explain?${query}`)) as { outcome: string; label: string | null; explanation: Explanation };
    process.stdout.write(opts.json ? `${JSON.stringify(result, null, 2)}\n` : formatExplanation(result.explanation));
  });

/**
 * A password: typed at a hidden prompt on a terminal, else the first line of stdin (scripts);
 * `command` is the command line an error message shows piping it in.
 */
async function readPassword(prompt: string, command: string): Promise<string> {
  if (process.stdin.isTTY) {
    const { default: password } = await import('@inquirer/password');
    const first = await password({ message: prompt, mask: true });
    if ((await password({ message: 'Again:', mask: true })) !== first) throw new CliError('the passwords differ');
    return first;
  }
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  const line = Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0];
  if (line === '') {
    throw new CliError(`no password given: run this on a terminal to be asked for it, or give it as the first line of stdin (echo "$PASSWORD" | ${command})`);
  }
  return line;
}

/** Console accounts live in the store: with the embedded database, stop the server first. */
async function withAccounts<T>(command: Command, job: (accounts: ConsoleAccounts) => Promise<T>): Promise<T> {
  const config = configOf(command);
  const { StoreLockedError, openStore } = await import('../store/index.js');
  ordinary(StoreLockedError);
  let store;
  try {
    store = await openStore(config);
  } catch (err) {
    if (err instanceof StoreLockedError) {
      throw new CliError(`${err.message}. Stop the server first, or manage users on the console's Users page.`);
    }
    throw err;
  }
  try {
    return await job(new ConsoleAccounts(store.db));
  } catch (err) {
    if (err instanceof AccountError) throw new CliError(err.message);
    throw err;
  } finally {
    await store.close();
  }
}

function role(value: string): Role {
  if (!isRole(value)) throw new InvalidArgumentError(`must be one of ${ROLES.join(', ')}`);
  return value;
}

const users = program.command('users').description('accounts for the web console at /console (admin, moderator, viewer)');
users
  .command('add')
  .description('add an account; the password is asked for (or read from the first line of stdin)')
  .argument('<name>', 'lower-case letters, digits, ".", "_" or "-"')
  .addOption(new Option('-r, --role <role>', `one of ${ROLES.join(', ')}`).argParser(role).default('moderator'))
  .action(async (name: string, opts: { role: Role }, command: Command) => {
    const password = await readPassword(`Password for ${name} (${MIN_PASSWORD_LENGTH} characters at least):`, `vouch users add ${name}`);
    const user = await withAccounts(command, (accounts) => accounts.create(name, password, opts.role, 'cli'));
    process.stdout.write(`added ${user.username} (${user.role})\n`);
  });
users
  .command('list')
  .description('list accounts')
  .action(async (_opts, command: Command) => {
    for (const u of await withAccounts(command, (accounts) => accounts.list())) {
      process.stdout.write(`${u.username}\t${u.role}${u.disabled ? '\tdisabled' : ''}\n`);
    }
  });
users
  .command('passwd')
  .description('set a new password (ends the account\'s sessions)')
  .argument('<name>')
  .action(async (name: string, _opts, command: Command) => {
    const password = await readPassword(`New password for ${name}:`, `vouch users passwd ${name}`);
    await withAccounts(command, (accounts) => accounts.setPassword(name, password, 'cli'));
    process.stdout.write(`password of ${name} changed\n`);
  });
users
  .command('role')
  .description('change an account\'s role')
  .argument('<name>')
  .argument('<role>', ROLES.join(', '), role)
  .action(async (name: string, newRole: Role, _opts, command: Command) => {
    await withAccounts(command, (accounts) => accounts.setRole(name, newRole, 'cli'));
    process.stdout.write(`${name} is now ${newRole}\n`);
  });
for (const action of ['disable', 'enable'] as const) {
  users
    .command(action)
    .description(action === 'disable' ? 'disable an account and end its sessions (its history stays)' : 'enable a disabled account')
    .argument('<name>')
    .action(async (name: string, _opts, command: Command) => {
      await withAccounts(command, (accounts) => accounts.setDisabled(name, action === 'disable', 'cli'));
      process.stdout.write(`${name} ${action}d\n`);
    });
}

program
  .command('audit')
  .description(
    'verify a peer\'s transparency log: checkpoint signature, consistency with earlier audits, entries, their proofs; export them, ' +
      'or with --stats count its verdicts (several instances at once) as a table, CSV files and charts',
  )
  .argument('<url...>', 'the instance\'s base URL (https://vouch.example) or its actor URL; several with --stats', (value: string, previous: string[] = []) => [
    ...previous,
    httpUrl(value),
  ])
  .option('--all', 'fetch and check every entry (default: a sample plus the first and last)')
  .option('-o, --out <path>', 'export the entries to this file (implies --all); with --stats, the directory for the CSV files and charts')
  .addOption(new Option('--format <format>', 'export format').choices(['jsonl', 'csv']).default('jsonl'))
  .option('--stats', 'audit every entry and print per label and method: issued, updated, retracted, superseded, time to retraction, per month')
  .option('--state <dir>', 'where checkpoints from earlier audits are kept', join(homedir(), '.vouch-audit'))
  .action(async (urls: string[], opts: { all?: boolean; out?: string; format: 'jsonl' | 'csv'; stats?: boolean; state: string }, command: Command) => {
    const config = configOf(command);
    const [{ AuditError, auditPeer }, { OutboundRequestError }] = await Promise.all([import('./audit.js'), import('../federation/safe-fetch.js')]);
    ordinary(AuditError, OutboundRequestError);
    if (opts.stats) {
      const { auditStats } = await import('./audit-stats.js');
      const result = await auditStats({
        urls,
        outDir: opts.out,
        stateDir: opts.state,
        allowPrivateNetworks: config.federation.allowPrivateNetworks,
        progress: () => progressBar('entries'),
        out: process.stdout,
        err: process.stderr,
      });
      if (!result.ok) process.exitCode = 1;
      return;
    }
    if (urls.length > 1) throw new CliError('audit one instance at a time, or count several with --stats');
    const report = await auditPeer({
      url: urls[0],
      all: opts.all ?? false,
      out: opts.out ? { path: opts.out, format: opts.format } : undefined,
      stateDir: opts.state,
      allowPrivateNetworks: config.federation.allowPrivateNetworks,
      progress: progressBar('entries'),
    });
    for (const failure of report.failures) {
      process.stderr.write(`FAIL ${failure.kind}${failure.index === undefined ? '' : ` entry ${failure.index}`}: ${failure.message}\n`);
    }
    if (report.failuresOmitted > 0) process.stderr.write(`... and ${report.failuresOmitted} more failures\n`);
    const cp = report.checkpoint;
    process.stdout.write(
      `${JSON.stringify({
        ok: report.ok,
        origin: cp?.origin,
        size: cp?.size,
        root: cp?.rootHash,
        checked_against: report.previous.map((p) => p.size),
        entries: report.entries,
        exported: report.exported,
        failures: report.failures.length + report.failuresOmitted,
      })}\n`,
    );
    if (!report.ok) process.exitCode = 1;
  });

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if ([...userErrors].some((type) => err instanceof type) || isSetupError(err)) {
    process.stderr.write(`vouch: ${(err as Error).message}\n`);
  } else {
    // A bug, not a mistake: still one line unless asked for the stack.
    const detail = program.opts<{ debug?: boolean }>().debug ? `\n${(err as Error).stack ?? ''}` : ' (run again with --debug for its stack trace)';
    process.stderr.write(`vouch: unexpected error: ${err instanceof Error ? err.message : String(err)}${detail}\n`);
  }
  process.exitCode = 2;
}

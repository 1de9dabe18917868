/**
 * The log's side of C2SP tlog-witness: asking outside witnesses to cosign our checkpoints.
 *
 * Any witness that follows the spec can witness a Vouch log; operators list them (verifier key
 * and submission prefix) in the configuration. For each one we keep it at our latest checkpoint:
 *
 *   POST <prefix>/add-checkpoint
 *   old <the size it last cosigned for us>
 *   <consistency proof from that size to ours, one base64 hash a line>
 *   <blank line>
 *   <our signed checkpoint note>
 *
 * A 200 carries signature lines; the ones by the configured key are verified against the
 * checkpoint (other keys are ignored, as the spec requires) and stored with it, so that
 * `GET /log/checkpoint` serves them appended to the note. A 409 names the size the witness holds
 * (`text/x.tlog.size`): we resend with a proof from there. Nothing here keeps state of its own:
 * the "old size" is the largest size the witness cosigned in `log_cosignatures`, so a crash after
 * the witness answered but before we stored its line only costs a 409 and a resend of the same
 * checkpoint (which the witness cosigns again: same size, same root). Cosignatures are unique per
 * (size, witness), so retries and replicas sending at once store each one once.
 *
 * Requests go through the SSRF-safe fetcher, never follow redirects (the operator named the URL),
 * and accept small bodies only. Failures back off per witness (full jitter) and are retried on
 * the next tick; the witness is always brought to the newest checkpoint, never to old ones.
 */
import type { Logger } from '../config/logger.js';
import { NoteError, openNote, parseVerifierKey, type NoteVerifier } from '../../shared/merkle/checkpoint.js';
import type { SafeFetch } from '../federation/safe-fetch.js';
import type { LogCheckpoints } from './checkpoints.js';
import type { TransparencyLog } from './store.js';

/** An outside witness as configured: its `cosignature/v1` verifier key and submission prefix. */
export interface OutsideWitness {
  readonly vkey: string;
  readonly url: string;
}

export type WitnessOutcome =
  /** The witness cosigned our latest checkpoint now; its line is stored. */
  | { readonly witness: string; readonly status: 'cosigned'; readonly size: number }
  /** We already hold its cosignature of our latest checkpoint. */
  | { readonly witness: string; readonly status: 'up_to_date'; readonly size: number }
  /** Nothing stored; retried after a backoff. */
  | { readonly witness: string; readonly status: 'failed'; readonly size: number; readonly reason: WitnessFailure; readonly message: string };

export type WitnessFailure =
  | 'unreachable' // transport failure, timeout, refused address, redirect, oversized answer
  | 'unavailable' // 5xx, 408, 429 or another status the spec does not give
  | 'unknown_log' // 404: the witness is not configured with our origin
  | 'forbidden' // 403: the witness does not trust our key
  | 'rejected' // 400: the witness found our request malformed
  | 'inconsistent' // 422: the witness holds a view of our log that ours does not extend
  | 'ahead' // 409 with a size larger than any checkpoint we signed: a split view, or a restored database
  | 'bad_response'; // 200 without a valid cosignature by the configured key, or a malformed 409

export interface WitnessClientOptions {
  /** Between sweeps that bring every witness to the latest checkpoint (default 30 s). */
  pollMs?: number;
  /** Backoff after a failure: uniform in [0, min(maxMs, baseMs × 2^(failures-1))) (defaults 5 s, 15 min). */
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  /** Per request (default 10 s). */
  timeoutMs?: number;
  /** Cosignature timestamps further ahead than this are refused (default 10 min). */
  maxClockSkewMs?: number;
  /** Told every attempt's outcome (metrics). */
  onOutcome?: (outcome: WitnessOutcome) => void;
  now?: () => number;
  random?: () => number;
}

/** Largest witness answer read: a few signature lines (an ML-DSA-44 line is ~3.3 KiB). */
const MAX_RESPONSE_BYTES = 64 * 1024;
/** The spec lets a client send at most 63 proof lines; ours are at most ~2 log2(n) < 63 for n < 2^31. */
const MAX_PROOF_LINES = 63;
/** 409 rounds in one attempt: a witness racing other submitters of our log moves at most a few times. */
const MAX_CONFLICTS = 3;
const SIZE_CONTENT_TYPE = 'text/x.tlog.size';

class WitnessError extends Error {
  constructor(
    readonly reason: WitnessFailure,
    message: string,
  ) {
    super(message);
  }
}

interface Configured {
  readonly verifier: NoteVerifier;
  readonly endpoint: string;
  failures: number;
  retryAt: number;
  running?: Promise<WitnessOutcome>;
  /** A sweep came while `running` was under way: that attempt may have read an older checkpoint. */
  rerun: boolean;
}

export class WitnessClient {
  private readonly witnesses: Configured[];
  private readonly pollMs: number;
  private readonly backoffBaseMs: number;
  private readonly backoffMaxMs: number;
  private readonly timeoutMs: number;
  private readonly maxClockSkewMs: number;
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly onOutcome: (outcome: WitnessOutcome) => void;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly log: TransparencyLog,
    private readonly checkpoints: LogCheckpoints,
    witnesses: readonly OutsideWitness[],
    private readonly fetch: SafeFetch,
    private readonly logger: Logger,
    options: WitnessClientOptions = {},
  ) {
    this.witnesses = witnesses.map((w) => {
      const verifier = parseVerifierKey(w.vkey);
      if (verifier.type !== 'cosignature/v1') throw new NoteError('malformed_key', `witness key ${verifier.name} is not a cosignature/v1 key`);
      return { verifier, endpoint: `${w.url.replace(/\/+$/, '')}/add-checkpoint`, failures: 0, retryAt: 0, rerun: false };
    });
    this.pollMs = options.pollMs ?? 30_000;
    this.backoffBaseMs = options.backoffBaseMs ?? 5_000;
    this.backoffMaxMs = options.backoffMaxMs ?? 15 * 60_000;
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.maxClockSkewMs = options.maxClockSkewMs ?? 10 * 60_000;
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
    this.onOutcome = options.onOutcome ?? (() => {});
  }

  /** The configured witnesses' verifier keys (what the log metadata publishes). */
  get verifierKeys(): string[] {
    return this.witnesses.map((w) => w.verifier.vkey);
  }

  /**
   * Brings every witness that is not backing off to our latest checkpoint (all of them when
   * `force`). One request chain per witness at a time: a call while one runs shares it, and the
   * chain then makes one more attempt once the current one succeeds, since that one may have read
   * the latest checkpoint before the one this call is about was signed.
   */
  async sweep(force = false): Promise<WitnessOutcome[]> {
    const due = this.witnesses.filter((w) => force || w.running || w.retryAt <= this.now());
    return Promise.all(
      due.map((w) => {
        if (w.running) {
          w.rerun = true;
          return w.running;
        }
        return (w.running = this.attemptsFor(w).finally(() => (w.running = undefined)));
      }),
    );
  }

  /** Sweeps now and every `pollMs` until {@link stop}; the first sweep repairs what a crash left. */
  start(): void {
    if (this.witnesses.length === 0 || this.timer || this.stopped) return;
    this.timer = setInterval(() => this.checkpointSigned(), this.pollMs);
    this.timer.unref();
    this.checkpointSigned();
  }

  /** A new checkpoint exists: ask the witnesses now (those backing off wait their turn). */
  checkpointSigned(): void {
    if (!this.stopped) void this.sweep().catch((err: unknown) => this.logger.error({ err }, 'witness sweep failed'));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await Promise.allSettled(this.witnesses.map((w) => w.running));
  }

  // --- one witness ---------------------------------------------------------------------------

  /** Attempts until no sweep asked for another meanwhile; a failure ends the chain (the backoff decides). */
  private async attemptsFor(w: Configured): Promise<WitnessOutcome> {
    let outcome: WitnessOutcome;
    do {
      w.rerun = false;
      outcome = await this.attempt(w);
      this.onOutcome(outcome);
    } while (w.rerun && outcome.status !== 'failed' && !this.stopped);
    return outcome;
  }

  private async attempt(w: Configured): Promise<WitnessOutcome> {
    const name = w.verifier.name;
    let size = 0;
    try {
      const outcome = await this.bringUpToDate(w, (s) => (size = s));
      w.failures = 0;
      w.retryAt = 0;
      if (outcome.status === 'cosigned') this.logger.info({ witness: name, size: outcome.size }, 'outside witness cosigned our checkpoint');
      return outcome;
    } catch (err) {
      if (!(err instanceof WitnessError)) throw err;
      w.failures += 1;
      const ceiling = Math.min(this.backoffMaxMs, this.backoffBaseMs * 2 ** Math.min(w.failures - 1, 30));
      w.retryAt = this.now() + Math.floor(this.random() * ceiling);
      const serious = err.reason === 'inconsistent' || err.reason === 'ahead';
      this.logger[serious ? 'error' : 'warn'](
        { witness: name, size, reason: err.reason, failures: w.failures, err: err.message },
        serious ? 'an outside witness holds a view of our log that our checkpoints do not extend' : 'outside witness did not cosign our checkpoint; retrying later',
      );
      return { witness: name, status: 'failed', size, reason: err.reason, message: err.message };
    }
  }

  private async bringUpToDate(w: Configured, reportSize: (size: number) => void): Promise<WitnessOutcome> {
    const name = w.verifier.name;
    let latest = await this.checkpoints.latestSigned();
    if (!latest) latest = await this.checkpoints.signCheckpoint();
    reportSize(latest.size);
    // Cosignatures are kept only for checkpoints we signed, so none is beyond `latest`.
    const largest = await this.checkpoints.largestCosignedBy(w.verifier.vkey);
    if (largest === latest.size) return { witness: name, status: 'up_to_date', size: latest.size };
    let old = largest ?? 0;
    for (let round = 0; ; round++) {
      const answer = await this.addCheckpoint(w, old, latest);
      if (answer.status === 'cosigned') {
        await this.checkpoints.addCosignature(answer.line, w.verifier.vkey, latest.size);
        return { witness: name, status: 'cosigned', size: latest.size };
      }
      const held = answer.size;
      if (held === old) throw new WitnessError('bad_response', `${name} answered 409 naming the very size we sent (${old})`);
      if (held > latest.size) {
        // Another process may have signed a newer checkpoint and reached the witness first.
        const newer = await this.checkpoints.latestSigned();
        if (!newer || newer.size < held) {
          throw new WitnessError('ahead', `${name} holds a checkpoint of our log at size ${held}; the largest we signed is ${newer?.size ?? 0}`);
        }
        latest = newer;
        reportSize(latest.size);
      }
      if (round + 1 >= MAX_CONFLICTS) throw new WitnessError('unavailable', `${name} kept answering 409 (last: size ${held})`);
      old = held;
    }
  }

  /** One add-checkpoint request. Resolves with the witness's cosignature line, or the size it holds (409). */
  private async addCheckpoint(
    w: Configured,
    old: number,
    checkpoint: { size: number; note: string },
  ): Promise<{ status: 'cosigned'; line: string } | { status: 'conflict'; size: number }> {
    const name = w.verifier.name;
    const proof = old > 0 && old < checkpoint.size ? await this.log.consistencyProof(old, checkpoint.size) : [];
    if (proof.length > MAX_PROOF_LINES) throw new WitnessError('rejected', `the consistency proof ${old} -> ${checkpoint.size} has more than ${MAX_PROOF_LINES} hashes`);
    const body = [`old ${old}`, ...proof.map((h) => Buffer.from(h).toString('base64')), '', checkpoint.note].join('\n');
    let res;
    try {
      res = await this.fetch(w.endpoint, {
        method: 'POST',
        headers: { 'content-type': 'text/plain; charset=utf-8' },
        body,
        accept: 'text/plain, text/x.tlog.size',
        maxBodyBytes: MAX_RESPONSE_BYTES,
        timeoutMs: this.timeoutMs,
      });
    } catch (err) {
      throw new WitnessError('unreachable', `${name}: ${err instanceof Error ? err.message : String(err)}`);
    }
    const text = res.body.toString('utf8');
    switch (res.status) {
      case 200:
        return { status: 'cosigned', line: this.cosignatureIn(w, checkpoint.note, res.body) };
      case 409: {
        const contentType = (res.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
        const match = /^(0|[1-9][0-9]{0,15})\n$/.exec(text);
        if (contentType !== SIZE_CONTENT_TYPE || !match || !Number.isSafeInteger(Number(match[1]))) {
          throw new WitnessError('bad_response', `${name} answered 409 without a ${SIZE_CONTENT_TYPE} body holding one decimal size`);
        }
        return { status: 'conflict', size: Number(match[1]) };
      }
      case 404:
        throw new WitnessError('unknown_log', `${name} does not know our log's origin (404): its operator must add our verifier key`);
      case 403:
        throw new WitnessError('forbidden', `${name} does not accept our log's signature (403): its operator must add our current verifier key`);
      case 400:
        throw new WitnessError('rejected', `${name} found our request malformed (400)`);
      case 422:
        throw new WitnessError('inconsistent', `${name} refused checkpoint ${checkpoint.size} from old size ${old} as inconsistent with what it holds (422)`);
      default:
        if (res.status >= 300 && res.status < 400) throw new WitnessError('unreachable', `${name} answered a redirect (${res.status}); witness URLs are used as configured`);
        throw new WitnessError('unavailable', `${name} answered ${res.status}`);
    }
  }

  /**
   * The witness's cosignature line in a 200 body: signature lines, of which those by unknown keys
   * are ignored; the one under the configured name and key ID must verify over our checkpoint, as
   * `cosignature/v1` with a non-zero timestamp not far in the future.
   */
  private cosignatureIn(w: Configured, note: string, body: Buffer): string {
    const name = w.verifier.name;
    const bad = (why: string) => new WitnessError('bad_response', `${name}: ${why}`);
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(body);
    } catch {
      throw bad('the answer is not UTF-8');
    }
    if (text.length === 0 || !text.endsWith('\n') || !text.split('\n').slice(0, -1).every((l) => l.startsWith('\u2014 '))) {
      throw bad('the answer is not a sequence of signature lines');
    }
    let signature;
    try {
      // The log's own signature line is by a key not given here: ignored, like any unknown key.
      signature = openNote(note + text, [w.verifier]).signatures[0];
    } catch (err) {
      if (!(err instanceof NoteError)) throw err;
      const why = err.code === 'unverified_note' ? `no cosignature by ${w.verifier.vkey} in the answer` : err.message;
      throw bad(why);
    }
    const time = signature.timestamp ?? 0;
    if (time === 0) throw bad('the cosignature has a zero timestamp');
    if (time * 1000 > this.now() + this.maxClockSkewMs) throw bad(`the cosignature is dated ${new Date(time * 1000).toISOString()}, in the future`);
    return `\u2014 ${signature.name} ${signature.base64}\n`;
  }
}

// Directory sweep: hashes every file under a root (a pict-rs files directory, say), records it,
// decides about it through the decider (trust, policy and weights, exactly as the server decides)
// and reports one JSON line per file. Videos (told by content) are hashed as videos (MD5, SHA-256,
// vPDQ) under the server's video limits, and classified by sampled frames. On request, what is decided `block` or `review` is kept in
// the encrypted quarantine and only then removed from the tree. Resumable: a file already handled
// with the same size and mtime is skipped, so an interrupted sweep continues where it stopped.
import { createHash } from 'node:crypto';
import { opendir, readFile, stat, unlink } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import type { Db } from '../store/index.js';
import type { VerdictService, VerdictMatch } from '../verdicts/index.js';
import type { Decided, Decider } from '../verdicts/decider.js';
import type { Label } from '../../shared/vocab/verdict.js';
import type { Outcome, ScannedFrames } from '../trust/decide.js';
import type { MatchQuery } from '../matching/matcher.js';
import type { HashPool } from './hash-pool.js';
import { lookupQuery, recordMedia, recordVideoMedia, videoLookupQuery } from './media.js';
import { summarizeDecision, type Quarantine } from './quarantine.js';
import { hashVideoFile, isVideoFile, isVideoRejectedError, type VideoHashOptions } from '../video/index.js';
import { imageSubjects, videoSubjects } from '../../shared/algorithms/index.js';

export interface SweepOptions {
  root: string;
  /**
   * Keep files decided `block` or `review` here (encrypted, access-logged, with the decision), then
   * remove them from the tree: the same quarantine the server and the console use.
   */
  quarantine?: Quarantine;
  /** Delete files decided `block` (never `review`): only on the operator's explicit request. */
  deleteBlocked?: boolean;
  source?: string;
  /** Called once per file, in completion order, with the report line. */
  report: (line: SweepReportLine) => void | Promise<void>;
  /** Progress: total known once the walk is done; `done` counts handled and skipped files. */
  progress?: (done: number, total: number | undefined) => void;
  /**
   * Classifies images the decision asks to scan (unknown, or disputed and not yet classified here)
   * and records one local classifier verdict per model (offline: recorded, not signed or published;
   * the server publishes what its scanner finds). The file is then decided again.
   */
  classify?: (path: string) => Promise<Array<{ label: Label; confidence: number; classifier: { name: string; version: string }; scannedFrames?: ScannedFrames }>>;
}

/** A swept file, hashed and recorded: what deciding and acting on it need. */
interface SweptMedia {
  mediaId: number;
  sha256: string;
  /** The subjects of our verdicts about it (an image's SHA-256, PDQ, pHash-64; a video's SHA-256, MD5, frames). */
  subjects: Array<{ algorithm: string; digest: string; quality?: number; seconds?: number }>;
  query: MatchQuery;
  pdq?: string;
  format?: string;
  /** The report's hash fields. */
  reported: Pick<SweepReportLine, 'sha256' | 'pdq' | 'pdq_quality' | 'md5' | 'vpdq_frames'>;
}

export interface SweepReportLine {
  file: string;
  /** What happened to the file: `match` = verdicts matched it, `unknown` = none did. */
  status: 'unknown' | 'match' | 'error' | 'quarantined' | 'deleted';
  /** The decision, as the server would take it now. */
  outcome?: Outcome;
  label?: Label | null;
  /** The decision's explanation in one sentence. */
  reason?: string;
  sha256?: string;
  pdq?: string;
  pdq_quality?: number;
  /** A video's MD5 and how many vPDQ frames it has (instead of the PDQ). */
  md5?: string;
  vpdq_frames?: number;
  /** Every verdict that matched, whether or not it counted (the decision says what did). */
  matches?: Array<{ id: string; issuer: string; label: string; confidence: number; distance: number; matched_by: string }>;
  /** One entry per model (VOUCH_CLASSIFIER may list several). */
  classified?: Array<{ label: string; confidence: number; classifier: string }>;
  /** The quarantine item the file is kept as (`vouch quarantine show ID`). */
  quarantine_id?: number;
  error?: { code: string; message: string };
}

export interface SweepSummary {
  files: number;
  skipped: number;
  /** Files no verdict matched. */
  unknown: number;
  /** Files some verdict matched. */
  matched: number;
  /** Decisions, by outcome. */
  block: number;
  review: number;
  allow: number;
  quarantined: number;
  deleted: number;
  errors: number;
}

async function* walk(dir: string, exclude: string | undefined): AsyncGenerator<string> {
  const handle = await opendir(dir);
  for await (const entry of handle) {
    const path = join(dir, entry.name);
    if (exclude && path === exclude) continue;
    // Symlinks are not followed: a sweep must not wander out of the tree it was given.
    if (entry.isDirectory()) yield* walk(path, exclude);
    else if (entry.isFile()) yield path;
  }
}

/** A file the sweep could not act on; it stays where it is, and the next sweep tries it again. */
class SweepActionError extends Error {}

export class Sweeper {
  constructor(
    private readonly db: Db,
    private readonly verdicts: VerdictService,
    private readonly decider: Decider,
    private readonly pool: HashPool,
    /** Video hashing's limits, frame rate and ffmpeg (the server's: config videoHashOptions). */
    private readonly video: VideoHashOptions = {},
  ) {}

  async sweep(options: SweepOptions): Promise<SweepSummary> {
    if (options.quarantine && options.deleteBlocked) throw new Error('quarantine or delete blocked files, not both');
    const root = resolve(options.root);
    const rootInfo = await stat(root).catch(() => undefined);
    if (!rootInfo?.isDirectory()) throw new Error(`${options.root} is not a directory`);
    // The quarantine may live inside the swept tree (a data directory under it): never sweep it.
    const exclude = options.quarantine?.root;
    const source = options.source ?? `sweep:${root}`;
    const summary: SweepSummary = { files: 0, skipped: 0, unknown: 0, matched: 0, block: 0, review: 0, allow: 0, quarantined: 0, deleted: 0, errors: 0 };

    // Counting first gives the progress bar a total and an ETA; the walk is cheap next to hashing.
    let total = 0;
    for await (const _ of walk(root, exclude)) total++;
    options.progress?.(0, total);

    const handled = await this.handledFiles(root);
    const inFlight = new Set<Promise<void>>();
    const limit = this.pool.threads * 2;
    let done = 0;

    for await (const path of walk(root, exclude)) {
      const rel = relative(root, path);
      const info = await stat(path).catch(() => undefined);
      summary.files++;
      const previous = handled.get(rel);
      if (info && previous && previous.size === info.size && previous.mtimeMs === Math.trunc(info.mtimeMs)) {
        summary.skipped++;
        options.progress?.(++done, total);
        continue;
      }
      const task = this.hashAndRecord(path, source)
        .then((outcome) => this.handle(root, rel, info, path, outcome, options, source, summary))
        .then(() => {
          inFlight.delete(task);
          options.progress?.(++done, total);
        });
      inFlight.add(task);
      if (inFlight.size >= limit) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
    return summary;
  }

  private async handledFiles(root: string): Promise<Map<string, { size: number; mtimeMs: number }>> {
    const rows = await this.db
      .selectFrom('sweep_files')
      .select(['path', 'byte_size', 'mtime_ms'])
      .where('root', '=', root)
      .execute();
    return new Map(rows.map((r) => [r.path, { size: r.byte_size, mtimeMs: r.mtime_ms }]));
  }

  /** Hashes a file (a video as a video, by content) and records it; a refused file is its error code and message. */
  private async hashAndRecord(path: string, source: string): Promise<{ ok: true; media: SweptMedia } | { ok: false; code: string; message: string }> {
    if (await isVideoFile(path)) {
      try {
        const h = await hashVideoFile(path, this.video);
        return {
          ok: true,
          media: {
            mediaId: await recordVideoMedia(this.db, h, source),
            sha256: h.sha256,
            subjects: videoSubjects(h),
            query: videoLookupQuery(h),
            format: h.container,
            reported: { sha256: h.sha256, md5: h.md5, vpdq_frames: h.frames.length },
          },
        };
      } catch (err) {
        if (isVideoRejectedError(err)) return { ok: false, code: err.code, message: err.message };
        throw err;
      }
    }
    const outcome = await this.pool.hashFile(path);
    if (!outcome.ok) return outcome;
    const h = outcome.hashes;
    return {
      ok: true,
      media: {
        mediaId: await recordMedia(this.db, h, outcome.byteSize, source),
        sha256: h.sha256,
        subjects: imageSubjects({ sha256: h.sha256, pdq: [h.pdq], pdqQuality: h.pdqQuality, phash64: h.phash64 }),
        query: lookupQuery(h),
        pdq: h.pdq,
        format: h.format,
        reported: { sha256: h.sha256, pdq: h.pdq, pdq_quality: h.pdqQuality },
      },
    };
  }

  private async handle(
    root: string,
    rel: string,
    info: { size: number; mtimeMs: number } | undefined,
    path: string,
    outcome: Awaited<ReturnType<Sweeper['hashAndRecord']>>,
    options: SweepOptions,
    source: string,
    summary: SweepSummary,
  ): Promise<void> {
    if (!outcome.ok) {
      summary.errors++;
      const line: SweepReportLine = { file: rel, status: 'error', error: { code: outcome.code, message: outcome.message } };
      await this.markHandled(root, rel, info, line);
      await options.report(line);
      return;
    }
    const media = outcome.media;
    const { query } = media;
    const matches = await this.verdicts.find(query);
    let decision = this.decider.decideFrom(matches, query);
    const line: SweepReportLine = {
      file: rel,
      status: matches.length > 0 ? 'match' : 'unknown',
      ...media.reported,
      matches: matches.map(matchJson),
    };
    if (matches.length > 0) summary.matched++;
    else summary.unknown++;
    if (decision.scan && options.classify) {
      let results: Awaited<ReturnType<NonNullable<SweepOptions['classify']>>>;
      try {
        results = await options.classify(path);
      } catch (err) {
        // A video its frames cannot be sampled from (the decoder's limits, say): reported like a
        // file that cannot be hashed, and left where it is.
        if (!isVideoRejectedError(err)) throw err;
        summary.errors++;
        Object.assign(line, { status: 'error', error: { code: err.code, message: `cannot classify it: ${err.message}` } });
        await this.markHandled(root, rel, info, line);
        await options.report(line);
        return;
      }
      line.classified = results.map((r) => ({ label: r.label, confidence: r.confidence, classifier: `${r.classifier.name}@${r.classifier.version}` }));
      await this.verdicts.recordLocal(
        results.map((r) => ({
          subjects: media.subjects,
          label: r.label,
          confidence: r.confidence,
          method: 'classifier' as const,
          classifier: r.classifier,
          source,
          ...(r.scannedFrames ? { scannedFrames: r.scannedFrames } : {}),
        })),
      );
      // Our scanner's verdicts are evidence like any other: decide again with them.
      decision = await this.decider.decide(query);
    }
    Object.assign(line, { outcome: decision.outcome, label: decision.label, reason: decision.explanation.reason });
    if (decision.outcome === 'block' || decision.outcome === 'review' || decision.outcome === 'allow') summary[decision.outcome]++;
    await this.recordDecision(media.mediaId, decision, source);
    try {
      await this.act(path, media, decision, options, source, line, summary);
    } catch (err) {
      if (!(err instanceof SweepActionError)) throw err;
      summary.errors++;
      line.status = 'error';
      line.error = { code: 'not_acted_on', message: err.message };
      // Not marked handled: the file is where it was, and the next sweep decides and acts again.
      await options.report(line);
      return;
    }
    await this.markHandled(root, rel, info, line);
    await options.report(line);
  }

  /** The decision as the server records it: the console lists block and review for a moderator. */
  private async recordDecision(mediaId: number, decision: Decided, source: string): Promise<void> {
    await this.db
      .insertInto('decisions')
      .values({ media_id: mediaId, outcome: decision.outcome, label: decision.label, source, scan_requested: false, explanation: JSON.stringify(decision.explanation) })
      .execute();
  }

  /** Quarantines (block, review) or deletes (block) the file, as the operator asked; nothing otherwise. */
  private async act(
    path: string,
    media: SweptMedia,
    decision: Decided,
    options: SweepOptions,
    source: string,
    line: SweepReportLine,
    summary: SweepSummary,
  ): Promise<void> {
    if (decision.outcome === 'block' && options.deleteBlocked) {
      await unlink(path);
      line.status = 'deleted';
      summary.deleted++;
      return;
    }
    if ((decision.outcome !== 'block' && decision.outcome !== 'review') || !options.quarantine) return;
    const bytes = await readFile(path).catch((err: Error) => {
      throw new SweepActionError(`cannot read it again to quarantine it: ${err.message}`);
    });
    if (createHash('sha256').update(bytes).digest('hex') !== media.sha256) {
      throw new SweepActionError('it changed while it was being swept: left in place, sweep again');
    }
    const item = await options.quarantine.put({
      bytes,
      sha256: media.sha256,
      pdq: media.pdq,
      format: media.format,
      source,
      decision: summarizeDecision(decision),
      actor: 'vouch scan',
    });
    // Only once the encrypted copy and its record are committed: the file is never lost.
    await unlink(path);
    line.status = 'quarantined';
    line.quarantine_id = item.id;
    summary.quarantined++;
  }

  private async markHandled(root: string, rel: string, info: { size: number; mtimeMs: number } | undefined, line: SweepReportLine): Promise<void> {
    await this.db
      .insertInto('sweep_files')
      .values({
        root,
        path: rel,
        byte_size: info?.size ?? 0,
        mtime_ms: Math.trunc(info?.mtimeMs ?? 0),
        sha256: line.sha256 ? Buffer.from(line.sha256, 'hex') : null,
        status: line.status,
        error: line.error?.message ?? null,
      })
      .onConflict((oc) =>
        oc.columns(['root', 'path']).doUpdateSet((eb) => ({
          byte_size: eb.ref('excluded.byte_size'),
          mtime_ms: eb.ref('excluded.mtime_ms'),
          sha256: eb.ref('excluded.sha256'),
          status: eb.ref('excluded.status'),
          error: eb.ref('excluded.error'),
          handled_at: new Date(),
        })),
      )
      .execute();
  }
}

function matchJson(m: VerdictMatch) {
  return { id: m.uri, issuer: m.issuer, label: m.label, confidence: m.confidence, distance: m.distance, matched_by: m.matchedBy };
}

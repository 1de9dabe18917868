// Directory sweep: hashes every file under a root (a pict-rs files directory, say), records it,
// looks it up and reports one JSON line per file. Resumable: a file already handled with the same
// size and mtime is skipped, so an interrupted sweep continues where it stopped.
import { mkdir, opendir, rename, stat, unlink, writeFile, copyFile } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import type { Db } from '../store/index.js';
import type { VerdictService, VerdictMatch } from '../verdicts/index.js';
import type { Label } from '../../shared/vocab/verdict.js';
import type { HashPool, HashOutcome } from './hash-pool.js';
import { recordMedia } from './media.js';

export interface SweepOptions {
  root: string;
  /** Move files that match a verdict here (never deleted unless deleteMatches). */
  quarantineDir?: string;
  /** Delete matching files instead of keeping them: only on the operator's explicit request. */
  deleteMatches?: boolean;
  /** Which labels count as a match worth acting on; `ok` verdicts never move a file. */
  actOnLabels?: ReadonlySet<string>;
  source?: string;
  /** Called once per file, in completion order, with the report line. */
  report: (line: SweepReportLine) => void | Promise<void>;
  /** Progress: total known once the walk is done; `done` counts handled and skipped files. */
  progress?: (done: number, total: number | undefined) => void;
  /**
   * Classifies images no verdict matched and records the result as a local classifier verdict
   * (offline: recorded, not signed or published; the server publishes what its scanner finds).
   */
  /** One result per model. */
  classify?: (path: string) => Promise<Array<{ label: Label; confidence: number; classifier: { name: string; version: string } }>>;
}

export interface SweepReportLine {
  file: string;
  status: 'unknown' | 'match' | 'error' | 'quarantined' | 'deleted';
  sha256?: string;
  pdq?: string;
  pdq_quality?: number;
  matches?: Array<{ id: string; issuer: string; label: string; confidence: number; distance: number; matched_by: string }>;
  /** One entry per model (VOUCH_CLASSIFIER may list several). */
  classified?: Array<{ label: string; confidence: number; classifier: string }>;
  quarantined_to?: string;
  error?: { code: string; message: string };
}

export interface SweepSummary {
  files: number;
  skipped: number;
  unknown: number;
  matched: number;
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

/** Moves a file across filesystems if need be; the copy is verified before the original goes. */
async function moveFile(from: string, to: string): Promise<void> {
  try {
    await rename(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
    await copyFile(from, to);
    await unlink(from);
  }
}

export class Sweeper {
  constructor(
    private readonly db: Db,
    private readonly verdicts: VerdictService,
    private readonly pool: HashPool,
  ) {}

  async sweep(options: SweepOptions): Promise<SweepSummary> {
    const root = resolve(options.root);
    const rootInfo = await stat(root).catch(() => undefined);
    if (!rootInfo?.isDirectory()) throw new Error(`${options.root} is not a directory`);
    const quarantineDir = options.quarantineDir ? resolve(options.quarantineDir) : undefined;
    if (quarantineDir) await mkdir(quarantineDir, { recursive: true, mode: 0o700 });
    const actOn = options.actOnLabels ?? new Set(['csam', 'sexual', 'gore', 'hate', 'spam']);
    const source = options.source ?? `sweep:${root}`;
    const summary: SweepSummary = { files: 0, skipped: 0, unknown: 0, matched: 0, quarantined: 0, deleted: 0, errors: 0 };

    // Counting first gives the progress bar a total and an ETA; the walk is cheap next to hashing.
    let total = 0;
    for await (const _ of walk(root, quarantineDir)) total++;
    options.progress?.(0, total);

    const handled = await this.handledFiles(root);
    const inFlight = new Set<Promise<void>>();
    const limit = this.pool.threads * 2;
    let done = 0;

    for await (const path of walk(root, quarantineDir)) {
      const rel = relative(root, path);
      const info = await stat(path).catch(() => undefined);
      summary.files++;
      const previous = handled.get(rel);
      if (info && previous && previous.size === info.size && previous.mtimeMs === Math.trunc(info.mtimeMs)) {
        summary.skipped++;
        options.progress?.(++done, total);
        continue;
      }
      const task = this.pool
        .hashFile(path)
        .then((outcome) => this.handle(root, rel, path, info, outcome, options, quarantineDir, actOn, source, summary))
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

  private async handle(
    root: string,
    rel: string,
    path: string,
    info: { size: number; mtimeMs: number } | undefined,
    outcome: HashOutcome,
    options: SweepOptions,
    quarantineDir: string | undefined,
    actOn: ReadonlySet<string>,
    source: string,
    summary: SweepSummary,
  ): Promise<void> {
    let line: SweepReportLine;
    if (!outcome.ok) {
      summary.errors++;
      line = { file: rel, status: 'error', error: { code: outcome.code, message: outcome.message } };
    } else {
      const h = outcome.hashes;
      await recordMedia(this.db, h, outcome.byteSize, source);
      const matches = await this.verdicts.find({
        sha256: Buffer.from(h.sha256, 'hex'),
        pdq: Object.values(h.pdqDihedral).map((hex) => Buffer.from(hex, 'hex')),
        pdqQuality: h.pdqQuality,
      });
      line = {
        file: rel,
        status: matches.length > 0 ? 'match' : 'unknown',
        sha256: h.sha256,
        pdq: h.pdq,
        pdq_quality: h.pdqQuality,
        matches: matches.map(matchJson),
      };
      if (matches.length > 0) summary.matched++;
      else summary.unknown++;
      if (matches.length === 0 && options.classify) {
        const results = await options.classify(path);
        line.classified = results.map((r) => ({ label: r.label, confidence: r.confidence, classifier: `${r.classifier.name}@${r.classifier.version}` }));
        await this.verdicts.recordLocal(
          results.map((r) => ({
            subjects: [
              { algorithm: 'sha256' as const, digest: h.sha256 },
              { algorithm: 'pdq' as const, digest: h.pdq, quality: h.pdqQuality },
            ],
            label: r.label,
            confidence: r.confidence,
            method: 'classifier' as const,
            classifier: r.classifier,
            source,
          })),
        );
      }
      const actionable = matches.some((m) => actOn.has(m.label));
      if (actionable && options.deleteMatches) {
        await unlink(path);
        line.status = 'deleted';
        summary.deleted++;
      } else if (actionable && quarantineDir) {
        line.quarantined_to = await this.quarantine(path, rel, h.sha256, matches, quarantineDir);
        line.status = 'quarantined';
        summary.quarantined++;
      }
    }
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
    await options.report(line);
  }

  /** Keeps the file under its SHA-256 with a metadata sidecar: evidence is preserved, not destroyed. */
  private async quarantine(path: string, rel: string, sha256: string, matches: VerdictMatch[], dir: string): Promise<string> {
    const target = join(dir, sha256);
    await moveFile(path, target);
    const meta = {
      original_path: rel,
      sha256,
      quarantined_at: new Date().toISOString(),
      matches: matches.map(matchJson),
    };
    await writeFile(`${target}.json`, `${JSON.stringify(meta, null, 2)}\n`, { mode: 0o600 });
    return target;
  }
}

function matchJson(m: VerdictMatch) {
  return { id: m.uri, issuer: m.issuer, label: m.label, confidence: m.confidence, distance: m.distance, matched_by: m.matchedBy };
}

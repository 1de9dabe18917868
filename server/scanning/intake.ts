// Intake: media in, decision out. Hash, record, look up every verdict (exact and near, rotations
// and mirrors included), let the trust engine decide, keep the explanation, send to the scanner
// only what no trusted peer has judged (plus a spot-check sample), and quarantine what is blocked.
import { EventEmitter, once } from 'node:events';
import { randomInt } from 'node:crypto';
import type { Db } from '../store/index.js';
import type { Logger } from '../config/logger.js';
import type { Metrics } from '../config/metrics.js';
import type { JobQueue } from '../queue/index.js';
import type { Subject, VerdictService } from '../verdicts/index.js';
import { classifierText } from '../verdicts/objects.js';
import { PerKeySerial } from '../per-key-serial.js';
import type { Reattestation } from '../verdicts/consensus.js';
import type { Decided, Decider } from '../verdicts/decider.js';
import type { TrustService } from '../trust/service.js';
import { labelsAtStake, type Decision, type Explanation, type MatchedVerdict, type ScannedFrames } from '../trust/decide.js';
import type { ImageHashesWithDihedral } from '../../shared/hashing/index.js';
import type { HashPool } from './hash-pool.js';
import { lookupQuery, mediaSubjects, recordMedia, recordVideoMedia, videoLookupQuery } from './media.js';
import { hashVideoBytes, isVideo, isVideoRejectedError, type VideoHashOptions, type VideoHashes } from '../video/index.js';
import { imageSubjects, parseFrames, videoSubjects } from '../../shared/algorithms/index.js';
import { summarizeDecision, type Quarantine } from './quarantine.js';
import { queryOf, type MatchQuery } from '../matching/matcher.js';

export interface ScanJob {
  sha256: string;
  decisionId: number;
  /** A spot check of a peer-decided image: disagreement lowers those peers' weight. */
  spotCheck: boolean;
  /** Nobody waited: queued `deferScanSeconds` late, and skipped if peers decided meanwhile. */
  deferred?: boolean;
}

/** When a needed scan starts: at once, late (nobody waits on it), or not at all. */
type ScanTiming = 'now' | 'deferred' | 'never';

export const SCAN_QUEUE = 'scan';

/** What one model said about a scanned image. */
export interface ScanResult {
  label: MatchedVerdict['label'];
  confidence: number;
  classifier: { name: string; version: string };
  /** A video's: the sampled frames behind this verdict (server/scanning/video-scan.ts), kept with it. */
  scannedFrames?: ScannedFrames;
}

export interface MediaDecision {
  decisionId: number;
  outcome: Decision['outcome'];
  label: string | null;
  scanned: boolean;
  scanPending: boolean;
  quarantineId: number | null;
  /** An image's hashes, or a video's (MD5 and its number of vPDQ frames instead of the image hashes). */
  hashes: { sha256: string; pipeline: string } & (
    | { pdq: string; pdq_quality: number; phash64: string }
    | { md5: string; vpdq_frames: number }
  );
  explanation: Explanation;
}

/** Media hashed and recorded, as a decision about it needs it. */
interface HashedMedia {
  sha256: string;
  /** The subjects of our verdicts about it. */
  subjects: Subject[];
  query: MatchQuery;
  /** Its PDQ, for pull on miss and the quarantine (images only). */
  pdq?: string;
  /** Its MD5, for pull on miss (videos only). */
  md5?: string;
  /** The format the quarantine records. */
  format?: string;
  summary: MediaDecision['hashes'];
}

function hashedImage(hashes: ImageHashesWithDihedral): HashedMedia {
  return {
    sha256: hashes.sha256,
    // Its SHA-256, PDQ and pHash-64, so that peers can tell a near-duplicate from a crafted PDQ collision.
    subjects: imageSubjects({ sha256: hashes.sha256, pdq: [hashes.pdq], pdqQuality: hashes.pdqQuality, phash64: hashes.phash64 }),
    query: lookupQuery(hashes),
    pdq: hashes.pdq,
    format: hashes.format,
    summary: { sha256: hashes.sha256, pdq: hashes.pdq, pdq_quality: hashes.pdqQuality, phash64: hashes.phash64, pipeline: hashes.pipeline },
  };
}

function hashedVideo(hashes: Pick<VideoHashes, 'sha256' | 'md5' | 'frames' | 'pipeline'> & { container?: string }): HashedMedia {
  return {
    sha256: hashes.sha256,
    md5: hashes.md5,
    subjects: videoSubjects(hashes),
    query: videoLookupQuery(hashes),
    format: hashes.container,
    summary: { sha256: hashes.sha256, md5: hashes.md5, vpdq_frames: hashes.frames.length, pipeline: hashes.pipeline },
  };
}

/** A recorded video as its media row holds it (MD5 and frame list), so that it is not decoded again. */
function storedVideo(sha256: string, row: { md5: Uint8Array; vpdq: unknown; pipeline: string }): HashedMedia {
  return hashedVideo({ sha256, md5: Buffer.from(row.md5).toString('hex'), frames: parseFrames(row.vpdq), pipeline: row.pipeline });
}

export class MediaRejectedError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface IntakeOptions {
  metrics?: Metrics;
  /** Asks peers that offer it for verdicts about these hashes; resolves to how many arrived. */
  pullOnMiss?: (hashes: { sha256: string; pdq?: string; md5?: string }) => Promise<number>;
  /** Whether a scanner consumes the scan queue at all (else `unknown` stays unknown). */
  scannerAvailable: boolean;
  /** Video hashing's limits, frame rate and ffmpeg (config videoHashOptions); default: server/video's. */
  video?: VideoHashOptions;
}

/** A scanner node as the server has seen it (since this server process started). */
export interface ScannerNodeSeen {
  node: string;
  classifier: string;
  lastSeen: Date;
  scans: number;
}

export class MediaIntake {
  private readonly scanned = new EventEmitter();
  private readonly nodes = new Map<string, ScannerNodeSeen>();
  /** Scan results being recorded, by decision: a second post of one waits for the first. */
  private readonly recording = new PerKeySerial<number>();
  /** Classifiers already reported as missing from the policy's classifierScopes (warned once each). */
  private readonly unscoped = new Set<string>();

  constructor(
    private readonly db: Db,
    private readonly verdicts: VerdictService,
    private readonly trust: TrustService,
    private readonly decider: Decider,
    private readonly consensus: Reattestation,
    private readonly pool: HashPool,
    private readonly scanQueue: JobQueue<ScanJob>,
    private readonly quarantine: Quarantine | undefined,
    private readonly logger: Logger,
    private readonly options: IntakeOptions,
  ) {
    this.scanned.setMaxListeners(0);
  }

  /** Whether media nobody could judge, and nobody suspected, is refused (policy `failMode.default`). */
  failsClosedByDefault(): boolean {
    return this.trust.policy.failMode.default === 'closed';
  }

  /** Whether undecided media is refused (policy `failMode`: closed if it is for any label at stake). */
  failsClosed(decision: Pick<MediaDecision, 'outcome' | 'label' | 'explanation'>): boolean {
    if (decision.outcome !== 'unknown' && decision.outcome !== 'review') return false;
    const { failMode } = this.trust.policy;
    const labels = labelsAtStake(decision);
    if (labels.length === 0) return failMode.default === 'closed';
    return labels.some((label) => (failMode.labels[label] ?? failMode.default) === 'closed');
  }

  /**
   * Decides about media; `waitMs` waits that long for a scan when one is needed. Media from
   * another instance (`remote`) that nobody waits on has its scan deferred by the policy's
   * `deferScanSeconds`: a federated copy usually arrives before the verdict of the instance that
   * scanned it, and that verdict can spare the scan. Our own uploads are scanned at once, since
   * ours is the scan the federation will rely on.
   */
  async submit(bytes: Buffer, source: string, waitMs = 0, origin: { remote?: boolean } = {}): Promise<MediaDecision> {
    const { mediaId, media } = (await isVideo(bytes)) ? await this.recordVideo(bytes, source) : await this.recordImage(bytes, source);
    let result = await this.decideAndAct(mediaId, media, bytes, source, origin.remote && waitMs === 0 ? 'deferred' : 'now');
    if (result.scanPending && waitMs > 0) {
      const scanned = await this.waitForScan(media.sha256, waitMs);
      // The scan's result recorded the decision after it; decide here only if that failed.
      if (scanned) result = { ...(scanned.decision ?? (await this.decideAndAct(mediaId, media, bytes, source, 'never'))), scanned: true };
    }
    return result;
  }

  /** An image: hashed in the pool (a refused one is a MediaRejectedError) and recorded. */
  private async recordImage(bytes: Buffer, source: string): Promise<{ mediaId: number; media: HashedMedia }> {
    const stopHash = this.options.metrics?.hashSeconds.startTimer();
    const outcome = await this.pool.hashBytes(bytes);
    stopHash?.();
    if (!outcome.ok) throw new MediaRejectedError(outcome.code, outcome.message);
    return { mediaId: await recordMedia(this.db, outcome.hashes, outcome.byteSize, source), media: hashedImage(outcome.hashes) };
  }

  /**
   * A video: MD5, SHA-256 and vPDQ through the confined ffmpeg (server/video), recorded; it is
   * decided from the verdicts its hashes and frames match, and scanned by sampled frames like an
   * image when nothing decides it. A refused video (truncated, malformed, over a limit, no ffmpeg)
   * is a MediaRejectedError with the video pipeline's code, and nothing is recorded.
   */
  private async recordVideo(bytes: Buffer, source: string): Promise<{ mediaId: number; media: HashedMedia }> {
    const stopHash = this.options.metrics?.hashSeconds.startTimer();
    let hashes: VideoHashes;
    try {
      hashes = await hashVideoBytes(bytes, this.options.video);
    } catch (err) {
      if (isVideoRejectedError(err)) throw new MediaRejectedError(err.code, err.message);
      throw err;
    } finally {
      stopHash?.();
    }
    return { mediaId: await recordVideoMedia(this.db, hashes, source), media: hashedVideo(hashes) };
  }

  /**
   * What would be decided now about these hashes (hex), with the explanation; nothing is recorded.
   * A video we have recorded, named by its SHA-256, is decided from all its hashes (MD5 and
   * frames from its media row), as intake decides about it.
   */
  async explain(hashes: { sha256?: string; pdq?: string; phash64?: string; md5?: string }): Promise<Decision> {
    if (hashes.sha256) {
      const video = await this.db
        .selectFrom('media')
        .select(['md5', 'vpdq', 'pipeline'])
        .where('sha256', '=', Buffer.from(hashes.sha256, 'hex'))
        .executeTakeFirst();
      if (video?.md5 && video.vpdq) return this.decider.decide(storedVideo(hashes.sha256, { md5: video.md5, vpdq: video.vpdq, pipeline: video.pipeline }).query);
    }
    return this.decider.decide(queryOf(Object.entries(hashes).flatMap(([algorithm, digest]) => (digest === undefined ? [] : [{ algorithm, digest }]))));
  }

  /** Scanner nodes that posted results since this process started, most recent first. */
  scannerNodes(): ScannerNodeSeen[] {
    return [...this.nodes.values()].sort((a, b) => b.lastSeen.getTime() - a.lastSeen.getTime());
  }

  /** Drops media whose scan never completed (its job dead-lettered) after `days`. */
  async pruneAbandoned(days = 7): Promise<number> {
    const result = await this.db.deleteFrom('scan_media').where('created_at', '<', new Date(Date.now() - days * 86_400_000)).executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  /** The bytes a scanner fetches for a pending job (kept only until the scan is done). */
  async pendingBytes(sha256: string): Promise<Buffer | undefined> {
    const row = await this.db.selectFrom('scan_media').select('bytes').where('sha256', '=', Buffer.from(sha256, 'hex')).executeTakeFirst();
    return row ? Buffer.from(row.bytes) : undefined;
  }

  /**
   * A scanner's results, one per model: each becomes our own signed, published verdict. A spot
   * check that contradicts the peers who decided lowers their weight, with the reason recorded.
   */
  async scanResult(job: ScanJob, results: ScanResult[], node = 'unnamed'): Promise<void> {
    // One post of a scan's result at a time: a scanner that gave up waiting posts again while the
    // first is still being recorded. (Across server processes, a unique index keeps one of each.)
    await this.recording.run(job.decisionId, () => this.recordScanResult(job, results, node));
  }

  private async recordScanResult(job: ScanJob, results: ScanResult[], node: string): Promise<void> {
    // A video's verdicts name it by MD5, SHA-256 and its frames, as our other verdicts about it do.
    const subjects = await mediaSubjects(this.db, job.sha256);
    if (!subjects) throw new MediaRejectedError('unknown_media', `no media with SHA-256 ${job.sha256}`);
    // A scanner posts again when it did not get our answer: what this scan already issued is not
    // issued twice. One scan, one instant (a retry's included): among local verdicts published
    // together abuse wins over ok, so the newest-local rule does not let the last model decide.
    const source = `scanner:decision-${job.decisionId}`;
    const earlier = await this.verdicts.localFromSource(source);
    const issued = new Set(earlier.map((v) => v.classifier));
    const published = earlier.length > 0 ? new Date(earlier[0].published) : new Date();
    for (const result of results) {
      if (!(result.classifier.name in this.trust.policy.classifierScopes) && !this.unscoped.has(result.classifier.name)) {
        this.unscoped.add(result.classifier.name);
        this.logger.warn(
          { classifier: result.classifier.name },
          'this classifier is not in the policy\'s classifierScopes: its ok counts against no label here or at peers until it is named there (docs/operator-guide.md)',
        );
      }
      if (issued.has(classifierText(result.classifier))) continue;
      await this.verdicts.issue({
        subjects,
        label: result.label,
        confidence: result.confidence,
        method: 'classifier',
        classifier: result.classifier,
        source,
        published,
        ...(result.scannedFrames ? { scannedFrames: result.scannedFrames } : {}),
      });
      this.options.metrics?.scans.inc({ label: result.label });
    }
    const seen = this.nodes.get(node);
    const classifiers = results.map((r) => `${r.classifier.name} ${r.classifier.version}`).join(', ');
    this.nodes.set(node, { node, classifier: classifiers, lastSeen: new Date(), scans: (seen?.scans ?? 0) + 1 });
    // Our scan says abuse when any model flagged it.
    if (job.spotCheck && (await this.claimSpotCheck(job.decisionId))) {
      try {
        await this.compareWithPeers(job.decisionId, results.find((r) => r.label !== 'ok')?.label ?? 'ok');
      } catch (err) {
        // Unclaimed, so that the retry compares again (a peer penalised before the failure may be
        // penalised twice: erring towards the peer our scanner contradicted).
        await this.db.updateTable('decisions').set({ spot_checked_at: null }).where('id', '=', job.decisionId).execute();
        throw err;
      }
    }
    // The media's decision after the scan is recorded here, so that what the scanner flags is
    // quarantined and reviewed, and uploads waiting for the scan answer with it. The verdict
    // stands even if this fails: logged instead.
    const decision = await this.decideAfterScan(job).catch((err: unknown) => {
      this.logger.error({ err, sha256: job.sha256 }, 'recording the decision after a scan failed');
      return undefined;
    });
    await this.db.deleteFrom('scan_media').where('sha256', '=', Buffer.from(job.sha256, 'hex')).execute();
    this.scanned.emit(job.sha256, { decision });
  }

  private async decideAfterScan(job: ScanJob): Promise<MediaDecision | undefined> {
    const pending = await this.pendingMedia(job);
    return pending && this.decideAndAct(pending.mediaId, pending.media, pending.bytes, pending.source, 'never');
  }

  /**
   * A pending scan's media with its first decision's source: an image hashed again (the rotated
   * PDQs are not stored), a video as its media row holds it (MD5 and frames: not decoded again).
   */
  private async pendingMedia(job: Pick<ScanJob, 'sha256' | 'decisionId'>): Promise<{ mediaId: number; media: HashedMedia; bytes: Buffer; source: string } | undefined> {
    const bytes = await this.pendingBytes(job.sha256);
    const row = await this.db.selectFrom('media').select(['id', 'md5', 'vpdq', 'pipeline']).where('sha256', '=', Buffer.from(job.sha256, 'hex')).executeTakeFirst();
    if (!bytes || !row) return undefined;
    let media: HashedMedia;
    if (row.md5 && row.vpdq) media = storedVideo(job.sha256, { md5: row.md5, vpdq: row.vpdq, pipeline: row.pipeline });
    else {
      const outcome = await this.pool.hashBytes(bytes);
      if (!outcome.ok) return undefined;
      media = hashedImage(outcome.hashes);
    }
    const earlier = await this.db.selectFrom('decisions').select('source').where('id', '=', job.decisionId).executeTakeFirst();
    return { mediaId: Number(row.id), media, bytes, source: earlier?.source ?? 'scan' };
  }

  /**
   * A deferred scan falls due: if peers' verdicts decided meanwhile, that decision is recorded
   * (quarantine, re-attestation and all), the pending media is dropped, and true says "no scan".
   * Also true when the media is no longer pending (another scan of it finished first).
   */
  async settledBeforeScan(job: Pick<ScanJob, 'sha256' | 'decisionId'>): Promise<boolean> {
    const pending = await this.pendingMedia(job);
    if (!pending) return true;
    const stamp = this.consensus.stamp();
    const decision = await this.decider.decide(pending.media.query);
    if (decision.scan) return false;
    const recorded = await this.decideAndAct(pending.mediaId, pending.media, pending.bytes, pending.source, 'never', { decision, stamp });
    await this.db.deleteFrom('scan_media').where('sha256', '=', Buffer.from(job.sha256, 'hex')).execute();
    this.scanned.emit(job.sha256, { decision: recorded });
    this.logger.info({ sha256: job.sha256, outcome: recorded.outcome }, 'peers decided before a deferred scan: not scanned');
    return true;
  }

  /** True once per decision: a spot check's result posted again does not penalise anyone twice. */
  private async claimSpotCheck(decisionId: number): Promise<boolean> {
    const claimed = await this.db
      .updateTable('decisions')
      .set({ spot_checked_at: new Date() })
      .where('id', '=', decisionId)
      .where('spot_checked_at', 'is', null)
      .executeTakeFirst();
    return Number(claimed.numUpdatedRows) > 0;
  }

  private async compareWithPeers(decisionId: number, ourLabel: string): Promise<void> {
    const row = await this.db.selectFrom('decisions').select(['explanation']).where('id', '=', decisionId).executeTakeFirst();
    const explanation = row?.explanation as Explanation | undefined;
    const penalised = new Set<string>();
    for (const c of explanation?.top ?? []) {
      // Our own verdicts count in decisions too now; a spot check weighs only peers.
      if (c.local || c.deduplicated || c.contribution <= 0) continue;
      const disagrees = (c.label === 'ok') !== (ourLabel === 'ok');
      if (!disagrees) continue;
      const polarity = c.label === 'ok' ? 'ok' : 'abuse';
      // Once per peer and polarity, however many of its verdicts (or relayed sources) counted.
      if (penalised.has(`${polarity} ${c.issuer}`)) continue;
      penalised.add(`${polarity} ${c.issuer}`);
      const factor = await this.trust.penalise(c.issuer, polarity, `spot check of decision ${decisionId}: peer said ${c.label}, our scanner said ${ourLabel}`);
      this.logger.warn({ peer: c.issuer, polarity, factor, decisionId }, 'spot check disagreed with a peer: its weight was lowered');
    }
  }

  /** The scan's outcome (with the decision recorded after it, if that worked), or undefined on timeout. */
  private async waitForScan(sha256: string, waitMs: number): Promise<{ decision: MediaDecision | undefined } | undefined> {
    try {
      const [outcome] = (await once(this.scanned, sha256, { signal: AbortSignal.timeout(waitMs) })) as [{ decision: MediaDecision | undefined }];
      return outcome;
    } catch {
      return undefined;
    }
  }

  private async decideAndAct(
    mediaId: number,
    media: HashedMedia,
    bytes: Buffer,
    source: string,
    timing: ScanTiming,
    /** A decision the caller has just made about these hashes (with the consensus stamp taken before it): not made again. */
    decided?: { decision: Decided; stamp: string },
  ): Promise<MediaDecision> {
    const allowScan = timing !== 'never';
    const { query } = media;
    const stopLookup = this.options.metrics?.lookupSeconds.startTimer();
    let stamp = decided?.stamp ?? this.consensus.stamp();
    let decision = decided?.decision ?? (await this.decider.decide(query));
    stopLookup?.();
    // Before a scan, ask the peers that offer it: their verdicts may spare the scan.
    if (decision.scan && allowScan && this.options.pullOnMiss && (await this.options.pullOnMiss({ sha256: media.sha256, pdq: media.pdq, md5: media.md5 })) > 0) {
      stamp = this.consensus.stamp();
      decision = await this.decider.decide(query);
    }
    // The decision recorded and acted on below is the one re-attested.
    await this.consensus.reconcile(media.subjects, query, { decision, stamp });
    const spotCheck =
      !decision.scan && decision.explanation.decidedBy === 'peers' && randomInt(1_000_000) < this.trust.policy.spotCheckShare * 1_000_000;
    const scan = allowScan && this.options.scannerAvailable && (decision.scan || spotCheck);
    this.options.metrics?.decisions.inc({ outcome: decision.outcome });
    const row = await this.db
      .insertInto('decisions')
      .values({
        media_id: mediaId,
        outcome: decision.outcome,
        label: decision.label,
        source,
        scan_requested: scan,
        explanation: JSON.stringify(decision.explanation),
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    if (scan) {
      await this.db
        .insertInto('scan_media')
        .values({ sha256: Buffer.from(media.sha256, 'hex'), bytes })
        .onConflict((oc) => oc.column('sha256').doNothing())
        .execute();
      // One job per image at a time: the same upload arriving twice is scanned once. A deferred
      // job has an id of its own, so that an upload someone waits on is not held behind it.
      const deferMs = timing === 'deferred' && decision.scan ? this.trust.policy.deferScanSeconds * 1000 : 0;
      if (deferMs > 0) {
        await this.scanQueue.add('scan', { sha256: media.sha256, decisionId: row.id, spotCheck, deferred: true }, { jobId: `scan-deferred-${media.sha256}`, delayMs: deferMs });
      } else {
        await this.scanQueue.add('scan', { sha256: media.sha256, decisionId: row.id, spotCheck }, { jobId: `scan-${media.sha256}` });
      }
    }
    let quarantineId: number | null = null;
    // Disputed media is kept too: a moderator reviewing it needs to see it.
    if ((decision.outcome === 'block' || decision.outcome === 'review') && this.quarantine) {
      const item = await this.quarantine.put({
        bytes,
        sha256: media.sha256,
        pdq: media.pdq,
        format: media.format,
        source,
        decision: summarizeDecision(decision),
        actor: 'vouch',
      });
      quarantineId = item.id;
    }
    return {
      decisionId: row.id,
      outcome: decision.outcome,
      label: decision.label,
      scanned: false,
      scanPending: scan,
      quarantineId,
      hashes: media.summary,
      explanation: decision.explanation,
    };
  }
}

// The scanner node: takes scan jobs from the queue (BullMQ on Redis, so it can run on any GPU
// machine that reaches Redis; or in-process), fetches the media from the server by a short-lived
// signed URL with its token, classifies it with each configured model in small batches, and posts
// the results back. It holds no database and no signing key: the server turns results into signed
// verdicts, one per model. A video is classified by sampled frames (video-scan.ts): still one
// verdict per model, with the frames behind it.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { hostname } from 'node:os';
import sharp from 'sharp';
import type { Logger } from '../config/logger.js';
import { PermanentJobError, type JobQueue } from '../queue/index.js';
import type { Classifier, Classification, RgbImage } from './classifiers/index.js';
import type { ScanJob, ScanResult } from './intake.js';
import { isVideo, isVideoRejectedError } from '../video/index.js';
import type { FrameSampleOptions } from '../video/frames.js';
import { classifyVideo, type FrameClassifier } from './video-scan.js';

/** How long a scan-media URL stays valid. */
export const SCAN_URL_TTL_MS = 60 * 60 * 1000;
/** Media is decoded to at most this side for classifiers (all take far smaller inputs). */
const SCAN_DECODE_MAX_SIDE = 1024;

export function scanUrlSignature(token: string, sha256: string, expires: number): string {
  return createHmac('sha256', token).update(`scan-media\n${sha256}\n${expires}`).digest('hex');
}

export function verifyScanUrl(token: string, sha256: string, expires: number, signature: string, now = Date.now()): boolean {
  if (!Number.isSafeInteger(expires) || expires < now || expires > now + SCAN_URL_TTL_MS) return false;
  const expected = Buffer.from(scanUrlSignature(token, sha256, expires), 'hex');
  const given = Buffer.from(/^[0-9a-f]{64}$/.test(signature) ? signature : '', 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** Oriented, flattened RGB at most SCAN_DECODE_MAX_SIDE on a side: what classifiers take in. */
export async function decodeForClassifier(bytes: Buffer): Promise<RgbImage> {
  const { data, info } = await sharp(bytes, { limitInputPixels: 100_000_000, failOn: 'error' })
    .rotate()
    .flatten({ background: '#ffffff' })
    .resize({ width: SCAN_DECODE_MAX_SIDE, height: SCAN_DECODE_MAX_SIDE, fit: 'inside', withoutEnlargement: true })
    .toColourspace('srgb')
    .raw()
    .toBuffer({ resolveWithObject: true });
  return { rgb: data, width: info.width, height: info.height };
}

/** Groups images arriving within a few milliseconds into one inference batch. */
class Batcher {
  private pending: Array<{ image: RgbImage; resolve: (c: Classification) => void; reject: (e: unknown) => void }> = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly classifier: Classifier,
    private readonly maxBatch: number,
    private readonly windowMs = 10,
  ) {}

  classify(image: RgbImage): Promise<Classification> {
    return new Promise((resolve, reject) => {
      this.pending.push({ image, resolve, reject });
      if (this.pending.length >= this.maxBatch) this.flush();
      else this.timer ??= setTimeout(() => this.flush(), this.windowMs);
    });
  }

  private flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.pending.splice(0, this.maxBatch);
    if (batch.length === 0) return;
    this.classifier.classify(batch.map((b) => b.image)).then(
      (results) => batch.forEach((b, i) => b.resolve(results[i])),
      (err) => batch.forEach((b) => b.reject(err)),
    );
    if (this.pending.length > 0) this.timer = setTimeout(() => this.flush(), this.windowMs);
  }
}

export interface ScannerOptions {
  queue: JobQueue<ScanJob>;
  /** Loaded on the first job, so a server that never scans never pays for the models. */
  classifiers: () => Promise<Classifier[]>;
  serverUrl: string;
  token: string;
  concurrency: number;
  maxBatch: number;
  /** How videos are sampled for the models (frames at most, spacing, ffmpeg, limits); server/video's defaults otherwise. */
  video?: FrameSampleOptions;
  logger: Logger;
}

/**
 * What the scanner posts for media: one result per model. Images are decoded once and classified
 * by every model; videos (MP4/MOV, WebM/MKV, animated GIF/WebP, told by content) by sampled frames,
 * each result carrying the frames behind it. A video that cannot be decoded is a VideoRejectedError.
 */
export async function scanMedia(bytes: Buffer, models: readonly FrameClassifier[], video: FrameSampleOptions = {}): Promise<ScanResult[]> {
  const cite = (model: FrameClassifier) => ({ name: model.info.name, version: model.info.version });
  if (await isVideo(bytes)) {
    const verdicts = await classifyVideo(bytes, models, video);
    return verdicts.map((v, i) => ({ label: v.label, confidence: v.confidence, classifier: cite(models[i]), scannedFrames: v.scannedFrames }));
  }
  const image = await decodeForClassifier(bytes);
  return Promise.all(
    models.map(async (model) => {
      const [{ label, confidence }] = await model.classify([image]);
      return { label, confidence, classifier: cite(model) };
    }),
  );
}

export function startScanner(options: ScannerOptions): void {
  const { queue, serverUrl, token, logger } = options;
  let loaded: Promise<FrameClassifier[]> | undefined;
  const auth = { authorization: `Bearer ${token}` };
  // How the server's health page names this node.
  const node = `${hostname()}:${process.pid}`.replace(/[^\w.:-]/g, '_').slice(0, 200);
  queue.process(
    async (job) => {
      // Through a batcher per model, so that images and video frames of concurrent jobs share batches.
      loaded ??= options.classifiers().then((list) =>
        list.map((classifier): FrameClassifier => {
          const batcher = new Batcher(classifier, options.maxBatch);
          return { info: classifier.info, classify: (images) => Promise.all(images.map((image) => batcher.classify(image))) };
        }),
      );
      const { sha256 } = job.data;
      const expires = Date.now() + SCAN_URL_TTL_MS;
      const recheck = job.data.deferred ? `&recheck=${job.data.decisionId}` : '';
      const url = `${serverUrl}/internal/scan-media/${sha256}?expires=${expires}&signature=${scanUrlSignature(token, sha256, expires)}${recheck}`;
      const res = await fetch(url, { headers: auth, signal: AbortSignal.timeout(30_000) });
      if (res.status === 410) {
        logger.info({ sha256 }, 'decided by peers while the scan was deferred: not scanned');
        return;
      }
      if (res.status === 404) throw new PermanentJobError(`media ${sha256} is no longer pending`);
      if (!res.ok) throw new Error(`fetching media ${sha256} answered ${res.status}`);
      let results: ScanResult[];
      try {
        results = await scanMedia(Buffer.from(await res.arrayBuffer()), await loaded, options.video);
      } catch (err) {
        // The same video fails the same way on a retry (the codes are the input's fault or this
        // node's lack of ffmpeg, which an operator must fix): not retried.
        if (isVideoRejectedError(err)) throw new PermanentJobError(`video ${sha256} cannot be classified: ${err.message} (${err.code})`);
        throw err;
      }
      const post = await fetch(`${serverUrl}/internal/scan-results`, {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/json' },
        body: JSON.stringify({ job: job.data, results, node }),
        signal: AbortSignal.timeout(30_000),
      });
      if (post.status >= 400 && post.status < 500) throw new PermanentJobError(`server refused the result: ${post.status} ${await post.text()}`);
      if (!post.ok) throw new Error(`posting the result answered ${post.status}`);
      logger.info({ sha256, results: results.map((r) => `${r.classifier.name}: ${r.label} ${r.confidence.toFixed(3)}`) }, 'scanned');
    },
    { concurrency: options.concurrency },
  );
}

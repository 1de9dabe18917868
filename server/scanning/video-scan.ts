// Classifying a video: a few frames sampled evenly across it (server/video/frames.ts, the confined
// decoder), each classified by every model like an image, and ONE verdict per model per video.
//
// The aggregation rule, per model: one abusive frame makes the video abusive. If any frame's label
// is not `ok`, the video gets the label of the highest-scoring such frame, at that frame's score
// (the maximum over frames). Only when every frame is `ok` is the video `ok`, at the lowest `ok`
// score among its frames (the video is only as clearly ok as its least clear frame). The frames
// behind the verdict (the flagged frames of that label, strongest first; or the least clear `ok`
// frames) are kept with it, with their times and scores, and shown in explanations.
import type { ScannedFrames } from '../trust/decide.js';
import { sampleVideoFrames, type FrameSampleOptions, type SampledFrame } from '../video/frames.js';
import type { Classification, ClassifierInfo, RgbImage, VouchLabel } from './classifiers/index.js';

/** Frames named in a verdict's explanation at most. */
export const EXPLAINED_FRAMES = 5;

/** What classifying needs of a model: its name and a batch call (a Classifier, or the scanner's batcher). */
export interface FrameClassifier {
  info: ClassifierInfo;
  classify(images: RgbImage[]): Promise<Classification[]>;
}

/** One model's verdict about a video, with the frames behind it. */
export interface VideoClassification {
  label: VouchLabel;
  confidence: number;
  scannedFrames: ScannedFrames;
}

/** The video's verdict from its frames' classifications, by the rule above (`frames` in time order, at least one). */
export function aggregateFrames(frames: ReadonlyArray<{ seconds: number; classification: Classification }>): VideoClassification {
  if (frames.length === 0) throw new RangeError('a video verdict needs at least one classified frame');
  const scored = frames.map((f) => ({ seconds: f.seconds, label: f.classification.label, confidence: f.classification.confidence }));
  const flagged = scored.filter((f) => f.label !== 'ok');
  if (flagged.length > 0) {
    const strongest = flagged.reduce((a, b) => (b.confidence > a.confidence ? b : a));
    const behind = flagged.filter((f) => f.label === strongest.label).sort((a, b) => b.confidence - a.confidence || a.seconds - b.seconds);
    return { label: strongest.label, confidence: strongest.confidence, scannedFrames: { sampled: frames.length, frames: behind.slice(0, EXPLAINED_FRAMES) } };
  }
  const weakest = [...scored].sort((a, b) => a.confidence - b.confidence || a.seconds - b.seconds);
  return { label: 'ok', confidence: weakest[0].confidence, scannedFrames: { sampled: frames.length, frames: weakest.slice(0, EXPLAINED_FRAMES) } };
}

/** Classifies sampled frames with each model: one verdict per model, in the models' order. */
export async function classifyFrames(frames: readonly SampledFrame[], models: readonly FrameClassifier[]): Promise<VideoClassification[]> {
  const images: RgbImage[] = frames.map((f) => ({ rgb: f.rgb, width: f.width, height: f.height }));
  return Promise.all(
    models.map(async (model) => {
      const results = await model.classify(images);
      if (results.length !== frames.length) throw new Error(`${model.info.name} returned ${results.length} results for ${frames.length} frames`);
      return aggregateFrames(frames.map((f, i) => ({ seconds: f.seconds, classification: results[i] })));
    }),
  );
}

/**
 * Samples a video's frames (at most `sampling.maxFrames`, default 16, one per second at most) and
 * classifies them with each model. Throws the video pipeline's VideoRejectedError for a video that
 * is refused or cannot be decoded.
 */
export async function classifyVideo(bytes: Buffer, models: readonly FrameClassifier[], sampling: FrameSampleOptions = {}): Promise<VideoClassification[]> {
  const { frames } = await sampleVideoFrames(bytes, sampling);
  return classifyFrames(frames, models);
}

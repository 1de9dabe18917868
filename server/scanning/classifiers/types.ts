// The one interface every classifier backend implements (ONNX Runtime with an operator's model, the
// default adult-content model), so the scanner does not care which one runs.

/** Labels a classifier may emit. `ok` means "none of the labels this classifier measures". */
export const VOUCH_LABELS = ['sexual', 'gore', 'hate', 'spam', 'ok', 'csam'] as const;
export type VouchLabel = (typeof VOUCH_LABELS)[number];

export interface ClassifierInfo {
  /** Stable name; with `version`, what verdicts cite (one name+version counts once in decisions). */
  name: string;
  version: string;
  /** Honest description of what the model measures and what it does not. */
  measures: string;
  /** The Vouch labels this classifier can emit (always includes `ok`). */
  labels: VouchLabel[];
}

export interface Classification {
  /** The Vouch label with the highest score. */
  label: VouchLabel;
  /** Score of `label`, 0..1. */
  confidence: number;
  /** Score per Vouch label in `info.labels` (sums to ~1 for softmax models). */
  scores: Record<string, number>;
  /** Raw score per model class, before mapping to Vouch labels (for explanations and debugging). */
  classScores?: Record<string, number>;
}

/** Decoded pixels: 8-bit RGB, row-major, `width * height * 3` bytes, no alpha. */
export interface RgbImage {
  rgb: Uint8Array;
  width: number;
  height: number;
}

export interface Classifier {
  info: ClassifierInfo;
  /** Classifies a batch; one result per image, in order. */
  classify(images: RgbImage[]): Promise<Classification[]>;
  close(): Promise<void>;
}

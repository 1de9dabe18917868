// ONNX Runtime backend: runs any image classification model an operator points to, described by a
// small JSON config (see docs/scanner.md). Images are resized with sharp, normalised, stacked into
// one [N, ...] tensor per batch, and the model's classes are mapped to Vouch labels.
//
// Execution provider: `cpu` (default) or `cuda`. The CUDA provider is not installed by default
// (.npmrc skips onnxruntime-node's download of it); asking for it where it is missing fails with a
// message that says how to install it, never silently falls back to the CPU.

import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import type * as Ort from 'onnxruntime-node';
import sharp from 'sharp';
import { z } from 'zod';
import { VOUCH_LABELS, type Classification, type Classifier, type ClassifierInfo, type RgbImage, type VouchLabel } from './types.js';

export class ClassifierError extends Error {
  override name = 'ClassifierError';
}

const rgbTriple = z.tuple([z.number(), z.number(), z.number()]);

export const onnxClassifierConfigSchema = z
  .object({
    /** Classifier name and version, as verdicts will cite them. */
    name: z.string().min(1).max(100),
    version: z.string().min(1).max(100),
    /** Honest description of what the model detects and what it does not. */
    measures: z.string().min(10),
    /** Path to the .onnx file, relative to the config file. */
    model: z.string().min(1),
    input: z
      .object({
        /** Model input name; default: the model's first input. */
        name: z.string().min(1).optional(),
        width: z.number().int().min(1).max(4096),
        height: z.number().int().min(1).max(4096),
        layout: z.enum(['NCHW', 'NHWC']),
        channelOrder: z.enum(['RGB', 'BGR']).default('RGB'),
        /** fill: stretch to the input size (ignores aspect ratio); cover: crop the centre; contain: letterbox in black. */
        resize: z.enum(['fill', 'cover', 'contain']).default('fill'),
      })
      .strict(),
    /**
     * Per-channel normalisation, applied after resizing: either `value = (pixel / 255 * range - mean) / std`
     * (mean/std per channel in input channel order; `range` 1 for torchvision-style 0..1 statistics,
     * 255 for caffe-style 0..255 ones) or `value = pixel * scale + offset`.
     */
    normalize: z.union([
      z.object({ mean: rgbTriple, std: rgbTriple.refine((s) => s.every((v) => v > 0), 'std must be > 0'), range: z.union([z.literal(1), z.literal(255)]).default(1) }).strict(),
      z.object({ scale: z.number(), offset: z.number().default(0) }).strict(),
    ]),
    output: z
      .object({
        /** Model output name; default: the model's first output. */
        name: z.string().min(1).optional(),
        /** `probabilities` (already softmaxed) or `logits` (softmax applied here). */
        kind: z.enum(['probabilities', 'logits']).default('probabilities'),
      })
      .strict()
      .prefault({}),
    /** The model's classes, in output order. */
    classes: z.array(z.string().min(1)).min(2),
    /** Every class mapped to a Vouch label; classes mapped to `ok` mean "nothing to flag". */
    labels: z.record(z.string(), z.enum(VOUCH_LABELS)),
    executionProvider: z.enum(['cpu', 'cuda']).default('cpu'),
    cudaDeviceId: z.number().int().min(0).default(0),
    /** Largest batch sent to the model at once (larger inputs are split). */
    maxBatch: z.number().int().min(1).max(1024).default(16),
    /** ONNX Runtime intra-op threads; default: ONNX Runtime's choice (the physical cores). */
    threads: z.number().int().min(1).max(256).optional(),
  })
  .strict()
  .superRefine((cfg, ctx) => {
    const classes = new Set(cfg.classes);
    if (classes.size !== cfg.classes.length) ctx.addIssue({ code: 'custom', path: ['classes'], message: 'classes must be unique' });
    for (const cls of cfg.classes) {
      if (!(cls in cfg.labels)) ctx.addIssue({ code: 'custom', path: ['labels'], message: `class ${JSON.stringify(cls)} has no label` });
    }
    for (const cls of Object.keys(cfg.labels)) {
      if (!classes.has(cls)) ctx.addIssue({ code: 'custom', path: ['labels', cls], message: `${JSON.stringify(cls)} is not one of classes` });
    }
    if (!Object.values(cfg.labels).includes('ok')) {
      ctx.addIssue({ code: 'custom', path: ['labels'], message: 'at least one class must map to "ok"' });
    }
  });

export type OnnxClassifierConfig = z.infer<typeof onnxClassifierConfigSchema>;
export type OnnxClassifierConfigInput = z.input<typeof onnxClassifierConfigSchema>;
/** Everything but the model file: what an in-memory model needs. */
export type OnnxClassifierSettings = Omit<OnnxClassifierConfig, 'model'>;

/** Validates a parsed config; `model` is resolved against `baseDir`. */
export function parseOnnxClassifierConfig(json: unknown, baseDir: string): OnnxClassifierConfig {
  const parsed = onnxClassifierConfigSchema.safeParse(json);
  if (!parsed.success) throw new ClassifierError(`invalid ONNX classifier config:\n${z.prettifyError(parsed.error)}`);
  return { ...parsed.data, model: resolve(baseDir, parsed.data.model) };
}

export async function loadOnnxClassifierConfig(configPath: string): Promise<OnnxClassifierConfig> {
  let json: unknown;
  try {
    json = JSON.parse(await readFile(configPath, 'utf8'));
  } catch (err) {
    throw new ClassifierError(`cannot read ONNX classifier config ${configPath}: ${(err as Error).message}`);
  }
  return parseOnnxClassifierConfig(json, dirname(resolve(configPath)));
}

type OrtModule = typeof Ort;
let ortModule: Promise<OrtModule> | undefined;
/** onnxruntime-node is loaded on first use, so processes that never classify never load it. */
function loadOrt(): Promise<OrtModule> {
  ortModule ??= import('onnxruntime-node').then(
    (m) => ((m as unknown as { default?: OrtModule }).default ?? (m as unknown as OrtModule)),
    (err: Error) => {
      ortModule = undefined;
      throw new ClassifierError(`cannot load onnxruntime-node (${process.platform}/${process.arch}): ${err.message}`);
    },
  );
  return ortModule;
}

const CUDA_HELP = 'see docs/scanner.md, "CUDA on GPU nodes"';

/** Why the CUDA execution provider cannot be used here, or null when its library is installed. */
export function cudaProviderProblem(): string | null {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    return `onnxruntime-node ships the CUDA execution provider for linux/x64 only (this machine is ${process.platform}/${process.arch})`;
  }
  const binDir = join(dirname(createRequire(import.meta.url).resolve('onnxruntime-node')), '..', 'bin', 'napi-v6', 'linux', 'x64');
  const missing = ['libonnxruntime_providers_cuda.so', 'libonnxruntime_providers_shared.so'].filter((f) => !existsSync(join(binDir, f)));
  if (missing.length > 0) {
    return `the CUDA execution provider is not installed (${missing.join(' and ')} missing from ${binDir}: installs skip it, .npmrc sets onnxruntime-node-install=skip); on a GPU node run \`ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node\` or copy the provider libraries there — ${CUDA_HELP}`;
  }
  return null;
}

async function createSession(ort: OrtModule, model: string | Uint8Array, settings: OnnxClassifierSettings): Promise<Ort.InferenceSession> {
  const options: Ort.InferenceSession.SessionOptions = {
    graphOptimizationLevel: 'all',
    logSeverityLevel: 3,
    ...(settings.threads ? { intraOpNumThreads: settings.threads } : {}),
  };
  if (settings.executionProvider === 'cuda') {
    const problem = cudaProviderProblem();
    if (problem) throw new ClassifierError(`executionProvider "cuda" was selected, but ${problem}`);
    options.executionProviders = [{ name: 'cuda', deviceId: settings.cudaDeviceId }];
  } else {
    options.executionProviders = ['cpu'];
  }
  try {
    return typeof model === 'string' ? await ort.InferenceSession.create(model, options) : await ort.InferenceSession.create(model, options);
  } catch (err) {
    const msg = (err as Error).message;
    if (settings.executionProvider === 'cuda') {
      throw new ClassifierError(
        `ONNX Runtime could not start the CUDA execution provider (needs an NVIDIA GPU, its driver, and the CUDA 12 and cuDNN 9 libraries on the library path; ${CUDA_HELP}): ${msg}`,
      );
    }
    throw new ClassifierError(`ONNX Runtime could not load the model${typeof model === 'string' ? ` ${model}` : ''}: ${msg}`);
  }
}

/** Resizes to the model input and writes normalised values for image `index` of the batch tensor. */
export async function preprocessInto(
  image: RgbImage,
  settings: Pick<OnnxClassifierSettings, 'input' | 'normalize'>,
  out: Float32Array,
  index: number,
): Promise<void> {
  const { width: W, height: H, layout, channelOrder, resize } = settings.input;
  const { width, height, rgb } = image;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new ClassifierError(`image size must be positive integers, got ${width}x${height}`);
  }
  if (rgb.length !== width * height * 3) {
    throw new ClassifierError(`image has ${rgb.length} bytes, expected ${width}x${height}x3 = ${width * height * 3} (8-bit RGB)`);
  }
  let pixels: Uint8Array = rgb;
  if (width !== W || height !== H) {
    pixels = await sharp(rgb, { raw: { width, height, channels: 3 } })
      .resize(W, H, { fit: resize, background: { r: 0, g: 0, b: 0 } })
      .removeAlpha()
      .raw()
      .toBuffer();
  }
  const a = new Float32Array(3);
  const b = new Float32Array(3);
  const norm = settings.normalize;
  for (let c = 0; c < 3; c++) {
    if ('mean' in norm) {
      a[c] = norm.range / 255 / norm.std[c];
      b[c] = -norm.mean[c] / norm.std[c];
    } else {
      a[c] = norm.scale;
      b[c] = norm.offset;
    }
  }
  const plane = W * H;
  const base = index * 3 * plane;
  for (let c = 0; c < 3; c++) {
    const src = channelOrder === 'BGR' ? 2 - c : c; // input channel c takes this RGB channel
    const ac = a[c];
    const bc = b[c];
    if (layout === 'NCHW') {
      const dst = base + c * plane;
      for (let p = 0; p < plane; p++) out[dst + p] = pixels[3 * p + src] * ac + bc;
    } else {
      for (let p = 0; p < plane; p++) out[base + 3 * p + c] = pixels[3 * p + src] * ac + bc;
    }
  }
}

class OnnxClassifier implements Classifier {
  readonly info: ClassifierInfo;
  private readonly labelOfClass: VouchLabel[];
  private closed = false;

  constructor(
    private readonly ort: OrtModule,
    private readonly session: Ort.InferenceSession,
    private readonly settings: OnnxClassifierSettings,
    private readonly inputName: string,
    private readonly outputName: string,
    /** The model's batch dimension when it is fixed (e.g. 1), else null. */
    private readonly fixedBatch: number | null,
  ) {
    this.labelOfClass = settings.classes.map((c) => settings.labels[c]);
    const labels = VOUCH_LABELS.filter((l) => this.labelOfClass.includes(l));
    this.info = { name: settings.name, version: settings.version, measures: settings.measures, labels };
  }

  async classify(images: RgbImage[]): Promise<Classification[]> {
    if (this.closed) throw new ClassifierError('classifier is closed');
    const results: Classification[] = [];
    const chunk = this.fixedBatch ?? this.settings.maxBatch;
    for (let start = 0; start < images.length; start += chunk) {
      results.push(...(await this.runBatch(images.slice(start, start + chunk))));
    }
    return results;
  }

  private async runBatch(images: RgbImage[]): Promise<Classification[]> {
    const { width: W, height: H, layout } = this.settings.input;
    const n = this.fixedBatch ?? images.length;
    const data = new Float32Array(n * 3 * W * H);
    await Promise.all(images.map((img, i) => preprocessInto(img, this.settings, data, i)));
    const dims = layout === 'NCHW' ? [n, 3, H, W] : [n, H, W, 3];
    const input = new this.ort.Tensor('float32', data, dims);
    let output: Ort.Tensor | undefined;
    try {
      const result = await this.session.run({ [this.inputName]: input }, [this.outputName]);
      output = result[this.outputName];
    } catch (err) {
      throw new ClassifierError(`model ${this.settings.name} failed on a batch of ${images.length}: ${(err as Error).message}`);
    } finally {
      input.dispose();
    }
    if (!output) throw new ClassifierError(`model ${this.settings.name} returned no output ${this.outputName}`);
    try {
      const k = this.settings.classes.length;
      const values = output.data;
      if (!(values instanceof Float32Array) || values.length !== n * k) {
        throw new ClassifierError(`model output ${this.outputName} has shape [${output.dims.join(', ')}] (${output.type}); expected [${n}, ${k}] float32 for classes ${this.settings.classes.join(', ')}`);
      }
      return images.map((_, i) => this.toClassification(values.subarray(i * k, (i + 1) * k)));
    } finally {
      output.dispose();
    }
  }

  private toClassification(row: Float32Array): Classification {
    let probs = Array.from(row);
    if (this.settings.output.kind === 'logits') {
      const max = Math.max(...probs);
      const exps = probs.map((v) => Math.exp(v - max));
      const sum = exps.reduce((a, b) => a + b, 0);
      probs = exps.map((v) => v / sum);
    } else {
      const sum = probs.reduce((a, b) => a + b, 0);
      if (!probs.every((p) => p >= -1e-3 && p <= 1 + 1e-3) || Math.abs(sum - 1) > 0.01) {
        throw new ClassifierError(
          `model ${this.settings.name}: output ${this.outputName} values [${probs.map((p) => p.toPrecision(3)).join(', ')}] do not look like probabilities (sum ${sum.toPrecision(4)}); if the model outputs logits, set output.kind to "logits"`,
        );
      }
    }
    const classScores: Record<string, number> = {};
    const scores: Record<string, number> = {};
    for (const label of this.info.labels) scores[label] = 0;
    probs.forEach((p, i) => {
      const clamped = Math.min(1, Math.max(0, p));
      classScores[this.settings.classes[i]] = clamped;
      scores[this.labelOfClass[i]] += clamped;
    });
    let label: VouchLabel = 'ok';
    for (const l of this.info.labels) if (scores[l] > scores[label]) label = l;
    for (const l of this.info.labels) scores[l] = Math.min(1, scores[l]);
    return { label, confidence: scores[label], scores, classScores };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.session.release();
  }
}

/** Opens a classifier for a model given as a file path or as the bytes of an .onnx model. */
export async function openOnnxModel(model: string | Uint8Array, settings: OnnxClassifierSettings): Promise<Classifier> {
  const ort = await loadOrt();
  const session = await createSession(ort, model, settings);
  try {
    const inputName = settings.input.name ?? session.inputNames[0];
    const outputName = settings.output.name ?? session.outputNames[0];
    if (!session.inputNames.includes(inputName)) {
      throw new ClassifierError(`model has no input ${JSON.stringify(inputName)} (inputs: ${session.inputNames.join(', ')})`);
    }
    if (!session.outputNames.includes(outputName)) {
      throw new ClassifierError(`model has no output ${JSON.stringify(outputName)} (outputs: ${session.outputNames.join(', ')})`);
    }
    const meta = session.inputMetadata.find((m) => m.name === inputName);
    let fixedBatch: number | null = null;
    if (meta?.isTensor) {
      const { width: W, height: H, layout } = settings.input;
      const expected = layout === 'NCHW' ? [3, H, W] : [H, W, 3];
      if (meta.shape.length !== 0) {
        if (meta.shape.length !== 4) {
          throw new ClassifierError(`model input ${inputName} has rank ${meta.shape.length}; an image model takes [N, ${expected.join(', ')}] (${layout})`);
        }
        meta.shape.slice(1).forEach((d, i) => {
          if (typeof d === 'number' && d > 0 && d !== expected[i]) {
            throw new ClassifierError(`model input ${inputName} is [${meta.shape.join(', ')}] but the config describes [N, ${expected.join(', ')}] (${layout})`);
          }
        });
        if (typeof meta.shape[0] === 'number' && meta.shape[0] > 0) fixedBatch = meta.shape[0];
      }
      if (meta.type !== 'float32') throw new ClassifierError(`model input ${inputName} is ${meta.type}; only float32 inputs are supported`);
    }
    return new OnnxClassifier(ort, session, settings, inputName, outputName, fixedBatch);
  } catch (err) {
    await session.release();
    throw err;
  }
}

/** Loads an operator's model described by a JSON config file (or an already parsed config). */
export async function createOnnxClassifier(config: string | OnnxClassifierConfig): Promise<Classifier> {
  const cfg = typeof config === 'string' ? await loadOnnxClassifierConfig(config) : config;
  if (!existsSync(cfg.model)) throw new ClassifierError(`ONNX model file not found: ${cfg.model}`);
  const { model, ...settings } = cfg;
  return openOnnxModel(model, settings);
}

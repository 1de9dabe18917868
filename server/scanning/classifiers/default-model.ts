// The bundled classifiers: the adult-content models that the `nsfwjs` npm package ships (Keras
// weights as tfjs layers models, uint8-quantized): MobileNetV2 (`default`) and InceptionV3
// (`inception`), converted in memory to ONNX at start and run on ONNX Runtime like an operator's
// model. Weights come from node_modules by file path; no network is involved at install or run time.
//
// What they measure: how much an image resembles the five classes of their training set (Drawing,
// Hentai, Neutral, Porn, Sexy). They are adult-content triage. They are NOT abuse detectors: they
// never emit `csam`, and their `sexual` score must not be read as one.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { convertKerasToOnnx, type ConvertedModel, type TfjsWeightSpec } from './keras-to-onnx.js';
import { ClassifierError, onnxClassifierConfigSchema, openOnnxModel, type OnnxClassifierConfigInput } from './onnx.js';
import type { Classifier } from './types.js';

export const DEFAULT_MODEL_CLASSES = ['Drawing', 'Hentai', 'Neutral', 'Porn', 'Sexy'] as const;

/**
 * Class -> Vouch label. `Sexy` (suggestive, clothed or partly clothed: swimwear, lingerie, poses)
 * counts as `ok`: it is not sexual content in the sense instances moderate, and mapping it to
 * `sexual` would flag beach photos. Its raw score stays visible in `classScores`.
 */
export const DEFAULT_MODEL_LABELS = {
  Drawing: 'ok',
  Hentai: 'sexual',
  Neutral: 'ok',
  Porn: 'sexual',
  Sexy: 'ok',
} as const;

const measures = (architecture: string, size: number) =>
  `Adult-content triage: the nsfwjs ${architecture} model (${size}x${size}, classes Drawing/Hentai/Neutral/Porn/Sexy) ` +
  'scores how much an image looks like pornography or explicit drawings (Porn+Hentai -> sexual; ' +
  'Drawing/Neutral/Sexy -> ok). It is not an abuse detector: it does not detect CSAM, age, consent, ' +
  'violence or hate, never emits csam, and errs on art, medical images and swimwear; ' +
  'never use it as the sole basis for an abuse label.';

export const DEFAULT_MODEL_MEASURES = measures('MobileNetV2', 224);

/**
 * The models nsfwjs ships as Keras layers models, by the name VOUCH_CLASSIFIER gives them. Both
 * learned from the same training set: two architectures, so they do not share one model's blind
 * spots, but they do share the data's (docs/scanner.md).
 */
export const BUNDLED_MODELS = {
  default: { name: 'nsfwjs-mobilenet-v2', dir: 'mobilenet_v2', shards: 1, size: 224, architecture: 'MobileNetV2' },
  inception: { name: 'nsfwjs-inception-v3', dir: 'inception_v3', shards: 6, size: 299, architecture: 'InceptionV3' },
} as const;
export type BundledModel = keyof typeof BUNDLED_MODELS;

export function isBundledModel(name: string): name is BundledModel {
  return Object.hasOwn(BUNDLED_MODELS, name);
}

export interface NsfwjsModelFiles {
  model: BundledModel;
  /** Installed nsfwjs version. */
  version: string;
  dir: string;
  modelFile: string;
  shardFiles: string[];
}

/** Locates a bundled model's files inside the installed nsfwjs package. */
export function locateNsfwjsModel(model: BundledModel = 'default'): NsfwjsModelFiles {
  const require = createRequire(import.meta.url);
  let entry: string;
  try {
    entry = require.resolve('nsfwjs'); // <pkg>/dist/cjs/index.js
  } catch {
    throw new ClassifierError('the default classifier needs the nsfwjs package (npm install), which ships its weights');
  }
  let root = dirname(entry);
  while (!safeJsonName(join(root, 'package.json'))) {
    const up = dirname(root);
    if (up === root) throw new ClassifierError(`cannot find nsfwjs's package.json above ${entry}`);
    root = up;
  }
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
  const { dir: folder, shards } = BUNDLED_MODELS[model];
  const dir = join(root, 'dist', 'models', folder);
  const shardFiles = Array.from({ length: shards }, (_, i) => join(dir, `group1-shard${i + 1}of${shards}.min.js`));
  return { model, version: pkg.version, dir, modelFile: join(dir, 'model.min.js'), shardFiles };
}

function safeJsonName(path: string): boolean {
  try {
    return (JSON.parse(readFileSync(path, 'utf8')) as { name?: string }).name === 'nsfwjs';
  } catch {
    return false;
  }
}

/**
 * Reads the model: nsfwjs bundles model.json and each weight shard as a small CommonJS module
 * (browserify) exporting the JSON object and a base64 string respectively. They are loaded with
 * require() from the package directory: plain data, no network, no tfjs.
 */
export function readNsfwjsModel(files: NsfwjsModelFiles = locateNsfwjsModel()): { modelTopology: unknown; weightSpecs: TfjsWeightSpec[]; weightData: Uint8Array } {
  const require = createRequire(import.meta.url);
  const load = (file: string): unknown => {
    try {
      const mod = require(file) as { default?: unknown };
      return mod && typeof mod === 'object' && 'default' in mod ? mod.default : mod;
    } catch (err) {
      throw new ClassifierError(`cannot read nsfwjs model file ${file}: ${(err as Error).message}`);
    }
  };
  const modelJson = load(files.modelFile) as { modelTopology?: unknown; weightsManifest?: Array<{ paths: string[]; weights: TfjsWeightSpec[] }> };
  if (!modelJson?.modelTopology || !Array.isArray(modelJson.weightsManifest)) {
    throw new ClassifierError(`${files.modelFile} is not a tfjs layers model (nsfwjs ${files.version})`);
  }
  const shards = files.shardFiles.map((f) => {
    const b64 = load(f);
    if (typeof b64 !== 'string') throw new ClassifierError(`${f} does not hold base64 weights (nsfwjs ${files.version})`);
    return Buffer.from(b64, 'base64');
  });
  const weightData = new Uint8Array(Buffer.concat(shards));
  return { modelTopology: modelJson.modelTopology, weightSpecs: modelJson.weightsManifest.flatMap((g) => g.weights), weightData };
}

/**
 * Converts a shipped model to ONNX (MobileNetV2: a few hundred ms; InceptionV3: about 3 s);
 * `scripts/export-default-model.mjs` writes it to a file.
 */
export function convertDefaultModel(files: NsfwjsModelFiles = locateNsfwjsModel()): ConvertedModel & { nsfwjsVersion: string; model: BundledModel } {
  const { architecture, size } = BUNDLED_MODELS[files.model];
  const converted = convertKerasToOnnx(readNsfwjsModel(files), {
    docString: `nsfwjs ${files.version} ${architecture} (MIT, github.com/infinitered/nsfwjs), converted by Vouch. ${measures(architecture, size)}`,
  });
  return { ...converted, nsfwjsVersion: files.version, model: files.model };
}

export interface DefaultClassifierOptions {
  /** Which bundled model: `default` (MobileNetV2) unless given. */
  model?: BundledModel;
  executionProvider?: 'cpu' | 'cuda';
  cudaDeviceId?: number;
  maxBatch?: number;
  threads?: number;
}

/** The ONNX classifier config that describes the converted model (also written next to an exported .onnx). */
export function defaultModelConfig(
  converted: Pick<ConvertedModel, 'inputName' | 'outputName' | 'inputShape'>,
  nsfwjsVersion: string,
  model: BundledModel = 'default',
): Omit<OnnxClassifierConfigInput, 'model'> {
  const [height, width] = converted.inputShape;
  const { name, architecture, size } = BUNDLED_MODELS[model];
  return {
    name,
    version: `nsfwjs-${nsfwjsVersion}`,
    measures: measures(architecture, size),
    input: { name: converted.inputName, width, height, layout: 'NHWC', channelOrder: 'RGB', resize: 'fill' },
    // nsfwjs feeds pixel / 255 (0..1), resized to the model's square ignoring the aspect ratio.
    normalize: { scale: 1 / 255, offset: 0 },
    output: { name: converted.outputName, kind: 'probabilities' },
    classes: [...DEFAULT_MODEL_CLASSES],
    labels: { ...DEFAULT_MODEL_LABELS },
  };
}

export async function createDefaultClassifier(options: DefaultClassifierOptions = {}): Promise<Classifier> {
  const model = options.model ?? 'default';
  const converted = convertDefaultModel(locateNsfwjsModel(model));
  const { size } = BUNDLED_MODELS[model];
  if (converted.outputSize !== DEFAULT_MODEL_CLASSES.length || converted.inputShape.join('x') !== `${size}x${size}x3`) {
    throw new ClassifierError(`unexpected nsfwjs model shape (input ${converted.inputShape.join('x')}, ${converted.outputSize} classes) in nsfwjs ${converted.nsfwjsVersion}`);
  }
  const { model: _inMemory, ...settings } = onnxClassifierConfigSchema.parse({
    ...defaultModelConfig(converted, converted.nsfwjsVersion, model),
    model: '(converted in memory)',
    executionProvider: options.executionProvider ?? 'cpu',
    cudaDeviceId: options.cudaDeviceId ?? 0,
    maxBatch: options.maxBatch ?? 16,
    threads: options.threads,
  });
  return openOnnxModel(converted.onnx, settings);
}

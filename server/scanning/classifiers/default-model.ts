// The default classifier: the MobileNetV2 adult-content model that the `nsfwjs` npm package ships
// (Keras weights as a tfjs layers model, uint8-quantized), converted in memory to ONNX at start and
// run on ONNX Runtime like an operator's model. Weights come from node_modules by file path; no
// network is involved at install or run time.
//
// What it measures: how much an image resembles the five classes of its training set (Drawing,
// Hentai, Neutral, Porn, Sexy). It is adult-content triage. It is NOT an abuse detector: it never
// emits `csam`, and its `sexual` score must not be read as one.

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

export const DEFAULT_MODEL_MEASURES =
  'Adult-content triage: the nsfwjs MobileNetV2 model (224x224, classes Drawing/Hentai/Neutral/Porn/Sexy) ' +
  'scores how much an image looks like pornography or explicit drawings (Porn+Hentai -> sexual; ' +
  'Drawing/Neutral/Sexy -> ok). It is not an abuse detector: it does not detect CSAM, age, consent, ' +
  'violence or hate, never emits csam, and errs on art, medical images and swimwear; ' +
  'never use it as the sole basis for an abuse label.';

export interface NsfwjsModelFiles {
  /** Installed nsfwjs version. */
  version: string;
  dir: string;
  modelFile: string;
  shardFiles: string[];
}

/** Locates the MobileNetV2 model files inside the installed nsfwjs package. */
export function locateNsfwjsModel(): NsfwjsModelFiles {
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
  const dir = join(root, 'dist', 'models', 'mobilenet_v2');
  return { version: pkg.version, dir, modelFile: join(dir, 'model.min.js'), shardFiles: [join(dir, 'group1-shard1of1.min.js')] };
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

/** Converts the shipped model to ONNX (a few hundred ms); `scripts/export-default-model.mjs` writes it to a file. */
export function convertDefaultModel(files: NsfwjsModelFiles = locateNsfwjsModel()): ConvertedModel & { nsfwjsVersion: string } {
  const converted = convertKerasToOnnx(readNsfwjsModel(files), {
    docString: `nsfwjs ${files.version} MobileNetV2 (MIT, github.com/infinitered/nsfwjs), converted by Vouch. ${DEFAULT_MODEL_MEASURES}`,
  });
  return { ...converted, nsfwjsVersion: files.version };
}

export interface DefaultClassifierOptions {
  executionProvider?: 'cpu' | 'cuda';
  cudaDeviceId?: number;
  maxBatch?: number;
  threads?: number;
}

/** The ONNX classifier config that describes the converted model (also written next to an exported .onnx). */
export function defaultModelConfig(converted: Pick<ConvertedModel, 'inputName' | 'outputName' | 'inputShape'>, nsfwjsVersion: string): Omit<OnnxClassifierConfigInput, 'model'> {
  const [height, width] = converted.inputShape;
  return {
    name: 'nsfwjs-mobilenet-v2',
    version: `nsfwjs-${nsfwjsVersion}`,
    measures: DEFAULT_MODEL_MEASURES,
    input: { name: converted.inputName, width, height, layout: 'NHWC', channelOrder: 'RGB', resize: 'fill' },
    // nsfwjs feeds pixel / 255 (0..1), resized to 224x224 ignoring the aspect ratio.
    normalize: { scale: 1 / 255, offset: 0 },
    output: { name: converted.outputName, kind: 'probabilities' },
    classes: [...DEFAULT_MODEL_CLASSES],
    labels: { ...DEFAULT_MODEL_LABELS },
  };
}

export async function createDefaultClassifier(options: DefaultClassifierOptions = {}): Promise<Classifier> {
  const converted = convertDefaultModel();
  if (converted.outputSize !== DEFAULT_MODEL_CLASSES.length || converted.inputShape.join('x') !== '224x224x3') {
    throw new ClassifierError(`unexpected nsfwjs model shape (input ${converted.inputShape.join('x')}, ${converted.outputSize} classes) in nsfwjs ${converted.nsfwjsVersion}`);
  }
  const { model: _inMemory, ...settings } = onnxClassifierConfigSchema.parse({
    ...defaultModelConfig(converted, converted.nsfwjsVersion),
    model: '(converted in memory)',
    executionProvider: options.executionProvider ?? 'cpu',
    cudaDeviceId: options.cudaDeviceId ?? 0,
    maxBatch: options.maxBatch ?? 16,
    threads: options.threads,
  });
  return openOnnxModel(converted.onnx, settings);
}

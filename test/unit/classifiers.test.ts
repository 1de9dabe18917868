// Classifier backends: the ONNX Runtime backend with tiny models generated here (config parsing,
// preprocessing, batching, label mapping, the CUDA refusal), and the default adult-content model
// (loads offline from node_modules, matches the tfjs reference, sane outputs on generated images).
// Every image is synthetic (gradients, noise, flat colours, soft discs): no photographs.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ClassifierError,
  createClassifier,
  createDefaultClassifier,
  createOnnxClassifier,
  cudaProviderProblem,
  DEFAULT_MODEL_CLASSES,
  loadOnnxClassifierConfig,
  parseOnnxClassifierConfig,
  VOUCH_LABELS,
  type Classification,
  type Classifier,
  type OnnxClassifierConfigInput,
  type RgbImage,
} from '../../server/scanning/classifiers/index.js';
import { locateNsfwjsModel, readNsfwjsModel, type BundledModel } from '../../server/scanning/classifiers/default-model.js';
import { preprocessInto } from '../../server/scanning/classifiers/onnx.js';
import { meanColourConfig, meanColourModel } from '../helpers/models.js';
import { syntheticPixels } from '../helpers/images.js';

/** A bundled model's class scores as TensorFlow.js itself computes them (WASM backend), same preprocessing. */
async function tfjsReference(model: BundledModel, size: number, images: RgbImage[]): Promise<Float32Array> {
  const require = createRequire(import.meta.url);
  const tf = require('@tensorflow/tfjs') as typeof import('@tensorflow/tfjs');
  require('@tensorflow/tfjs-backend-wasm');
  await tf.setBackend('wasm');
  const artifacts = readNsfwjsModel(locateNsfwjsModel(model));
  const layers = await tf.loadLayersModel({
    load: async () => ({
      modelTopology: artifacts.modelTopology as object,
      weightSpecs: artifacts.weightSpecs as never,
      weightData: artifacts.weightData.slice().buffer,
    }),
  });
  // The same preprocessing the classifier uses (sharp resize to size x size, pixel / 255, NHWC).
  const settings = { input: { width: size, height: size, layout: 'NHWC' as const, channelOrder: 'RGB' as const, resize: 'fill' as const }, normalize: { scale: 1 / 255, offset: 0 } };
  const batch = new Float32Array(images.length * size * size * 3);
  await Promise.all(images.map((img, i) => preprocessInto(img, settings, batch, i)));
  const input = tf.tensor4d(batch, [images.length, size, size, 3]);
  const output = layers.predict(input) as import('@tensorflow/tfjs').Tensor;
  const reference = (await output.data()) as Float32Array;
  input.dispose();
  output.dispose();
  layers.dispose();
  return reference;
}

function maxDifference(ours: Classification[], reference: Float32Array): number {
  let maxDiff = 0;
  ours.forEach((r, i) => DEFAULT_MODEL_CLASSES.forEach((cls, k) => (maxDiff = Math.max(maxDiff, Math.abs((r.classScores?.[cls] ?? NaN) - reference[i * 5 + k])))));
  return maxDiff;
}

// --- generated images ---------------------------------------------------------------------------

const solid = (width: number, height: number, [r, g, b]: [number, number, number]): RgbImage => {
  const rgb = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) rgb.set([r, g, b], 3 * i);
  return { rgb, width, height };
};

function gradient(width: number, height: number): RgbImage {
  const rgb = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = 3 * (y * width + x);
      rgb[i] = (255 * x) / (width - 1);
      rgb[i + 1] = (255 * y) / (height - 1);
      rgb[i + 2] = 128;
    }
  }
  return { rgb, width, height };
}

async function noise(width: number, height: number): Promise<RgbImage> {
  const { data, info } = await sharp({ create: { width, height, channels: 3, background: '#000', noise: { type: 'gaussian', mean: 128, sigma: 40 } } })
    .raw()
    .toBuffer({ resolveWithObject: true });
  return { rgb: new Uint8Array(data), width: info.width, height: info.height };
}

const discs = (seed: number, width: number, height: number): RgbImage => ({ rgb: new Uint8Array(syntheticPixels(seed, width, height)), width, height });

// --- tiny ONNX models ---------------------------------------------------------------------------

const RED: [number, number, number] = [255, 0, 0];
const GREEN: [number, number, number] = [0, 255, 0];
const BLUE: [number, number, number] = [0, 0, 255];

const P_TOP = Math.exp(10) / (Math.exp(10) + 2);

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vouch-classifiers-'));
  await writeFile(join(dir, 'mean-nchw.onnx'), meanColourModel('NCHW', 'batch'));
  await writeFile(join(dir, 'mean-nhwc-b1.onnx'), meanColourModel('NHWC', 1));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function config(overrides: Partial<OnnxClassifierConfigInput> = {}): OnnxClassifierConfigInput {
  return meanColourConfig(overrides) as OnnxClassifierConfigInput;
}

async function withClassifier<T>(cfg: OnnxClassifierConfigInput, fn: (c: Classifier) => Promise<T>): Promise<T> {
  const classifier = await createOnnxClassifier(parseOnnxClassifierConfig(cfg, dir));
  try {
    return await fn(classifier);
  } finally {
    await classifier.close();
  }
}

describe('second bundled classifier (nsfwjs InceptionV3, offline)', () => {
  let classifier: Classifier;
  let images: RgbImage[];

  beforeAll(async () => {
    images = [gradient(320, 240), await noise(256, 256), discs(7, 640, 480)];
    classifier = await createClassifier({ kind: 'default', model: 'inception' });
  }, 60_000);
  afterAll(async () => {
    await classifier?.close();
  });

  it('is another classifier, as honest about what it measures', () => {
    expect(classifier.info).toMatchObject({ name: 'nsfwjs-inception-v3', labels: ['sexual', 'ok'] });
    expect(classifier.info.version).toMatch(/^nsfwjs-4\.\d+\.\d+$/);
    expect(classifier.info.measures).toMatch(/InceptionV3 model \(299x299/);
    expect(classifier.info.measures).toMatch(/does not detect CSAM/);
  });

  it('matches the model run by TensorFlow.js itself (concatenations and pooling included)', async () => {
    const ours = await classifier.classify(images);
    for (const r of ours) expect(Object.values(r.classScores ?? {}).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 4);
    const maxDiff = maxDifference(ours, await tfjsReference('inception', 299, images));
    console.log(`inception model vs tfjs reference: max |dp| = ${maxDiff.toExponential(2)}`);
    expect(maxDiff).toBeLessThan(1e-4);
  }, 60_000);
});

describe('ONNX backend (generated models)', () => {
  it('loads a JSON config from disk, resolves the model path beside it, maps classes to labels', async () => {
    const path = join(dir, 'classifier.json');
    await writeFile(path, JSON.stringify(config()));
    const parsed = await loadOnnxClassifierConfig(path);
    expect(parsed.model).toBe(join(dir, 'mean-nchw.onnx'));
    expect(parsed.executionProvider).toBe('cpu');
    expect(parsed.input.channelOrder).toBe('RGB');

    const classifier = await createClassifier({ kind: 'onnx', configPath: path });
    try {
      expect(classifier.info).toEqual({
        name: 'test-mean-colour',
        version: '1',
        measures: expect.stringContaining('primary colour'),
        labels: ['sexual', 'gore', 'ok'],
      });
      // Sizes differ from the 8x8 input: sharp resizes; flat colours stay flat.
      const [red, green, blue] = await classifier.classify([solid(20, 10, RED), solid(3, 5, GREEN), solid(64, 64, BLUE)]);
      expect(red.label).toBe('sexual');
      expect(red.confidence).toBeCloseTo(P_TOP, 5);
      expect(red.scores.ok).toBeCloseTo((1 - P_TOP) / 2, 5);
      expect(red.classScores).toEqual({ red: expect.closeTo(P_TOP, 5), green: expect.any(Number), blue: expect.any(Number) });
      expect(green).toMatchObject({ label: 'ok', confidence: expect.closeTo(P_TOP, 5) });
      expect(blue).toMatchObject({ label: 'gore', confidence: expect.closeTo(P_TOP, 5) });
      for (const c of [red, green, blue]) expect(Object.values(c.scores).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    } finally {
      await classifier.close();
    }
  });

  it('sums the scores of classes that share a label, reads a probabilities output', async () => {
    const result = await withClassifier(config({ output: { name: 'probs', kind: 'probabilities' }, labels: { red: 'ok', green: 'ok', blue: 'spam' } }), (c) =>
      c.classify([solid(8, 8, [255, 255, 0])]),
    );
    // Yellow: red and green tie; both are `ok`, so ok = 2 e^10 / (2 e^10 + 1).
    expect(result[0].label).toBe('ok');
    expect(result[0].confidence).toBeCloseTo((2 * Math.exp(10)) / (2 * Math.exp(10) + 1), 5);
    expect(result[0].scores.spam).toBeCloseTo(1 / (2 * Math.exp(10) + 1), 5);
  });

  it('batches: splits at maxBatch and keeps the order', async () => {
    const colours = [RED, GREEN, BLUE, RED, GREEN];
    const labels = await withClassifier(config({ maxBatch: 2 }), async (c) => (await c.classify(colours.map((k) => solid(8, 8, k)))).map((r) => r.label));
    expect(labels).toEqual(['sexual', 'ok', 'gore', 'sexual', 'ok']);
  });

  it('runs NHWC models, honours BGR channel order, handles a model with a fixed batch of 1', async () => {
    const nhwc = config({ model: 'mean-nhwc-b1.onnx', input: { width: 8, height: 8, layout: 'NHWC' }, output: { name: 'probs', kind: 'probabilities' } });
    const rgb = await withClassifier(nhwc, (c) => c.classify([solid(8, 8, RED), solid(9, 9, BLUE), solid(8, 8, GREEN)]));
    expect(rgb.map((r) => r.label)).toEqual(['sexual', 'gore', 'ok']);
    expect(rgb[0].confidence).toBeCloseTo(P_TOP, 5);
    const bgr = await withClassifier({ ...nhwc, input: { ...nhwc.input, channelOrder: 'BGR' } }, (c) => c.classify([solid(8, 8, RED)]));
    expect(bgr[0].label).toBe('gore'); // red lands in the model's third (blue) channel
  });

  it('normalises with mean/std or scale/offset, in NCHW or NHWC order', async () => {
    const image: RgbImage = { rgb: new Uint8Array([255, 0, 128, 0, 255, 51]), width: 2, height: 1 };
    const input = { width: 2, height: 1, layout: 'NCHW' as const, channelOrder: 'RGB' as const, resize: 'fill' as const };
    const nchw = new Float32Array(2 * 6);
    await preprocessInto(image, { input, normalize: { mean: [0.5, 0.5, 0.5], std: [0.5, 0.25, 0.5], range: 1 } }, nchw, 1);
    expect(Array.from(nchw.subarray(0, 6))).toEqual([0, 0, 0, 0, 0, 0]);
    const expected = [1, -1, -2, 2, 128 / 255 / 0.5 - 1, 51 / 255 / 0.5 - 1]; // R0 R1 G0 G1 B0 B1
    Array.from(nchw.subarray(6)).forEach((v, i) => expect(v).toBeCloseTo(expected[i], 5));

    const nhwc = new Float32Array(6);
    await preprocessInto(image, { input: { ...input, layout: 'NHWC' }, normalize: { mean: [123.675, 116.28, 103.53], std: [58.395, 57.12, 57.375], range: 255 } }, nhwc, 0);
    const caffe = (p: number, c: number) => (p - [123.675, 116.28, 103.53][c]) / [58.395, 57.12, 57.375][c];
    [caffe(255, 0), caffe(0, 1), caffe(128, 2), caffe(0, 0), caffe(255, 1), caffe(51, 2)].forEach((v, i) => expect(nhwc[i]).toBeCloseTo(v, 4));

    const scaled = new Float32Array(6);
    await preprocessInto(image, { input: { ...input, layout: 'NHWC', channelOrder: 'BGR' }, normalize: { scale: 2, offset: -1 } }, scaled, 0);
    expect(Array.from(scaled)).toEqual([255, -1, 509, 101, 509, -1]); // B G R per pixel
  });

  it('rejects bad configs with the field at fault', () => {
    const bad = (cfg: unknown) => () => parseOnnxClassifierConfig(cfg, dir);
    expect(bad({ ...config(), labels: { red: 'sexual', green: 'ok' } })).toThrow(/class "blue" has no label/);
    expect(bad({ ...config(), labels: { red: 'sexual', green: 'gore', blue: 'gore' } })).toThrow(/at least one class must map to "ok"/);
    expect(bad({ ...config(), labels: { red: 'porn', green: 'ok', blue: 'ok' } })).toThrow(/labels/);
    expect(bad({ ...config(), input: { width: 8, height: 8, layout: 'NCWH' } })).toThrow(/input\.layout/);
    expect(bad({ ...config(), normalize: { mean: [0, 0], std: [1, 1, 1] } })).toThrow(ClassifierError);
    expect(bad({ ...config(), executionProvider: 'tpu' })).toThrow(/executionProvider/);
    expect(bad({ ...config(), extra: true })).toThrow(/extra/);
    expect(bad({ ...config(), measures: '' })).toThrow(/measures/);
  });

  it('accepts the example config in models/ (the one docs/scanner.md shows)', async () => {
    const example = await loadOnnxClassifierConfig(new URL('../../models/example-classifier.json', import.meta.url).pathname);
    expect(example).toMatchObject({ name: 'example-org/gore-classifier', input: { layout: 'NCHW', resize: 'cover' }, output: { kind: 'logits' } });
    expect(example.model).toMatch(/models\/gore-classifier\.onnx$/);
  });

  it('refuses a model that does not match its config, a missing file, and malformed images', async () => {
    await expect(createOnnxClassifier(parseOnnxClassifierConfig(config({ input: { width: 16, height: 16, layout: 'NCHW' } }), dir))).rejects.toThrow(
      /config describes \[N, 3, 16, 16\]/,
    );
    await expect(createOnnxClassifier(parseOnnxClassifierConfig(config({ input: { width: 8, height: 8, layout: 'NHWC' } }), dir))).rejects.toThrow(/NHWC/);
    await expect(createOnnxClassifier(parseOnnxClassifierConfig(config({ output: { name: 'nope' } }), dir))).rejects.toThrow(/no output "nope"/);
    await expect(createOnnxClassifier(parseOnnxClassifierConfig(config({ model: 'missing.onnx' }), dir))).rejects.toThrow(/not found/);
    await expect(createOnnxClassifier(join(dir, 'nope.json'))).rejects.toThrow(/cannot read ONNX classifier config/);
    await withClassifier(config(), async (c) => {
      await expect(c.classify([{ rgb: new Uint8Array(10), width: 2, height: 2 }])).rejects.toThrow(/expected 2x2x3/);
    });
    // Logits read as probabilities: refused rather than clamped into nonsense.
    await withClassifier(config({ output: { name: 'logits', kind: 'probabilities' } }), async (c) => {
      await expect(c.classify([solid(8, 8, RED)])).rejects.toThrow(/do not look like probabilities.*"logits"/);
    });
    // Two classes in the config, three in the model output.
    await withClassifier(config({ classes: ['a', 'b'], labels: { a: 'ok', b: 'spam' } }), async (c) => {
      await expect(c.classify([solid(8, 8, RED)])).rejects.toThrow(/expected \[1, 2\]/);
    });
  });

  it.skipIf(cudaProviderProblem() === null)('selecting cuda where the CUDA provider is not installed fails clearly', async () => {
    const cfg = parseOnnxClassifierConfig(config({ executionProvider: 'cuda' }), dir);
    await expect(createOnnxClassifier(cfg)).rejects.toThrow(/executionProvider "cuda" was selected, but .*CUDA execution provider is not installed.*docs\/scanner\.md/);
    await expect(createClassifier({ kind: 'default', executionProvider: 'cuda' })).rejects.toThrow(/CUDA execution provider is not installed/);
  });
});

// --- the default model --------------------------------------------------------------------------

describe('default classifier (nsfwjs MobileNetV2, offline)', () => {
  let classifier: Classifier;
  let images: RgbImage[];
  const network: string[] = [];

  beforeAll(async () => {
    images = [gradient(320, 240), await noise(256, 256), solid(100, 150, [200, 180, 160]), discs(7, 640, 480)];
    // No network while the model loads and runs: fetch and raw sockets throw (and are recorded).
    const originalFetch = globalThis.fetch;
    const originalConnect = net.Socket.prototype.connect;
    globalThis.fetch = (async (input: unknown) => {
      network.push(`fetch ${String(input)}`);
      throw new Error('network disabled in this test');
    }) as typeof fetch;
    net.Socket.prototype.connect = function (this: net.Socket, ...args: unknown[]) {
      network.push(`connect ${JSON.stringify(args[0])}`);
      throw new Error('network disabled in this test');
    } as typeof net.Socket.prototype.connect;
    try {
      classifier = await createClassifier({ kind: 'default' });
      await classifier.classify(images);
    } finally {
      globalThis.fetch = originalFetch;
      net.Socket.prototype.connect = originalConnect;
    }
  });
  afterAll(async () => {
    await classifier?.close();
  });

  it('loaded and classified without touching the network', () => {
    expect(network).toEqual([]);
  });

  it('says honestly what it measures, and can never say csam', () => {
    expect(classifier.info.name).toBe('nsfwjs-mobilenet-v2');
    expect(classifier.info.version).toMatch(/^nsfwjs-4\.\d+\.\d+$/);
    expect(classifier.info.labels).toEqual(['sexual', 'ok']);
    expect(classifier.info.labels).not.toContain('csam');
    expect(classifier.info.measures).toMatch(/adult-content triage/i);
    expect(classifier.info.measures).toMatch(/does not detect CSAM/);
  });

  it('classifies a batch of 4 generated images into valid labels with sane scores', async () => {
    const results = await classifier.classify(images);
    expect(results).toHaveLength(4);
    for (const r of results) {
      expect(classifier.info.labels).toContain(r.label);
      expect(VOUCH_LABELS).toContain(r.label);
      expect(r.confidence).toBeGreaterThanOrEqual(0);
      expect(r.confidence).toBeLessThanOrEqual(1);
      expect(r.confidence).toBe(r.scores[r.label]);
      expect(r.confidence).toBe(Math.max(...Object.values(r.scores)));
      expect(Object.keys(r.scores).sort()).toEqual(['ok', 'sexual']);
      expect(Object.values(r.scores).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 4);
      expect(Object.keys(r.classScores ?? {})).toEqual([...DEFAULT_MODEL_CLASSES]);
      expect(Object.values(r.classScores ?? {}).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 4);
      const cs = r.classScores ?? {};
      expect(r.scores.sexual).toBeCloseTo(cs.Porn + cs.Hentai, 5);
    }
  });

  it('is deterministic, and a batch gives what single images give', async () => {
    const a = await classifier.classify(images);
    const b = await classifier.classify(images);
    expect(b).toEqual(a);
    const single: Classification[] = [];
    for (const img of images) single.push(...(await classifier.classify([img])));
    single.forEach((s, i) => {
      expect(s.label).toBe(a[i].label);
      for (const cls of DEFAULT_MODEL_CLASSES) expect(s.classScores?.[cls]).toBeCloseTo(a[i].classScores?.[cls] ?? NaN, 5);
    });
    expect(await classifier.classify([])).toEqual([]);
  });

  it('matches the model run by TensorFlow.js itself (the converter changes nothing)', async () => {
    const maxDiff = maxDifference(await classifier.classify(images), await tfjsReference('default', 224, images));
    console.log(`default model vs tfjs reference: max |dp| = ${maxDiff.toExponential(2)}`);
    expect(maxDiff).toBeLessThan(1e-4);
  });

  it('createDefaultClassifier is the same model as createClassifier({ kind: "default" })', async () => {
    const other = await createDefaultClassifier({ threads: 1, maxBatch: 2 });
    try {
      expect(other.info).toEqual(classifier.info);
      const [x] = await other.classify([images[3]]);
      const [y] = await classifier.classify([images[3]]);
      expect(x.confidence).toBeCloseTo(y.confidence, 5);
    } finally {
      await other.close();
    }
  });
});

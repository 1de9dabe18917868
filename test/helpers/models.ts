// Tiny ONNX models generated in tests (no model file is downloaded or checked in).
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { encodeOnnxModel, type OnnxGraph } from '../../server/scanning/classifiers/onnx-writer.js';

/**
 * Mean colour classifier: logits = 10 * mean over pixels of each input channel; probs = softmax.
 * Classes are the three input channels, so a red image (normalised 0..1) is class 0 with
 * p = e^10 / (e^10 + 2).
 */
export function meanColourModel(layout: 'NCHW' | 'NHWC', batch: number | 'batch', size = 8): Uint8Array {
  const graph: OnnxGraph = {
    nodes: [
      { opType: 'ReduceMean', inputs: ['pixels'], outputs: ['mean'], attributes: { axes: layout === 'NCHW' ? [2, 3] : [1, 2], keepdims: 0 } },
      { opType: 'Mul', inputs: ['mean', 'ten'], outputs: ['logits'] },
      { opType: 'Softmax', inputs: ['logits'], outputs: ['probs'], attributes: { axis: -1 } },
    ],
    initializers: [{ name: 'ten', dims: [], type: 'float32', data: new Float32Array([10]) }],
    inputs: [{ name: 'pixels', shape: layout === 'NCHW' ? [batch, 3, size, size] : [batch, size, size, 3] }],
    outputs: [
      { name: 'logits', shape: [batch, 3] },
      { name: 'probs', shape: [batch, 3] },
    ],
  };
  return encodeOnnxModel(graph);
}

/** A classifier config for the mean-colour model (`model` relative to the config's folder). */
export function meanColourConfig(overrides: Record<string, unknown> = {}) {
  return {
    name: 'test-mean-colour',
    version: '1',
    measures: 'Which primary colour dominates (a test model; detects nothing harmful).',
    model: 'mean-nchw.onnx',
    input: { width: 8, height: 8, layout: 'NCHW' as const },
    normalize: { scale: 1 / 255 },
    output: { name: 'logits', kind: 'logits' as const },
    classes: ['red', 'green', 'blue'],
    labels: { red: 'sexual', green: 'ok', blue: 'gore' } as Record<string, string>,
    ...overrides,
  };
}

/**
 * Writes the mean-colour model with a config that maps every class to `ok`: a second, independent
 * model for scanner tests that detects nothing (so it never disputes the real one). Returns the
 * config's path.
 */
export async function writeOkTestClassifier(dir: string): Promise<string> {
  await writeFile(join(dir, 'mean-nchw.onnx'), meanColourModel('NCHW', 'batch'));
  const path = join(dir, 'mean-colour.json');
  await writeFile(path, JSON.stringify(meanColourConfig({ measures: 'Nothing: a test model whose every class means ok.', labels: { red: 'ok', green: 'ok', blue: 'ok' } })));
  return path;
}

// Classifier backends behind one interface (types.ts): the adult-content models that ship in an npm
// package (`default`, `inception`), or any ONNX image model an operator describes in a JSON config.
import { createDefaultClassifier, type DefaultClassifierOptions } from './default-model.js';
import { createOnnxClassifier } from './onnx.js';
import type { Classifier } from './types.js';

export type ClassifierConfig = ({ kind: 'default' } & DefaultClassifierOptions) | { kind: 'onnx'; configPath: string };

export async function createClassifier(config: ClassifierConfig): Promise<Classifier> {
  switch (config.kind) {
    case 'default': {
      const { kind: _kind, ...options } = config;
      return createDefaultClassifier(options);
    }
    case 'onnx':
      return createOnnxClassifier(config.configPath);
  }
}

export { VOUCH_LABELS, type Classification, type Classifier, type ClassifierInfo, type RgbImage, type VouchLabel } from './types.js';
export {
  ClassifierError,
  createOnnxClassifier,
  cudaProviderProblem,
  loadOnnxClassifierConfig,
  parseOnnxClassifierConfig,
  onnxClassifierConfigSchema,
  type OnnxClassifierConfig,
  type OnnxClassifierConfigInput,
} from './onnx.js';
export {
  createDefaultClassifier,
  convertDefaultModel,
  defaultModelConfig,
  DEFAULT_MODEL_CLASSES,
  DEFAULT_MODEL_LABELS,
  DEFAULT_MODEL_MEASURES,
  BUNDLED_MODELS,
  isBundledModel,
  type BundledModel,
  type DefaultClassifierOptions,
} from './default-model.js';

// Converts a TensorFlow.js *layers* model (Keras topology JSON + weight manifest + weight bytes, the
// format nsfwjs ships) into an ONNX model, so it runs on ONNX Runtime like any operator model.
//
// Only the layer types common in image classifiers are supported (the MobileNetV2 that nsfwjs ships
// uses all of them and nothing else): InputLayer, ZeroPadding2D, Conv2D, DepthwiseConv2D,
// BatchNormalization, ReLU, Activation, Add, AveragePooling2D, MaxPooling2D,
// GlobalAveragePooling2D, Flatten, Dense, Dropout. Anything else is refused with its name, never
// approximated. The ONNX graph takes the Keras input as it is (NHWC, channels last) and works in
// NCHW inside; weights are dequantized to float32 exactly as tfjs does (value = q * scale + min).

import { encodeOnnxModel, type OnnxInitializer, type OnnxNode, type OnnxValueInfo } from './onnx-writer.js';

export interface TfjsWeightSpec {
  name: string;
  shape: number[];
  dtype: string;
  quantization?: { dtype: string; min?: number; scale?: number };
}

export interface TfjsLayersArtifacts {
  /** The `modelTopology` of a tfjs layers model.json (Keras model config). */
  modelTopology: unknown;
  /** The weight specs of every weightsManifest group, in order. */
  weightSpecs: TfjsWeightSpec[];
  /** All weight shards concatenated in manifest order. */
  weightData: Uint8Array;
}

interface KerasLayer {
  name: string;
  class_name: string;
  config: Record<string, unknown>;
  inbound_nodes: unknown[];
}

interface Tensor {
  name: string;
  /** 4 = image feature map (NCHW inside the ONNX graph), 2 = [batch, features]. */
  rank: 2 | 4;
  /** Channels (rank 4) or features (rank 2), when known. */
  channels?: number;
}

export interface ConvertedModel {
  onnx: Uint8Array;
  inputName: string;
  outputName: string;
  /** Input shape without the batch dimension, as Keras declares it (H, W, C for images). */
  inputShape: number[];
  outputSize: number;
}

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}

/** Decodes the weights into float32 arrays, the way tfjs-core's `decodeWeights` does. */
export function decodeTfjsWeights(specs: TfjsWeightSpec[], data: Uint8Array): Map<string, { shape: number[]; values: Float32Array }> {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const out = new Map<string, { shape: number[]; values: Float32Array }>();
  let offset = 0;
  for (const spec of specs) {
    const n = spec.shape.reduce((a, b) => a * b, 1);
    const values = new Float32Array(n);
    const q = spec.quantization;
    if (q) {
      const bytes = q.dtype === 'uint8' ? 1 : q.dtype === 'uint16' || q.dtype === 'float16' ? 2 : 0;
      if (bytes === 0) throw new Error(`weight ${spec.name}: unsupported quantization ${q.dtype}`);
      if (offset + n * bytes > data.byteLength) throw new Error(`weight ${spec.name}: weight data too short`);
      if (q.dtype === 'float16') {
        for (let i = 0; i < n; i++) values[i] = halfToFloat(view.getUint16(offset + 2 * i, true));
      } else {
        if (q.min === undefined || q.scale === undefined) throw new Error(`weight ${spec.name}: quantization without min/scale`);
        for (let i = 0; i < n; i++) {
          const v = bytes === 1 ? view.getUint8(offset + i) : view.getUint16(offset + 2 * i, true);
          values[i] = v * q.scale + q.min;
        }
      }
      offset += n * bytes;
    } else if (spec.dtype === 'float32' || spec.dtype === 'int32') {
      if (offset + n * 4 > data.byteLength) throw new Error(`weight ${spec.name}: weight data too short`);
      for (let i = 0; i < n; i++) {
        values[i] = spec.dtype === 'float32' ? view.getFloat32(offset + 4 * i, true) : view.getInt32(offset + 4 * i, true);
      }
      offset += n * 4;
    } else {
      throw new Error(`weight ${spec.name}: unsupported dtype ${spec.dtype}`);
    }
    out.set(spec.name, { shape: spec.shape, values });
  }
  if (offset !== data.byteLength) throw new Error(`weight data has ${data.byteLength - offset} bytes beyond the manifest`);
  return out;
}

const pair = (v: unknown, what: string): [number, number] => {
  if (typeof v === 'number') return [v, v];
  if (Array.isArray(v) && v.length === 2 && v.every((x) => typeof x === 'number')) return [v[0], v[1]];
  throw new Error(`${what}: expected a number or a pair, got ${JSON.stringify(v)}`);
};

/** Keras kernel [kh, kw, in, out] (depthwise: [kh, kw, C, multiplier]) -> ONNX Conv weight [out, in/groups, kh, kw]. */
function kerasKernelToOnnx(src: Float32Array, shape: number[], depthwise: boolean): Float32Array {
  const [kh, kw, inC, outPer] = shape;
  const inPerGroup = depthwise ? 1 : inC;
  const w = new Float32Array(src.length);
  let s = 0;
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      for (let ci = 0; ci < inC; ci++) {
        for (let o = 0; o < outPer; o++, s++) {
          const oc = depthwise ? ci * outPer + o : o;
          const ic = depthwise ? 0 : ci;
          w[((oc * inPerGroup + ic) * kh + i) * kw + j] = src[s];
        }
      }
    }
  }
  return w;
}

export function convertKerasToOnnx(artifacts: TfjsLayersArtifacts, options: { docString?: string } = {}): ConvertedModel {
  const topology = artifacts.modelTopology as { model_config?: { class_name?: string; config?: unknown } };
  const modelConfig = topology.model_config ?? (topology as { class_name?: string; config?: unknown });
  if (modelConfig.class_name !== 'Model' && modelConfig.class_name !== 'Functional') {
    throw new Error(`only functional Keras models are supported, not ${String(modelConfig.class_name)}`);
  }
  const config = modelConfig.config as { layers: KerasLayer[]; input_layers: unknown[][]; output_layers: unknown[][] };
  if (config.input_layers.length !== 1 || config.output_layers.length !== 1) {
    throw new Error('only models with one input and one output are supported');
  }
  const weights = decodeTfjsWeights(artifacts.weightSpecs, artifacts.weightData);
  const used = new Set<string>();
  const weight = (layer: string, param: string, rank?: number): { shape: number[]; values: Float32Array } => {
    const w = weights.get(`${layer}/${param}`);
    if (!w) throw new Error(`layer ${layer}: missing weight ${param}`);
    if (rank !== undefined && w.shape.length !== rank) throw new Error(`layer ${layer}: weight ${param} has rank ${w.shape.length}`);
    used.add(`${layer}/${param}`);
    return w;
  };

  const nodes: OnnxNode[] = [];
  const initializers: OnnxInitializer[] = [];
  const tensors = new Map<string, Tensor>();
  let counter = 0;
  const fresh = (base: string) => `${base}__${counter++}`;
  const floatInit = (name: string, dims: number[], data: Float32Array): string => {
    initializers.push({ name, dims, type: 'float32', data });
    return name;
  };
  const intInit = (name: string, values: number[]): string => {
    initializers.push({ name, dims: [values.length], type: 'int64', data: BigInt64Array.from(values.map(BigInt)) });
    return name;
  };
  const add = (opType: string, inputs: string[], output: string, attributes?: OnnxNode['attributes']): string => {
    nodes.push({ opType, inputs, outputs: [output], name: output, attributes });
    return output;
  };
  const clipMin = floatInit('const_zero', [], new Float32Array([0]));
  const clip6 = floatInit('const_six', [], new Float32Array([6]));
  const activation = (x: Tensor, act: unknown, out: string): Tensor => {
    switch (act ?? 'linear') {
      case 'linear':
        return x;
      case 'relu':
        return { ...x, name: add('Relu', [x.name], out) };
      case 'relu6':
        return { ...x, name: add('Clip', [x.name, clipMin, clip6], out) };
      case 'sigmoid':
        return { ...x, name: add('Sigmoid', [x.name], out) };
      case 'tanh':
        return { ...x, name: add('Tanh', [x.name], out) };
      case 'softmax':
        return { ...x, name: add('Softmax', [x.name], out, { axis: x.rank === 4 ? 1 : -1 }) };
      default:
        throw new Error(`unsupported activation ${String(act)}`);
    }
  };
  const spatialPadding = (padding: unknown, layer: string): Record<string, string> => {
    if (padding === 'valid') return { auto_pad: 'VALID' };
    // TF 'same' puts the odd pixel of padding at the end, which is ONNX's SAME_UPPER.
    if (padding === 'same') return { auto_pad: 'SAME_UPPER' };
    throw new Error(`layer ${layer}: unsupported padding ${String(padding)}`);
  };

  const inputName = String(config.input_layers[0][0]);
  const outputLayer = String(config.output_layers[0][0]);
  let inputShape: number[] = [];
  let outputSize = 0;
  const graphInputs: OnnxValueInfo[] = [];

  for (const layer of config.layers) {
    const c = layer.config;
    if (c.data_format !== undefined && c.data_format !== 'channels_last') {
      throw new Error(`layer ${layer.name}: only channels_last models are supported`);
    }
    if (layer.inbound_nodes.length > 1) throw new Error(`layer ${layer.name}: shared layers are not supported`);
    const inbound = ((layer.inbound_nodes[0] as unknown[][] | undefined) ?? []).map((entry) => {
      const [name, nodeIndex, tensorIndex] = entry as [string, number, number];
      if (nodeIndex !== 0 || tensorIndex !== 0) throw new Error(`layer ${layer.name}: multi-output inputs are not supported`);
      const t = tensors.get(name);
      if (!t) throw new Error(`layer ${layer.name}: input ${name} is not defined before it`);
      return t;
    });
    const x = inbound[0];
    const need = (count: number) => {
      if (inbound.length !== count) throw new Error(`layer ${layer.name}: expected ${count} input(s), got ${inbound.length}`);
    };
    const need4 = () => {
      need(1);
      if (x.rank !== 4) throw new Error(`layer ${layer.name}: expected an image feature map`);
    };
    let result: Tensor;
    switch (layer.class_name) {
      case 'InputLayer': {
        const shape = (c.batch_input_shape ?? c.batch_shape) as Array<number | null>;
        if (!Array.isArray(shape) || shape.slice(1).some((d) => typeof d !== 'number')) {
          throw new Error(`input ${layer.name}: needs a fixed shape, got ${JSON.stringify(shape)}`);
        }
        inputShape = shape.slice(1) as number[];
        graphInputs.push({ name: layer.name, shape: ['batch', ...inputShape] });
        if (inputShape.length === 3) {
          result = { name: add('Transpose', [layer.name], fresh(`${layer.name}_nchw`), { perm: [0, 3, 1, 2] }), rank: 4, channels: inputShape[2] };
        } else if (inputShape.length === 1) {
          result = { name: layer.name, rank: 2, channels: inputShape[0] };
        } else {
          throw new Error(`input ${layer.name}: unsupported rank ${inputShape.length + 1}`);
        }
        break;
      }
      case 'ZeroPadding2D': {
        need4();
        const p = c.padding;
        let top: number, bottom: number, left: number, right: number;
        if (typeof p === 'number') [top, bottom, left, right] = [p, p, p, p];
        else if (Array.isArray(p) && p.every((v) => typeof v === 'number')) [top, bottom, left, right] = [p[0], p[0], p[1], p[1]];
        else if (Array.isArray(p)) [[top, bottom], [left, right]] = [pair(p[0], layer.name), pair(p[1], layer.name)];
        else throw new Error(`layer ${layer.name}: bad padding`);
        const pads = intInit(`${layer.name}_pads`, [0, 0, top, left, 0, 0, bottom, right]);
        result = { ...x, name: add('Pad', [x.name, pads], layer.name) };
        break;
      }
      case 'Conv2D':
      case 'DepthwiseConv2D': {
        need4();
        const depthwise = layer.class_name === 'DepthwiseConv2D';
        const k = weight(layer.name, depthwise ? 'depthwise_kernel' : 'kernel', 4);
        const [kh, kw, inC, outPer] = k.shape; // Conv2D: [kh, kw, in/groups, out]; depthwise: [kh, kw, C, multiplier]
        const groups = depthwise ? inC : typeof c.groups === 'number' ? c.groups : 1;
        const outC = depthwise ? inC * outPer : outPer;
        const inPerGroup = depthwise ? 1 : inC;
        const w = kerasKernelToOnnx(k.values, k.shape, depthwise);
        const inputs = [x.name, floatInit(`${layer.name}_W`, [outC, inPerGroup, kh, kw], w)];
        if (c.use_bias !== false) inputs.push(floatInit(`${layer.name}_B`, [outC], weight(layer.name, 'bias', 1).values));
        const [sh, sw] = pair(c.strides ?? 1, layer.name);
        const [dh, dw] = pair(c.dilation_rate ?? 1, layer.name);
        const act = c.activation ?? 'linear';
        const conv = add('Conv', inputs, act === 'linear' ? layer.name : fresh(layer.name), {
          kernel_shape: [kh, kw],
          strides: [sh, sw],
          dilations: [dh, dw],
          group: groups,
          ...spatialPadding(c.padding, layer.name),
        });
        result = activation({ name: conv, rank: 4, channels: outC }, act, layer.name);
        break;
      }
      case 'BatchNormalization': {
        need(1);
        const axis = c.axis;
        const channelAxis = Array.isArray(axis) ? axis[0] : axis;
        if (!(channelAxis === -1 || channelAxis === x.rank - 1)) throw new Error(`layer ${layer.name}: only channel-axis batch normalization`);
        const mean = weight(layer.name, 'moving_mean', 1);
        const n = mean.shape[0];
        const scale = c.scale === false ? new Float32Array(n).fill(1) : weight(layer.name, 'gamma', 1).values;
        const bias = c.center === false ? new Float32Array(n) : weight(layer.name, 'beta', 1).values;
        result = {
          ...x,
          name: add(
            'BatchNormalization',
            [
              x.name,
              floatInit(`${layer.name}_scale`, [n], scale),
              floatInit(`${layer.name}_bias`, [n], bias),
              floatInit(`${layer.name}_mean`, [n], mean.values),
              floatInit(`${layer.name}_var`, [n], weight(layer.name, 'moving_variance', 1).values),
            ],
            layer.name,
            { epsilon: { float: typeof c.epsilon === 'number' ? c.epsilon : 0.001 } },
          ),
        };
        break;
      }
      case 'ReLU': {
        need(1);
        if ((c.negative_slope ?? 0) !== 0 || (c.threshold ?? 0) !== 0) throw new Error(`layer ${layer.name}: leaky/thresholded ReLU is not supported`);
        const max = c.max_value;
        if (max === null || max === undefined) result = { ...x, name: add('Relu', [x.name], layer.name) };
        else if (typeof max === 'number') {
          const maxName = max === 6 ? clip6 : floatInit(`${layer.name}_max`, [], new Float32Array([max]));
          result = { ...x, name: add('Clip', [x.name, clipMin, maxName], layer.name) };
        } else throw new Error(`layer ${layer.name}: bad max_value`);
        break;
      }
      case 'Activation':
        need(1);
        result = activation(x, c.activation, layer.name);
        break;
      case 'Add': {
        if (inbound.length < 2) throw new Error(`layer ${layer.name}: Add needs two inputs or more`);
        let acc = inbound[0].name;
        for (let i = 1; i < inbound.length; i++) {
          acc = add('Add', [acc, inbound[i].name], i === inbound.length - 1 ? layer.name : fresh(layer.name));
        }
        result = { ...x, name: acc };
        break;
      }
      case 'Concatenate': {
        if (inbound.length < 2) throw new Error(`layer ${layer.name}: Concatenate needs two inputs or more`);
        const axis = c.axis ?? -1;
        if (inbound.some((t) => t.rank !== x.rank) || !(axis === -1 || axis === x.rank - 1)) {
          throw new Error(`layer ${layer.name}: only concatenation along the channels of same-rank inputs`);
        }
        const channels = inbound.every((t) => t.channels !== undefined) ? inbound.reduce((n, t) => n + (t.channels ?? 0), 0) : undefined;
        // Keras' channels-last axis is ONNX's axis 1 for feature maps (NCHW) and vectors alike.
        result = { name: add('Concat', inbound.map((t) => t.name), layer.name, { axis: 1 }), rank: x.rank, channels };
        break;
      }
      case 'AveragePooling2D':
      case 'MaxPooling2D': {
        need4();
        const [ph, pw] = pair(c.pool_size ?? 2, layer.name);
        const [sh, sw] = pair(c.strides ?? [ph, pw], layer.name);
        result = {
          ...x,
          name: add(layer.class_name === 'MaxPooling2D' ? 'MaxPool' : 'AveragePool', [x.name], layer.name, {
            kernel_shape: [ph, pw],
            strides: [sh, sw],
            ...spatialPadding(c.padding ?? 'valid', layer.name),
          }),
        };
        break;
      }
      case 'GlobalAveragePooling2D': {
        need4();
        if (c.keepdims === true) throw new Error(`layer ${layer.name}: keepdims is not supported`);
        const pooled = add('GlobalAveragePool', [x.name], fresh(layer.name));
        result = { name: add('Flatten', [pooled], layer.name, { axis: 1 }), rank: 2, channels: x.channels };
        break;
      }
      case 'Flatten': {
        need(1);
        if (x.rank === 2) {
          result = x;
        } else {
          // Keras flattens channels-last (H, W, C order): go back to NHWC before flattening.
          const nhwc = add('Transpose', [x.name], fresh(layer.name), { perm: [0, 2, 3, 1] });
          result = { name: add('Flatten', [nhwc], layer.name, { axis: 1 }), rank: 2 };
        }
        break;
      }
      case 'Dense': {
        need(1);
        if (x.rank !== 2) throw new Error(`layer ${layer.name}: Dense on a feature map is not supported`);
        const k = weight(layer.name, 'kernel', 2);
        const inputs = [x.name, floatInit(`${layer.name}_W`, k.shape, k.values)];
        if (c.use_bias !== false) inputs.push(floatInit(`${layer.name}_B`, [k.shape[1]], weight(layer.name, 'bias', 1).values));
        const act = c.activation ?? 'linear';
        const gemm = add('Gemm', inputs, act === 'linear' ? layer.name : fresh(layer.name));
        result = activation({ name: gemm, rank: 2, channels: k.shape[1] }, act, layer.name);
        break;
      }
      case 'Dropout':
        need(1);
        result = x; // inference: identity
        break;
      default:
        throw new Error(`unsupported Keras layer ${layer.class_name} (${layer.name})`);
    }
    tensors.set(layer.name, result);
  }

  const out = tensors.get(outputLayer);
  if (!out) throw new Error(`output layer ${outputLayer} not found`);
  if (out.rank !== 2) throw new Error('only models whose output is a vector per image are supported');
  if (out.name !== outputLayer) add('Identity', [out.name], outputLayer);
  outputSize = out.channels ?? 0;
  const unused = [...weights.keys()].filter((k) => !used.has(k));
  if (unused.length > 0) throw new Error(`weights not used by any layer: ${unused.slice(0, 5).join(', ')}`);

  const onnx = encodeOnnxModel({
    name: 'converted_keras',
    nodes,
    initializers,
    inputs: graphInputs,
    outputs: [{ name: outputLayer, shape: ['batch', outputSize] }],
    producer: 'vouch keras-to-onnx',
    docString: options.docString,
  });
  return { onnx, inputName, outputName: outputLayer, inputShape, outputSize };
}

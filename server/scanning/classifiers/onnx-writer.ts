// A minimal ONNX (protobuf) model writer: enough of onnx.proto to describe an inference graph of
// float tensors (nodes, attributes, initializers, typed graph inputs/outputs). onnxruntime-node can
// run models but not build them; this writer lets the default model be converted in-process from
// the weights nsfwjs ships (keras-to-onnx.ts) and lets tests build tiny models.
//
// Field numbers follow onnx/onnx.proto (IR version 7, default opset 13).

export type AttributeValue =
  | number
  | number[]
  | string
  | { float: number }
  | { ints: number[] }
  | { floats: number[] };

export interface OnnxNode {
  opType: string;
  inputs: string[];
  outputs: string[];
  name?: string;
  /** Numbers that are integers are written as INT, others as FLOAT; arrays likewise (INTS/FLOATS).
   * Use `{ float: x }`, `{ floats: [...] }` or `{ ints: [...] }` to force the kind. */
  attributes?: Record<string, AttributeValue>;
}

export type OnnxElemType = 'float32' | 'int64' | 'uint8';

export interface OnnxInitializer {
  name: string;
  dims: number[];
  type: OnnxElemType;
  data: Float32Array | BigInt64Array | Uint8Array;
}

export interface OnnxValueInfo {
  name: string;
  type?: OnnxElemType;
  /** A number is a fixed dimension, a string a symbolic one (e.g. 'batch'); absent: unknown. */
  shape?: Array<number | string>;
}

export interface OnnxGraph {
  name?: string;
  nodes: OnnxNode[];
  initializers: OnnxInitializer[];
  inputs: OnnxValueInfo[];
  outputs: OnnxValueInfo[];
  opset?: number;
  irVersion?: number;
  producer?: string;
  docString?: string;
  metadata?: Record<string, string>;
}

const ELEM_TYPE: Record<OnnxElemType, number> = { float32: 1, uint8: 2, int64: 7 };

/** Growable protobuf byte writer. */
class Pb {
  private buf = new Uint8Array(256);
  private len = 0;

  private ensure(extra: number): void {
    if (this.len + extra <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + extra) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  private byte(b: number): void {
    this.ensure(1);
    this.buf[this.len++] = b;
  }

  /** Varint of a non-negative or negative (two's complement, 10 bytes) 64-bit integer. */
  varint(value: number | bigint): void {
    let v = BigInt.asUintN(64, BigInt(value));
    while (v >= 0x80n) {
      this.byte(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    this.byte(Number(v));
  }

  private tag(field: number, wire: number): void {
    this.varint((field << 3) | wire);
  }

  int(field: number, value: number | bigint): void {
    this.tag(field, 0);
    this.varint(value);
  }

  float(field: number, value: number): void {
    this.tag(field, 5);
    this.ensure(4);
    new DataView(this.buf.buffer, this.buf.byteOffset + this.len, 4).setFloat32(0, value, true);
    this.len += 4;
  }

  bytes(field: number, data: Uint8Array): void {
    this.tag(field, 2);
    this.varint(data.length);
    this.ensure(data.length);
    this.buf.set(data, this.len);
    this.len += data.length;
  }

  string(field: number, value: string): void {
    this.bytes(field, new TextEncoder().encode(value));
  }

  message(field: number, build: (w: Pb) => void): void {
    const inner = new Pb();
    build(inner);
    this.bytes(field, inner.finish());
  }

  finish(): Uint8Array {
    return this.buf.subarray(0, this.len);
  }
}

function writeAttribute(w: Pb, name: string, value: AttributeValue): void {
  // AttributeProto: name=1 f=2 i=3 s=4 floats=7 ints=8 type=20
  // AttributeType: FLOAT=1 INT=2 STRING=3 FLOATS=6 INTS=7
  w.string(1, name);
  if (typeof value === 'string') {
    w.string(4, value);
    w.int(20, 3);
  } else if (typeof value === 'number') {
    if (Number.isInteger(value)) {
      w.int(3, value);
      w.int(20, 2);
    } else {
      w.float(2, value);
      w.int(20, 1);
    }
  } else if (Array.isArray(value)) {
    if (value.every(Number.isInteger)) {
      for (const v of value) w.int(8, v);
      w.int(20, 7);
    } else {
      for (const v of value) w.float(7, v);
      w.int(20, 6);
    }
  } else if ('float' in value) {
    w.float(2, value.float);
    w.int(20, 1);
  } else if ('ints' in value) {
    for (const v of value.ints) w.int(8, v);
    w.int(20, 7);
  } else {
    for (const v of value.floats) w.float(7, v);
    w.int(20, 6);
  }
}

function writeNode(w: Pb, node: OnnxNode): void {
  // NodeProto: input=1 output=2 name=3 op_type=4 attribute=5
  for (const input of node.inputs) w.string(1, input);
  for (const output of node.outputs) w.string(2, output);
  if (node.name) w.string(3, node.name);
  w.string(4, node.opType);
  for (const [name, value] of Object.entries(node.attributes ?? {})) {
    w.message(5, (a) => writeAttribute(a, name, value));
  }
}

function writeTensor(w: Pb, t: OnnxInitializer): void {
  // TensorProto: dims=1 data_type=2 name=8 raw_data=9 (little-endian)
  const count = t.dims.reduce((a, b) => a * b, 1);
  if (t.data.length !== count) {
    throw new Error(`initializer ${t.name}: ${t.data.length} values for dims [${t.dims.join(',')}]`);
  }
  for (const d of t.dims) w.int(1, d);
  w.int(2, ELEM_TYPE[t.type]);
  w.string(8, t.name);
  const raw = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  // Typed arrays are little-endian on every platform Node supports (x64, arm64).
  w.bytes(9, raw);
}

function writeValueInfo(w: Pb, v: OnnxValueInfo): void {
  // ValueInfoProto: name=1 type=2; TypeProto: tensor_type=1; Tensor: elem_type=1 shape=2;
  // TensorShapeProto: dim=1; Dimension: dim_value=1 dim_param=2
  w.string(1, v.name);
  w.message(2, (type) =>
    type.message(1, (tensor) => {
      tensor.int(1, ELEM_TYPE[v.type ?? 'float32']);
      const dims = v.shape;
      if (dims === undefined) return;
      tensor.message(2, (shape) => {
        for (const d of dims) {
          shape.message(1, (dim) => (typeof d === 'number' ? dim.int(1, d) : dim.string(2, d)));
        }
      });
    }),
  );
}

/** Serialises a graph to the bytes of an ONNX ModelProto (what `InferenceSession.create` takes). */
export function encodeOnnxModel(graph: OnnxGraph): Uint8Array {
  // ModelProto: ir_version=1 producer_name=2 doc_string=6 graph=7 opset_import=8 metadata_props=14
  // GraphProto: node=1 name=2 initializer=5 input=11 output=12
  const w = new Pb();
  w.int(1, graph.irVersion ?? 7);
  w.string(2, graph.producer ?? 'vouch');
  if (graph.docString) w.string(6, graph.docString);
  w.message(7, (g) => {
    for (const node of graph.nodes) g.message(1, (n) => writeNode(n, node));
    g.string(2, graph.name ?? 'graph');
    for (const init of graph.initializers) g.message(5, (t) => writeTensor(t, init));
    for (const input of graph.inputs) g.message(11, (v) => writeValueInfo(v, input));
    for (const output of graph.outputs) g.message(12, (v) => writeValueInfo(v, output));
  });
  // OperatorSetIdProto: domain=1 version=2 (the default domain is the empty string)
  w.message(8, (o) => {
    o.string(1, '');
    o.int(2, graph.opset ?? 13);
  });
  for (const [key, value] of Object.entries(graph.metadata ?? {})) {
    // StringStringEntryProto: key=1 value=2
    w.message(14, (e) => {
      e.string(1, key);
      e.string(2, value);
    });
  }
  return w.finish();
}

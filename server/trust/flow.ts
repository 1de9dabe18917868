// The trust-weight engine: hop-bounded conserved trust flow (docs/architecture.md, "Trust and decision").
// Pure and in memory: no database, no network, no clock. The trust module loads the admin's direct
// trust, blocks, learned penalties and the peers' published TrustStatements into a TrustGraph, and
// asks it for the effective weight of every peer, per polarity (and optionally per label).
//
// The model, for one polarity:
// - Direct peers are PINNED at the admin's value times their learned penalty. Flow into them is
//   ignored, so no cycle and no other peer's statement can raise (or, for distrust, lower) them.
// - A node u passes at most δ·w(u) onward, SPLIT across the peers it vouches for: its statement values
//   are its shares as they are when they sum to at most 1, and are scaled to sum to 1 otherwise.
// - Synchronous rounds: at hop k, only the weight that ARRIVED at hop k−1 moves on, so each unit of
//   weight travels each walk once (no fixed-point iteration: weight never circulates in a cycle more
//   than the hop limit lets it). After H hops it stops; a node reached by no walk has weight 0.
// - w(v) = penalty(v) · min(1, Σ arrivals at v). What a node passes on at a hop is what it kept at
//   that hop (after the cap and its penalty), so capped or penalised weight is never passed on.
// - The admin's block removes a node: weight 0, passes nothing, and its publishers' shares are
//   normalised as if it were not there. Self-trust entries are ignored.
// - Published distrust counts one hop, after the flow: v loses δ·w(u)·value for every u distrusting it
//   (w(u) the flow weight, before anyone's distrust), floored at 0; direct peers are not reduced, and
//   the reduction does not travel on (v passes on its flow weight).
//
// Bound: at hop k the total arriving weight is at most δ^k · Σ direct weights, so the weight of all
// non-direct nodes is at most δ/(1−δ) · Σ direct weights. Likewise a set S that only x vouches for
// from outside receives at most δ·w(x) + δ·Σ_S w, i.e. Σ_S w ≤ δ/(1−δ) · w(x): a sybil swarm of any
// size behind a careless peer never outweighs it (δ = ½: never more than the peer itself). Best-path
// products do not have this property: without splitting, each sybil gets the whole path weight.
//
// Representation: peers are interned to dense integer ids; published vouches live in a CSR
// (Uint32Array offsets/targets, Float64Array raw values) rebuilt lazily on compute from the last CSR
// plus the publishers changed since (bulk copies of unchanged row runs). Per-row scales (the split
// normalisation, which depends on the block set) are computed per view. Per-label statements are a
// small overlay of replaced rows. A compute is frontier-based: hop k touches only the out-edges of
// nodes whose weight grew at hop k−1, so its cost is one pass per hop over the edges within H hops.
// Results are immutable snapshots: later graph changes never alter a TrustWeights already returned.
import type { TrustPolarity } from '../../shared/vocab/objects.js';
import type { Label } from '../../shared/vocab/verdict.js';

export type { TrustPolarity };

export const DEFAULT_DELTA = 0.5;
export const DEFAULT_HOPS = 3;
export const MAX_HOPS = 10;
/** Paths `explain` returns unless told otherwise. */
export const DEFAULT_EXPLAIN_PATHS = 3;

/** One published trust (or distrust) value: `value` in [0, 1]; `label` makes it a per-label override. */
export interface TrustValue {
  peer: string;
  value: number;
  label?: Label;
}

export interface TrustComputeOptions {
  /** Dampening: the share of its weight a node passes on. 0 ≤ δ < 1; default 0.5. */
  delta?: number;
  /** Hop limit H, an integer 0..10; default 3. 0 gives the direct peers only. */
  hops?: number;
  /**
   * Compute for one label: the admin's per-label direct trust and the peers' per-label statement
   * entries override the polarity-wide ones, peer by peer.
   */
  label?: Label;
}

export interface TrustPath {
  /**
   * The walk the weight took: the admin's direct peer first, the explained peer last (a direct
   * peer's own path is just `[peer]`). A walk may pass a node twice when statements form a cycle.
   */
  via: string[];
  /** The part of the peer's flow weight that arrived along this walk (the parts of all walks sum to it). */
  contribution: number;
}

export interface TrustDistrust {
  /** The peer whose published distrust lowered this one. */
  by: string;
  /** The published distrust value. */
  value: number;
  /** δ · flow weight of `by` · value, before the floor at 0. */
  reduction: number;
}

export interface TrustExplanation {
  peer: string;
  /** The effective weight (= TrustWeights.weight(peer)). */
  weight: number;
  /** Pinned by the admin's direct trust for this polarity (and label). */
  direct: boolean;
  /** Removed by the admin's block. */
  blocked: boolean;
  /** Learned penalty multiplier in [0, 1] (1: none), already included in the weight. */
  penalty: number;
  /** The weight from the flow, before published distrust. */
  flowWeight: number;
  /** The top contributing walks from direct peers, largest first. */
  paths: TrustPath[];
  /** Published distrust that lowered the weight, largest reduction first. */
  distrust: TrustDistrust[];
}

export interface ExplainOptions {
  /** How many paths to return; default 3. */
  maxPaths?: number;
}

interface EdgeList {
  targets: number[];
  values: number[];
}

interface LabelEntries {
  vouch: EdgeList;
  distrust: EdgeList;
}

interface Csr {
  rows: number;
  offsets: Uint32Array;
  targets: Uint32Array;
  /** Raw published values (> 0); a row's share of edge e is values[e] · scale[row]. */
  values: Float64Array;
}

/** Everything one compute needs about the edges of one (polarity, label), immutable once built. */
interface View {
  base: Csr;
  /** Split normalisation per base row (edges to blocked nodes left out). */
  scale: Float64Array;
  /** Rows replaced by per-label statements: row index into `overlay` per node, or −1. */
  overlayRowOf: Int32Array | null;
  overlay: Csr | null;
  overlayScale: Float64Array | null;
  /** 1 for blocked ids (length = ids interned when the view was built). */
  blocked: Uint8Array;
  distrustSrc: Uint32Array;
  distrustTgt: Uint32Array;
  distrustVal: Float64Array;
  /** Reverse adjacency with shares, built on the first explain. */
  reverse: Csr | null;
}

const EMPTY_CSR: Csr = { rows: 0, offsets: new Uint32Array(1), targets: new Uint32Array(0), values: new Float64Array(0) };

/**
 * Polarity-wide vouch rows published since the last CSR build, in flat typed arrays (no object per
 * publisher): a row at `start` holds its length in targets[start], then its targets and values at
 * start+1... A publisher replaced twice leaves its older row as garbage until the next build.
 */
class Staging {
  targets = new Uint32Array(1024);
  values = new Float64Array(1024);
  used = 0;
  /** publisher → start of its newest row. */
  readonly rows = new Map<number, number>();

  /** Room for a row of up to `length` entries; returns its start (commit with `commit`). */
  reserve(length: number): number {
    const need = this.used + 1 + length;
    if (need > this.targets.length) {
      const size = Math.max(need, this.targets.length * 2);
      const targets = new Uint32Array(size);
      targets.set(this.targets.subarray(0, this.used));
      const values = new Float64Array(size);
      values.set(this.values.subarray(0, this.used));
      this.targets = targets;
      this.values = values;
    }
    return this.used;
  }

  commit(publisher: number, start: number, length: number): void {
    this.targets[start] = length;
    this.used = start + 1 + length;
    this.rows.set(publisher, start);
  }

  length(publisher: number): number | undefined {
    const start = this.rows.get(publisher);
    return start === undefined ? undefined : this.targets[start];
  }

  clear(): void {
    this.rows.clear();
    this.used = 0;
    if (this.targets.length > 1 << 16) {
      this.targets = new Uint32Array(1024);
      this.values = new Float64Array(1024);
    }
  }
}

class Side {
  readonly direct = new Map<number, number>();
  readonly labelDirect = new Map<string, Map<number, number>>();
  readonly penalty = new Map<number, number>();
  csr: Csr = EMPTY_CSR;
  /** Publishers whose polarity-wide vouches changed since `csr` was built. */
  readonly pending = new Staging();
  readonly distrust = new Map<number, EdgeList>();
  /** label → publisher → its entries for that label. */
  readonly labels = new Map<string, Map<number, LabelEntries>>();
  /** publisher → the labels it has entries for (to drop them when its statement is replaced). */
  readonly labelsOf = new Map<number, string[]>();
  edgeCount = 0;
  version = 0;
  readonly views = new Map<string, { version: number; blockVersion: number; view: View }>();
}

function checkPolarity(polarity: TrustPolarity): void {
  if (polarity !== 'abuse' && polarity !== 'ok') throw new RangeError(`polarity must be "abuse" or "ok", not ${String(polarity)}`);
}

function checkUnit(what: string, value: number): void {
  if (typeof value !== 'number' || !(value >= 0 && value <= 1)) throw new RangeError(`${what} must be a number in [0, 1], not ${String(value)}`);
}

function checkPeer(peer: string): void {
  if (typeof peer !== 'string' || peer.length === 0) throw new RangeError('a peer must be a non-empty string');
}

/** Validates δ and H, filling in the defaults. */
export function trustParameters(options: TrustComputeOptions = {}): { delta: number; hops: number } {
  const delta = options.delta ?? DEFAULT_DELTA;
  const hops = options.hops ?? DEFAULT_HOPS;
  if (typeof delta !== 'number' || !(delta >= 0 && delta < 1)) throw new RangeError(`delta must be in [0, 1), not ${String(delta)}`);
  if (!Number.isInteger(hops) || hops < 0 || hops > MAX_HOPS) throw new RangeError(`hops must be an integer 0..${MAX_HOPS}, not ${String(hops)}`);
  return { delta, hops };
}

/**
 * The trust inputs of one instance: direct trust, blocks, penalties and published statements, both
 * polarities. Updates are cheap (the edge arrays are rebuilt lazily by the next compute).
 */
export class TrustGraph {
  private readonly ids = new Map<string, number>();
  private readonly names: string[] = [];
  private readonly blocked = new Set<number>();
  private stamps = new Uint32Array(0);
  private stamp = 0;
  private blockVersion = 0;
  private readonly sides: Record<TrustPolarity, Side> = { abuse: new Side(), ok: new Side() };

  /** Peers interned so far (everyone ever named in an input). */
  get peerCount(): number {
    return this.names.length;
  }

  /** Polarity-wide vouch edges currently published for a polarity (self-trust and zeros left out). */
  edgeCount(polarity: TrustPolarity): number {
    checkPolarity(polarity);
    return this.sides[polarity].edgeCount;
  }

  /**
   * The admin's direct trust in `peer` for a polarity (for one label when `label` is given). The
   * peer is pinned at it, 0 included: nobody's statements raise a peer the admin set to 0 (use
   * clearDirect to let it be weighed by the flow instead).
   */
  setDirect(polarity: TrustPolarity, peer: string, value: number, label?: Label): void {
    checkPolarity(polarity);
    checkPeer(peer);
    checkUnit('direct trust', value);
    const side = this.sides[polarity];
    const id = this.intern(peer);
    if (label === undefined) {
      side.direct.set(id, value);
    } else {
      let map = side.labelDirect.get(label);
      if (map === undefined) side.labelDirect.set(label, (map = new Map()));
      map.set(id, value);
    }
  }

  /** Forgets the admin's direct trust in `peer` (the polarity-wide value, or one label's override). */
  clearDirect(polarity: TrustPolarity, peer: string, label?: Label): void {
    checkPolarity(polarity);
    const id = this.ids.get(peer);
    if (id === undefined) return;
    const side = this.sides[polarity];
    if (label === undefined) side.direct.delete(id);
    else side.labelDirect.get(label)?.delete(id);
  }

  /** The admin's block: the peer gets weight 0 in both polarities and passes nothing on. */
  block(peer: string): void {
    checkPeer(peer);
    const id = this.intern(peer);
    if (!this.blocked.has(id)) {
      this.blocked.add(id);
      this.blockVersion++;
    }
  }

  unblock(peer: string): void {
    const id = this.ids.get(peer);
    if (id !== undefined && this.blocked.delete(id)) this.blockVersion++;
  }

  isBlocked(peer: string): boolean {
    const id = this.ids.get(peer);
    return id !== undefined && this.blocked.has(id);
  }

  /** The learned penalty multiplier (spot checks) on `peer`'s own weight, in [0, 1]; 1 removes it. */
  setPenalty(polarity: TrustPolarity, peer: string, factor: number): void {
    checkPolarity(polarity);
    checkPeer(peer);
    checkUnit('penalty', factor);
    const side = this.sides[polarity];
    if (factor === 1) {
      const id = this.ids.get(peer);
      if (id !== undefined) side.penalty.delete(id);
    } else {
      side.penalty.set(this.intern(peer), factor);
    }
  }

  /**
   * Replaces everything `publisher` published for a polarity: whom it vouches for and whom it
   * distrusts, each value in [0, 1]. Entries with a `label` override the polarity-wide entry for the
   * same peer when computing for that label. Entries about the publisher itself are ignored; a peer
   * listed twice (with the same label) is an error. Empty lists withdraw the statement.
   */
  setStatement(publisher: string, polarity: TrustPolarity, entries: readonly TrustValue[], distrust: readonly TrustValue[] = []): void {
    checkPolarity(polarity);
    checkPeer(publisher);
    for (const e of entries) {
      checkPeer(e.peer);
      checkUnit('trust value', e.value);
    }
    for (const e of distrust) {
      checkPeer(e.peer);
      checkUnit('distrust value', e.value);
    }
    const side = this.sides[polarity];
    const p = this.intern(publisher);

    // Polarity-wide vouches go straight into the staging arrays; the rest into small lists. Nothing
    // is committed until every entry has been checked for duplicates (peers are interned even when
    // the call then fails: harmless, an interned peer with no trust has weight 0).
    const stage = side.pending;
    const start = stage.reserve(entries.length);
    let count = 0;
    const vouchStamp = this.nextStamp();
    const distrustStamp = this.nextStamp();
    const against: EdgeList = { targets: [], values: [] };
    let labelled: Map<string, LabelEntries> | undefined;
    let labelledSeen: Set<string> | undefined;
    const duplicate = (e: TrustValue, what: string): RangeError =>
      new RangeError(`${what} lists ${e.peer}${e.label === undefined ? '' : ` (${e.label})`} twice`);
    for (let pass = 0; pass < 2; pass++) {
      const list = pass === 0 ? entries : distrust;
      const stamp = pass === 0 ? vouchStamp : distrustStamp;
      const what = pass === 0 ? 'the statement' : 'the distrust list';
      for (const e of list) {
        const t = this.intern(e.peer);
        if (e.label === undefined) {
          if (this.stamps[t] === stamp) throw duplicate(e, what);
          this.stamps[t] = stamp;
          if (t === p || e.value === 0) continue;
          if (pass === 0) {
            count++;
            stage.targets[start + count] = t;
            stage.values[start + count] = e.value;
          } else {
            against.targets.push(t);
            against.values.push(e.value);
          }
        } else {
          const key = `${pass} ${t} ${e.label}`;
          labelledSeen ??= new Set();
          if (labelledSeen.has(key)) throw duplicate(e, what);
          labelledSeen.add(key);
          if (t === p) continue;
          // Kept even at 0: a per-label 0 overrides a polarity-wide value.
          labelled ??= new Map();
          let le = labelled.get(e.label);
          if (le === undefined) labelled.set(e.label, (le = { vouch: { targets: [], values: [] }, distrust: { targets: [], values: [] } }));
          const into = pass === 0 ? le.vouch : le.distrust;
          into.targets.push(t);
          into.values.push(e.value);
        }
      }
    }

    side.edgeCount += count - this.currentRowLength(side, p);
    stage.commit(p, start, count);
    if (against.targets.length > 0) side.distrust.set(p, against);
    else side.distrust.delete(p);
    for (const label of side.labelsOf.get(p) ?? []) side.labels.get(label)?.delete(p);
    if (labelled !== undefined) {
      side.labelsOf.set(p, [...labelled.keys()]);
      for (const [label, le] of labelled) {
        let byPublisher = side.labels.get(label);
        if (byPublisher === undefined) side.labels.set(label, (byPublisher = new Map()));
        byPublisher.set(p, le);
      }
    } else {
      side.labelsOf.delete(p);
    }
    side.version++;
    // Bound the staging garbage of publishers replaced many times between computes.
    if (stage.used > 2 * side.edgeCount + (1 << 20)) side.csr = rebuildCsr(side.csr, stage, this.names.length);
  }

  /** Withdraws `publisher`'s statement for one polarity, or for both. */
  removeStatement(publisher: string, polarity?: TrustPolarity): void {
    if (!this.ids.has(publisher)) return;
    for (const pol of polarity === undefined ? (['abuse', 'ok'] as const) : [polarity]) this.setStatement(publisher, pol, []);
  }

  /** Effective weights of every peer for one polarity (and label). */
  compute(polarity: TrustPolarity, options: TrustComputeOptions = {}): TrustWeights {
    checkPolarity(polarity);
    const { delta, hops } = trustParameters(options);
    const side = this.sides[polarity];
    const label = options.label;
    const view = this.view(side, label);
    const n = this.names.length;

    // Direct peers: the polarity-wide values with the label's overrides.
    const direct = new Map(side.direct);
    if (label !== undefined) for (const [id, v] of side.labelDirect.get(label) ?? []) direct.set(id, v);
    const penalty = new Float64Array(n).fill(1);
    for (const [id, f] of side.penalty) penalty[id] = f;

    const blockedFlags = view.blocked;
    // stop[v]: v receives no flow (direct: pinned; blocked: removed).
    const stop = new Uint8Array(n);
    stop.set(blockedFlags);
    const isDirect = new Uint8Array(n);
    const flow = new Float64Array(n);
    const acc = new Float64Array(n); // capped arrivals, before the penalty
    const cur = new Float64Array(n); // what each frontier node gained at the last hop
    const next = new Float64Array(n); // arrivals at the hop being computed
    let frontier = new Uint32Array(n);
    let candidates = new Uint32Array(n);
    let size = 0;
    for (const [id, v] of direct) {
      stop[id] = 1;
      if (blockedFlags[id] === 1) continue;
      isDirect[id] = 1;
      const w = v * penalty[id];
      flow[id] = w;
      if (w > 0) {
        cur[id] = w;
        frontier[size++] = id;
      }
    }

    // capped.get(k·n + v) = the share of v's arrivals at hop k that it kept (only where < 1).
    const capped = new Map<number, number>();
    const { base, scale, overlayRowOf, overlay, overlayScale } = view;
    const rows = base.rows;
    for (let k = 1; k <= hops && size > 0 && delta > 0; k++) {
      let count = 0;
      for (let i = 0; i < size; i++) {
        const u = frontier[i];
        if (u >= rows) continue;
        let csr = base;
        let row = u;
        let amount = delta * cur[u];
        const o = overlayRowOf === null ? -1 : overlayRowOf[u];
        if (o >= 0) {
          csr = overlay!;
          row = o;
          amount *= overlayScale![o];
        } else {
          amount *= scale[u];
        }
        const targets = csr.targets;
        const values = csr.values;
        for (let e = csr.offsets[row], end = csr.offsets[row + 1]; e < end; e++) {
          const v = targets[e];
          if (stop[v] === 1) continue;
          const add = amount * values[e];
          if (!(add > 0)) continue;
          if (next[v] === 0) candidates[count++] = v;
          next[v] += add;
        }
      }
      size = 0;
      for (let i = 0; i < count; i++) {
        const v = candidates[i];
        const arrived = next[v];
        next[v] = 0;
        const room = 1 - acc[v];
        let kept = arrived;
        if (arrived >= room) {
          // The cap: keep what fits under 1, and record the share kept for explanations.
          kept = room > 0 ? room : 0;
          acc[v] = 1;
          if (kept < arrived) capped.set(k * n + v, kept / arrived);
        } else {
          acc[v] += kept;
        }
        if (kept <= 0) continue;
        const gained = kept * penalty[v];
        flow[v] = Math.min(1, flow[v] + gained);
        if (gained > 0) {
          cur[v] = gained;
          candidates[size++] = v; // compacts in place: size ≤ i
        }
      }
      const t = frontier;
      frontier = candidates;
      candidates = t;
    }

    // Published distrust: one hop, from flow weights, floored at 0; pinned peers are not reduced.
    let weight = flow;
    const { distrustSrc, distrustTgt, distrustVal } = view;
    if (distrustSrc.length > 0 && delta > 0) {
      weight = flow.slice();
      for (let i = 0; i < distrustSrc.length; i++) {
        const t = distrustTgt[i];
        if (stop[t] === 1) continue;
        const r = delta * flow[distrustSrc[i]] * distrustVal[i];
        if (r > 0) weight[t] = Math.max(0, weight[t] - r);
      }
    }

    return new TrustWeights({
      polarity,
      label,
      delta,
      hops,
      n,
      ids: this.ids,
      names: this.names,
      view,
      weight,
      flow,
      isDirect,
      penalty,
      capped,
    });
  }

  private intern(peer: string): number {
    let id = this.ids.get(peer);
    if (id === undefined) {
      id = this.names.length;
      this.ids.set(peer, id);
      this.names.push(peer);
      if (id >= this.stamps.length) {
        const stamps = new Uint32Array(Math.max(1024, this.stamps.length * 2));
        stamps.set(this.stamps);
        this.stamps = stamps;
      }
    }
    return id;
  }

  /** A fresh mark for `stamps` (duplicate detection without a Set per statement). */
  private nextStamp(): number {
    if (this.stamp === 0xffffffff) {
      this.stamps.fill(0);
      this.stamp = 0;
    }
    return ++this.stamp;
  }

  private currentRowLength(side: Side, p: number): number {
    const pending = side.pending.length(p);
    if (pending !== undefined) return pending;
    return p < side.csr.rows ? side.csr.offsets[p + 1] - side.csr.offsets[p] : 0;
  }

  /** The edges of (polarity, label), rebuilt if anything changed since the cached one. */
  private view(side: Side, label: Label | undefined): View {
    const key = label ?? '';
    const cached = side.views.get(key);
    if (cached !== undefined && cached.version === side.version && cached.blockVersion === this.blockVersion) return cached.view;
    if (side.pending.rows.size > 0) side.csr = rebuildCsr(side.csr, side.pending, this.names.length);
    const baseEntry = key === '' ? cached : side.views.get('');
    let baseView: View;
    if (baseEntry !== undefined && baseEntry.version === side.version && baseEntry.blockVersion === this.blockVersion) {
      baseView = baseEntry.view;
    } else {
      const blocked = new Uint8Array(this.names.length);
      for (const id of this.blocked) blocked[id] = 1;
      const distrust = collectDistrust(side.distrust, null, blocked);
      baseView = {
        base: side.csr,
        scale: rowScales(side.csr, blocked),
        overlayRowOf: null,
        overlay: null,
        overlayScale: null,
        blocked,
        distrustSrc: distrust.src,
        distrustTgt: distrust.tgt,
        distrustVal: distrust.val,
        reverse: null,
      };
      side.views.set('', { version: side.version, blockVersion: this.blockVersion, view: baseView });
    }
    if (key === '') return baseView;
    const byPublisher = side.labels.get(key);
    let view = baseView;
    if (byPublisher !== undefined && byPublisher.size > 0) view = labelView(baseView, side.distrust, byPublisher);
    side.views.set(key, { version: side.version, blockVersion: this.blockVersion, view });
    return view;
  }
}

/** `graph.compute(options.polarity, options)`. */
export function computeTrust(graph: TrustGraph, options: TrustComputeOptions & { polarity: TrustPolarity }): TrustWeights {
  return graph.compute(options.polarity, options);
}

/** A new CSR: the rows of `old`, with the publishers staged in `pending` replaced. Clears `pending`. */
function rebuildCsr(old: Csr, pending: Staging, rows: number): Csr {
  const changed = Uint32Array.from(pending.rows.keys()).sort();
  const stageTargets = pending.targets;
  const stageValues = pending.values;
  const offsets = new Uint32Array(rows + 1);
  const oldOffsets = old.offsets;
  for (let u = 0; u < old.rows; u++) offsets[u + 1] = oldOffsets[u + 1] - oldOffsets[u];
  for (const [p, start] of pending.rows) offsets[p + 1] = stageTargets[start];
  for (let u = 0; u < rows; u++) offsets[u + 1] += offsets[u];
  const total = offsets[rows];
  const targets = new Uint32Array(total);
  const values = new Float64Array(total);
  // Unchanged rows come in runs: copy each run at once (its layout only shifts).
  const copyRun = (from: number, to: number): void => {
    const end = Math.min(to, old.rows);
    if (from >= end) return;
    const a = oldOffsets[from];
    const b = oldOffsets[end];
    if (b > a) {
      targets.set(old.targets.subarray(a, b), offsets[from]);
      values.set(old.values.subarray(a, b), offsets[from]);
    }
  };
  let next = 0;
  for (let i = 0; i < changed.length; i++) {
    const p = changed[i];
    copyRun(next, p);
    const start = pending.rows.get(p)!;
    const length = stageTargets[start];
    const at = offsets[p];
    for (let j = 1; j <= length; j++) {
      targets[at + j - 1] = stageTargets[start + j];
      values[at + j - 1] = stageValues[start + j];
    }
    next = p + 1;
  }
  copyRun(next, rows);
  pending.clear();
  return { rows, offsets, targets, values };
}

/** Per-row split normalisation: 1 when the row's values (blocked targets left out) sum to ≤ 1, else 1/sum. */
function rowScales(csr: Csr, blocked: Uint8Array): Float64Array {
  const scale = new Float64Array(csr.rows);
  const { offsets, targets, values } = csr;
  for (let u = 0; u < csr.rows; u++) {
    let sum = 0;
    for (let e = offsets[u], end = offsets[u + 1]; e < end; e++) if (blocked[targets[e]] !== 1) sum += values[e];
    scale[u] = sum > 1 ? 1 / sum : 1;
  }
  return scale;
}

function collectDistrust(
  baseDistrust: Map<number, EdgeList>,
  byPublisher: Map<number, LabelEntries> | null,
  blocked: Uint8Array,
): { src: Uint32Array; tgt: Uint32Array; val: Float64Array } {
  const src: number[] = [];
  const tgt: number[] = [];
  const val: number[] = [];
  const add = (p: number, list: EdgeList): void => {
    for (let i = 0; i < list.targets.length; i++) {
      const t = list.targets[i];
      if (list.values[i] > 0 && blocked[t] !== 1) {
        src.push(p);
        tgt.push(t);
        val.push(list.values[i]);
      }
    }
  };
  for (const [p, list] of baseDistrust) {
    if (blocked[p] === 1) continue;
    const over = byPublisher?.get(p);
    add(p, over === undefined ? list : merge(list, over.distrust));
  }
  if (byPublisher !== null) {
    for (const [p, le] of byPublisher) if (!baseDistrust.has(p) && blocked[p] !== 1) add(p, le.distrust);
  }
  return { src: Uint32Array.from(src), tgt: Uint32Array.from(tgt), val: Float64Array.from(val) };
}

/** `base` with the entries of `over` replacing those for the same peer (zeros dropped). */
function merge(base: EdgeList, over: EdgeList): EdgeList {
  if (over.targets.length === 0) return base;
  const values = new Map<number, number>();
  for (let i = 0; i < base.targets.length; i++) values.set(base.targets[i], base.values[i]);
  for (let i = 0; i < over.targets.length; i++) values.set(over.targets[i], over.values[i]);
  const out: EdgeList = { targets: [], values: [] };
  for (const [t, v] of values) {
    if (v > 0) {
      out.targets.push(t);
      out.values.push(v);
    }
  }
  return out;
}

/** The base view with the rows of publishers that have per-label entries replaced. */
function labelView(baseView: View, baseDistrust: Map<number, EdgeList>, byPublisher: Map<number, LabelEntries>): View {
  const { base, blocked } = baseView;
  const publishers = [...byPublisher.keys()].sort((a, b) => a - b);
  const overlayRowOf = new Int32Array(base.rows).fill(-1);
  const lists: EdgeList[] = [];
  for (const p of publishers) {
    const over = byPublisher.get(p)!.vouch;
    if (over.targets.length === 0 || p >= base.rows) continue;
    const row: EdgeList = { targets: [], values: [] };
    for (let e = base.offsets[p]; e < base.offsets[p + 1]; e++) {
      row.targets.push(base.targets[e]);
      row.values.push(base.values[e]);
    }
    overlayRowOf[p] = lists.length;
    lists.push(merge(row, over));
  }
  const offsets = new Uint32Array(lists.length + 1);
  lists.forEach((l, i) => (offsets[i + 1] = offsets[i] + l.targets.length));
  const overlay: Csr = {
    rows: lists.length,
    offsets,
    targets: new Uint32Array(offsets[lists.length]),
    values: new Float64Array(offsets[lists.length]),
  };
  lists.forEach((l, i) => {
    overlay.targets.set(l.targets, offsets[i]);
    overlay.values.set(l.values, offsets[i]);
  });
  const distrust = collectDistrust(baseDistrust, byPublisher, blocked);
  return {
    ...baseView,
    overlayRowOf: lists.length > 0 ? overlayRowOf : null,
    overlay: lists.length > 0 ? overlay : null,
    overlayScale: lists.length > 0 ? rowScales(overlay, blocked) : null,
    distrustSrc: distrust.src,
    distrustTgt: distrust.tgt,
    distrustVal: distrust.val,
    reverse: null,
  };
}

/** In-edges of the view with their shares (value · row scale), edges to blocked nodes left out. */
function reverseOf(view: View): Csr {
  if (view.reverse !== null) return view.reverse;
  const { base, scale, overlayRowOf, overlay, overlayScale, blocked } = view;
  const rows = base.rows;
  const offsets = new Uint32Array(rows + 1);
  // Two passes over the effective rows (overlay rows where a label replaced them): count, then fill.
  for (let pass = 0; pass < 2; pass++) {
    const fill = pass === 1 ? offsets.slice(0, rows) : null;
    const sources = pass === 1 ? new Uint32Array(offsets[rows]) : null;
    const shares = pass === 1 ? new Float64Array(offsets[rows]) : null;
    for (let u = 0; u < rows; u++) {
      const o = overlayRowOf === null ? -1 : overlayRowOf[u];
      const csr = o >= 0 ? overlay! : base;
      const row = o >= 0 ? o : u;
      const s = o >= 0 ? overlayScale![o] : scale[u];
      const { targets, values } = csr;
      for (let e = csr.offsets[row], end = csr.offsets[row + 1]; e < end; e++) {
        const v = targets[e];
        if (blocked[v] === 1) continue;
        if (fill === null) {
          offsets[v + 1]++;
        } else {
          const at = fill[v]++;
          sources![at] = u;
          shares![at] = values[e] * s;
        }
      }
    }
    if (pass === 0) {
      for (let v = 0; v < rows; v++) offsets[v + 1] += offsets[v];
    } else {
      view.reverse = { rows, offsets, targets: sources!, values: shares! };
    }
  }
  return view.reverse!;
}

interface Partial {
  node: number;
  prev: Partial | null;
  part: number;
}

/** Inserts into a list kept sorted by `part`, largest first, at most `k` long. */
function insertTop(list: Partial[], item: Partial, k: number): void {
  if (list.length === k && list[k - 1].part >= item.part) return;
  let i = list.length < k ? list.length : k - 1;
  if (list.length < k) list.push(item);
  while (i > 0 && list[i - 1].part < item.part) {
    list[i] = list[i - 1];
    i--;
  }
  list[i] = item;
}

interface Snapshot {
  polarity: TrustPolarity;
  label: Label | undefined;
  delta: number;
  hops: number;
  n: number;
  ids: ReadonlyMap<string, number>;
  names: readonly string[];
  view: View;
  weight: Float64Array;
  flow: Float64Array;
  isDirect: Uint8Array;
  penalty: Float64Array;
  capped: Map<number, number>;
}

/** The result of one compute: an immutable snapshot of every peer's weight for one polarity (and label). */
export class TrustWeights {
  readonly polarity: TrustPolarity;
  readonly label: Label | undefined;
  readonly delta: number;
  readonly hops: number;
  readonly #s: Snapshot;
  #size = -1;

  /** @internal Made by TrustGraph.compute. */
  constructor(snapshot: Snapshot) {
    this.#s = snapshot;
    this.polarity = snapshot.polarity;
    this.label = snapshot.label;
    this.delta = snapshot.delta;
    this.hops = snapshot.hops;
  }

  /** The effective weight of `peer` in [0, 1]; 0 for peers never heard of. */
  weight(peer: string): number {
    const id = this.#id(peer);
    return id === undefined ? 0 : this.#s.weight[id];
  }

  /** Whether `peer` is one of the admin's direct peers here (pinned, not blocked). */
  isDirect(peer: string): boolean {
    const id = this.#id(peer);
    return id !== undefined && this.#s.isDirect[id] === 1;
  }

  /** Peers with a positive weight. */
  get size(): number {
    if (this.#size < 0) {
      let count = 0;
      for (const w of this.#s.weight) if (w > 0) count++;
      this.#size = count;
    }
    return this.#size;
  }

  /** Every peer with a positive weight, as [peer, weight], in the order peers were first seen. */
  *entries(): IterableIterator<[string, number]> {
    const { weight, names, n } = this.#s;
    for (let id = 0; id < n; id++) if (weight[id] > 0) yield [names[id], weight[id]];
  }

  /**
   * Why `peer` has its weight: pinned or not, penalty, the top contributing walks from direct peers
   * (recomputed on demand within the peer's H-hop backward cone) and the distrust that lowered it.
   */
  explain(peer: string, options: ExplainOptions = {}): TrustExplanation {
    const maxPaths = options.maxPaths ?? DEFAULT_EXPLAIN_PATHS;
    if (!Number.isInteger(maxPaths) || maxPaths < 0) throw new RangeError(`maxPaths must be a non-negative integer, not ${String(maxPaths)}`);
    const s = this.#s;
    const id = this.#id(peer);
    if (id === undefined) {
      return { peer, weight: 0, direct: false, blocked: false, penalty: 1, flowWeight: 0, paths: [], distrust: [] };
    }
    const direct = s.isDirect[id] === 1;
    const flowWeight = s.flow[id];
    let paths: TrustPath[] = [];
    if (maxPaths > 0 && flowWeight > 0) {
      paths = direct ? [{ via: [peer], contribution: flowWeight }] : this.#topPaths(id, maxPaths);
    }
    const distrust: TrustDistrust[] = [];
    if (!direct) {
      const { distrustSrc, distrustTgt, distrustVal } = s.view;
      for (let i = 0; i < distrustTgt.length; i++) {
        if (distrustTgt[i] !== id) continue;
        const reduction = s.delta * s.flow[distrustSrc[i]] * distrustVal[i];
        if (reduction > 0) distrust.push({ by: s.names[distrustSrc[i]], value: distrustVal[i], reduction });
      }
      distrust.sort((a, b) => b.reduction - a.reduction);
    }
    return {
      peer,
      weight: s.weight[id],
      direct,
      blocked: id < s.view.blocked.length && s.view.blocked[id] === 1,
      penalty: s.penalty[id],
      flowWeight,
      paths,
      distrust,
    };
  }

  #id(peer: string): number | undefined {
    const id = this.#s.ids.get(peer);
    return id !== undefined && id < this.#s.n ? id : undefined;
  }

  /**
   * The k largest walk contributions ending at v: a backward BFS finds the nodes that reach v within
   * H hops (through positive-weight, non-pinned nodes), then a forward k-best DP per (node, hop)
   * retraces the flow inside that cone. Keeping the k best prefixes per (node, hop) is exact: what a
   * walk gains after (node, hop) does not depend on how it got there.
   */
  #topPaths(v: number, k: number): TrustPath[] {
    const s = this.#s;
    const { delta, hops, flow, isDirect, penalty, capped, n, view } = s;
    const reverse = reverseOf(view);
    const rows = view.base.rows;

    const dist = new Map<number, number>([[v, 0]]);
    let level = [v];
    for (let j = 0; j < hops && level.length > 0; j++) {
      const nextLevel: number[] = [];
      for (const x of level) {
        if (isDirect[x] === 1 || x >= rows) continue; // a walk starts at a direct peer: nothing behind it
        for (let e = reverse.offsets[x]; e < reverse.offsets[x + 1]; e++) {
          const u = reverse.targets[e];
          if (flow[u] > 0 && !dist.has(u)) {
            dist.set(u, j + 1);
            nextLevel.push(u);
          }
        }
      }
      level = nextLevel;
    }

    let layer = new Map<number, Partial[]>();
    for (const [u, d] of dist) if (isDirect[u] === 1 && d <= hops) layer.set(u, [{ node: u, prev: null, part: flow[u] }]);
    const found: Partial[] = [];
    const { base, scale, overlayRowOf, overlay, overlayScale } = view;
    for (let hop = 1; hop <= hops && layer.size > 0; hop++) {
      const nextLayer = new Map<number, Partial[]>();
      for (const [x, parts] of layer) {
        if (x >= rows) continue;
        const o = overlayRowOf === null ? -1 : overlayRowOf[x];
        const csr = o >= 0 ? overlay! : base;
        const row = o >= 0 ? o : x;
        const rowScale = o >= 0 ? overlayScale![o] : scale[x];
        for (let e = csr.offsets[row]; e < csr.offsets[row + 1]; e++) {
          const y = csr.targets[e];
          const dy = dist.get(y);
          if (dy === undefined || hop + dy > hops || isDirect[y] === 1 || view.blocked[y] === 1) continue;
          const factor = delta * csr.values[e] * rowScale * (capped.get(hop * n + y) ?? 1) * penalty[y];
          if (!(factor > 0)) continue;
          let list = nextLayer.get(y);
          if (list === undefined) nextLayer.set(y, (list = []));
          for (const part of parts) {
            const item: Partial = { node: y, prev: part, part: part.part * factor };
            insertTop(list, item, k);
            if (y === v) insertTop(found, item, k);
          }
        }
      }
      layer = nextLayer;
    }

    return found.map((p) => {
      const via: string[] = [];
      for (let q: Partial | null = p; q !== null; q = q.prev) via.push(s.names[q.node]);
      return { via: via.reverse(), contribution: p.part };
    });
  }
}

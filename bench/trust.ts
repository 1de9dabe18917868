// Trust-flow engine (server/trust/flow.ts) on a synthetic federation of 100k peers and 1M published
// trust edges: power-law out-degrees (Pareto tail, exponent ~2.1, capped at 10k), targets skewed
// towards popular peers, random values in (0, 1] (so most rows are normalised), 50 direct peers
// drawn from the 1000 largest publishers.
// - trust_graph_build_ms_100k_1M: from an empty TrustGraph to weights (every setStatement call, the
//   lazy CSR build and the first compute);
// - trust_recompute_ms_100k_peers_1M_edges: median of 5 computes of the built graph (δ = 0.5, H = 3);
// - trust_recompute_after_statement_ms_100k_1M: median of 5 computes each after one peer replaced
//   its statement (CSR rebuild + compute: what a TrustStatement arriving costs);
// - trust_explain_{first,median,p99}_ms_100k_1M: TrustWeights.explain (top 3 paths) of random
//   reached peers; the first call also builds the reverse adjacency;
// - trust_graph_mb_100k_1M: heap used + array buffers, delta over building the graph (peer URI
//   strings included; the graph and a TrustWeights alive, before any explain: the reverse
//   adjacency that explanations build adds about 12 bytes per edge), measured after a GC.
// Prints figures, asserts nothing. Single-threaded.
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { TrustGraph, type TrustValue } from '../server/trust/flow.js';
import { round, type BenchResult } from './result.js';
import { seededRandom } from '../test/helpers/random.js';

const PEERS = 100_000;
const EDGES = 1_000_000;
const DIRECT = 50;
const RUNS = 5;

function gcNow(): void {
  try {
    setFlagsFromString('--expose-gc');
    (runInNewContext('gc') as () => void)();
  } catch {
    // No gc available: the memory figure gets noisier, nothing else changes.
  }
}

/** Heap used + array buffers (typed-array contents live outside the JS heap), after a full GC. */
async function memory(): Promise<number> {
  for (let i = 0; i < 2; i++) {
    gcNow();
    await new Promise((resolve) => setImmediate(resolve));
  }
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

/** Out-degrees with a power-law tail summing to exactly `total`. */
function powerLawDegrees(n: number, total: number, random: () => number): Uint32Array {
  const raw = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    raw[i] = Math.min(10_000, (1 - random()) ** (-1 / 1.1));
    sum += raw[i];
  }
  const degrees = new Uint32Array(n);
  let assigned = 0;
  for (let i = 0; i < n; i++) {
    degrees[i] = Math.min(n - 1, Math.floor((raw[i] * total) / sum));
    assigned += degrees[i];
  }
  for (let i = 0; assigned < total; i = (i + 1) % n) {
    if (degrees[i] < n - 1) {
      degrees[i]++;
      assigned++;
    }
  }
  return degrees;
}

/** Distinct targets for publisher `p`, skewed towards low ids (popular peers). */
function targetsFor(p: number, degree: number, random: () => number, seen: Set<number>): number[] {
  seen.clear();
  const out: number[] = [];
  while (out.length < degree) {
    const t = degree > PEERS / 4 ? Math.floor(random() * PEERS) : Math.floor(PEERS * random() ** 2);
    if (t === p || seen.has(t)) continue;
    seen.add(t);
    out.push(t);
  }
  return out;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export async function benchTrust(): Promise<BenchResult[]> {
  const random = seededRandom(0x7457);
  const before = await memory();

  let names: string[] | null = Array.from({ length: PEERS }, (_, i) => `https://peer-${i}.example/actor`);
  let degrees: Uint32Array | null = powerLawDegrees(PEERS, EDGES, random);
  const statements: TrustValue[][] = [];
  const seen = new Set<number>();
  // The inputs, generated ahead so the build time is the graph's own work.
  for (let p = 0; p < PEERS; p++) {
    statements.push(targetsFor(p, degrees[p], random, seen).map((t) => ({ peer: names![t], value: 1 - random() })));
  }
  // Admins trust large instances: direct peers drawn from the 1000 largest publishers.
  const largest = Array.from({ length: PEERS }, (_, i) => i)
    .sort((a, b) => degrees![b] - degrees![a])
    .slice(0, 1000);
  const direct = new Set<number>();
  while (direct.size < DIRECT) direct.add(largest[Math.floor(random() * largest.length)]);

  const t0 = performance.now();
  const graph = new TrustGraph();
  for (const d of direct) graph.setDirect('abuse', names[d], 0.5 + random() / 2);
  for (let p = 0; p < PEERS; p++) if (statements[p].length > 0) graph.setStatement(names[p], 'abuse', statements[p]);
  const first = graph.compute('abuse');
  const buildMs = performance.now() - t0;
  const reached = first.size;

  const recompute: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t = performance.now();
    graph.compute('abuse');
    recompute.push(performance.now() - t);
  }
  const afterStatement: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const p = Math.floor(random() * PEERS);
    const entries = targetsFor(p, 10, random, seen).map((t) => ({ peer: names![t], value: random() }));
    const t = performance.now();
    graph.setStatement(names[p], 'abuse', entries);
    graph.compute('abuse');
    afterStatement.push(performance.now() - t);
  }

  statements.length = 0;
  names = null;
  degrees = null;
  const graphMb = ((await memory()) - before) / 1e6;
  // Explanations: the first builds the reverse adjacency; the rest search backwards from the peer.
  const weights = graph.compute('abuse');
  const reachedPeers = [...weights.entries()].filter(([peer]) => !weights.isDirect(peer)).map(([peer]) => peer);
  let t = performance.now();
  weights.explain(reachedPeers[0]);
  const firstExplainMs = performance.now() - t;
  const explain: number[] = [];
  for (let i = 0; i < 200; i++) {
    const peer = reachedPeers[Math.floor(random() * reachedPeers.length)];
    t = performance.now();
    weights.explain(peer);
    explain.push(performance.now() - t);
  }

  if (graph.peerCount !== PEERS) throw new Error('bench graph lost peers');

  return [
    { name: 'trust_recompute_ms_100k_peers_1M_edges', value: round(median(recompute), 2), unit: 'ms' },
    { name: 'trust_recompute_after_statement_ms_100k_1M', value: round(median(afterStatement), 2), unit: 'ms' },
    { name: 'trust_graph_build_ms_100k_1M', value: round(buildMs, 1), unit: 'ms' },
    { name: 'trust_explain_first_ms_100k_1M', value: round(firstExplainMs, 2), unit: 'ms' },
    { name: 'trust_explain_median_ms_100k_1M', value: round(median(explain), 3), unit: 'ms' },
    { name: 'trust_explain_p99_ms_100k_1M', value: round([...explain].sort((a, b) => a - b)[Math.floor(0.99 * explain.length)], 3), unit: 'ms' },
    { name: 'trust_graph_mb_100k_1M', value: round(graphMb, 1), unit: 'MB' },
    { name: 'trust_reached_peers_100k_1M', value: reached, unit: 'peers' },
  ];
}

// Run directly: `node dist/bench/trust.js`.
if (import.meta.url === `file://${process.argv[1]}`) {
  for (const { name, value, unit } of await benchTrust()) console.log(`${name} ${value} ${unit}`);
}

// Federation simulation: 20 instances in one process, each running the REAL decision code
// (server/trust/decide.ts, DEFAULT_POLICY) on an in-memory verdict exchange with network latency,
// in simulated time. `benchFederationSim()` prints the figures; `simulate()` runs one configuration.
//
// Model (all draws from one seeded generator, so every run gives the same figures). The main
// scenario is the deployment the operator guide recommends; each what-if changes one thing:
// - each instance follows (and trusts, weight 0.6–0.9 for both polarities) 3–5 random peers and
//   receives their verdicts; weights are the direct ones (no trust flow: two hops at δ = 0.5 split
//   over 3–5 peers would give ~0.1, far below a block's evidence floor). With `hubs` (1 in the main
//   scenario), large instances follow everyone and everyone follows them (trust 0.9–1): small
//   instances subscribed to a larger one;
// - re-attestation (policy `reattest`, on by default; decision 13): an instance whose peers'
//   verdicts decided publishes a consensus verdict with its basis to its followers, and answers a
//   pull with one made on demand. (Not modelled: retracting it once the instance scans itself, which
//   would only lower the figures; a spot check's own verdicts then count alongside it, capped.)
// - every scanner runs two classifiers, `sim-nsfw` v1 and `sim-clip` v1 (fake ones: the image's
//   true label, confidence 0.9), as with VOUCH_CLASSIFIER=default,inception, because `allow` needs
//   two independent classifiers (or a human) and a classifier counts once however many instances ran
//   it; without `scanWithAll`, half the scanners run one and half the other;
// - 20 000 posts of 2 000 unique images (85 % ok), popularity Zipf(1.1), each arriving at one random
//   instance (Poisson arrivals over one simulated hour); every copy is an exact match (distance 0);
// - federated copies (with `federatePosts`) that need a scan are scanned `remoteScanDelayS` later
//   (the policy's deferScanSeconds), and only if still undecided then; the origin scans at once;
// - with `pullOnMiss` (on in the main scenario), an instance about to scan first asks the peers it
//   follows for their own verdicts, and scans only if those do not settle it;
// - an instance deciding `unknown` or `review` scans at once: its verdict becomes local and is
//   published to its followers, arriving after an exponential delay (mean 2 s) at each; of the
//   images an instance decided thanks to peers' verdicts, 2 % are re-scanned (spot check; one draw per
//   instance and image, so a popular image's reposts do not multiply the draws) and published too.
//
// Figures: scans_per_unique_image (scans / distinct images posted; target ≤ 1.1) and its breakdown
// by reason and by true label; scans_per_unique_image_naive (every instance scanning each image it
// sees once: distinct (instance, image) pairs / distinct images; 20 only if every image reaches
// every instance); verdict_propagation_p95_s (publication to arrival at the last follower);
// decisions_per_s (wall-clock decide() throughput, JIT warmed up); and what-ifs that change one
// assumption each, to show what drives the scan figure.
import { decide, DECISION_LABELS, DEFAULT_POLICY, parsePolicy, type Decision, type Policy, type MatchedVerdict, type PeerWeight, type WeightFn } from '../server/trust/decide.js';
import type { Label } from '../shared/vocab/verdict.js';
import { percentile, round, type BenchResult } from './result.js';
import { seededRandom } from '../test/helpers/random.js';

export interface SimConfig {
  instances: number;
  posts: number;
  uniqueImages: number;
  zipfS: number;
  durationS: number;
  followsMin: number;
  followsMax: number;
  weightMin: number;
  weightMax: number;
  meanDelayS: number;
  spotCheck: number;
  /** Classifiers the instances run, assigned round-robin... */
  classifiers: Array<{ name: string; version: string }>;
  /** ...or every scanner runs all of them (one scan, one verdict per classifier). */
  scanWithAll: boolean;
  /**
   * Large instances ("hubs"): the first `hubs` instances follow every other instance, and every
   * instance follows every hub, trusting it `hubWeightMin`–`hubWeightMax` (on top of its random follows).
   */
  hubs: number;
  hubWeightMin: number;
  hubWeightMax: number;
  /** Each post also reaches every other instance (as a federated post does), after the same kind of delay. */
  federatePosts: boolean;
  /**
   * A federated copy nobody waits on that needs a scan is scanned this long later, and only if
   * still undecided then (policy `deferScanSeconds`); 0 scans at once.
   */
  remoteScanDelayS: number;
  /** Before scanning, ask the peers it follows for their own verdicts (the product's pull-on-miss). */
  pullOnMiss: boolean;
  /**
   * Re-attest (policy `reattest`): an instance whose peers' verdicts decided publishes a consensus
   * verdict with its basis; asked by pull-on-miss, it answers with one made on demand.
   */
  reattest: boolean;
  seed: number;
}

export const DEFAULT_SIM: SimConfig = {
  instances: 20,
  posts: 20_000,
  uniqueImages: 2_000,
  zipfS: 1.1,
  durationS: 3_600,
  followsMin: 3,
  followsMax: 5,
  weightMin: 0.6,
  weightMax: 0.9,
  meanDelayS: 2,
  spotCheck: 0.02,
  classifiers: [
    { name: 'sim-nsfw', version: '1' },
    { name: 'sim-clip', version: '1' },
  ],
  scanWithAll: true,
  hubs: 1,
  hubWeightMin: 0.9,
  hubWeightMax: 1,
  federatePosts: false,
  remoteScanDelayS: DEFAULT_POLICY.deferScanSeconds,
  pullOnMiss: true,
  reattest: true,
  seed: 20_240_801,
};

export interface SimStats {
  uniqueImages: number;
  scans: number;
  scansByReason: { noPeerVerdict: number; insufficient: number; review: number; spotCheck: number };
  /** Scans a pull-on-miss spared. */
  pulled: number;
  /** Consensus verdicts published (re-attestations). */
  consensus: number;
  scansOk: number;
  scansAbuse: number;
  uniqueOk: number;
  uniqueAbuse: number;
  naivePairs: number;
  decisions: number;
  decideSeconds: number;
  outcomes: Record<string, number>;
  /** block of an ok image or allow of an abusive one. */
  wrong: number;
  propagationS: number[];
}

/**
 * The default policy, with the simulated classifiers seeing every label (they flag gore, hate and
 * spam too, unlike the bundled adult-content models): what the decision rules make of scans.
 */
const SIM_POLICY: Policy = parsePolicy({
  ...DEFAULT_POLICY,
  classifierScopes: Object.fromEntries(DEFAULT_SIM.classifiers.map((c) => [c.name, [...DECISION_LABELS]])),
});

/** True labels: mostly harmless, as on a real federation. */
const TRUTH: Array<[Label, number]> = [
  ['ok', 0.85],
  ['sexual', 0.08],
  ['gore', 0.03],
  ['hate', 0.02],
  ['spam', 0.015],
  ['csam', 0.005],
];

/** 0: a post arrives (remote: federated from another instance); 1: verdicts arrive; 2: a deferred scan falls due. */
type Event =
  | { t: number; kind: 0; instance: number; image: number; remote: boolean }
  | { t: number; kind: 1; instance: number; verdicts: MatchedVerdict[]; image: number }
  | { t: number; kind: 2; instance: number; image: number };

/** A binary min-heap on event time. */
class Queue {
  private items: Event[] = [];
  get size(): number {
    return this.items.length;
  }
  push(e: Event): void {
    const a = this.items;
    a.push(e);
    let i = a.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (a[parent].t <= e.t) break;
      a[i] = a[parent];
      i = parent;
    }
    a[i] = e;
  }
  pop(): Event {
    const a = this.items;
    const top = a[0];
    const last = a.pop()!;
    if (a.length > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= a.length) break;
        const c = l + 1 < a.length && a[l + 1].t < a[l].t ? l + 1 : l;
        if (a[c].t >= last.t) break;
        a[i] = a[c];
        i = c;
      }
      a[i] = last;
    }
    return top;
  }
}

interface Instance {
  issuer: string;
  classifiers: Array<{ name: string; version: string }>;
  weight: WeightFn;
  followers: number[];
  follows: number[];
  /** image -> verdicts this instance holds (its own, and those delivered from peers it follows). */
  known: Map<number, MatchedVerdict[]>;
  seen: Set<number>;
  /** Images this instance already drew a spot check for. */
  drawn: Set<number>;
  /** Images with a deferred scan pending. */
  deferred: Set<number>;
}

export function simulate(config: SimConfig = DEFAULT_SIM): SimStats {
  const random = seededRandom(config.seed);
  const uniform = (lo: number, hi: number) => lo + (hi - lo) * random();
  const epoch = Date.parse('2025-01-01T00:00:00Z');

  // Images: a true label each, and Zipf popularity by rank.
  const truth: Label[] = Array.from({ length: config.uniqueImages }, () => {
    let x = random();
    for (const [label, share] of TRUTH) if ((x -= share) < 0) return label;
    return 'ok';
  });
  const cdf = new Float64Array(config.uniqueImages);
  let total = 0;
  for (let k = 0; k < config.uniqueImages; k++) cdf[k] = total += (k + 1) ** -config.zipfS;
  const zipf = () => {
    const x = random() * total;
    let lo = 0;
    let hi = cdf.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid] < x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };

  // Instances and the follow graph: i follows f means f's verdicts reach i, weighted by i's trust in f.
  const instances: Instance[] = Array.from({ length: config.instances }, (_, i) => ({
    issuer: `https://i${i}.sim`,
    classifiers: config.scanWithAll ? config.classifiers : [config.classifiers[i % config.classifiers.length]],
    weight: () => ({ weight: 0 }),
    followers: [],
    follows: [],
    known: new Map(),
    seen: new Set(),
    drawn: new Set(),
    deferred: new Set(),
  }));
  instances.forEach((me, i) => {
    const others = instances.map((_, j) => j).filter((j) => j !== i);
    for (let k = others.length - 1; k > 0; k--) {
      const j = Math.floor(random() * (k + 1));
      [others[k], others[j]] = [others[j], others[k]];
    }
    const count = Math.min(others.length, config.followsMin + Math.floor(random() * (config.followsMax - config.followsMin + 1)));
    const isHub = (j: number) => j < config.hubs;
    // A hub follows everyone; everyone follows every hub; and the random follows besides.
    const follows = isHub(i) ? others : [...new Set([...others.filter(isHub), ...others.slice(0, count)])];
    const table = new Map<string, PeerWeight>();
    for (const f of follows) {
      const weight = isHub(f) ? uniform(config.hubWeightMin, config.hubWeightMax) : uniform(config.weightMin, config.weightMax);
      const issuer = instances[f].issuer;
      table.set(issuer, { weight, paths: [{ via: [issuer], contribution: weight }] });
      instances[f].followers.push(i);
      me.follows.push(f);
    }
    const none: PeerWeight = { weight: 0 };
    me.weight = (issuer) => table.get(issuer) ?? none;
  });

  const stats: SimStats = {
    uniqueImages: 0,
    scans: 0,
    scansByReason: { noPeerVerdict: 0, insufficient: 0, review: 0, spotCheck: 0 },
    pulled: 0,
    consensus: 0,
    scansOk: 0,
    scansAbuse: 0,
    uniqueOk: 0,
    uniqueAbuse: 0,
    naivePairs: 0,
    decisions: 0,
    decideSeconds: 0,
    outcomes: { block: 0, allow: 0, review: 0, unknown: 0 },
    wrong: 0,
    propagationS: [],
  };

  const queue = new Queue();
  let t = 0;
  for (let n = 0; n < config.posts; n++) {
    t += -Math.log(1 - random()) * (config.durationS / config.posts);
    const origin = Math.floor(random() * config.instances);
    const image = zipf();
    queue.push({ t, kind: 0, instance: origin, image, remote: false });
    if (config.federatePosts) {
      for (let i = 0; i < config.instances; i++) {
        if (i !== origin) queue.push({ t: t - Math.log(1 - random()) * config.meanDelayS, kind: 0, instance: i, image, remote: true });
      }
    }
  }

  const posted = new Set<number>();
  let serial = 0;
  const hold = (me: Instance, image: number, verdicts: MatchedVerdict[]) => {
    const held = me.known.get(image);
    if (held) held.push(...verdicts);
    else me.known.set(image, [...verdicts]);
  };
  /** Keeps `verdicts` as our own and delivers them to every follower (together, as one activity). */
  const publish = (me: Instance, image: number, now: number, verdicts: MatchedVerdict[]) => {
    hold(me, image, verdicts);
    const delivered = verdicts.map((v) => ({ ...v, local: false }));
    let last = 0;
    for (const f of me.followers) {
      const delay = -Math.log(1 - random()) * config.meanDelayS;
      last = Math.max(last, delay);
      queue.push({ t: now + delay, kind: 1, instance: f, verdicts: delivered, image });
    }
    if (me.followers.length > 0) stats.propagationS.push(last);
  };
  const scan = (i: number, image: number, now: number) => {
    const me = instances[i];
    stats.scans++;
    if (truth[image] === 'ok') stats.scansOk++;
    else stats.scansAbuse++;
    const published = new Date(epoch + now * 1000);
    // One verdict per classifier the scanner runs.
    publish(
      me,
      image,
      now,
      me.classifiers.map((classifier) => ({
        uri: `${me.issuer}/verdicts/${++serial}`,
        issuer: me.issuer,
        local: true,
        label: truth[image],
        confidence: 0.9,
        method: 'classifier' as const,
        classifier,
        distance: 0,
        matchedBy: 'sha256' as const,
        published,
      })),
    );
  };
  /** What `me` decides about `image` now, re-attesting when its peers' verdicts decided (once per label). */
  const decideAt = (me: Instance, image: number, now: number): Decision => {
    const held = me.known.get(image) ?? [];
    const decision = decide(held, me.weight, SIM_POLICY, { self: me.issuer });
    if (config.reattest && decision.basis.length > 0 && !held.some((v) => v.local && v.method === 'consensus' && v.label === decision.label)) {
      stats.consensus++;
      publish(me, image, now, [
        {
          uri: `${me.issuer}/verdicts/${++serial}`,
          issuer: me.issuer,
          local: true,
          label: decision.label!,
          confidence: 0.9,
          method: 'consensus',
          distance: 0,
          matchedBy: 'sha256',
          published: new Date(epoch + now * 1000),
          basis: decision.basis,
        },
      ]);
    }
    return decision;
  };

  /** Decides, and (pull on miss) asks the followed peers before a scan. */
  const decideWithPull = (i: number, image: number, now: number): Decision => {
    const me = instances[i];
    const started = performance.now();
    let decision = decideAt(me, image, now);
    if (decision.scan && config.pullOnMiss) {
      // The followed peers' own verdicts as they stand now (answered within the request; a peer
      // whose own peers' verdicts decide re-attests on demand).
      const held = new Set((me.known.get(image) ?? []).map((v) => v.uri));
      const pulled = me.follows.flatMap((f) => {
        const peer = instances[f];
        if (config.reattest) decideAt(peer, image, now);
        return (peer.known.get(image) ?? []).filter((v) => v.issuer === peer.issuer && !held.has(v.uri)).map((v) => ({ ...v, local: false }));
      });
      if (pulled.length > 0) {
        hold(me, image, pulled);
        decision = decideAt(me, image, now);
        if (!decision.scan) stats.pulled++;
      }
    }
    stats.decideSeconds += (performance.now() - started) / 1000;
    stats.decisions++;
    stats.outcomes[decision.outcome]++;
    const truthLabel = truth[image];
    if ((decision.outcome === 'block' && truthLabel === 'ok') || (decision.outcome === 'allow' && truthLabel !== 'ok')) stats.wrong++;
    return decision;
  };

  /** Scans, defers the scan (a federated copy, with remoteScanDelayS), or draws a spot check. */
  const act = (i: number, image: number, now: number, decision: Decision, remote: boolean) => {
    const me = instances[i];
    if (decision.scan) {
      if (remote && config.remoteScanDelayS > 0) {
        // One deferred scan per image at a time, as the product's one job per image.
        if (!me.deferred.has(image)) {
          me.deferred.add(image);
          queue.push({ t: now + config.remoteScanDelayS, kind: 2, instance: i, image });
        }
        return;
      }
      if (decision.outcome === 'review') stats.scansByReason.review++;
      else if (decision.explanation.verdicts.peer === 0) stats.scansByReason.noPeerVerdict++;
      else stats.scansByReason.insufficient++;
      scan(i, image, now);
    } else if (decision.explanation.decidedBy === 'peers' && !me.drawn.has(image) && (me.drawn.add(image), random() < config.spotCheck)) {
      stats.scansByReason.spotCheck++;
      scan(i, image, now);
    }
  };

  while (queue.size > 0) {
    const e = queue.pop();
    const me = instances[e.instance];
    if (e.kind === 1) {
      hold(me, e.image, e.verdicts);
      continue;
    }
    if (e.kind === 2) {
      me.deferred.delete(e.image);
      act(e.instance, e.image, e.t, decideWithPull(e.instance, e.image, e.t), false);
      continue;
    }
    if (!posted.has(e.image)) {
      posted.add(e.image);
      if (truth[e.image] === 'ok') stats.uniqueOk++;
      else stats.uniqueAbuse++;
    }
    if (!me.seen.has(e.image)) {
      me.seen.add(e.image);
      stats.naivePairs++;
    }
    act(e.instance, e.image, e.t, decideWithPull(e.instance, e.image, e.t), e.remote);
  }
  stats.uniqueImages = posted.size;
  return stats;
}

export async function benchFederationSim(): Promise<BenchResult[]> {
  simulate({ ...DEFAULT_SIM, seed: 1 }); // warm the JIT up before timing decide()
  const main = simulate(DEFAULT_SIM);
  const perImage = (n: number) => round(n / main.uniqueImages, 3);
  const propagation = [...main.propagationS].sort((a, b) => a - b);
  const scansPer = (config: Partial<SimConfig>) => {
    const s = simulate({ ...DEFAULT_SIM, ...config });
    return round(s.scans / s.uniqueImages, 3);
  };
  const whatIf = (name: string, config: Partial<SimConfig>): BenchResult => ({ name: `scans_per_unique_image_${name}`, value: scansPer(config), unit: 'scans' });
  const smallOnly = { hubs: 0 };
  return [
    { name: 'sim_unique_images', value: main.uniqueImages, unit: 'images' },
    { name: 'scans_per_unique_image', value: perImage(main.scans), unit: 'scans' },
    { name: 'scans_per_unique_image_naive', value: perImage(main.naivePairs), unit: 'scans' },
    { name: 'scans_per_unique_ok_image', value: round(main.scansOk / main.uniqueOk, 3), unit: 'scans' },
    { name: 'scans_per_unique_abuse_image', value: round(main.scansAbuse / main.uniqueAbuse, 3), unit: 'scans' },
    { name: 'scans_no_peer_verdict_per_unique_image', value: perImage(main.scansByReason.noPeerVerdict), unit: 'scans' },
    { name: 'scans_insufficient_evidence_per_unique_image', value: perImage(main.scansByReason.insufficient), unit: 'scans' },
    { name: 'scans_review_per_unique_image', value: perImage(main.scansByReason.review), unit: 'scans' },
    { name: 'scans_spot_check_per_unique_image', value: perImage(main.scansByReason.spotCheck), unit: 'scans' },
    { name: 'sim_wrong_decisions', value: main.wrong, unit: 'decisions' },
    { name: 'verdict_propagation_p95_s', value: round(percentile(propagation, 0.95), 2), unit: 's' },
    { name: 'decisions_per_s', value: Math.round(main.decisions / main.decideSeconds), unit: 'decisions/s' },
    // What-ifs: one assumption of the main scenario changed each.
    whatIf('three_large_instances', { hubs: 3 }),
    whatIf('large_instance_trust_0.6_0.9', { hubWeightMin: 0.6, hubWeightMax: 0.9 }),
    whatIf('no_pull_on_miss', { pullOnMiss: false }),
    whatIf('no_reattest', { reattest: false }),
    whatIf('no_spot_check', { spotCheck: 0 }),
    // Scanners with one model each (half one, half the other); one model everywhere (the bundled
    // default alone): then peers can never allow, whatever the topology.
    whatIf('one_model_per_scanner', { scanWithAll: false }),
    whatIf('one_classifier', { scanWithAll: false, classifiers: [DEFAULT_SIM.classifiers[0]] }),
    // Every post also federated to all 20 instances at once (naive = 20): copies race the verdict;
    // their scans wait deferScanSeconds; 2 % spot checks on each of 19 instances remain.
    whatIf('federated_posts', { federatePosts: true }),
    whatIf('federated_posts_no_defer', { federatePosts: true, remoteScanDelayS: 0 }),
    whatIf('federated_posts_no_spot_check', { federatePosts: true, spotCheck: 0 }),
    // Small instances only, no large one: a sparse random graph, then denser ones.
    whatIf('no_large_instance', smallOnly),
    whatIf('no_large_instance_follows_9', { ...smallOnly, followsMin: 9, followsMax: 9 }),
    whatIf('no_large_instance_follows_12', { ...smallOnly, followsMin: 12, followsMax: 12 }),
    whatIf('no_large_instance_federated_posts', { ...smallOnly, federatePosts: true }),
    // Everything against: small instances only, one model per scanner, no pull on miss.
    whatIf('no_large_instance_one_model_per_scanner_no_pull', { ...smallOnly, scanWithAll: false, pullOnMiss: false }),
  ];
}

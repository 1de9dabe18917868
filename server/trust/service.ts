// Trust as the admin sets it, kept in the store: direct trust per peer and polarity (and label),
// blocks, learned penalties, and the decision policy. Every change is recorded with who and when.
// Effective weights come from the conserved-flow engine (flow.ts), recomputed when trust changes.
import type { Db } from '../store/index.js';
import { isLabel, type Label } from '../../shared/vocab/verdict.js';
import type { TrustEntry, TrustStatementObject } from '../../shared/vocab/objects.js';
import { TrustGraph, type TrustPolarity, type TrustWeights } from './flow.js';
import { DEFAULT_POLICY, parsePolicy, policyHash, type AbuseLabel, type Policy, type WeightFn } from './decide.js';

/** Signs and federates our TrustStatement; passed in by main so trust imports nothing above it. */
export type TrustPublisher = (trust: TrustEntry[]) => Promise<void>;

/** What changed: ours (policy, trust, a block) or what a peer caused (its statement, a penalty). */
export type TrustChange = 'policy' | 'trust' | 'block' | 'unblock' | 'trust statement' | 'penalty';

const TRUST_CHANGES: readonly string[] = ['policy', 'trust', 'block', 'unblock', 'trust statement', 'penalty'] satisfies TrustChange[];

function isTrustChange(what: string): what is TrustChange {
  return TRUST_CHANGES.includes(what);
}

/** A publisher's statement replaces its previous one in `graph` (a peer's trust in itself is ignored). */
function applyStatement(graph: TrustGraph, publisher: string, entries: TrustEntry[]): void {
  for (const polarity of ['abuse', 'ok'] as const) {
    graph.setStatement(
      publisher,
      polarity,
      entries.filter((e) => e.polarity === polarity && e.peer !== publisher).map((e) => ({ peer: e.peer, value: e.value, ...(e.label ? { label: e.label } : {}) })),
    );
  }
}

export interface DirectTrust {
  peer: string;
  polarity: TrustPolarity;
  label: Label | null;
  value: number;
  setBy: string;
  setAt: Date;
}

export class TrustService {
  private graph = new TrustGraph();
  private changeListener: ((what: TrustChange) => void) | undefined;
  private changeCount = 0;
  private readonly weights = new Map<string, TrustWeights>();
  private current: { policy: Policy; hash: string; setAt: Date | null } = { policy: DEFAULT_POLICY, hash: policyHash(DEFAULT_POLICY), setAt: null };

  private constructor(
    private readonly db: Db,
    private readonly publisher: TrustPublisher | undefined,
  ) {}

  /** `publisher` federates our own TrustStatement whenever direct trust changes. */
  static async open(db: Db, publisher?: TrustPublisher): Promise<TrustService> {
    const service = new TrustService(db, publisher);
    await service.reload();
    return service;
  }

  /**
   * Called after every change of trust or policy (ours, a peer's TrustStatement, a spot check's
   * penalty), with what changed: effective weights, thresholds or both may differ now.
   */
  onChange(listener: (what: TrustChange) => void): void {
    this.changeListener = listener;
  }

  /** Counts every change of trust or policy: a decision taken under another count may be stale. */
  get version(): number {
    return this.changeCount;
  }

  /** Drops the weights computed so far and tells the listener. */
  private changed(what: TrustChange): void {
    this.changeCount++;
    this.weights.clear();
    this.changeListener?.(what);
  }

  /** Builds the in-memory graph and policy from the store, replacing what was held. */
  async reload(): Promise<void> {
    const graph = new TrustGraph();
    for (const row of await this.db.selectFrom('trust_direct').selectAll().execute()) {
      graph.setDirect(row.polarity as TrustPolarity, row.peer, row.value, row.label && isLabel(row.label) ? row.label : undefined);
    }
    for (const row of await this.db.selectFrom('trust_blocks').select('peer').execute()) graph.block(row.peer);
    for (const row of await this.db.selectFrom('trust_penalties').selectAll().execute()) {
      graph.setPenalty(row.polarity as TrustPolarity, row.peer, row.factor);
    }
    for (const row of await this.db.selectFrom('trust_statements').select(['publisher', 'document']).execute()) {
      applyStatement(graph, row.publisher, (row.document as TrustStatementObject).trust);
    }
    const policy = await this.db.selectFrom('policies').select(['document', 'hash', 'set_at']).orderBy('id', 'desc').limit(1).executeTakeFirst();
    this.graph = graph;
    if (policy) this.current = { policy: parsePolicy(policy.document), hash: policy.hash, setAt: policy.set_at };
    this.weights.clear();
  }

  /**
   * Trust or policy rows changed in the store (the change feed): reloads them, and tells the
   * listener of each kind of change another process made. Changes of this process's own are
   * reloaded too (a local change racing a reload is then never lost) but were told already.
   */
  async reloadChanged(foreign: ReadonlySet<string>): Promise<void> {
    await this.reload();
    for (const what of foreign) if (isTrustChange(what)) this.changed(what);
  }

  get policy(): Policy {
    return this.current.policy;
  }

  policyInfo() {
    return { policy: this.current.policy, hash: this.current.hash, setAt: this.current.setAt };
  }

  async setPolicy(document: unknown, actor: string): Promise<Policy> {
    const policy = parsePolicy(document); // throws ZodError with every bad field
    const hash = policyHash(policy);
    const row = await this.db
      .insertInto('policies')
      .values({ document: JSON.stringify(policy), hash, set_by: actor })
      .returning('set_at')
      .executeTakeFirstOrThrow();
    await this.record('policy', { hash, version: policy.version }, actor);
    this.current = { policy, hash, setAt: row.set_at };
    this.changed('policy'); // δ and H may have changed too
    return policy;
  }

  async setTrust(peer: string, polarity: TrustPolarity, value: number, actor: string, label?: Label): Promise<void> {
    if (!(value >= 0 && value <= 1)) throw new RangeError('trust must be a number from 0 to 1');
    await this.db
      .insertInto('trust_direct')
      .values({ peer, polarity, label: label ?? '', value, set_by: actor })
      .onConflict((oc) => oc.columns(['peer', 'polarity', 'label']).doUpdateSet({ value, set_by: actor, set_at: new Date() }))
      .execute();
    await this.record('trust', { peer, polarity, label: label ?? null, value }, actor);
    this.graph.setDirect(polarity, peer, value, label);
    this.changed('trust');
    await this.publishStatement();
  }

  /**
   * A followed peer's published trust (already authenticated by federation): the newest statement
   * of each publisher replaces its previous one in the graph.
   */
  async receiveStatement(statement: TrustStatementObject, publisher: string): Promise<void> {
    const updated = new Date(statement.updated ?? statement.published);
    const stored = await this.db.selectFrom('trust_statements').select('updated').where('publisher', '=', publisher).executeTakeFirst();
    if (stored && stored.updated >= updated) return; // out-of-order delivery of an older statement
    const document = JSON.stringify(statement);
    await this.db
      .insertInto('trust_statements')
      .values({ publisher, document, updated })
      .onConflict((oc) => oc.column('publisher').doUpdateSet({ document, updated, received_at: new Date() }))
      .execute();
    this.applyStatement(publisher, statement.trust);
    this.changed('trust statement');
  }

  private applyStatement(publisher: string, entries: TrustEntry[]): void {
    applyStatement(this.graph, publisher, entries);
  }

  /** Our direct trust as the TrustStatement peers receive (blocked peers are simply absent). */
  private async publishStatement(): Promise<void> {
    if (!this.publisher) return;
    const blocked = new Set((await this.db.selectFrom('trust_blocks').select('peer').execute()).map((r) => r.peer));
    const trust: TrustEntry[] = (await this.direct())
      .filter((d) => !blocked.has(d.peer))
      .map((d) => ({ peer: d.peer, polarity: d.polarity, value: d.value, ...(d.label && d.label !== 'ok' ? { label: d.label } : {}) }));
    await this.publisher(trust);
  }

  async block(peer: string, actor: string, reason?: string): Promise<void> {
    await this.db
      .insertInto('trust_blocks')
      .values({ peer, set_by: actor, reason: reason ?? null })
      .onConflict((oc) => oc.column('peer').doNothing())
      .execute();
    await this.record('block', { peer, reason: reason ?? null }, actor);
    this.graph.block(peer);
    this.changed('block');
    await this.publishStatement();
  }

  async unblock(peer: string, actor: string): Promise<void> {
    await this.db.deleteFrom('trust_blocks').where('peer', '=', peer).execute();
    await this.record('unblock', { peer }, actor);
    this.graph.unblock(peer);
    this.changed('unblock');
    await this.publishStatement();
  }

  /**
   * Lowers a peer's weight after our own scanner contradicted it (a spot check): each
   * disagreement halves the factor, recorded with the reason.
   */
  async penalise(peer: string, polarity: TrustPolarity, reason: string): Promise<number> {
    const row = await this.db.selectFrom('trust_penalties').select('factor').where('peer', '=', peer).where('polarity', '=', polarity).executeTakeFirst();
    const factor = (row?.factor ?? 1) * 0.5;
    await this.db
      .insertInto('trust_penalties')
      .values({ peer, polarity, factor, reason })
      .onConflict((oc) => oc.columns(['peer', 'polarity']).doUpdateSet({ factor, reason, set_at: new Date() }))
      .execute();
    await this.record('penalty', { peer, polarity, factor, reason }, 'spot-check');
    this.graph.setPenalty(polarity, peer, factor);
    this.changed('penalty');
    return factor;
  }

  async direct(): Promise<DirectTrust[]> {
    const rows = await this.db.selectFrom('trust_direct').selectAll().orderBy('peer').execute();
    return rows.map((r) => ({
      peer: r.peer,
      polarity: r.polarity as TrustPolarity,
      label: r.label && isLabel(r.label) ? r.label : null,
      value: r.value,
      setBy: r.set_by,
      setAt: r.set_at,
    }));
  }

  async blocks(): Promise<Array<{ peer: string; setBy: string; reason: string | null; setAt: Date }>> {
    const rows = await this.db.selectFrom('trust_blocks').selectAll().orderBy('peer').execute();
    return rows.map((r) => ({ peer: r.peer, setBy: r.set_by, reason: r.reason, setAt: r.set_at }));
  }

  async changes(limit = 100) {
    return this.db.selectFrom('trust_changes').selectAll().orderBy('id', 'desc').limit(limit).execute();
  }

  /** Effective weights for one polarity (and label), computed once per trust change. */
  weightsFor(polarity: TrustPolarity, label?: AbuseLabel): TrustWeights {
    const key = `${polarity}:${label ?? ''}`;
    let weights = this.weights.get(key);
    if (!weights) {
      weights = this.graph.compute(polarity, { label, delta: this.policy.trust.delta, hops: this.policy.trust.hops });
      this.weights.set(key, weights);
    }
    return weights;
  }

  /** The weight function the decision engine asks, with trust paths for explanations. */
  readonly weightFn: WeightFn = (issuer, polarity, label) => {
    const weights = this.weightsFor(polarity, label);
    const weight = weights.weight(issuer);
    return weight > 0 ? { weight, paths: weights.explain(issuer).paths } : { weight: 0 };
  };

  private async record(kind: string, detail: unknown, actor: string): Promise<void> {
    await this.db.insertInto('trust_changes').values({ kind, detail: JSON.stringify(detail), actor }).execute();
  }
}

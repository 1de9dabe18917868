// Prometheus metrics: one registry per process, served at /metrics. Modules count what they do
// through these few instruments; the composition root passes the registry's collectors in.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export class Metrics {
  readonly registry = new Registry();

  readonly decisions = new Counter({
    name: 'vouch_decisions_total',
    help: 'Decisions taken about media, by outcome',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  readonly scans = new Counter({
    name: 'vouch_scans_total',
    help: 'Scan results recorded, by label',
    labelNames: ['label'] as const,
    registers: [this.registry],
  });

  readonly inbox = new Counter({
    name: 'vouch_inbox_activities_total',
    help: 'Inbox POSTs, by result (accepted, ignored, or the refusal code)',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  readonly deliveries = new Counter({
    name: 'vouch_deliveries_total',
    help: 'Delivery attempts to peers\' inboxes, by result (delivered, refused: a 4xx that ends it, failed: retried)',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  readonly logAlerts = new Counter({
    name: 'vouch_log_alerts_total',
    help: 'Inconsistent checkpoints seen from peers (fork, rollback, inconsistent)',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });

  readonly witnessOutcomes = new Counter({
    name: 'vouch_log_witness_outcomes_total',
    help: 'Attempts to bring an outside witness (C2SP tlog-witness) to our latest checkpoint, by witness and outcome (cosigned, up_to_date, or the failure reason)',
    labelNames: ['witness', 'outcome'] as const,
    registers: [this.registry],
  });

  readonly consensusRedecided = new Counter({
    name: 'vouch_consensus_redecided_total',
    help: 'Consensus verdicts of ours re-decided by a pass, by reason (a trust or policy change, expiry)',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  readonly hashSeconds = new Histogram({
    name: 'vouch_hash_seconds',
    help: 'Time to decode and hash one image',
    buckets: [0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });

  readonly lookupSeconds = new Histogram({
    name: 'vouch_lookup_seconds',
    help: 'Time to look up an image\'s hashes among all verdicts',
    buckets: [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1],
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'vouch_' });
  }

  /** A gauge read when Prometheus scrapes (queue depths and the like). */
  gauge(name: string, help: string, labelNames: string[], read: () => Promise<Array<{ labels: Record<string, string>; value: number }>>): void {
    new Gauge({
      name,
      help,
      labelNames,
      registers: [this.registry],
      async collect() {
        this.reset();
        for (const { labels, value } of await read()) this.set(labels, value);
      },
    });
  }
}

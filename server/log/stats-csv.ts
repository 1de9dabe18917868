/**
 * The log statistics (stats.ts) as CSV files a researcher loads in R or pandas: RFC 4180 (CRLF,
 * quoted where needed), a header row, one observation per row, numbers unformatted (seconds, not
 * "3 h"), empty cells for unknown values. Columns are described in docs/audit.md.
 *
 * Text cells come from logs and are hostile: a cell a spreadsheet would run as a formula (one
 * starting with `=`, `+`, `-`, `@`, a tab or a carriage return) gets a leading `'` (OWASP's
 * advice), and every text cell with a comma, quote or line break is quoted.
 *
 * Rows are yielded one by one, so a log of millions of verdicts is written as a stream.
 */
import type { LogStatistics } from './stats.js';

/** One instance's statistics, named as the auditor gave it, with what its audit found. */
export interface InstanceStatistics {
  readonly instance: string;
  /** The log's origin and size from its verified checkpoint; null when none verified. */
  readonly origin: string | null;
  readonly checkpointSize: number | null;
  /** Whether the audit verified everything it read. */
  readonly auditOk: boolean;
  readonly stats: LogStatistics;
}

type Cell = string | number | boolean | null;

/** A text cell neutralised against formula injection and quoted as RFC 4180 asks. */
export function csvText(value: string): string {
  const safe = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

function cell(value: Cell): string {
  if (value === null) return '';
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : '';
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  return csvText(value);
}

const row = (cells: readonly Cell[]): string => `${cells.map(cell).join(',')}\r\n`;
const seconds = (s: number | null): number | null => (s === null ? null : Math.round(s * 1000) / 1000);

/** verdicts.csv: one row per verdict. */
export function* verdictsCsv(all: readonly InstanceStatistics[]): Generator<string> {
  yield row(['instance', 'verdict_id', 'label', 'method', 'classifier', 'log_index', 'issued_at', 'issue_month', 'outcome', 'ended_at', 'seconds_to_retraction', 'updates']);
  for (const { instance, stats } of all) {
    for (const v of stats.verdicts) {
      yield row([
        instance,
        v.id,
        v.label,
        v.method,
        v.classifier,
        v.index,
        v.issuedAt,
        v.issuedAt === null ? null : v.issuedAt.slice(0, 7),
        v.outcome,
        v.endedAt,
        seconds(v.secondsToRetraction),
        v.updates,
      ]);
    }
  }
}

/** summary.csv: one row per instance, label and method, over the whole log. */
export function* summaryCsv(all: readonly InstanceStatistics[]): Generator<string> {
  yield row([
    'instance',
    'label',
    'method',
    'issued',
    'updated',
    'retracted',
    'superseded',
    'share_of_label_issued',
    'retractions_timed',
    'retraction_median_seconds',
    'retraction_p90_seconds',
  ]);
  for (const { instance, stats } of all) {
    const issuedPerLabel = new Map<string, number>();
    for (const g of stats.groups) issuedPerLabel.set(g.label, (issuedPerLabel.get(g.label) ?? 0) + g.issued);
    for (const g of stats.groups) {
      const labelTotal = issuedPerLabel.get(g.label) ?? 0;
      yield row([
        instance,
        g.label,
        g.method,
        g.issued,
        g.updated,
        g.retracted,
        g.superseded,
        labelTotal === 0 ? null : Math.round((g.issued / labelTotal) * 10_000) / 10_000,
        g.retractionTimed,
        seconds(g.retractionMedianSeconds),
        seconds(g.retractionP90Seconds),
      ]);
    }
  }
}

/** monthly.csv: one row per instance, month, label and method. */
export function* monthlyCsv(all: readonly InstanceStatistics[]): Generator<string> {
  yield row(['instance', 'month', 'label', 'method', 'issued', 'updated', 'retracted', 'superseded']);
  for (const { instance, stats } of all) {
    for (const m of stats.months) yield row([instance, m.month, m.label, m.method, m.issued, m.updated, m.retracted, m.superseded]);
  }
}

/** instances.csv: one row per instance: what was read of its log and whether its audit passed. */
export function* instancesCsv(all: readonly InstanceStatistics[]): Generator<string> {
  yield row(['instance', 'log_origin', 'checkpoint_size', 'audit_ok', 'entries', 'version1', 'version2', 'withheld', 'unreadable', 'other', 'repeated']);
  for (const { instance, origin, checkpointSize, auditOk, stats } of all) {
    const e = stats.entries;
    yield row([instance, origin, checkpointSize, auditOk, e.total, e.version1, e.version2, e.withheld, e.unreadable, e.other, e.repeated]);
  }
}

// `vouch audit --stats URL...`: audits each instance's whole log as an anonymous client (the
// ordinary audit, every entry), counts what its entries say (server/log/stats.ts), prints a table,
// and with `--out DIR` writes the CSV files and the charts (SVG, and PNG through sharp).
//
// The entries reach the statistics through the audit's own JSONL export, written to a temporary
// file and read back as a stream: what is counted is exactly what the audit fetched and checked,
// and a log of millions of entries is never held in memory as JSON.
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { createInterface } from 'node:readline';
import { AuditError, auditPeer, type AuditPeerOptions } from './audit.js';
import { entryBytes, type WireEntry } from '../log/format.js';
import { describeEntry, formatDuration, LogStatsAccumulator, logStatistics, mergeStatistics, methodsPerMonth, type GroupStats, type LogStatistics, type MonthStats } from '../log/stats.js';
import { instancesCsv, monthlyCsv, summaryCsv, verdictsCsv, type InstanceStatistics } from '../log/stats-csv.js';
import { statisticsCharts } from '../log/stats-charts.js';

export interface AuditStatsOptions {
  urls: readonly string[];
  /** Where to write the CSV files and charts; nothing is written without it. */
  outDir?: string;
  stateDir: string;
  allowPrivateNetworks: string[];
  /** A progress display per instance (a bar on a terminal, nothing otherwise). */
  progress: () => NonNullable<AuditPeerOptions['progress']>;
  /** The table goes here (stdout). */
  out: NodeJS.WritableStream;
  /** Audit failures and notes go here (stderr). */
  err: NodeJS.WritableStream;
}

export interface AuditStatsResult {
  /** True when every instance's audit verified everything. */
  readonly ok: boolean;
  readonly instances: readonly InstanceStatistics[];
  /** Files written under `outDir`. */
  readonly files: readonly string[];
}

/** Table rows printed per table at most; the CSV files hold every row. */
const MAX_TABLE_ROWS = 40;
const MAX_FAILURES_SHOWN = 20;

/** Reads the audit's JSONL export in order into the statistics. */
async function readExport(path: string): Promise<LogStatistics> {
  const acc = new LogStatsAccumulator();
  const lines = createInterface({ input: createReadStream(path, { encoding: 'utf8' }), crlfDelay: Infinity });
  for await (const line of lines) {
    if (line.length === 0) continue;
    let wire: WireEntry;
    try {
      wire = JSON.parse(line) as WireEntry; // written by the audit itself, one JSON value a line
    } catch {
      throw new AuditError(`the audit's export ${path} has a line that is not JSON: is the disk full?`);
    }
    let bytes: Uint8Array | null;
    try {
      bytes = entryBytes(wire);
    } catch {
      acc.add(wire.index, { kind: 'unreadable' });
      continue;
    }
    acc.add(wire.index, describeEntry(bytes));
  }
  return acc.statistics();
}

async function statisticsOf(url: string, options: AuditStatsOptions): Promise<InstanceStatistics> {
  const dir = await mkdtemp(join(tmpdir(), 'vouch-stats-'));
  try {
    const exportPath = join(dir, 'entries.jsonl');
    let report;
    try {
      report = await auditPeer({
        url,
        all: true,
        out: { path: exportPath, format: 'jsonl' },
        stateDir: options.stateDir,
        allowPrivateNetworks: options.allowPrivateNetworks,
        progress: options.progress(),
      });
    } catch (err) {
      if (!(err instanceof AuditError)) throw err;
      options.err.write(`FAIL ${url}: ${terminalText(err.message)}\n`);
      return { instance: url, origin: null, checkpointSize: null, auditOk: false, stats: logStatistics([]) };
    }
    for (const failure of report.failures.slice(0, MAX_FAILURES_SHOWN)) {
      options.err.write(`FAIL ${url} ${failure.kind}${failure.index === undefined ? '' : ` entry ${failure.index}`}: ${terminalText(failure.message)}\n`);
    }
    const more = report.failures.length - MAX_FAILURES_SHOWN + report.failuresOmitted;
    if (more > 0) options.err.write(`... and ${more} more failures of ${url}\n`);
    const stats = report.exported ? await readExport(exportPath) : logStatistics([]);
    return { instance: url, origin: report.checkpoint?.origin ?? null, checkpointSize: report.checkpoint?.size ?? null, auditOk: report.ok, stats };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Text from a log made harmless on a terminal: control characters (escape sequences) and bidi overrides become `?`. */
export function terminalText(value: string): string {
  return value.replace(/[\u0000-\u001F\u007F-\u009F\u202A-\u202E\u2066-\u2069]/g, '?');
}

const percent = (part: number, whole: number): string => (whole === 0 ? '' : `${((100 * part) / whole).toFixed(0)} %`);

/** Columns padded to their widest cell; numbers right-aligned. */
function table(header: readonly string[], rows: readonly (readonly string[])[], numeric: readonly boolean[]): string {
  const cells = [header, ...rows].map((r) => r.map(terminalText));
  const widths = header.map((_, i) => Math.max(...cells.map((r) => [...r[i]].length)));
  const line = (r: readonly string[]) =>
    `  ${r.map((c, i) => (numeric[i] ? c.padStart(widths[i] + c.length - [...c].length) : c.padEnd(widths[i] + c.length - [...c].length))).join('  ').trimEnd()}\n`;
  const shown = cells.slice(1, MAX_TABLE_ROWS + 1);
  const rest = rows.length - shown.length;
  return line(cells[0]) + shown.map(line).join('') + (rest > 0 ? `  … ${rest} more rows in the CSV files (--out DIR)\n` : '');
}

function groupTable(groups: readonly GroupStats[]): string {
  const issuedPerLabel = new Map<string, number>();
  for (const g of groups) issuedPerLabel.set(g.label, (issuedPerLabel.get(g.label) ?? 0) + g.issued);
  return table(
    ['label', 'method', 'issued', 'share', 'updated', 'retracted', 'superseded', 'retraction median', 'p90'],
    groups.map((g) => [
      g.label,
      g.method,
      String(g.issued),
      percent(g.issued, issuedPerLabel.get(g.label) ?? 0),
      String(g.updated),
      String(g.retracted),
      String(g.superseded),
      formatDuration(g.retractionMedianSeconds),
      formatDuration(g.retractionP90Seconds),
    ]),
    [false, false, true, true, true, true, true, true, true],
  );
}

/** Per month: issued, and the classifier, human and other shares of it. */
function monthTable(months: readonly MonthStats[]): string {
  return table(
    ['month', 'issued', 'classifier', 'human', 'other', 'retracted'],
    methodsPerMonth(months).map((r) => [r.month, String(r.issued), percent(r.classifier, r.issued), percent(r.human, r.issued), percent(r.issued - r.classifier - r.human, r.issued), String(r.retracted)]),
    [false, true, true, true, true, true],
  );
}

function describe(title: string, stats: LogStatistics): string {
  const e = stats.entries;
  return (
    `${terminalText(title)}\n` +
    `  ${e.total} entries: ${e.version2} version 2, ${e.version1} version 1 readable, ${e.withheld} withheld (label unknown), ${e.unreadable} unreadable, ${e.other} not about a verdict, ${e.repeated} repeated\n\n` +
    (stats.groups.length > 0 ? `${groupTable(stats.groups)}\n${monthTable(stats.months)}` : '  no verdicts to count\n')
  );
}

/** What the charts cover, for their subtitles. */
function scopeOf(instances: readonly InstanceStatistics[], merged: LogStatistics): string {
  const names = instances.map((i) => i.origin ?? i.instance);
  const shown = names.length <= 3 ? names.join(', ') : `${names.slice(0, 3).join(', ')} and ${names.length - 3} more`;
  return `${instances.length === 1 ? shown : `${instances.length} logs (${shown})`}, ${merged.entries.total} entries, read ${new Date().toISOString().slice(0, 10)}`;
}

async function writeLines(path: string, lines: Iterable<string>): Promise<void> {
  const stream = createWriteStream(path, { encoding: 'utf8' });
  const failed = once(stream, 'error').then(([err]) => Promise.reject(err as Error));
  failed.catch(() => {}); // observed below
  for (const line of lines) {
    if (!stream.write(line)) await Promise.race([once(stream, 'drain'), failed]);
  }
  stream.end();
  await Promise.race([once(stream, 'finish'), failed]);
}

async function writeFiles(dir: string, instances: readonly InstanceStatistics[], merged: LogStatistics, err: NodeJS.WritableStream): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const files: string[] = [];
  const csv: Array<[string, Iterable<string>]> = [
    ['verdicts.csv', verdictsCsv(instances)],
    ['summary.csv', summaryCsv(instances)],
    ['monthly.csv', monthlyCsv(instances)],
    ['instances.csv', instancesCsv(instances)],
  ];
  for (const [name, lines] of csv) {
    await writeLines(join(dir, name), lines);
    files.push(join(dir, name));
  }
  const { default: sharp } = await import('sharp');
  for (const chart of statisticsCharts(merged, scopeOf(instances, merged))) {
    const svgPath = join(dir, `${chart.name}.svg`);
    await writeFile(svgPath, `<?xml version="1.0" encoding="UTF-8"?>\n${chart.svg}\n`);
    files.push(svgPath);
    const pngPath = join(dir, `${chart.name}.png`);
    try {
      // Twice the SVG's size, for print.
      await sharp(Buffer.from(chart.svg), { density: 144 }).png().toFile(pngPath);
      files.push(pngPath);
    } catch (e) {
      err.write(`note: ${pngPath} not written (the SVG is): ${(e as Error).message}\n`);
    }
  }
  return files;
}

export async function auditStats(options: AuditStatsOptions): Promise<AuditStatsResult> {
  const instances: InstanceStatistics[] = [];
  for (const url of options.urls) instances.push(await statisticsOf(url, options));
  const merged = mergeStatistics(instances.map((i) => i.stats));
  for (const i of instances) {
    const head = i.origin === null ? `${i.instance}: no verified checkpoint` : `${i.instance} (${i.origin}, checkpoint size ${i.checkpointSize})`;
    options.out.write(describe(`${head}, audit ${i.auditOk ? 'ok' : 'FAILED'}`, i.stats) + '\n');
  }
  if (instances.length > 1) options.out.write(describe(`All ${instances.length} instances`, merged) + '\n');
  const files = options.outDir === undefined ? [] : await writeFiles(options.outDir, instances, merged, options.err);
  if (files.length > 0) options.out.write(`Wrote to ${options.outDir}: ${files.map((f) => basename(f)).join(', ')}\n`);
  return { ok: instances.every((i) => i.auditOk), instances, files };
}

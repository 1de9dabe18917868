// The Log page's statistics of our own log: the counts `vouch audit --stats` prints for any log
// (server/log/stats.ts), computed from the same public view of each entry, with the same charts
// inlined (plain SVG markup: no script, no CDN).
import type { TransparencyLog } from '../log/index.js';
import { describeEntry, formatDuration, LogStatsAccumulator, methodsPerMonth, type LogStatistics } from '../log/stats.js';
import { statisticsCharts } from '../log/stats-charts.js';
import { html, SafeHtml } from './html.js';

const PAGE = 1000;
/** Months listed in the page's table (the charts and `vouch audit --stats` show more). */
const TABLE_MONTHS = 12;

/**
 * Our log's statistics, read incrementally: the log only grows, so each call reads just the
 * entries appended since the last (one page view after a million entries reads them once; the
 * accumulator then holds a few hundred bytes per verdict). Calls are serialised.
 */
export class OwnLogStatistics {
  private readonly acc = new LogStatsAccumulator();
  private read = 0;
  private last: Promise<LogStatistics> = Promise.resolve(this.acc.statistics());

  constructor(private readonly log: TransparencyLog) {}

  current(): Promise<LogStatistics> {
    this.last = this.last.catch(() => undefined).then(() => this.catchUp());
    return this.last;
  }

  private async catchUp(): Promise<LogStatistics> {
    const size = await this.log.size();
    while (this.read < size) {
      const end = Math.min(this.read + PAGE, size);
      const entries = await this.log.entries(this.read, end);
      // A gap in the table (damage an auditor reports) counts as an entry nobody can read.
      const byIndex = new Map(entries.map((e) => [e.index, e.entry]));
      for (let i = this.read; i < end; i++) {
        const bytes = byIndex.get(i);
        this.acc.add(i, bytes === undefined ? { kind: 'unreadable' } : describeEntry(bytes));
      }
      this.read = end;
    }
    return this.acc.statistics();
  }
}

const percent = (part: number, whole: number): string => (whole === 0 ? '' : `${Math.round((100 * part) / whole)} %`);

/** The statistics section of the Log page. */
export function logStatisticsSection(stats: LogStatistics, scope: string): SafeHtml {
  const issuedPerLabel = new Map<string, number>();
  for (const g of stats.groups) issuedPerLabel.set(g.label, (issuedPerLabel.get(g.label) ?? 0) + g.issued);
  const months = methodsPerMonth(stats.months).slice(-TABLE_MONTHS);
  const e = stats.entries;
  return html`<h2>What our log says</h2>
<p>Counted from the public part of every entry, as any auditor counts them with <code>vouch audit --stats</code>: ${e.total} entries${
    e.withheld + e.unreadable > 0 ? `, ${e.withheld + e.unreadable} without a readable public part` : ''
  }. Each event counts under the verdict's label at its time; times to retraction run from the verdict's <code>published</code> to its retraction (supersessions not included).</p>
${
  stats.groups.length === 0
    ? html`<p class="empty">No verdict logged yet.</p>`
    : html`<table class="log-stats"><thead><tr><th>label</th><th>method</th><th>issued</th><th>share of label</th><th>updated</th><th>retracted</th><th>superseded</th><th>retraction median</th><th>p90</th></tr></thead><tbody>${stats.groups.map(
        (g) =>
          html`<tr><td>${g.label}</td><td>${g.method}</td><td>${g.issued}</td><td>${percent(g.issued, issuedPerLabel.get(g.label) ?? 0)}</td><td>${g.updated}</td><td>${g.retracted}</td><td>${g.superseded}</td><td>${formatDuration(g.retractionMedianSeconds)}</td><td>${formatDuration(g.retractionP90Seconds)}</td></tr>`,
      )}</tbody></table>
<table class="log-months"><thead><tr><th>month (UTC)</th><th>issued</th><th>classifier</th><th>human</th><th>other</th><th>retracted</th></tr></thead><tbody>${months.map(
        (m) =>
          html`<tr><td>${m.month}</td><td>${m.issued}</td><td>${percent(m.classifier, m.issued)}</td><td>${percent(m.human, m.issued)}</td><td>${percent(m.issued - m.classifier - m.human, m.issued)}</td><td>${m.retracted}</td></tr>`,
      )}</tbody></table>
${statisticsCharts(stats, scope).map((chart) => html`<figure class="chart log-chart" data-chart="${chart.name}">${new SafeHtml(chart.svg)}</figure>`)}`
}`;
}

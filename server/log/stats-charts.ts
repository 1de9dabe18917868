/**
 * Charts of the log statistics (stats.ts) as self-contained SVG, for a paper (`vouch audit --stats`
 * writes them to files) and for the console's Log page (inlined: no script, no CDN, no style
 * sheet, only presentation attributes). Drawn here rather than with a charting library: three
 * stacked-bar charts need ~250 lines, while vega + vega-lite (the usual Node renderer without a
 * browser) add 79 packages and 25 MB (decision 21).
 *
 * Every text that came from a log (labels, methods) is hostile: it is cut to a readable length,
 * stripped of what XML 1.0 cannot carry, and escaped. Colours are the Okabe–Ito palette, which
 * stays distinct under the common colour-vision deficiencies; segments are also separated by a
 * white edge and named in each bar's tooltip.
 */
import { UNKNOWN_MONTH, type LogStatistics } from './stats.js';

export interface Chart {
  /** File name stem, e.g. `issued-per-month`. */
  readonly name: string;
  /** An `<svg>` element (no XML declaration), standalone: it names the SVG namespace. */
  readonly svg: string;
}

/** Okabe & Ito (2008), without black; grey for the series folded into "other". */
const PALETTE = ['#0072B2', '#E69F00', '#009E73', '#D55E00', '#56B4E9', '#CC79A7', '#F0E442'];
const OTHER_COLOUR = '#999999';
/** Months drawn at most (the latest ones); earlier months stay in the CSV. */
export const MAX_MONTHS = 120;
const MAX_TEXT = 28;

/** Text made safe for XML 1.0 character data and attribute values. */
export function xmlText(value: string): string {
  return value
    .replace(/[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

const shortText = (s: string): string => ([...s].length > MAX_TEXT ? `${[...s].slice(0, MAX_TEXT - 1).join('')}…` : s);
const compact = new Intl.NumberFormat('en', { notation: 'compact', maximumFractionDigits: 1 });
const formatCount = (n: number): string => (Math.abs(n) < 10_000 ? String(Math.round(n * 100) / 100) : compact.format(n));

interface Series {
  readonly name: string;
  readonly colour: string;
  readonly values: readonly number[];
}

interface BarChart {
  readonly title: string;
  readonly subtitle: string;
  readonly xTitle: string;
  readonly yTitle: string;
  readonly categories: readonly string[];
  readonly series: readonly Series[];
  /** Draw each bar as shares of its total (0–100 %). */
  readonly percent?: boolean;
}

/** A step of 1, 2 or 5 × 10^k giving about five ticks up to `max` (at least 1: counts are whole). */
function tickStep(max: number, whole: boolean): number {
  const raw = max / 5;
  const pow = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * pow).find((s) => s >= raw) ?? 10 * pow;
  return whole ? Math.max(1, step) : step;
}

const WIDTH = 760;
const HEIGHT = 440;

function stackedBars(chart: BarChart): string {
  const font = 'font-family="Helvetica, Arial, sans-serif"';
  const parts: string[] = [];
  parts.push(`<rect width="${WIDTH}" height="${HEIGHT}" fill="#ffffff"/>`);
  parts.push(`<text x="20" y="26" font-size="16" font-weight="bold" fill="#222222">${xmlText(chart.title)}</text>`);
  parts.push(`<text x="20" y="44" font-size="12" fill="#555555">${xmlText(chart.subtitle)}</text>`);

  // Legend: one swatch per series, wrapped into rows.
  let lx = 20;
  let ly = 64;
  for (const s of chart.series) {
    const label = shortText(s.name);
    const width = 22 + 7 * [...label].length + 14;
    if (lx + width > WIDTH - 20) {
      lx = 20;
      ly += 18;
    }
    parts.push(`<rect x="${lx}" y="${ly - 10}" width="12" height="12" fill="${s.colour}"/><text x="${lx + 17}" y="${ly}" font-size="12" fill="#222222">${xmlText(label)}</text>`);
    lx += width;
  }

  const left = 76;
  const right = WIDTH - 20;
  const top = ly + 20;
  const bottom = HEIGHT - 92;
  const n = chart.categories.length;
  const totals = chart.categories.map((_, i) => chart.series.reduce((sum, s) => sum + (s.values[i] ?? 0), 0));
  const scaleMax = chart.percent ? 100 : Math.max(1, ...totals);
  const step = chart.percent ? 20 : tickStep(scaleMax, true);
  const axisMax = Math.max(step, Math.ceil(scaleMax / step) * step);
  const y = (v: number) => bottom - ((bottom - top) * v) / axisMax;

  for (let t = 0; t <= axisMax + step / 2; t += step) {
    const ty = y(t).toFixed(1);
    parts.push(`<line x1="${left}" y1="${ty}" x2="${right}" y2="${ty}" stroke="#e3e3e3" stroke-width="1"/>`);
    parts.push(`<text x="${left - 6}" y="${(y(t) + 4).toFixed(1)}" font-size="11" text-anchor="end" fill="#444444">${xmlText(chart.percent ? `${t} %` : formatCount(t))}</text>`);
  }

  const band = (right - left) / Math.max(1, n);
  const barWidth = Math.max(1, band * 0.8);
  for (let i = 0; i < n; i++) {
    const total = totals[i];
    if (total <= 0) continue;
    let base = 0;
    const x = (left + i * band + (band - barWidth) / 2).toFixed(1);
    for (const s of chart.series) {
      const v = s.values[i] ?? 0;
      if (v <= 0) continue;
      const shown = chart.percent ? (100 * v) / total : v;
      const y0 = y(base);
      const y1 = y(base + shown);
      base += shown;
      const tip = `${chart.categories[i]}: ${s.name} ${formatCount(v)}${chart.percent ? ` of ${formatCount(total)} (${shown.toFixed(1)} %)` : ''}`;
      parts.push(
        `<rect x="${x}" y="${y1.toFixed(1)}" width="${barWidth.toFixed(1)}" height="${Math.max(0, y0 - y1).toFixed(1)}" fill="${s.colour}" stroke="#ffffff" stroke-width="0.5"><title>${xmlText(tip)}</title></rect>`,
      );
    }
  }
  if (totals.every((t) => t <= 0)) {
    parts.push(`<text x="${(left + right) / 2}" y="${((top + bottom) / 2).toFixed(1)}" font-size="14" text-anchor="middle" fill="#777777">nothing to show</text>`);
  }

  // Axes, category labels (every k-th back from the latest, turned when crowded), axis titles.
  parts.push(`<line x1="${left}" y1="${bottom}" x2="${right}" y2="${bottom}" stroke="#333333" stroke-width="1"/>`);
  parts.push(`<line x1="${left}" y1="${top}" x2="${left}" y2="${bottom}" stroke="#333333" stroke-width="1"/>`);
  const every = Math.max(1, Math.ceil(n / 24));
  const turned = n > 8 || chart.categories.some((c) => c.length > 10);
  for (let i = n - 1; i >= 0; i -= every) {
    const cx = (left + (i + 0.5) * band).toFixed(1);
    const label = xmlText(shortText(chart.categories[i]));
    parts.push(
      turned
        ? `<text x="${cx}" y="${bottom + 14}" font-size="11" text-anchor="end" transform="rotate(-45 ${cx} ${bottom + 14})" fill="#444444">${label}</text>`
        : `<text x="${cx}" y="${bottom + 16}" font-size="11" text-anchor="middle" fill="#444444">${label}</text>`,
    );
  }
  parts.push(`<text x="${(left + right) / 2}" y="${HEIGHT - 10}" font-size="12" text-anchor="middle" fill="#222222">${xmlText(chart.xTitle)}</text>`);
  const my = ((top + bottom) / 2).toFixed(1);
  parts.push(`<text x="18" y="${my}" font-size="12" text-anchor="middle" transform="rotate(-90 18 ${my})" fill="#222222">${xmlText(chart.yTitle)}</text>`);

  return `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" role="img" aria-label="${xmlText(chart.title)}" ${font}>
<title>${xmlText(`${chart.title} (${chart.subtitle})`)}</title>
${parts.join('\n')}
</svg>`;
}

/**
 * The names in the order their colours are given: most events first (ties by name). Every chart
 * of one set of statistics uses the same order, so a label keeps its colour across charts.
 */
function ranking(totals: Iterable<[string, number]>): string[] {
  const sum = new Map<string, number>();
  for (const [name, n] of totals) sum.set(name, (sum.get(name) ?? 0) + n);
  return [...sum].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).map(([name]) => name);
}

/**
 * One series per name among the first `PALETTE.length` of `ranked` (its colour fixed by that
 * rank), the rest added up as one grey "other …" series: a hostile log's thousand labels still
 * draw as eight.
 */
function rankedSeries(values: Map<string, number[]>, ranked: readonly string[], otherName: string, length: number): Series[] {
  const kept = ranked.length > PALETTE.length ? ranked.slice(0, PALETTE.length - 1) : ranked;
  const series: Series[] = [];
  kept.forEach((name, i) => {
    const v = values.get(name);
    if (v) series.push({ name, colour: PALETTE[i], values: v });
  });
  const keptNames = new Set(kept);
  const rest = [...values].filter(([name]) => !keptNames.has(name));
  if (rest.length > 0) {
    const summed = Array.from({ length }, (_, i) => rest.reduce((sum, [, v]) => sum + v[i], 0));
    series.push({ name: `${otherName} (${rest.length})`, colour: OTHER_COLOUR, values: summed });
  }
  return series;
}

/** The months to draw: every month from the first to the last with an event (the latest MAX_MONTHS), then `(unknown)` if any. */
function monthAxis(months: readonly string[]): { months: string[]; cut: boolean } {
  const known = months.filter((m) => m !== UNKNOWN_MONTH).sort();
  const axis: string[] = [];
  let cut = false;
  if (known.length > 0) {
    const toIndex = (m: string) => Number(m.slice(0, 4)) * 12 + Number(m.slice(5, 7)) - 1;
    const last = toIndex(known[known.length - 1]);
    let first = toIndex(known[0]);
    if (last - first + 1 > MAX_MONTHS) {
      first = last - MAX_MONTHS + 1;
      cut = true;
    }
    for (let i = first; i <= last; i++) axis.push(`${String(Math.floor(i / 12)).padStart(4, '0')}-${String((i % 12) + 1).padStart(2, '0')}`);
  }
  if (months.includes(UNKNOWN_MONTH)) axis.push(UNKNOWN_MONTH);
  return { months: axis, cut };
}

/** Per month, per `key` (label or method): the verdicts issued. */
function issuedByMonth(stats: LogStatistics, key: 'label' | 'method'): { months: string[]; cut: boolean; series: Map<string, number[]> } {
  const issued = stats.months.filter((m) => m.issued > 0);
  const axis = monthAxis([...new Set(issued.map((m) => m.month))]);
  const position = new Map(axis.months.map((m, i) => [m, i]));
  const series = new Map<string, number[]>();
  for (const m of issued) {
    const i = position.get(m.month);
    if (i === undefined) continue;
    let values = series.get(m[key]);
    if (!values) series.set(m[key], (values = new Array<number>(axis.months.length).fill(0)));
    values[i] += m.issued;
  }
  return { ...axis, series };
}

const RETRACTION_BINS: ReadonlyArray<{ label: string; below: number }> = [
  { label: '< 1 min', below: 60 },
  { label: '1–10 min', below: 600 },
  { label: '10–60 min', below: 3600 },
  { label: '1–6 h', below: 6 * 3600 },
  { label: '6–24 h', below: 86_400 },
  { label: '1–7 days', below: 7 * 86_400 },
  { label: '7–30 days', below: 30 * 86_400 },
  { label: '30–365 days', below: 365 * 86_400 },
  { label: '≥ 1 year', below: Infinity },
];

/** Index of the retraction-time bin holding `seconds`. */
export function retractionBin(seconds: number): number {
  return RETRACTION_BINS.findIndex((b) => seconds < b.below);
}

/** The charts of one set of statistics; `scope` names what they cover (instances, log size). */
export function statisticsCharts(stats: LogStatistics, scope: string): Chart[] {
  const byLabel = issuedByMonth(stats, 'label');
  const byMethod = issuedByMonth(stats, 'method');
  const cutNote = (cut: boolean) => (cut ? `; the latest ${MAX_MONTHS} months` : '');

  const retractions = new Map<string, number[]>();
  let timed = 0;
  for (const g of stats.groups) {
    if (g.retractionSeconds.length === 0) continue;
    let values = retractions.get(g.label);
    if (!values) retractions.set(g.label, (values = new Array<number>(RETRACTION_BINS.length).fill(0)));
    for (const s of g.retractionSeconds) values[retractionBin(s)]++;
    timed += g.retractionSeconds.length;
  }

  const labels = ranking(stats.groups.map((g) => [g.label, g.issued + g.updated + g.retracted + g.superseded]));
  const methods = ranking(stats.groups.map((g) => [g.method, g.issued]));
  const charts: Array<{ name: string; chart: BarChart }> = [
    {
      name: 'issued-per-month',
      chart: {
        title: 'Verdicts issued per month, by label',
        subtitle: `${scope}; months in UTC${cutNote(byLabel.cut)}`,
        xTitle: 'month of issue (UTC)',
        yTitle: 'verdicts issued',
        categories: byLabel.months,
        series: rankedSeries(byLabel.series, labels, 'other labels', byLabel.months.length),
      },
    },
    {
      name: 'retraction-time',
      chart: {
        title: 'Time from issue to retraction, by label',
        subtitle: `${scope}; ${timed} retractions with both times known (supersessions not included)`,
        xTitle: 'time to retraction',
        yTitle: 'verdicts retracted',
        categories: RETRACTION_BINS.map((b) => b.label),
        series: rankedSeries(retractions, labels, 'other labels', RETRACTION_BINS.length),
      },
    },
    {
      name: 'method-share-per-month',
      chart: {
        title: 'Share of verdicts issued per month, by method',
        subtitle: `${scope}; classifier, human and other methods; months in UTC${cutNote(byMethod.cut)}`,
        xTitle: 'month of issue (UTC)',
        yTitle: 'share of the month\u2019s verdicts',
        categories: byMethod.months,
        series: rankedSeries(byMethod.series, methods, 'other methods', byMethod.months.length),
        percent: true,
      },
    },
  ];
  return charts.map(({ name, chart }) => ({ name, svg: stackedBars(chart) }));
}

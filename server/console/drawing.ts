// Server-drawn SVG for the console: the trust graph and small bar charts. No script and no CDN:
// the drawings are plain markup, escaped like the rest of the page.
import type { TrustWeights } from '../trust/flow.js';
import { html, type SafeHtml } from './html.js';

const MAX_NODES = 60;

/**
 * The admin at the centre, peers on rings by hop (direct peers on the first), node size by
 * effective weight, edges along the walks that carried each peer's weight.
 */
export function trustGraphSvg(weights: TrustWeights, blocked: ReadonlySet<string>): SafeHtml {
  const peers = [...weights.entries()].sort((a, b) => b[1] - a[1]).slice(0, MAX_NODES);
  const hop = new Map<string, number>();
  const edges = new Map<string, { from: string; to: string; weight: number }>();
  for (const [peer] of peers) {
    const paths = weights.explain(peer).paths;
    hop.set(peer, Math.min(...paths.map((p) => p.via.length), weights.hops));
    for (const path of paths) {
      const walk = ['@admin', ...path.via];
      for (let i = 1; i < walk.length; i++) {
        const key = `${walk[i - 1]}\u0000${walk[i]}`;
        const edge = edges.get(key) ?? { from: walk[i - 1], to: walk[i], weight: 0 };
        edge.weight += path.contribution;
        edges.set(key, edge);
      }
    }
  }
  for (const peer of blocked) if (!hop.has(peer)) hop.set(peer, 1);

  const size = 640;
  const centre = size / 2;
  const ringGap = (centre - 60) / Math.max(1, weights.hops);
  const position = new Map<string, { x: number; y: number }>([['@admin', { x: centre, y: centre }]]);
  const byHop = new Map<number, string[]>();
  for (const [peer, h] of hop) byHop.set(h, [...(byHop.get(h) ?? []), peer]);
  for (const [h, members] of byHop) {
    members.sort();
    members.forEach((peer, i) => {
      const angle = (2 * Math.PI * i) / members.length + h * 0.4;
      position.set(peer, { x: centre + ringGap * h * Math.cos(angle), y: centre + ringGap * h * Math.sin(angle) });
    });
  }
  const weightOf = new Map(peers);
  const label = (peer: string) => {
    try {
      return new URL(peer).host;
    } catch {
      return peer;
    }
  };
  const lines = [...edges.values()]
    .filter((e) => position.has(e.from) && position.has(e.to))
    .map((e) => {
      const a = position.get(e.from)!;
      const b = position.get(e.to)!;
      return html`<line x1="${a.x.toFixed(1)}" y1="${a.y.toFixed(1)}" x2="${b.x.toFixed(1)}" y2="${b.y.toFixed(1)}" stroke-width="${(1 + 5 * Math.min(1, e.weight)).toFixed(1)}" class="edge"/>`;
    });
  const nodes = [...hop.keys()].map((peer) => {
    const p = position.get(peer)!;
    const w = weightOf.get(peer) ?? 0;
    const cls = blocked.has(peer) ? 'node blocked' : weights.isDirect(peer) ? 'node direct' : 'node';
    return html`<g class="${cls}"><title>${peer} — weight ${w.toFixed(3)}${blocked.has(peer) ? ' (blocked)' : ''}</title><circle cx="${p.x.toFixed(1)}" cy="${p.y.toFixed(1)}" r="${(5 + 14 * w).toFixed(1)}"/><text x="${p.x.toFixed(1)}" y="${(p.y + 26 + 14 * w).toFixed(1)}">${label(peer)} ${w.toFixed(2)}</text></g>`;
  });
  return html`<svg class="trust-graph" viewBox="0 0 ${size} ${size}" role="img" aria-label="Trust graph: ${peers.length} peers with weight">
${lines}
<g class="node admin"><circle cx="${centre}" cy="${centre}" r="16"/><text x="${centre}" y="${centre + 34}">this instance</text></g>
${nodes}
</svg>`;
}

export interface ChartSeries {
  name: string;
  /** One value per bucket. */
  values: number[];
}

/** Stacked bars, one per bucket (e.g. an hour), one colour class per series. */
export function barChartSvg(title: string, buckets: string[], series: ChartSeries[]): SafeHtml {
  const width = 640;
  const height = 180;
  const pad = 28;
  const totals = buckets.map((_, i) => series.reduce((sum, s) => sum + (s.values[i] ?? 0), 0));
  const max = Math.max(1, ...totals);
  const barWidth = (width - 2 * pad) / Math.max(1, buckets.length);
  const bars = buckets.map((bucket, i) => {
    let y = height - pad;
    const parts = series.map((s, k) => {
      const v = s.values[i] ?? 0;
      const h = ((height - 2 * pad) * v) / max;
      y -= h;
      return v > 0
        ? html`<rect class="series-${k}" x="${(pad + i * barWidth + 1).toFixed(1)}" y="${y.toFixed(1)}" width="${Math.max(1, barWidth - 2).toFixed(1)}" height="${h.toFixed(1)}"><title>${bucket}: ${s.name} ${v}</title></rect>`
        : '';
    });
    return parts;
  });
  const legend = series.map((s, k) => html`<span class="legend series-${k}">${s.name}</span>`);
  return html`<figure class="chart"><figcaption>${title} <small>(max ${max} per hour)</small> ${legend}</figcaption>
<svg viewBox="0 0 ${width} ${height}" role="img" aria-label="${title}">
<line class="axis" x1="${pad}" y1="${height - pad}" x2="${width - pad}" y2="${height - pad}"/>
${bars}
<text class="tick" x="${pad}" y="${height - 8}">${buckets[0] ?? ''}</text><text class="tick" x="${width - pad}" y="${height - 8}" text-anchor="end">${buckets.at(-1) ?? ''}</text>
</svg></figure>`;
}

// Health (queues, scanner nodes, throughput and decisions over the last day) and the
// transparency log (our checkpoints, the witnesses that cosign them, logs we witness, alerts,
// and what our log's entries count up to).
import express, { type Router } from 'express';
import type { VerdictService } from '../verdicts/index.js';
import type { Metrics } from '../config/metrics.js';
import type { Federation } from '../federation/index.js';
import type { ScanningServices } from '../review/scanning-services.js';
import type { CheckpointWitness, LogCheckpoints, TransparencyLog } from '../log/index.js';
import type { ReviewQueue } from '../review/index.js';
import { OUTCOMES } from '../review/index.js';
import type { HourlyCount } from '../store/index.js';
import { barChartSvg } from './drawing.js';
import { logStatisticsSection, OwnLogStatistics } from './log-stats.js';
import { html } from './html.js';
import { csrfField, formatTime, page } from './layout.js';
import { messages, redirectWithMessage, requireRole } from './session.js';
import { roleAtLeast, type ConsoleAccounts } from './accounts.js';
import { HttpError } from '../http/errors.js';

const HOURS = 24;

/** Counts per hour over the last day, oldest first, for each value of `key`. */
function hourly(rows: HourlyCount[], keys: readonly string[], now = Date.now()) {
  const start = Math.floor(now / 3600_000) * 3600_000 - (HOURS - 1) * 3600_000;
  // Hours as HH:MM; the first one, and where the day changes, with the date too.
  const buckets = Array.from({ length: HOURS }, (_, i) => {
    const iso = new Date(start + i * 3600_000).toISOString();
    return i === 0 || iso.slice(11, 13) === '00' ? `${iso.slice(5, 10)} ${iso.slice(11, 16)}` : iso.slice(11, 16);
  });
  const series = keys.map((key) => ({ name: key, values: new Array<number>(HOURS).fill(0) }));
  for (const row of rows) {
    const i = Math.floor((row.hour.getTime() - start) / 3600_000);
    const s = series.find((x) => x.name === row.key);
    if (s && i >= 0 && i < HOURS) s.values[i] += row.n;
  }
  return { buckets, series };
}

export function statusPages(deps: {
  verdicts: VerdictService;
  metrics: Metrics;
  federation: Federation;
  scanning: ScanningServices;
  review: ReviewQueue;
  indexSize: () => number;
  accounts: ConsoleAccounts;
  transparency: { log: TransparencyLog; checkpoints: LogCheckpoints; witness: CheckpointWitness };
}): Router {
  const router = express.Router();
  const viewer = requireRole('viewer');

  router.get('/', viewer, async (req, res) => {
    const since = new Date(Date.now() - HOURS * 3600_000);
    const [scanCounts, delivery, pending, decisionRows, scanRows, inbox] = await Promise.all([
      deps.scanning.scanQueueCounts(),
      deps.federation.deliveryStatus(5),
      deps.review.pendingCount(),
      deps.review.hourlyOutcomes(since),
      deps.verdicts.hourlyScans(since),
      deps.metrics.inbox.get(),
    ]);
    const decisions = hourly(decisionRows, OUTCOMES);
    const scanLabels = [...new Set(scanRows.map((r) => r.key))].sort();
    const scans = hourly(scanRows, scanLabels);
    const nodes = deps.scanning.intake.scannerNodes();
    const queueRow = (name: string, c: { waiting: number; active: number; delayed: number; dead: number; completed: number }) =>
      html`<tr class="queue-${name}"><td>${name}</td><td>${c.waiting}</td><td>${c.active}</td><td>${c.delayed}</td><td>${c.dead}</td></tr>`;
    res.send(
      page(
        { title: 'Health', session: req.consoleSession, active: '/console/', ...messages(req) },
        html`<section class="tiles">
<div class="tile"><span class="big">${pending}</span> waiting for review ${pending > 0 && req.consoleSession!.user.role !== 'viewer' ? html`<a href="/console/review">review</a>` : ''}</div>
<div class="tile"><span class="big">${deps.indexSize()}</span> hashes indexed</div>
<div class="tile"><span class="big">${nodes.length}</span> scanner nodes seen (${deps.scanning.mode === 'external' ? 'nodes on the queue' : deps.scanning.mode === 'inprocess' ? 'scanning in this process' : 'scanning is off'})</div>
</section>
<h2>Queues</h2>
<table class="queues"><thead><tr><th>queue</th><th>waiting</th><th>running</th><th>delayed</th><th>dead</th></tr></thead><tbody>${queueRow('scan', scanCounts)}${queueRow('deliver', delivery.counts)}</tbody></table>
${
  delivery.dead.length
    ? html`<h3>Deliveries that gave up</h3><table class="dead"><thead><tr><th>when</th><th>to</th><th>last error</th><th></th></tr></thead><tbody>${delivery.dead.map(
        (d) => html`<tr><td>${formatTime(d.failedAt)}</td><td class="uri">${d.data.inbox}</td><td>${d.error}</td><td>${
          roleAtLeast(req.consoleSession!.user.role, 'admin')
            ? html`<form method="post" action="/console/deliveries/retry" class="inline">${csrfField(req.consoleSession!)}<input type="hidden" name="id" value="${d.id}"><button>Retry</button></form>`
            : ''
        }</td></tr>`,
      )}</tbody></table>`
    : ''
}
<h2>Scanner nodes</h2>
${nodes.length ? html`<table><thead><tr><th>node</th><th>classifier</th><th>scans</th><th>last seen</th></tr></thead><tbody>${nodes.map((n) => html`<tr><td>${n.node}</td><td>${n.classifier}</td><td>${n.scans}</td><td>${formatTime(n.lastSeen)}</td></tr>`)}</tbody></table>` : html`<p class="empty">No scanner has posted a result since the server started.</p>`}
<h2>Last ${HOURS} hours (UTC)</h2>
${barChartSvg('Decisions per hour, by outcome', decisions.buckets, decisions.series)}
${barChartSvg('Our scans per hour, by label', scans.buckets, scans.series)}
<h2>Inbox since start</h2>
<table><thead><tr><th>result</th><th>activities</th></tr></thead><tbody>${inbox.values.map((v) => html`<tr><td>${String(v.labels.result)}</td><td>${v.value}</td></tr>`)}</tbody></table>
<p class="hint">Everything here is also at <code>/metrics</code> for Prometheus.</p>`,
      ),
    );
  });

  router.post('/deliveries/retry', requireRole('admin'), async (req, res) => {
    const id = String((req.body as Record<string, unknown>).id ?? '');
    if (!(await deps.federation.retryDelivery(id))) throw new HttpError(404, 'not_found', 'no such dead delivery');
    await deps.accounts.record(req.consoleSession!.user.username, 'delivery.retry', { id }, req.ip ?? null);
    redirectWithMessage(req, res, '/console/', 'Delivery queued again.');
  });

  const ownStatistics = new OwnLogStatistics(deps.transparency.log);
  router.get('/log', viewer, async (req, res) => {
    const { log, checkpoints, witness } = deps.transparency;
    const [size, recent, witnesses, watched, alerts, statistics] = await Promise.all([
      log.size(),
      checkpoints.recent(10),
      checkpoints.witnesses(),
      witness.watched(),
      witness.alerts({ limit: 20 }),
      ownStatistics.current(),
    ]);
    const latest = recent[0]?.size ?? 0;
    res.send(
      page(
        { title: 'Transparency log', session: req.consoleSession, active: '/console/log' },
        html`${alerts.length ? html`<p class="error" role="alert">${alerts.length} alert(s): a log we witness showed an inconsistency. See below.</p>` : ''}
<p>Our log holds <strong>${size}</strong> entries; the latest signed checkpoint covers <strong>${latest}</strong>. Auditors check it with <code>vouch audit ${'<'}our URL${'>'}</code>.</p>
<h2>Our checkpoints</h2>
<table><thead><tr><th>size</th><th>signed</th><th>cosigned by</th></tr></thead><tbody>${recent.map(
          (c) => html`<tr><td>${c.size}</td><td>${formatTime(c.createdAt)}</td><td>${c.witnesses.length ? c.witnesses.join(', ') : html`<span class="warn">no witness yet</span>`}</td></tr>`,
        )}</tbody></table>
<h2>Witnesses of our log</h2>
${witnesses.length ? html`<table><thead><tr><th>witness</th><th>last cosigned size</th><th>behind</th><th>when</th></tr></thead><tbody>${witnesses.map(
          (w) => html`<tr><td>${w.witness}</td><td>${w.size}</td><td class="${latest - w.size > 0 ? 'warn' : ''}">${latest - w.size}</td><td>${formatTime(w.at)}</td></tr>`,
        )}</tbody></table>` : html`<p class="empty">No witness has cosigned yet: followers cosign the checkpoints we push to them.</p>`}
<h2>Logs we witness</h2>
${watched.length ? html`<table><thead><tr><th>log</th><th>size</th><th>last checkpoint</th></tr></thead><tbody>${watched.map((w) => html`<tr><td>${w.logOrigin}</td><td>${w.size}</td><td>${formatTime(w.receivedAt)}</td></tr>`)}</tbody></table>` : html`<p class="empty">None yet.</p>`}
<h2>Alerts</h2>
${alerts.length ? html`<table class="alerts"><thead><tr><th>when</th><th>log</th><th>kind</th><th>evidence</th></tr></thead><tbody>${alerts.map(
          (a) => html`<tr><td>${formatTime(a.createdAt)}</td><td>${a.logOrigin}</td><td><strong>${a.kind}</strong></td><td><code>${JSON.stringify(a.evidence).slice(0, 400)}</code></td></tr>`,
        )}</tbody></table>` : html`<p class="empty">No alerts.</p>`}
${logStatisticsSection(statistics, `our log, ${statistics.entries.total} entries, ${new Date().toISOString().slice(0, 10)}`)}`,
      ),
    );
  });
  return router;
}

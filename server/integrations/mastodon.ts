// Mastodon: its admin webhooks tell us about new and edited statuses; we fetch each image
// attachment (SSRF-safe), decide about it like any upload, and when it is blocked act through
// Mastodon's API: a report on the status for Mastodon's moderators (with our decision in the
// comment) and, if the admin chose one, an action on the account. Webhook bodies are checked
// against Mastodon's HMAC signature (X-Hub-Signature) before anything else is read.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import type { Logger } from '../config/logger.js';
import type { JobQueue } from '../queue/index.js';
import { PermanentJobError } from '../queue/index.js';
import type { SafeFetch } from '../federation/safe-fetch.js';
import { OutboundRequestError } from '../federation/safe-fetch.js';
import { MediaRejectedError, type MediaDecision, type MediaIntake } from '../scanning/intake.js';

export const MASTODON_QUEUE = 'mastodon';
export const MASTODON_EVENTS = ['status.created', 'status.updated'] as const;
export type MastodonAccountAction = 'none' | 'sensitive' | 'silence' | 'suspend';

export interface MastodonSettings {
  webhookSecret: string;
  /** Base URL of the Mastodon instance, for its API. */
  url?: string;
  /** An admin's access token (scopes write:reports and, for account actions, admin:write:accounts). */
  token?: string;
  accountAction: MastodonAccountAction;
  maxMediaBytes: number;
  /** How long a job waits for the scan of an image nobody has judged (it runs in the background). */
  scanWaitMs: number;
}

/** A status to check, or (after its report was filed) the account action that goes with it. */
export type MastodonJob =
  | { kind: 'status'; statusId: string; statusUri: string; accountId: string; media: Array<{ id: string; url: string }> }
  | { kind: 'action'; accountId: string; reportId: string | undefined; text: string };
type StatusJob = Extract<MastodonJob, { kind: 'status' }>;

/** The part of Mastodon's webhook payload we use; the rest is ignored. */
const envelopeSchema = z.object({ event: z.string().max(100), object: z.unknown() });
const statusSchema = z
  .object({
    id: z.string().regex(/^\d{1,30}$/),
    uri: z.string().max(2000),
    account: z.object({ id: z.string().regex(/^\d{1,30}$/) }).loose(),
    media_attachments: z
      .array(z.object({ id: z.string().regex(/^\d{1,30}$/), type: z.string(), url: z.url({ protocol: /^https?$/ }).nullable() }).loose())
      .max(32)
      .default([]),
  })
  .loose();

export class WebhookError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Mastodon signs the raw body: `X-Hub-Signature: sha256=HEX` of HMAC-SHA256(secret, body). */
export function verifyWebhookSignature(secret: string, body: Buffer, header: string | undefined): boolean {
  const match = /^sha256=([0-9a-f]{64})$/i.exec(header ?? '');
  if (!match) return false;
  const expected = createHmac('sha256', secret).update(body).digest();
  return timingSafeEqual(Buffer.from(match[1].toLowerCase(), 'hex'), expected);
}

export class MastodonIntegration {
  constructor(
    private readonly settings: MastodonSettings,
    private readonly intake: MediaIntake,
    private readonly queue: JobQueue<MastodonJob>,
    private readonly safeFetch: SafeFetch,
    private readonly logger: Logger,
  ) {}

  /** Checks and queues a webhook delivery; returns how many images will be looked at. */
  async receive(body: Buffer, signature: string | undefined): Promise<number> {
    if (!verifyWebhookSignature(this.settings.webhookSecret, body, signature)) {
      throw new WebhookError(401, 'bad_signature', 'the X-Hub-Signature does not match the webhook secret');
    }
    let json: unknown;
    try {
      json = JSON.parse(body.toString('utf8'));
    } catch {
      throw new WebhookError(400, 'bad_json', 'the webhook body is not JSON');
    }
    const envelope = envelopeSchema.safeParse(json);
    if (!envelope.success) throw new WebhookError(400, 'bad_payload', 'the webhook body has no event');
    // Other events (accounts, reports) are acknowledged and ignored: Mastodon lets admins pick.
    if (!(MASTODON_EVENTS as readonly string[]).includes(envelope.data.event)) return 0;
    const parsed = statusSchema.safeParse(envelope.data.object);
    if (!parsed.success) throw new WebhookError(400, 'bad_payload', parsed.error.issues.map((i) => `object.${i.path.join('.')}: ${i.message}`).join('; '));
    const object = parsed.data;
    const media = object.media_attachments.filter((m) => (m.type === 'image' || m.type === 'gifv') && m.url).map((m) => ({ id: m.id, url: m.url! }));
    if (media.length === 0) return 0;
    // One job per status version: a redelivered webhook is queued once.
    const version = createHmac('sha256', 'vouch-mastodon').update(media.map((m) => m.id).join(',')).digest('hex').slice(0, 16);
    await this.queue.add('status', { kind: 'status', statusId: object.id, statusUri: object.uri, accountId: object.account.id, media }, { jobId: `mastodon-${object.id}-${version}` });
    return media.length;
  }

  start(concurrency = 2): void {
    this.queue.process((job) => (job.data.kind === 'action' ? this.accountAction(job.data) : this.check(job.data)), { concurrency });
  }

  private async check(job: StatusJob): Promise<void> {
    const blocked: MediaDecision[] = [];
    let pending = 0;
    for (const media of job.media) {
      let bytes: Buffer;
      try {
        const res = await this.safeFetch(media.url, { maxBodyBytes: this.settings.maxMediaBytes, accept: 'image/*', timeoutMs: 30_000 });
        if (res.status === 404 || res.status === 410) continue; // deleted since
        if (res.status !== 200) throw new Error(`fetching ${media.url} answered ${res.status}`);
        bytes = res.body;
      } catch (err) {
        if (err instanceof OutboundRequestError && (err.reason === 'blocked_address' || err.reason === 'too_large' || err.reason === 'bad_url')) {
          throw new PermanentJobError(`${media.url}: ${err.message}`);
        }
        throw err;
      }
      try {
        const decision = await this.intake.submit(bytes, `mastodon:${job.statusUri}`, this.settings.scanWaitMs);
        if (decision.outcome === 'block') blocked.push(decision);
        // Still being scanned: look again later (the job's retries back off), so a late result is reported too.
        else if (decision.scanPending && !decision.scanned) pending++;
      } catch (err) {
        if (err instanceof MediaRejectedError) {
          this.logger.info({ status: job.statusUri, media: media.id, code: err.code }, 'mastodon media is not an image we can read');
          continue;
        }
        throw err;
      }
    }
    if (pending > 0 && blocked.length === 0) throw new Error(`${pending} image(s) of ${job.statusUri} still wait for their scan`);
    if (blocked.length > 0) await this.act(job, blocked);
  }

  /** A report for Mastodon's moderators, then (as a job of its own, so a retry never files a
   * second report) the admin's chosen account action, if any. */
  private async act(job: StatusJob, blocked: MediaDecision[]): Promise<void> {
    const { url, token, accountAction } = this.settings;
    if (!url || !token) {
      this.logger.warn({ status: job.statusUri, decisions: blocked.map((d) => d.decisionId) }, 'blocked media on Mastodon, but VOUCH_MASTODON_URL / VOUCH_MASTODON_TOKEN are not set: nothing reported');
      return;
    }
    // Mastodon's report categories: spam, legal (4.2+), other ('violation' needs the server's rule ids).
    const labels = new Set(blocked.map((d) => d.label));
    const category = labels.has('csam') ? 'legal' : labels.size === 1 && labels.has('spam') ? 'spam' : 'other';
    const comment = `Vouch blocked ${blocked.length} image(s): ${blocked
      .map((d) => `${d.label} (decision ${d.decisionId}: ${d.explanation.reason})`)
      .join('; ')}`.slice(0, 1000);
    const report = await this.api('POST', '/api/v1/reports', { account_id: job.accountId, status_ids: [job.statusId], comment, category, forward: false });
    const reportId = typeof report.id === 'string' ? report.id : undefined;
    this.logger.warn({ status: job.statusUri, report: reportId }, 'blocked media on Mastodon: reported');
    if (accountAction !== 'none') {
      await this.queue.add('action', { kind: 'action', accountId: job.accountId, reportId, text: comment }, { jobId: `mastodon-action-${job.statusId}-${reportId ?? 'none'}` });
    }
  }

  private async accountAction(job: Extract<MastodonJob, { kind: 'action' }>): Promise<void> {
    const type = this.settings.accountAction;
    if (type === 'none') return; // changed since the job was queued
    await this.api('POST', `/api/v1/admin/accounts/${job.accountId}/action`, { type, report_id: job.reportId, text: job.text, send_email_notification: false });
    this.logger.warn({ account: job.accountId, report: job.reportId, action: type }, 'Mastodon account action taken');
  }

  private async api(method: string, path: string, body: Record<string, unknown>): Promise<Record<string, unknown>> {
    const res = await this.safeFetch(new URL(path, this.settings.url), {
      method,
      headers: { authorization: `Bearer ${this.settings.token}`, 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify(body),
      maxBodyBytes: 256 * 1024,
    });
    // 4xx other than rate limiting will not improve with retries (wrong token, scopes, ids).
    if (res.status >= 400 && res.status < 500 && res.status !== 429) {
      throw new PermanentJobError(`Mastodon refused ${method} ${path}: ${res.status} ${res.body.toString('utf8').slice(0, 200)}`);
    }
    if (res.status >= 300) throw new Error(`Mastodon answered ${method} ${path} with ${res.status}`);
    try {
      return JSON.parse(res.body.toString('utf8')) as Record<string, unknown>;
    } catch {
      return {};
    }
  }
}

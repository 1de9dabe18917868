// pict-rs' external_validation hook on a real server with its in-process scanner: known abuse is
// refused (406) and quarantined, unknown media is scanned before the answer, a reviewer's
// overturn corrects our verdict, and with no scanner the fail-closed policy refuses.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { syntheticJpeg } from '../helpers/images.js';
import { runCli, startVouch } from '../helpers/process.js';

const TOKEN = randomBytes(32).toString('hex');

const startPictrsVouch = (host: string, extra: Record<string, string>) =>
  startVouch(host, { VOUCH_ADMIN_TOKEN: TOKEN, VOUCH_QUARANTINE_KEY: randomBytes(32).toString('base64'), VOUCH_SCAN_WAIT_MS: '60000', ...extra });

describe('pict-rs external validation', () => {
  let vouch: Awaited<ReturnType<typeof startPictrsVouch>>;
  let closed: Awaited<ReturnType<typeof startPictrsVouch>>;
  const admin = (base: string, method: string, path: string, body?: unknown, contentType = 'application/json') =>
    fetch(`${base}/api/v1/admin${path}`, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': contentType },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
  const validate = (base: string, bytes: Buffer) => fetch(`${base}/api/v1/pictrs/validate`, { method: 'POST', body: bytes });

  beforeAll(async () => {
    [vouch, closed] = await Promise.all([
      startPictrsVouch('127.0.0.51', { VOUCH_SCANNER: 'inprocess' }),
      startPictrsVouch('127.0.0.52', { VOUCH_SCANNER: 'off' }),
    ]);
  });

  afterAll(async () => {
    for (const v of [vouch, closed]) {
      await v?.server.stop();
      await v?.cleanup();
    }
  });

  it('refuses media on a partner\'s hash list with 406 and keeps it in quarantine', async () => {
    const image = await syntheticJpeg(601);
    const { sha256 } = await (await fetch(`${vouch.url}/api/v1/hash`, { method: 'POST', body: image })).json();
    expect((await admin(vouch.url, 'POST', '/hashes?source=partner', `sha256:${sha256},csam,1`, 'text/plain')).status).toBe(201);
    const res = await validate(vouch.url, image);
    expect(res.status).toBe(406);
    const body = await res.json();
    expect(body).toMatchObject({ outcome: 'block', label: 'csam', quarantined: true, sha256 });
    // The unauthenticated hook says nothing about peers or trust; the admin API has the explanation.
    expect(body).not.toHaveProperty('explanation');
    expect((await (await admin(vouch.url, 'GET', `/decisions/${body.decision_id}`)).json()).explanation).toMatchObject({ decidedBy: 'local' });
    const { items } = await (await admin(vouch.url, 'GET', '/quarantine')).json();
    expect(items).toMatchObject([{ sha256, state: 'held', source: 'pictrs' }]);

    // The operator's tools: list, release a false positive, with the reason in the access log.
    const env = { VOUCH_ADMIN_TOKEN: TOKEN };
    const listed = await runCli(['quarantine', 'list', '--server', vouch.url], env);
    expect(listed.stdout).toContain(`${items[0].id}\theld\tblock csam`);
    expect((await runCli(['quarantine', 'release', String(items[0].id), '--reason', 'partner list was wrong', '--server', vouch.url], env)).stdout).toContain('"released":true');
    const shown = JSON.parse((await runCli(['quarantine', 'show', String(items[0].id), '--server', vouch.url], env)).stdout);
    expect(shown.item.state).toBe('released');
    expect(shown.access.map((a: { action: string }) => a.action)).toEqual(['quarantine', 'release']);
    expect((await runCli(['quarantine', 'delete', '999', '--reason', 'nothing', '--server', vouch.url], env)).stderr).toContain('404 not_found');
  });

  it('scans unknown media before answering, and a reviewer can overturn the result', async () => {
    const image = await syntheticJpeg(602);
    const res = await validate(vouch.url, image);
    expect(res.status).toBe(201);
    const decision = await res.json();
    // One model's ok is one classifier: not enough to allow (decision 15), so the scanned media
    // stays undecided, and the default policy lets it through (fail-open for unsuspected media).
    expect(decision).toMatchObject({ scanned: true, outcome: 'unknown', label: null });

    const review = await admin(vouch.url, 'POST', `/decisions/${decision.decision_id}/review`, { action: 'overturn', label: 'spam', reason: 'advertising flood' });
    expect(review.status).toBe(200);
    const [verdict] = (await (await fetch(`${vouch.url}/api/v1/verdicts?sha256=${decision.sha256}`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()).matches;
    expect(verdict).toMatchObject({ label: 'spam', local: true });
    const { decisions } = await (await admin(vouch.url, 'GET', '/decisions')).json();
    expect(decisions.find((d: { id: number }) => d.id === decision.decision_id).review_outcome).toMatch(/^overturn:spam: advertising flood/);
    // The next upload of the same image follows the corrected verdict.
    const again = await validate(vouch.url, image);
    expect(again.status).toBe(406);
    // A stale second review of the first decision is refused, and leaves the new one pending.
    const stale = await admin(vouch.url, 'POST', `/decisions/${decision.decision_id}/review`, { action: 'confirm', reason: 'from an old tab' });
    expect(stale.status).toBe(409);
    const newer = await (await admin(vouch.url, 'GET', `/decisions/${(await again.json()).decision_id}`)).json();
    expect(newer).toMatchObject({ outcome: 'block', reviewed_at: null });
    expect((await admin(vouch.url, 'POST', `/decisions/${decision.decision_id}/review`, { action: 'confirm', reason: '   ' })).status).toBe(400);
  });

  it('refuses undecidable media when no scanner is available and policy is fail-closed', async () => {
    const open = await validate(closed.url, await syntheticJpeg(604));
    expect(open.status).toBe(201); // the default policy fails open for unlabelled media
    const { policy } = await (await admin(closed.url, 'GET', '/policy')).json();
    const strict = { ...policy, version: 'fail-closed-1', failMode: { ...policy.failMode, default: 'closed' } };
    expect((await admin(closed.url, 'PUT', '/policy', strict)).status).toBe(200);
    const res = await validate(closed.url, await syntheticJpeg(603));
    expect(res.status).toBe(406);
    expect(await res.json()).toMatchObject({ outcome: 'unknown', scan_pending: false });
  });

  it('serves Prometheus metrics that move when work happens', async () => {
    const scrape = async () => {
      const res = await fetch(`${vouch.url}/metrics`);
      expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
      const text = await res.text();
      const samples = new Map<string, number>();
      for (const line of text.split('\n')) {
        if (line === '' || line.startsWith('#')) continue;
        const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (-?(?:[0-9.]+(?:e[+-]?[0-9]+)?|NaN|\+Inf|-Inf))$/.exec(line);
        expect(match, `not Prometheus text: ${line}`).not.toBeNull();
        samples.set(match![1], Number(match![2]));
      }
      return samples;
    };
    const before = await scrape();
    await validate(vouch.url, await syntheticJpeg(605));
    const after = await scrape();
    // Decided before the scan and again after it: unknown both times with one model (see above).
    const key = 'vouch_decisions_total{outcome="unknown"}';
    expect(after.get(key)).toBe((before.get(key) ?? 0) + 2);
    expect(after.get('vouch_hash_seconds_count')).toBeGreaterThan(before.get('vouch_hash_seconds_count') ?? 0);
    expect([...after.keys()].some((k) => k.startsWith('vouch_queue_jobs{queue="scan"'))).toBe(true);
  });

  it('keeps the media API for holders of the token', async () => {
    const res = await fetch(`${vouch.url}/api/v1/media`, { method: 'POST', body: await syntheticJpeg(606) });
    expect(res.status).toBe(401);
    const ssrf = await fetch(`${vouch.url}/api/v1/media`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ url: 'http://169.254.169.254/latest/meta-data' }),
    });
    expect(ssrf.status).toBe(502);
    expect((await ssrf.json()).error.code).toMatch(/^outbound_(bad_url|blocked_address)$/);
  });

  it('refuses bytes that are not an image', async () => {
    const res = await validate(vouch.url, Buffer.from('not an image at all'));
    expect(res.status).toBe(406);
    expect((await res.json()).error.code).toBe('unsupported_format');
  });
});

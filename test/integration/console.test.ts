// The web console in real headless Chromium against two real servers on 127.0.0.x: A (the
// console under test) follows B, whose verdicts reach A over real federation. Accounts are made
// with the real CLI. Screenshots of each step go to test-artifacts/screenshots/.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import type { Browser, BrowserContext, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { syntheticJpeg } from '../helpers/images.js';
import { eventually, freePort, runCli, startServerProcess, type ServerProcess, LOCAL_FEDERATION_ENV } from '../helpers/process.js';
import { STORE_BACKENDS } from '../helpers/services.js';
import { FakePeer } from '../helpers/fake-peer.js';
import { HAVE_CHROMIUM, SCREENSHOT_DIR, launchChromium } from '../helpers/browser.js';

const TOKEN = randomBytes(32).toString('hex');
const PASSWORDS = { alice: 'alice-admin-passphrase', mo: 'moderator-passphrase', vic: 'viewer-passphrase-1', rita: 'rate-limited-viewer' };
/** Accounts the tests make through the console. */
const PASSWORDS_EXTRA: Record<string, string> = {};

interface Instance {
  url: string;
  actor: string;
  env: Record<string, string>;
  server?: ServerProcess;
  cleanup: () => Promise<void>;
}

/** A on the real PostgreSQL when there is one (CI), B on the embedded database. */
async function instance(host: string, backend: (typeof STORE_BACKENDS)[number]): Promise<Instance> {
  const store = backend.create();
  const { dataDir, databaseUrl, databaseSchema } = store.config as { dataDir: string; databaseUrl?: string; databaseSchema?: string };
  const port = await freePort(host);
  const url = `http://${host}:${port}`;
  return {
    url,
    actor: `${url}/actor`,
    cleanup: store.cleanup,
    env: {
      VOUCH_DATA_DIR: dataDir,
      ...(databaseUrl ? { DATABASE_URL: databaseUrl, VOUCH_DATABASE_SCHEMA: databaseSchema! } : {}),
      VOUCH_HOST: host,
      VOUCH_PORT: String(port),
      VOUCH_PUBLIC_URL: url,
      VOUCH_ADMIN_TOKEN: TOKEN,
      VOUCH_QUARANTINE_KEY: randomBytes(32).toString('base64'),
      VOUCH_SCANNER: 'off',
      REDIS_URL: '',
      ...LOCAL_FEDERATION_ENV,
    },
  };
}

function admin(i: Instance, method: string, path: string, body?: unknown): Promise<Response> {
  return fetch(`${i.url}/api/v1/admin${path}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

async function hashes(i: Instance, image: Buffer): Promise<{ sha256: string; pdq: string }> {
  return (await fetch(`${i.url}/api/v1/hash`, { method: 'POST', body: image })).json();
}

describe.skipIf(!HAVE_CHROMIUM)('web console in headless Chromium', () => {
  let a: Instance;
  let b: Instance;
  let browser: Browser;
  const contexts: BrowserContext[] = [];
  /** An image B marked `sexual`, which A sees only through B. */
  let peerJudged: { sha256: string; pdq: string };
  /** An image A's own moderators marked, then received: blocked and quarantined. */
  let blockedDecision: number;
  let earlierDecision: number;
  let secondDecision: number;

  // Runs in the page (the tests are typed for Node, not the DOM).
  const cssFilter = (img: Locator) =>
    img.evaluate((el) => (globalThis as unknown as { getComputedStyle(e: unknown): { filter: string } }).getComputedStyle(el).filter);
  const shot = (page: Page, name: string) => page.screenshot({ path: join(SCREENSHOT_DIR, `console-${name}.png`), fullPage: true });

  async function signIn(user: string): Promise<Page> {
    const context = await browser.newContext();
    contexts.push(context);
    const page = await context.newPage();
    await page.goto(`${a.url}/console/`);
    expect(new URL(page.url()).pathname).toBe('/console/login');
    await page.fill('input[name=username]', user);
    await page.fill('input[name=password]', (PASSWORDS as Record<string, string>)[user] ?? PASSWORDS_EXTRA[user]);
    await Promise.all([page.waitForURL(`${a.url}/console/`), page.click('button[type=submit]')]);
    return page;
  }

  beforeAll(async () => {
    [a, b] = await Promise.all([instance('127.0.0.71', STORE_BACKENDS.find((s) => s.available && s.name === 'postgres') ?? STORE_BACKENDS[0]), instance('127.0.0.72', STORE_BACKENDS[0])]);
    // Accounts before the server starts (the embedded database takes one process at a time).
    for (const [name, role] of [['alice', 'admin'], ['mo', 'moderator'], ['vic', 'viewer'], ['rita', 'viewer']] as const) {
      const added = await runCli(['users', 'add', name, '--role', role], a.env, `${PASSWORDS[name]}\n`);
      expect(added.code, added.stderr).toBe(0);
    }
    [a.server, b.server] = await Promise.all([startServerProcess(a.env), startServerProcess(b.env)]);
    browser = await launchChromium();

    // A follows B; B approves; B's human moderators mark an image.
    expect((await admin(a, 'POST', '/peers/follow', { target: b.actor })).status).toBe(202);
    await eventually(async () => {
      const { peers } = await (await admin(b, 'GET', '/peers')).json();
      return peers.some((p: { actor: string; follower: string }) => p.actor === a.actor && p.follower === 'pending');
    }, 15_000, 'B to see the follow');
    expect((await admin(b, 'POST', '/peers/approve', { actor: a.actor })).status).toBe(200);
    peerJudged = await hashes(b, await syntheticJpeg(7101));
    const issued = await admin(b, 'POST', '/verdicts', {
      subjects: [{ algorithm: 'sha256', digest: peerJudged.sha256 }, { algorithm: 'pdq', digest: peerJudged.pdq }],
      label: 'sexual',
      confidence: 1,
      method: 'human',
    });
    expect(issued.status).toBe(201);
    await eventually(async () => {
      const { matches } = await (await fetch(`${a.url}/api/v1/verdicts?sha256=${peerJudged.sha256}`, { headers: { authorization: `Bearer ${TOKEN}` } })).json();
      return matches.length > 0;
    }, 20_000, 'B\'s verdict to reach A');

    // A's own verdict, then the media arrives: blocked by the local verdict and quarantined.
    const image = await syntheticJpeg(7102);
    const own = await hashes(a, image);
    expect((await admin(a, 'POST', '/verdicts', { subjects: [{ algorithm: 'sha256', digest: own.sha256 }], label: 'spam', confidence: 1, method: 'human' })).status).toBe(201);
    const upload = async () => (await fetch(`${a.url}/api/v1/media`, { method: 'POST', body: image, headers: { authorization: `Bearer ${TOKEN}` } })).json();
    // Uploaded twice: one item in the queue, under its latest decision.
    earlierDecision = (await upload()).decision_id;
    const decision = await upload();
    expect(decision).toMatchObject({ outcome: 'block', label: 'spam', quarantined: true });
    blockedDecision = decision.decision_id;

    // A second one, reviewed with the keyboard.
    const second = await syntheticJpeg(7103);
    const secondHashes = await hashes(a, second);
    expect((await admin(a, 'POST', '/verdicts', { subjects: [{ algorithm: 'sha256', digest: secondHashes.sha256 }], label: 'spam', confidence: 1, method: 'human' })).status).toBe(201);
    secondDecision = (await (await fetch(`${a.url}/api/v1/media`, { method: 'POST', body: second, headers: { authorization: `Bearer ${TOKEN}` } })).json()).decision_id;
  }, 120_000);

  afterAll(async () => {
    for (const context of contexts) await context.close().catch(() => {});
    await browser?.close();
    for (const i of [a, b]) {
      await i?.server?.stop();
      await i?.cleanup();
    }
  });

  it('signs in only with the right password, and sends the signed-out to the sign-in page', async () => {
    const context = await browser.newContext();
    contexts.push(context);
    const page = await context.newPage();
    await page.goto(`${a.url}/console/peers`);
    expect(page.url()).toBe(`${a.url}/console/login?next=%2Fconsole%2Fpeers`);
    await page.fill('input[name=username]', 'alice');
    await page.fill('input[name=password]', 'not-the-password');
    await page.click('button[type=submit]');
    await expect.poll(() => page.textContent('.error')).toContain('Wrong name or password');
    await shot(page, '01-sign-in-refused');
    await page.fill('input[name=username]', 'alice');
    await page.fill('input[name=password]', PASSWORDS.alice);
    await Promise.all([page.waitForURL(`${a.url}/console/peers`), page.click('button[type=submit]')]);
    const cookie = (await context.cookies()).find((c) => c.name === 'vouch_session');
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/console' });
    await shot(page, '02-peers');

    // Guessing: after 10 failures for one name, even the right password waits (429).
    const attempt = (password: string) =>
      fetch(`${a.url}/console/login`, { method: 'POST', body: new URLSearchParams({ username: 'rita', password }), redirect: 'manual', headers: { 'sec-fetch-site': 'same-origin' } });
    for (let i = 0; i < 10; i++) expect((await attempt(`guess-${i}`)).status).toBe(401);
    expect((await attempt(PASSWORDS.rita)).status).toBe(429);
  });

  it('shows review items blurred and grey until a moderator clicks Reveal, and logs the reveal', async () => {
    const page = await signIn('mo');
    await page.goto(`${a.url}/console/review`);
    const item = page.locator(`#item-${blockedDecision}`);
    const img = item.locator('img.preview');
    await expect.poll(() => img.evaluate((el) => (el as unknown as { complete: boolean; naturalWidth: number }).complete && (el as unknown as { naturalWidth: number }).naturalWidth > 0)).toBe(true);
    expect(await img.getAttribute('class')).toBe('preview');
    expect(await cssFilter(img)).toMatch(/blur.*grayscale/);
    // What the browser holds before the click is itself grey and blurred (made on the server).
    const preview = await page.request.get(`${a.url}/console/review/${blockedDecision}/preview`);
    const { data, info } = await sharp(await preview.body()).raw().toBuffer({ resolveWithObject: true });
    let colourful = 0;
    for (let p = 0; p < data.length; p += info.channels) if (Math.abs(data[p] - data[p + 1]) > 3 || Math.abs(data[p + 1] - data[p + 2]) > 3) colourful++;
    expect(colourful / (data.length / info.channels)).toBeLessThan(0.01);
    await shot(page, '03-review-blurred');

    await item.locator('button.reveal').click();
    await expect.poll(() => img.getAttribute('class')).toBe('preview revealed');
    expect(await img.getAttribute('src')).toMatch(/^blob:/);
    expect(await cssFilter(img)).toBe('none');
    await shot(page, '04-review-revealed');

    await page.goto(`${a.url}/console/decisions/${blockedDecision}`);
    const reveals = page.locator('table.access-log tr.access-reveal');
    await expect.poll(() => reveals.count()).toBe(1);
    expect(await reveals.first().textContent()).toContain('mo');
    await shot(page, '05-decision-access-log');
  });

  it('reviews with the keyboard: j/k move, r reveals, o asks for a reason; a click on Confirm confirms', async () => {
    const page = await signIn('mo');
    await page.goto(`${a.url}/console/review`);
    const items = page.locator('.review-item');
    expect(await items.count()).toBe(2);
    // Newest first: the second item is on top; j moves to the first, k back.
    expect(await page.locator('.review-item.current').getAttribute('data-decision')).toBe(String(secondDecision));
    await page.keyboard.press('j');
    expect(await page.locator('.review-item.current').getAttribute('data-decision')).toBe(String(blockedDecision));
    await page.keyboard.press('k');
    const item = page.locator(`#item-${secondDecision}`);
    await page.keyboard.press('r');
    await expect.poll(() => item.locator('img.preview').getAttribute('class')).toBe('preview revealed');
    // `o` asks for a reason first; the moderator then thinks better of it and clicks Confirm:
    // the click is what counts.
    await page.keyboard.press('o');
    await page.keyboard.type('spam, as the hash list says');
    await Promise.all([page.waitForURL(/\/console\/review\?done=/), item.locator('button.confirm').click()]);
    expect(await page.textContent('.flash')).toContain(`Decision ${secondDecision} confirmed.`);
    const decision = await (await admin(a, 'GET', `/decisions/${secondDecision}`)).json();
    expect(decision).toMatchObject({ reviewed_by: 'mo', review_outcome: 'confirm: spam, as the hash list says' });
  });

  it('lets a moderator overturn a decision: our verdict is corrected and the media released', async () => {
    const page = await signIn('mo');
    await page.goto(`${a.url}/console/review`);
    const item = page.locator(`#item-${blockedDecision}`);
    // With the keyboard: pick the label, press o, type the reason, Enter.
    await item.locator('select[name=label]').selectOption('ok');
    await item.focus();
    await page.keyboard.press('o');
    await page.keyboard.type('a holiday photo, not spam');
    await Promise.all([page.waitForURL(/\/console\/review\?done=/), page.keyboard.press('Enter')]);
    expect(await page.textContent('.flash')).toContain(`Decision ${blockedDecision} overturned to ok`);
    expect(await page.locator(`#item-${blockedDecision}`).count()).toBe(0);
    await shot(page, '06-overturned');

    const decision = await (await admin(a, 'GET', `/decisions/${blockedDecision}`)).json();
    expect(decision).toMatchObject({ reviewed_by: 'mo', review_outcome: 'overturn:ok: a holiday photo, not spam' });
    // The earlier decision about the same media is settled by the same review.
    expect(await (await admin(a, 'GET', `/decisions/${earlierDecision}`)).json()).toMatchObject({ reviewed_by: 'mo', review_outcome: 'overturn:ok: a holiday photo, not spam' });
    const { matches } = await (await fetch(`${a.url}/api/v1/verdicts?sha256=${decision.sha256}`, { headers: { authorization: `Bearer ${TOKEN}` } })).json();
    expect(matches.filter((m: { local: boolean }) => m.local).map((m: { label: string }) => m.label)).toEqual(['ok']);
    const { items } = await (await admin(a, 'GET', '/quarantine')).json();
    expect(items.find((q: { sha256: string }) => q.sha256 === decision.sha256).state).toBe('released');
  });

  it('changing a peer\'s trust on the peers page changes the decision about its verdicts', async () => {
    const page = await signIn('alice');
    const explain = `${a.url}/console/explain?sha256=${peerJudged.sha256}`;
    await page.goto(explain);
    expect(await page.textContent('.explanation .outcome')).toBe('unknown');

    await page.goto(`${a.url}/console/peers`);
    const row = page.locator(`tr[data-actor="${b.actor}"]`);
    await row.locator('input[name=abuse]').fill('0.9');
    await Promise.all([page.waitForURL(/\/console\/peers\?done=/), row.locator('form.trust-form button').click()]);
    expect(await page.textContent('.flash')).toContain(`Trust in ${b.actor} set: abuse 0.9`);
    expect(await page.locator('svg.trust-graph .node.direct').count()).toBe(1);
    await shot(page, '07-trust-set');

    await page.goto(explain);
    expect(await page.textContent('.explanation .outcome')).toBe('block');
    expect(await page.textContent('.explanation .contributions')).toContain(b.actor);
    await shot(page, '08-explained-block');

    // Verdict search: by PDQ hash (near matches with their distance), by issuer and label.
    await page.goto(`${a.url}/console/verdicts`);
    await page.keyboard.press('/');
    await page.keyboard.type(peerJudged.pdq);
    await Promise.all([page.waitForURL(/\/console\/verdicts\?hash=/), page.keyboard.press('Enter')]);
    const rows = page.locator('table.verdicts tbody tr');
    expect(await rows.count()).toBe(1);
    expect(await rows.first().textContent()).toContain(b.actor);
    await page.goto(`${a.url}/console/verdicts?issuer=${encodeURIComponent(b.actor)}&label=ok`);
    expect(await page.locator('table.verdicts tbody tr').count()).toBe(0);
    await page.goto(`${a.url}/console/verdicts?issuer=${encodeURIComponent(b.actor)}&label=sexual`);
    expect(await page.locator('table.verdicts tbody tr').count()).toBe(1);
    await shot(page, '09-verdict-search');
  });

  it('refuses a POST without the CSRF token, from another site, or from too low a role', async () => {
    const page = await signIn('alice');
    const status = (url: string, body: Record<string, string>) =>
      page.evaluate(
        async ([u, b]) => (await fetch(u, { method: 'POST', body: new URLSearchParams(b), credentials: 'same-origin' })).status,
        [url, body] as const,
      );
    expect(await status('/console/peers/trust', { actor: b.actor, abuse: '0' })).toBe(403);
    expect(await status('/console/peers/trust', { actor: b.actor, abuse: '0', _csrf: 'forged' })).toBe(403);
    // A crafted link cannot make the console display its words.
    await page.goto(`${a.url}/console/peers?done=${encodeURIComponent('Session expired: sign in at https://evil.example')}&sig=xxxxxxxxxxxxxxxxxxxxxx`);
    expect(await page.locator('.flash').count()).toBe(0);
    const weight = await (await admin(a, 'GET', `/trust/weight?peer=${encodeURIComponent(b.actor)}`)).json();
    expect(weight.abuse.weight).toBeCloseTo(0.9);

    // From a page on B's origin (one without the console's CSP): the cookie is SameSite=Strict
    // and the request says it is cross-site, so A refuses it.
    await page.goto(`${b.url}/healthz`);
    const crossSite = await page.evaluate(
      async ([u, actor]) => (await fetch(u, { method: 'POST', body: new URLSearchParams({ actor, abuse: '0' }), credentials: 'include', mode: 'no-cors' })).type,
      [`${a.url}/console/peers/trust`, b.actor] as const,
    );
    expect(crossSite).toBe('opaque');
    expect((await (await admin(a, 'GET', `/trust/weight?peer=${encodeURIComponent(b.actor)}`)).json()).abuse.weight).toBeCloseTo(0.9);
    // Even with the session cookie and the CSRF token in hand, another Origin is refused.
    await page.goto(`${a.url}/console/peers`);
    const cookie = (await page.context().cookies()).find((c) => c.name === 'vouch_session')!;
    const csrf = (await page.getAttribute('meta[name="csrf-token"]', 'content'))!;
    const foreign = await fetch(`${a.url}/console/peers/trust`, {
      method: 'POST',
      headers: { cookie: `vouch_session=${cookie.value}`, origin: b.url, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ actor: b.actor, abuse: '0', _csrf: csrf }),
      redirect: 'manual',
    });
    expect(foreign.status).toBe(403);

    // A viewer sees the peers page but no forms, and the server refuses its POST even with a token.
    const viewer = await signIn('vic');
    await viewer.goto(`${a.url}/console/peers`);
    expect(await viewer.locator('form.trust-form').count()).toBe(0);
    const token = await viewer.getAttribute('meta[name="csrf-token"]', 'content');
    const refused = await viewer.evaluate(
      async ([actor, csrf]) => (await fetch('/console/peers/trust', { method: 'POST', body: new URLSearchParams({ actor, abuse: '0', _csrf: csrf }) })).status,
      [b.actor, token ?? ''] as const,
    );
    expect(refused).toBe(403);
    expect((await viewer.goto(`${a.url}/console/review`))?.status()).toBe(403);
    await shot(viewer, '10-viewer-refused');
  });

  it('lets an admin add a user, set its role and password; a user changes its own password', async () => {
    const page = await signIn('alice');
    await page.goto(`${a.url}/console/users`);
    await page.fill('form.new-user input[name=username]', 'nora');
    await page.selectOption('form.new-user select[name=role]', 'viewer');
    await page.fill('form.new-user input[name=password]', 'first-passphrase');
    await Promise.all([page.waitForURL(/\/console\/users\?done=/), page.click('form.new-user button')]);
    const row = page.locator('tr', { hasText: 'nora' }).first();
    await row.locator('form.user-role select').selectOption('moderator');
    await Promise.all([page.waitForURL(/\?done=/), row.locator('form.user-role button').click()]);
    expect(await page.textContent('.flash')).toContain('nora is now moderator');
    const again = page.locator('tr', { hasText: 'nora' }).first();
    await again.locator('form.user-password input[name=password]').fill('second-passphrase');
    await Promise.all([page.waitForURL(/\?done=/), again.locator('form.user-password button').click()]);
    expect(await page.textContent('.flash')).toContain('New password set for nora');
    await shot(page, '15-users');

    PASSWORDS_EXTRA.nora = 'second-passphrase';
    const nora = await signIn('nora');
    expect(await nora.textContent('nav')).toContain('nora (moderator)');
    await nora.goto(`${a.url}/console/account`);
    await nora.fill('input[name=current]', 'wrong-passphrase');
    await nora.fill('input[name=password]', 'third-passphrase');
    await Promise.all([nora.waitForURL(/\/console\/account\?error=/), nora.click('main form button')]);
    expect(await nora.textContent('.error')).toContain('The current password is wrong.');
    await nora.fill('input[name=current]', 'second-passphrase');
    await nora.fill('input[name=password]', 'third-passphrase');
    await Promise.all([nora.waitForURL(`${a.url}/console/login`), nora.click('main form button')]);
    PASSWORDS_EXTRA.nora = 'third-passphrase';
    await signIn('nora');
  });

  it('lists a delivery that gave up, and an admin can send it again', async () => {
    // A peer whose inbox refuses (400 ends a delivery at once), a stand-in for a broken remote.
    const refusing = new FakePeer();
    await refusing.start('127.0.0.73');
    try {
      refusing.inboxStatus = 400;
      expect((await admin(a, 'POST', '/peers/follow', { target: refusing.actor })).status).toBe(202);
      await eventually(async () => (await (await admin(a, 'GET', '/deliveries')).json()).dead.length > 0, 15_000, 'the dead letter');
      const page = await signIn('alice');
      await page.goto(`${a.url}/console/`);
      const row = page.locator('table.dead tbody tr', { hasText: refusing.origin });
      expect(await row.count()).toBe(1);
      refusing.inboxStatus = 202;
      await Promise.all([page.waitForURL(/\/console\/\?done=/), row.locator('button').click()]);
      expect(await page.textContent('.flash')).toContain('Delivery queued again.');
      await eventually(async () => refusing.received.some((activity) => activity.type === 'Follow'), 15_000, 'the Follow to arrive');
    } finally {
      await refusing.stop();
    }
  });

  it('shows health, policy and log pages, and records policy changes', async () => {
    const page = await signIn('alice');
    await page.goto(`${a.url}/console/`);
    expect(await page.locator('figure.chart').count()).toBe(2);
    // The blocks made above are in the decisions chart, in the block colour.
    expect(await page.locator('figure.chart').first().locator('rect.series-0').count()).toBeGreaterThan(0);
    expect(await page.textContent('table.queues')).toContain('scan');
    // B delivered its Accept and its verdict to A: /metrics counts them.
    const bMetrics = await (await fetch(`${b.url}/metrics`)).text();
    expect(Number(/^vouch_deliveries_total\{result="delivered"\} (\d+)/m.exec(bMetrics)?.[1])).toBeGreaterThanOrEqual(2);
    await shot(page, '11-health');

    await page.goto(`${a.url}/console/policy`);
    await page.fill('input[name="spam.blockProbability"]', '0.9');
    await page.fill('input[name=version]', 'console-test-1');
    await page.fill('input[name=quarantineRetentionDays]', '30');
    await Promise.all([page.waitForURL(/\/console\/policy\?done=/), page.click('form.policy button[type=submit]')]);
    const { policy } = await (await admin(a, 'GET', '/policy')).json();
    expect(policy).toMatchObject({ version: 'console-test-1', labels: { spam: { blockProbability: 0.9 } }, quarantineRetentionDays: 30 });
    // Media quarantined from now on is kept 30 days.
    const image = await syntheticJpeg(7104);
    const own = await hashes(a, image);
    await admin(a, 'POST', '/verdicts', { subjects: [{ algorithm: 'sha256', digest: own.sha256 }], label: 'spam', confidence: 1, method: 'human' });
    await fetch(`${a.url}/api/v1/media`, { method: 'POST', body: image, headers: { authorization: `Bearer ${TOKEN}` } });
    const { items } = await (await admin(a, 'GET', '/quarantine')).json();
    const item = items.find((q: { sha256: string }) => q.sha256 === own.sha256);
    expect((Date.parse(item.retainUntil) - Date.parse(item.quarantinedAt)) / 86_400_000).toBeCloseTo(30);
    await page.fill('input[name="spam.blockProbability"]', '0.5');
    await page.click('form.policy button[type=submit]');
    await expect.poll(() => page.textContent('.error')).toContain('labels.spam.blockProbability');
    await shot(page, '12-policy-refused');

    // The quarantine: the confirmed item is still held; export a bundle, then delete the bytes.
    await page.goto(`${a.url}/console/quarantine`);
    const held = page.locator('table.quarantine tbody tr', { hasText: 'spam' }).first();
    const itemId = await held.getAttribute('data-item');
    await held.locator('form.quarantine-export input[name=reason]').fill('report to the hotline');
    await Promise.all([page.waitForURL(new RegExp(`/console/quarantine/${itemId}\\?done=`)), held.locator('form.quarantine-export button').click()]);
    const flash = (await page.textContent('.flash'))!;
    const dir = /to (\/\S+) \(media unencrypted/.exec(flash)![1];
    expect(readFileSync(join(dir, 'SHA256SUMS'), 'utf8')).toMatch(/media\.jpg/);
    const del = page.locator('form.quarantine-delete');
    await del.locator('input[name=reason]').fill('retention decided');
    await del.locator('input[name=confirm]').check();
    await Promise.all([page.waitForURL(/\?done=/), del.locator('button').click()]);
    expect(await page.textContent('.flash')).toContain(`Deleted the bytes of item ${itemId}`);
    const log = await page.textContent('table.access-log');
    expect(log).toMatch(/alice\s*export\s*report to the hotline/);
    expect(log).toMatch(/alice\s*delete\s*retention decided/);
    await shot(page, '13-quarantine-item');

    await page.goto(`${a.url}/console/log`);
    expect(await page.textContent('main')).toContain('Our log holds');
    await shot(page, '14-log');
  });
});

// docs/getting-started.md, followed as a new admin would: step 1 (the install) parsed; its shell
// blocks for the secrets, the first account, the health check and the fire drill run as written
// (only the address and the `npx vouch` of an installed checkout are adapted), then the review
// happens in real Chromium.
// If the guide drifts from the product, this fails.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../server/config/paths.js';
import { HAVE_CHROMIUM, SCREENSHOT_DIR, launchChromium } from '../helpers/browser.js';
import { photoLikeRgb } from '../helpers/images.js';
import { VOUCH_BIN, freePort, startServerProcess, type ServerProcess } from '../helpers/process.js';

const GUIDE = readFileSync(join(PROJECT_ROOT, 'docs/getting-started.md'), 'utf8');

/** The commands of the ```sh blocks under the heading that starts with `## N.` (comments and output lines dropped). */
function commands(step: number): string {
  const start = GUIDE.indexOf(`## ${step}.`);
  const end = GUIDE.indexOf('\n## ', start + 4);
  const section = GUIDE.slice(start, end === -1 ? undefined : end);
  const blocks = [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]);
  return blocks
    .join('')
    .split('\n')
    .filter((line) => line.trim() !== '' && !line.trimStart().startsWith('#'))
    .join('\n');
}

describe.skipIf(!HAVE_CHROMIUM)('docs/getting-started.md, followed to a reviewed decision', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vouch-getting-started-'));
  let server: ServerProcess;
  let browser: Browser;
  let url: string;
  let env: Record<string, string>;

  /** Runs guide commands in bash in the admin's folder, `npx vouch` being this checkout's CLI. */
  const shell = async (script: string, stdin?: string) => {
    const preamble = `set -euo pipefail\nnpx() { if [ "$1" = vouch ]; then shift; node ${JSON.stringify(VOUCH_BIN)} "$@"; else echo "unexpected npx $*" >&2; return 1; fi; }\n`;
    const child = execFile('bash', ['-c', preamble + script.replaceAll('localhost:8080', new URL(url).host)], { cwd: dir, env: { ...process.env, ...env } });
    if (stdin !== undefined) child.stdin!.end(stdin);
    else child.stdin!.end();
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    return { code, stdout, stderr };
  };

  beforeAll(async () => {
    const port = await freePort('127.0.0.74');
    url = `http://127.0.0.74:${port}`;
    env = { VOUCH_DATA_DIR: join(dir, 'data'), VOUCH_HOST: '127.0.0.74', VOUCH_PORT: String(port), VOUCH_PUBLIC_URL: url, REDIS_URL: '' };
    // "any harmless photo of yours": a generated one.
    writeFileSync(join(dir, 'photo.jpg'), await sharp(photoLikeRgb(800, 600, 41), { raw: { width: 800, height: 600, channels: 3 } }).jpeg({ quality: 90 }).toBuffer());
  });

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('step 1 is one bash script for root and sudo users alike, ending in the install', async () => {
    // Its apt-get and NodeSource lines change the machine, so a test only parses it; it was run as
    // written, as root, on a Debian 12 machine that came with Node 20, when last changed.
    const script = commands(1);
    expect(script).not.toMatch(/^\s*sudo /m);
    expect(script).toMatch(/\bnpm install\b[^\n]*$/);
    const parsed = await new Promise<{ code: number | null; stderr: string }>((resolve) =>
      execFile('bash', ['-n', '-c', script], (err, _stdout, stderr) => resolve({ code: err ? 1 : 0, stderr })),
    );
    expect(parsed.code, parsed.stderr).toBe(0);
  });

  it('steps 2-6: secrets, the first account, the server, the fire drill', async () => {
    const secrets = await shell(`${commands(2)}\ncat vouch.env`);
    expect(secrets.code, secrets.stderr).toBe(0);
    for (const line of secrets.stdout.trim().split('\n')) {
      const [name, ...value] = line.split('=');
      env[name] = value.join('=');
    }
    expect(env.VOUCH_ADMIN_TOKEN).toMatch(/^[0-9a-f]{64}$/);
    expect(Buffer.from(env.VOUCH_QUARANTINE_KEY, 'base64')).toHaveLength(32);

    // The password prompt reads stdin when it is not a terminal.
    const account = await shell(commands(3), 'fire-drill-passphrase\n');
    expect(account.code, account.stderr).toBe(0);
    expect(account.stdout).toContain('added alice (admin)');

    server = await startServerProcess(env); // step 4's `npm start`, on the built checkout
    const health = await shell(commands(4).split('\n').filter((c) => !c.startsWith('npm ')).join('\n'));
    expect(JSON.parse(health.stdout)).toMatchObject({ status: 'ok', store: 'pglite' });

    const drill = await shell(commands(6));
    expect(drill.code, drill.stderr).toBe(0);
    const outputs = drill.stdout.trim().split('\n');
    expect(JSON.parse(outputs.at(-2)!)).toEqual({ imported: 1, skipped: 0 });
    expect(JSON.parse(outputs.at(-1)!)).toMatchObject({ outcome: 'block', label: 'spam', quarantined: true });
  });

  it('steps 5 and 7: sign in, see it blurred, reveal, overturn with a reason', async () => {
    browser = await launchChromium();
    const page = await browser.newPage();
    await page.goto(`${url}/console/`);
    await page.fill('input[name=username]', 'alice');
    await page.fill('input[name=password]', 'fire-drill-passphrase');
    await Promise.all([page.waitForURL(`${url}/console/`), page.click('main button[type=submit]')]);
    await page.click('nav >> text=Review');
    const item = page.locator('.review-item').first();
    expect(await item.locator('img.preview').getAttribute('class')).toBe('preview');
    await item.locator('button.reveal').click();
    await expect.poll(() => item.locator('img.preview').getAttribute('class')).toBe('preview revealed');
    const decision = await item.getAttribute('data-decision');
    await item.locator('select[name=label]').selectOption('ok');
    await item.locator('input[name=reason]').fill('fire drill: my own photo');
    await Promise.all([page.waitForURL(/\/console\/review\?done=/), item.locator('button.overturn').click()]);
    await page.goto(`${url}/console/decisions/${decision}`);
    expect(await page.textContent('main')).toContain('Reviewed by alice');
    expect(await page.textContent('table.access-log')).toMatch(/alice\s*reveal/);
    await page.screenshot({ path: join(SCREENSHOT_DIR, 'getting-started-reviewed.png'), fullPage: true });
  });
});

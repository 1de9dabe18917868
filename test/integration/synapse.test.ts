// The Synapse spam-checker module (integrations/synapse) against a real Vouch server: Synapse
// itself cannot be installed here, so synapse_harness.py stands in for the few synapse.* names the
// module imports, while the HTTP runs on real Twisted (Debian's python3-twisted).
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../server/config/paths.js';
import { syntheticJpeg } from '../helpers/images.js';
import { freePort, startVouch, type ServerProcess } from '../helpers/process.js';
import { PYTHON_WITH_TWISTED } from '../helpers/python.js';

const run = promisify(execFile);
const TOKEN = randomBytes(32).toString('hex');
const VALIDATE_TOKEN = randomBytes(32).toString('hex');
const HARNESS = join(PROJECT_ROOT, 'test/integration/synapse_harness.py');

describe.skipIf(!PYTHON_WITH_TWISTED)('Synapse spam-checker module', () => {
  let server: ServerProcess;
  let url: string;
  let cleanup: () => Promise<void>;
  const dir = mkdtempSync(join(tmpdir(), 'vouch-synapse-'));

  const check = async (config: Record<string, unknown>, ...files: string[]) => {
    const { stdout } = await run(PYTHON_WITH_TWISTED!, [HARNESS, JSON.stringify(config), ...files.map((f) => join(dir, f))], { timeout: 60_000 });
    return JSON.parse(stdout) as Record<string, string>;
  };

  beforeAll(async () => {
    ({ server, url, cleanup } = await startVouch('127.0.0.91', { VOUCH_ADMIN_TOKEN: TOKEN, VOUCH_VALIDATE_TOKEN: VALIDATE_TOKEN, VOUCH_SCANNER: 'off' }));
    const bad = await syntheticJpeg(9101);
    writeFileSync(join(dir, 'bad.jpg'), bad);
    writeFileSync(join(dir, 'fine.jpg'), await syntheticJpeg(9102));
    writeFileSync(join(dir, 'not-an-image.txt'), 'hello');
    const { sha256 } = await (await fetch(`${url}/api/v1/hash`, { method: 'POST', body: bad })).json();
    const imported = await fetch(`${url}/api/v1/admin/hashes`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'text/plain' },
      body: `sha256:${sha256},spam`,
    });
    expect(imported.status).toBe(201);
  });

  afterAll(async () => {
    await server?.stop();
    await cleanup?.();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses known media; keeps the rest, and files that are not images', async () => {
    expect(await check({ url, token: VALIDATE_TOKEN }, 'bad.jpg', 'fine.jpg', 'not-an-image.txt')).toEqual({
      'bad.jpg': 'M_FORBIDDEN',
      'fine.jpg': 'NOT_SPAM',
      'not-an-image.txt': 'NOT_SPAM',
    });
    const { decisions } = await (await fetch(`${url}/api/v1/admin/decisions`, { headers: { authorization: `Bearer ${TOKEN}` } })).json();
    expect(decisions.map((d: { source: string }) => d.source)).toEqual(['synapse', 'synapse']);
  });

  it('needs the validation token when Vouch has one', async () => {
    expect(await check({ url, fail_closed: true }, 'fine.jpg')).toEqual({ 'fine.jpg': 'M_FORBIDDEN' });
    expect(await check({ url, token: 'x'.repeat(32), fail_closed: false }, 'bad.jpg')).toEqual({ 'bad.jpg': 'NOT_SPAM' });
  });

  it('follows fail_closed when Vouch cannot be reached, or a file is too large', async () => {
    const down = `http://127.0.0.92:${await freePort('127.0.0.92')}`;
    expect(await check({ url: down }, 'fine.jpg')).toEqual({ 'fine.jpg': 'NOT_SPAM' });
    expect(await check({ url: down, fail_closed: true }, 'fine.jpg')).toEqual({ 'fine.jpg': 'M_FORBIDDEN' });
    expect(await check({ url, token: VALIDATE_TOKEN, max_bytes: 10, fail_closed: true }, 'fine.jpg')).toEqual({ 'fine.jpg': 'M_FORBIDDEN' });
  });

  it('refuses a bad configuration', async () => {
    expect(await check({ url: 'ftp://vouch' })).toMatchObject({ config_error: expect.stringContaining("'url'") });
    expect(await check({ url, fail_closed: 'yes' })).toMatchObject({ config_error: expect.stringContaining('fail_closed') });
    expect(await check({ url, token: 'short' })).toMatchObject({ config_error: expect.stringContaining('token') });
  });
});

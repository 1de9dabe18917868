// Real headless Chromium (Debian's `chromium`, or VOUCH_CHROMIUM) driven by playwright-core.
// Locally a missing browser skips the browser tests with a message; in CI
// (VOUCH_REQUIRE_SERVICES=1) it fails them instead.
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { PROJECT_ROOT } from '../../server/config/paths.js';
import { REQUIRE_SERVICES } from './services.js';

const CANDIDATES = [process.env.VOUCH_CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser'].filter((p): p is string => !!p);

export const CHROMIUM = CANDIDATES.find((p) => existsSync(p));
if (!CHROMIUM) {
  if (REQUIRE_SERVICES) throw new Error(`Chromium required (VOUCH_REQUIRE_SERVICES=1) but not found at ${CANDIDATES.join(', ')}`);
  console.warn('Chromium not found (install Debian\'s chromium or set VOUCH_CHROMIUM): the browser tests are not run');
}
export const HAVE_CHROMIUM = CHROMIUM !== undefined;

/** Screenshots land here; CI keeps the folder as an artifact. */
export const SCREENSHOT_DIR = join(PROJECT_ROOT, 'test-artifacts', 'screenshots');

export async function launchChromium(): Promise<Browser> {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  return chromium.launch({
    executablePath: CHROMIUM,
    // The machine has no network beyond loopback: keep Chromium from trying.
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
  });
}

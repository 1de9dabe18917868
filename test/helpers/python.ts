// A Python with Twisted for the Synapse module's tests. Locally its absence skips them with a
// message; in CI (VOUCH_REQUIRE_SERVICES=1) it fails them instead.
import { execFileSync } from 'node:child_process';
import { REQUIRE_SERVICES } from './services.js';

/** A Python with Twisted (Debian's python3-twisted), for the Synapse module's tests. */
function pythonWithTwisted(): string | undefined {
  for (const python of ['/usr/bin/python3', 'python3']) {
    try {
      execFileSync(python, ['-c', 'import twisted.web.client'], { stdio: 'ignore', timeout: 10_000 });
      return python;
    } catch {
      // try the next one
    }
  }
  if (REQUIRE_SERVICES) throw new Error('Python 3 with Twisted required (VOUCH_REQUIRE_SERVICES=1): apt-get install python3-twisted');
  console.warn('no Python 3 with Twisted (apt-get install python3-twisted): the Synapse module tests are not run');
  return undefined;
}

export const PYTHON_WITH_TWISTED = pythonWithTwisted();

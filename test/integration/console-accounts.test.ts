// Console accounts and sessions on the real stores: scrypt hashes, uniform refusals, session
// tokens kept only as hashes, expiry by idleness, disabling, and HTML escaping of hostile text.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore, type Store } from '../../server/store/index.js';
import { ConsoleAccounts, hashPassword, verifyPassword, roleAtLeast } from '../../server/console/accounts.js';
import { html } from '../../server/console/html.js';
import { safeNext } from '../../server/console/session.js';
import { STORE_BACKENDS } from '../helpers/services.js';

describe('console building blocks', () => {
  it('hashes passwords with scrypt and a fresh salt, and verifies only the right one', async () => {
    const [one, two] = await Promise.all([hashPassword('a long passphrase'), hashPassword('a long passphrase')]);
    expect(one).toMatch(/^scrypt\$32768\$8\$1\$/);
    expect(one).not.toBe(two);
    expect(await verifyPassword('a long passphrase', one)).toBe(true);
    expect(await verifyPassword('a long passphrasE', one)).toBe(false);
    expect(await verifyPassword('a long passphrase', 'md5$whatever')).toBe(false);
  });

  it('escapes every interpolated value unless it is already markup', () => {
    const peer = 'https://evil.example/"><script>alert(1)</script>';
    const out = html`<td title="${peer}">${peer}</td>${html`<b>${'&'}</b>`}`.value;
    expect(out).not.toContain('<script>');
    expect(out).toContain('&quot;&gt;&lt;script&gt;');
    expect(out).toContain('<b>&amp;</b>');
  });

  it('sends a signed-in user back only inside the console', () => {
    expect(safeNext('/console/peers?polarity=ok')).toBe('/console/peers?polarity=ok');
    for (const bad of ['https://evil.example/', '//evil.example/console', '/console//evil.example', '/api/v1/admin/peers', undefined, ['/console/']]) {
      expect(safeNext(bad)).toBe('/console/');
    }
  });

  it('orders roles viewer < moderator < admin', () => {
    expect(roleAtLeast('admin', 'moderator')).toBe(true);
    expect(roleAtLeast('moderator', 'admin')).toBe(false);
    expect(roleAtLeast('viewer', 'viewer')).toBe(true);
  });
});

for (const backend of STORE_BACKENDS) {
  describe.skipIf(!backend.available)(`console accounts on ${backend.name}`, () => {
    let handle: ReturnType<typeof backend.create>;
    let store: Store;
    let accounts: ConsoleAccounts;

    beforeAll(async () => {
      handle = backend.create();
      store = await openStore(handle.config);
      accounts = new ConsoleAccounts(store.db);
      await accounts.create('ana', 'correct horse battery', 'moderator', 'test');
    });
    afterAll(async () => {
      await store?.close();
      await handle?.cleanup();
    });

    it('refuses bad names, short passwords and duplicates with clear errors', async () => {
      await expect(accounts.create('Ana Smith', 'correct horse battery', 'viewer', 'test')).rejects.toThrow(/lower-case/);
      await expect(accounts.create('bob', 'short', 'viewer', 'test')).rejects.toThrow(/12 characters/);
      await expect(accounts.create('ana', 'correct horse battery', 'viewer', 'test')).rejects.toThrow(/already exists/);
    });

    it('signs in with the right password only; keeps the token only as its hash', async () => {
      expect(await accounts.signIn('ana', 'wrong password!!', '127.0.0.1')).toBeUndefined();
      expect(await accounts.signIn('nobody', 'correct horse battery', '127.0.0.1')).toBeUndefined();
      const signedIn = await accounts.signIn('ana', 'correct horse battery', '127.0.0.1');
      expect(signedIn?.session.user).toMatchObject({ username: 'ana', role: 'moderator' });
      const session = await accounts.session(signedIn!.token);
      expect(session?.csrfToken).toBe(signedIn!.session.csrfToken);
      const rows = await store.db.selectFrom('console_sessions').select('token_hash').execute();
      expect(rows.some((r) => Buffer.from(r.token_hash).toString('base64url') === signedIn!.token)).toBe(false);
      const events = (await accounts.events()).map((e) => e.action);
      expect(events.filter((a) => a === 'signin.failed')).toHaveLength(2);
      expect(JSON.stringify(await accounts.events())).not.toContain('correct horse');
      // A password typed into the name field is not recorded either.
      await accounts.signIn('correct-horse-battery', 'x', null);
      expect(JSON.stringify(await accounts.events())).not.toContain('correct-horse');
    });

    it('ends sessions that sat idle, on sign-out, on a new password and when the account is disabled', async () => {
      const idle = await accounts.signIn('ana', 'correct horse battery', null);
      await store.db.updateTable('console_sessions').set({ last_seen: new Date(Date.now() - 3 * 3600_000) }).execute();
      expect(await accounts.session(idle!.token)).toBeUndefined();

      const out = await accounts.signIn('ana', 'correct horse battery', null);
      await accounts.signOut(out!.token, 'ana', null);
      expect(await accounts.session(out!.token)).toBeUndefined();

      const before = await accounts.signIn('ana', 'correct horse battery', null);
      await accounts.setPassword('ana', 'a brand new passphrase', 'test');
      expect(await accounts.session(before!.token)).toBeUndefined();
      expect(await accounts.signIn('ana', 'correct horse battery', null)).toBeUndefined();

      const live = await accounts.signIn('ana', 'a brand new passphrase', null);
      await accounts.setDisabled('ana', true, 'test');
      expect(await accounts.session(live!.token)).toBeUndefined();
      expect(await accounts.signIn('ana', 'a brand new passphrase', null)).toBeUndefined();
      await accounts.setDisabled('ana', false, 'test');
      expect(await accounts.signIn('ana', 'a brand new passphrase', null)).toBeDefined();
    });
  });
}

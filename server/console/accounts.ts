// Console accounts and sessions. Passwords are scrypt hashes (Node's own scrypt, N = 2^15); a
// session is a random token in a cookie whose SHA-256 is what the store keeps, with a per-session
// CSRF token. Sessions end after 12 hours, or 2 hours without use.
import { createHash, randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import type { Db } from '../store/index.js';

export const ROLES = ['viewer', 'moderator', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export interface ConsoleUser {
  id: number;
  username: string;
  role: Role;
  disabled: boolean;
  createdAt: Date;
}

export interface ConsoleSession {
  user: ConsoleUser;
  csrfToken: string;
  expiresAt: Date;
}

export class AccountError extends Error {}

const SESSION_LIFETIME_MS = 12 * 3600_000;
const SESSION_IDLE_MS = 2 * 3600_000;
const TOUCH_EVERY_MS = 60_000;
const SCRYPT = { N: 2 ** 15, r: 8, p: 1, keylen: 32 } as const;
const USERNAME = /^[a-z0-9][a-z0-9._-]{1,62}$/;
export const MIN_PASSWORD_LENGTH = 12;

/** Whether `role` may do what `needed` may (admin > moderator > viewer). */
export function roleAtLeast(role: Role, needed: Role): boolean {
  return ROLES.indexOf(role) >= ROLES.indexOf(needed);
}

export function isRole(value: string): value is Role {
  return (ROLES as readonly string[]).includes(value);
}

function scryptAsync(password: string, salt: Buffer, keylen: number, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => scrypt(password, salt, keylen, options, (err, key) => (err ? reject(err) : resolve(key))));
}

/** `scrypt$N$r$p$salt$hash`, base64 parts: the parameters travel with the hash so they can grow. */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scryptAsync(password.normalize('NFKC'), salt, SCRYPT.keylen, { N: SCRYPT.N, r: SCRYPT.r, p: SCRYPT.p, maxmem: 128 * SCRYPT.N * SCRYPT.r * 2 });
  return `scrypt$${SCRYPT.N}$${SCRYPT.r}$${SCRYPT.p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [N, r, p] = parts.slice(1, 4).map(Number);
  const salt = Buffer.from(parts[4], 'base64');
  const expected = Buffer.from(parts[5], 'base64');
  if (![N, r, p].every(Number.isSafeInteger) || expected.length < 16) return false;
  const key = await scryptAsync(password.normalize('NFKC'), salt, expected.length, { N, r, p, maxmem: 128 * N * r * 2 });
  return timingSafeEqual(key, expected);
}

const tokenHash = (token: string) => createHash('sha256').update(token).digest();

type UserRow = { id: number; username: string; role: Role; disabled_at: Date | null; created_at: Date };
const toUser = (r: UserRow): ConsoleUser => ({ id: Number(r.id), username: r.username, role: r.role, disabled: r.disabled_at !== null, createdAt: r.created_at });

export class ConsoleAccounts {
  /** A hash to check against when the user does not exist, so timing does not tell which names do. */
  private decoy: Promise<string> | undefined;

  constructor(private readonly db: Db) {}

  /** `actor`: who did it, for the record (a console user's name, or `cli`). */
  async create(username: string, password: string, role: Role, actor: string): Promise<ConsoleUser> {
    if (!USERNAME.test(username)) throw new AccountError('usernames are 2-63 characters: lower-case letters, digits, ".", "_" and "-"');
    checkPassword(password);
    let row;
    try {
      row = await this.db
        .insertInto('console_users')
        .values({ username, password_hash: await hashPassword(password), role })
        .returning(['id', 'username', 'role', 'disabled_at', 'created_at'])
        .executeTakeFirstOrThrow();
    } catch (err) {
      if ((err as { code?: string }).code === '23505') throw new AccountError(`user "${username}" already exists`);
      throw err;
    }
    await this.record(actor, 'user.create', { user: username, role }, null);
    return toUser(row);
  }

  async list(): Promise<ConsoleUser[]> {
    const rows = await this.db.selectFrom('console_users').select(['id', 'username', 'role', 'disabled_at', 'created_at']).orderBy('username').execute();
    return rows.map(toUser);
  }

  /** Sets a new password and ends the user's sessions. */
  async setPassword(username: string, password: string, actor: string): Promise<void> {
    checkPassword(password);
    const user = await this.require(username);
    await this.db.updateTable('console_users').set({ password_hash: await hashPassword(password), password_set_at: new Date() }).where('id', '=', user.id).execute();
    await this.db.deleteFrom('console_sessions').where('user_id', '=', user.id).execute();
    await this.record(actor, 'user.password', { user: username }, null);
  }

  async setRole(username: string, role: Role, actor: string): Promise<void> {
    const user = await this.require(username);
    await this.db.updateTable('console_users').set({ role }).where('id', '=', user.id).execute();
    await this.record(actor, 'user.role', { user: username, role }, null);
  }

  /** Disabling ends the user's sessions at once; the account and its history stay. */
  async setDisabled(username: string, disabled: boolean, actor: string): Promise<void> {
    const user = await this.require(username);
    await this.db.updateTable('console_users').set({ disabled_at: disabled ? new Date() : null }).where('id', '=', user.id).execute();
    if (disabled) await this.db.deleteFrom('console_sessions').where('user_id', '=', user.id).execute();
    await this.record(actor, disabled ? 'user.disable' : 'user.enable', { user: username }, null);
  }

  /** Whether `password` is this (enabled) user's. */
  async checkPassword(username: string, password: string): Promise<boolean> {
    return (await this.verifiedUser(username, password)) !== undefined;
  }

  /** The enabled user with this name and password; as slow for an unknown name as for a known one. */
  private async verifiedUser(username: string, password: string) {
    const row = USERNAME.test(username) ? await this.db.selectFrom('console_users').selectAll().where('username', '=', username).executeTakeFirst() : undefined;
    const ok = await verifyPassword(password, row?.password_hash ?? (await (this.decoy ??= hashPassword(randomBytes(16).toString('hex')))));
    return row && ok && !row.disabled_at ? row : undefined;
  }

  /** Checks a sign-in; the answer is the same for an unknown user, a disabled one and a bad password. */
  async signIn(username: string, password: string, ip: string | null): Promise<{ token: string; session: ConsoleSession } | undefined> {
    const row = await this.verifiedUser(username, password);
    if (!row) {
      // The name only when it is an account's: a password typed into the name field stays unseen.
      const known = USERNAME.test(username) && (await this.db.selectFrom('console_users').select('id').where('username', '=', username).executeTakeFirst());
      await this.record(known ? username : '(unknown name)', 'signin.failed', {}, ip);
      return undefined;
    }
    const token = randomBytes(32).toString('base64url');
    const csrfToken = randomBytes(32).toString('base64url');
    const expiresAt = new Date(Date.now() + SESSION_LIFETIME_MS);
    await this.db.insertInto('console_sessions').values({ token_hash: tokenHash(token), user_id: row.id, csrf_token: csrfToken, expires_at: expiresAt }).execute();
    await this.record(row.username, 'signin', {}, ip);
    return { token, session: { user: toUser(row), csrfToken, expiresAt } };
  }

  /** The live session a cookie token names, if any; refreshes its idle timer. */
  async session(token: string): Promise<ConsoleSession | undefined> {
    if (!/^[\w-]{43}$/.test(token)) return undefined;
    const hash = tokenHash(token);
    const row = await this.db
      .selectFrom('console_sessions as s')
      .innerJoin('console_users as u', 'u.id', 's.user_id')
      .select(['s.csrf_token', 's.expires_at', 's.last_seen', 'u.id', 'u.username', 'u.role', 'u.disabled_at', 'u.created_at'])
      .where('s.token_hash', '=', hash)
      .executeTakeFirst();
    const now = Date.now();
    if (!row || row.disabled_at || row.expires_at.getTime() <= now || row.last_seen.getTime() + SESSION_IDLE_MS <= now) {
      if (row) await this.db.deleteFrom('console_sessions').where('token_hash', '=', hash).execute();
      return undefined;
    }
    if (now - row.last_seen.getTime() > TOUCH_EVERY_MS) {
      await this.db.updateTable('console_sessions').set({ last_seen: new Date(now) }).where('token_hash', '=', hash).execute();
    }
    return { user: toUser(row), csrfToken: row.csrf_token, expiresAt: row.expires_at };
  }

  async signOut(token: string, username: string, ip: string | null): Promise<void> {
    await this.db.deleteFrom('console_sessions').where('token_hash', '=', tokenHash(token)).execute();
    await this.record(username, 'signout', {}, ip);
  }

  /** Drops sessions past their lifetime (housekeeping). */
  async pruneSessions(): Promise<number> {
    const result = await this.db
      .deleteFrom('console_sessions')
      .where((eb) => eb.or([eb('expires_at', '<=', new Date()), eb('last_seen', '<=', new Date(Date.now() - SESSION_IDLE_MS))]))
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  /** Records what a console user did (changes, sign-ins); never passwords or tokens. */
  async record(username: string, action: string, detail: Record<string, unknown>, ip: string | null): Promise<void> {
    await this.db.insertInto('console_events').values({ username, action, detail: JSON.stringify(detail), ip }).execute();
  }

  async events(limit = 50) {
    return this.db.selectFrom('console_events').selectAll().orderBy('id', 'desc').limit(limit).execute();
  }

  private async require(username: string): Promise<ConsoleUser> {
    const row = await this.db.selectFrom('console_users').select(['id', 'username', 'role', 'disabled_at', 'created_at']).where('username', '=', username).executeTakeFirst();
    if (!row) throw new AccountError(`no user "${username}"`);
    return toUser(row);
  }
}

function checkPassword(password: string): void {
  if (password.length < MIN_PASSWORD_LENGTH) throw new AccountError(`passwords need ${MIN_PASSWORD_LENGTH} characters at least`);
  if (password.length > 1024) throw new AccountError('passwords are at most 1024 characters');
}

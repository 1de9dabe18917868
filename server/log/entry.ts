/**
 * What one log entry holds, and how anyone checks it (normative text: docs/protocol.md §9.7).
 *
 * Version 1 (older entries): the entry bytes are the JCS (RFC 8785) text of a signed activity,
 * digests included, so an entry about an abuse verdict can only be withheld whole.
 *
 * Version 2: the entry bytes are the JCS text of
 *   {"vouchLogEntry": 2, "public": PUBLIC, "privateDigest": base64(SHA-256(PRIVATE))}
 * where PRIVATE is the JCS text of {"activity": <the signed activity>, "salt": base64(16 random bytes)}
 * and PUBLIC is the activity with only the members everyone may count (who, what label, which
 * method and classifier, when, what it supersedes or retracts) and, in place of the object's
 * `subject`, `subjectCommitment` = base64(SHA-256(salt ‖ JCS(subject))). `confidence` stays
 * private: a classifier's score, to full precision, next to the classifier's name and version,
 * would let anyone holding a candidate image and that classifier confirm it was the subject. The leaf hash covers the
 * public part and the private part's digest, so the public part of every entry is served to anyone
 * and checked against the tree, while the digests travel only in the private part, to approved
 * followers, who check it against `privateDigest` and the commitment.
 *
 * Why salted: the digests of known images are guessable (anyone can hash a known file), so an
 * unsalted SHA-256 of the subjects would be an oracle confirming a guessed PDQ or SHA-256.
 */
import { createHash, randomBytes } from 'node:crypto';
import canonicalize from 'canonicalize';
import { z } from 'zod';

/** The member that marks a version-2 entry (an activity, i.e. a version-1 entry, never has it). */
export const ENTRY_VERSION_MEMBER = 'vouchLogEntry';
export const SALT_BYTES = 16;

/** Members of the activity copied into the public part. */
const PUBLIC_ACTIVITY_MEMBERS = ['id', 'type', 'actor', 'published'] as const;
/** Members of the activity's object copied into the public part (`subject` becomes `subjectCommitment`). */
const PUBLIC_OBJECT_MEMBERS = [
  'id',
  'type',
  'attributedTo',
  'label',
  'method',
  'classifier',
  'published',
  'updated',
  'expires',
  'supersedes',
  'formerType',
  'deleted',
] as const;

const text = (max: number) => z.string().min(1).max(max);
const url = text(2048);
const time = text(64);
const sha256Base64 = z.string().regex(/^[A-Za-z0-9+/]{43}=$/, 'must be the standard base64 of 32 bytes');

const publicObjectSchema = z
  .object({
    id: url,
    type: text(64),
    attributedTo: url.optional(),
    label: text(64).optional(),
    method: text(64).optional(),
    classifier: z.object({ name: text(200), version: text(200) }).strict().optional(),
    published: time.optional(),
    updated: time.optional(),
    expires: time.optional(),
    supersedes: url.optional(),
    formerType: text(64).optional(),
    deleted: time.optional(),
    subjectCommitment: sha256Base64.optional(),
  })
  .strict();

const publicPartSchema = z.object({ id: url, type: text(64), actor: url, published: time.optional(), object: publicObjectSchema }).strict();

const entryV2Schema = z.object({ [ENTRY_VERSION_MEMBER]: z.literal(2), public: publicPartSchema, privateDigest: sha256Base64 }).strict();

const privatePartSchema = z.object({ activity: z.record(z.string(), z.unknown()), salt: z.string() }).strict();

/** What everyone may read of an entry: the activity without its digests. */
export type PublicPart = z.infer<typeof publicPartSchema>;

/** A version-2 entry as the leaf hashes it. */
export interface EntryV2 {
  readonly vouchLogEntry: 2;
  readonly public: PublicPart;
  readonly privateDigest: string;
}

/** What an approved follower reads besides: the signed activity and the commitment's salt. */
export interface PrivatePart {
  readonly activity: Record<string, unknown>;
  readonly salt: string;
}

/** An entry decoded from its bytes: version 1 (the whole activity) or version 2 (its public part). */
export type DecodedEntry = { readonly version: 1; readonly activity: Record<string, unknown> } | ({ readonly version: 2 } & EntryV2);

/** The entry bytes and the private part to store beside them. */
export interface BuiltEntry {
  readonly entry: Uint8Array;
  readonly private: Uint8Array;
}

/** An entry that does not decode, or a private part that does not open it. */
export class EntryError extends Error {
  override readonly name = 'EntryError';
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const jcsBytes = (value: unknown): Uint8Array => {
  const textValue = canonicalize(value);
  if (textValue === undefined) throw new EntryError('the value cannot be canonicalized (JCS)');
  return new Uint8Array(Buffer.from(textValue, 'utf8'));
};
const sha256 = (...parts: Uint8Array[]): Buffer => {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part);
  return hash.digest();
};
const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** base64(SHA-256(salt ‖ JCS(subject))): the salted commitment to an object's subjects. */
export function subjectCommitment(salt: Uint8Array, subject: unknown): string {
  return sha256(salt, jcsBytes(subject)).toString('base64');
}

function decodeSalt(salt: string): Uint8Array {
  const bytes = Buffer.from(salt, 'base64');
  if (bytes.length !== SALT_BYTES || bytes.toString('base64') !== salt) throw new EntryError(`the salt is not ${SALT_BYTES} bytes of canonical base64`);
  return new Uint8Array(bytes);
}

/** The public part of `activity` under `salt`: the listed members only, the subjects committed. */
export function publicPartOf(activity: Record<string, unknown>, salt: Uint8Array): PublicPart {
  const pick = (from: Record<string, unknown>, members: readonly string[]) =>
    Object.fromEntries(members.filter((m) => from[m] !== undefined).map((m) => [m, from[m]]));
  const object = isRecord(activity.object) ? activity.object : {};
  const picked = {
    ...pick(activity, PUBLIC_ACTIVITY_MEMBERS),
    object: { ...pick(object, PUBLIC_OBJECT_MEMBERS), ...(object.subject === undefined ? {} : { subjectCommitment: subjectCommitment(salt, object.subject) }) },
  };
  const parsed = publicPartSchema.safeParse(picked);
  if (!parsed.success) throw new EntryError(`the activity has no valid public part: ${z.prettifyError(parsed.error)}`);
  return parsed.data;
}

/** A version-2 entry for a signed activity, with a fresh salt (or `salt`, for test vectors). */
export function activityEntry(activity: Record<string, unknown>, salt: Uint8Array = randomBytes(SALT_BYTES)): BuiltEntry {
  if (salt.length !== SALT_BYTES) throw new EntryError(`the salt must be ${SALT_BYTES} bytes`);
  const privatePart: PrivatePart = { activity, salt: Buffer.from(salt).toString('base64') };
  const privateBytes = jcsBytes(privatePart);
  const entry: EntryV2 = { vouchLogEntry: 2, public: publicPartOf(activity, salt), privateDigest: sha256(privateBytes).toString('base64') };
  return { entry: jcsBytes(entry), private: privateBytes };
}

/** Decodes entry bytes (either version), strictly; throws EntryError for anything else. */
export function decodeEntry(bytes: Uint8Array): DecodedEntry {
  let value: unknown;
  try {
    const textValue = utf8.decode(bytes);
    value = JSON.parse(textValue);
    if (canonicalize(value) !== textValue) throw new EntryError('the entry is not canonical JSON (JCS)');
  } catch (err) {
    throw err instanceof EntryError ? err : new EntryError('the entry is not UTF-8 JSON');
  }
  if (!isRecord(value)) throw new EntryError('the entry is not a JSON object');
  if (!(ENTRY_VERSION_MEMBER in value)) return { version: 1, activity: value };
  const parsed = entryV2Schema.safeParse(value);
  if (!parsed.success) throw new EntryError(`not a valid version-2 entry: ${z.prettifyError(parsed.error)}`);
  return { version: 2, vouchLogEntry: 2, public: parsed.data.public, privateDigest: parsed.data.privateDigest };
}

/**
 * Checks that `privateBytes` open the version-2 entry `entry`: their SHA-256 is its
 * `privateDigest`, they are the JCS of {activity, salt}, and the activity's public part under that
 * salt (the commitment included) is exactly the entry's. Returns the private part; throws
 * EntryError saying what differs.
 */
export function openPrivatePart(entry: EntryV2, privateBytes: Uint8Array): PrivatePart {
  if (sha256(privateBytes).toString('base64') !== entry.privateDigest) throw new EntryError('the private part does not hash to the entry\'s privateDigest');
  let value: unknown;
  try {
    const textValue = utf8.decode(privateBytes);
    value = JSON.parse(textValue);
    if (canonicalize(value) !== textValue) throw new EntryError('the private part is not canonical JSON (JCS)');
  } catch (err) {
    throw err instanceof EntryError ? err : new EntryError('the private part is not UTF-8 JSON');
  }
  const parsed = privatePartSchema.safeParse(value);
  if (!parsed.success) throw new EntryError(`the private part is not {activity, salt}: ${z.prettifyError(parsed.error)}`);
  const expected = publicPartOf(parsed.data.activity, decodeSalt(parsed.data.salt));
  if (canonicalize(expected) !== canonicalize(entry.public)) {
    const differing = differingMembers(expected, entry.public);
    throw new EntryError(`the public part does not match the signed activity (${differing.join(', ')})`);
  }
  return parsed.data;
}

function differingMembers(expected: PublicPart, served: PublicPart): string[] {
  const out: string[] = [];
  const compare = (a: Record<string, unknown>, b: Record<string, unknown>, prefix: string) => {
    for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) {
      if (key === 'object' && prefix === '') compare(a.object as Record<string, unknown>, b.object as Record<string, unknown>, 'object.');
      else if (canonicalize(a[key]) !== canonicalize(b[key])) out.push(`${prefix}${key}`);
    }
  };
  compare(expected as unknown as Record<string, unknown>, served as unknown as Record<string, unknown>, '');
  return out;
}

/**
 * The signed activity an entry logs, when the reader holds it: the entry itself (version 1) or
 * its opened private part (version 2). Null when it cannot be had from what is given.
 */
export function loggedActivity(entryBytes: Uint8Array, privateBytes: Uint8Array | null): Record<string, unknown> | null {
  try {
    const decoded = decodeEntry(entryBytes);
    if (decoded.version === 1) return decoded.activity;
    return privateBytes === null ? null : openPrivatePart(decoded, privateBytes).activity;
  } catch {
    return null;
  }
}

/**
 * What every reader may know of an entry's object (its id, type and label), from either version:
 * what the visibility rule reads. Null for bytes that do not decode.
 */
export function publicObjectOf(entryBytes: Uint8Array): { id?: unknown; type?: unknown; label?: unknown } | null {
  try {
    const decoded = decodeEntry(entryBytes);
    if (decoded.version === 2) return decoded.public.object;
    return isRecord(decoded.activity.object) ? decoded.activity.object : null;
  } catch {
    return null;
  }
}

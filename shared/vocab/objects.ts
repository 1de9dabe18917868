/**
 * Strict validators for the objects peers send us: Verdict, TrustStatement, Checkpoint, Tombstone,
 * and the activity envelopes (Create/Update/Delete/Follow/Accept/Reject/Undo) that carry them.
 *
 * Every parse* function takes untrusted JSON (already JSON.parse'd; the CALLER caps the body
 * size) and either returns a typed copy or throws a VocabError whose `path` and `reason` are safe
 * to send back in a 4xx response (reasons never echo the input).
 *
 * What the parsers return is a validated VIEW: unknown extra properties are dropped. Verify a
 * Data Integrity proof over the ORIGINAL input (shared/crypto/data-integrity.ts verifyObject),
 * never over the parsed copy, and store the original if it must be re-served or re-verified.
 *
 * Rules shared by all objects (docs/protocol.md):
 *  - URLs are absolute `https://` URLs (`http://` only with `allowHttp`, for tests on 127.0.0.x),
 *    at most 2048 characters, no whitespace/control characters/backslashes, no credentials;
 *    object ids (and `supersedes`, `peer`) carry no fragment; activity ids may (Mastodon uses them).
 *  - Origin and ownership are NOT checked here (they are authorization, answered 403 by the
 *    inbox): the inbox must check that the activity id, the object id, `attributedTo`, a Verdict's
 *    `supersedes` and the proof's verificationMethod all sit on the signing actor's origin, and
 *    that updates/deletes/supersessions target objects that actor owns.
 *  - Dates are RFC 3339 date-times with an upper-case `T` and `Z`/offset, real calendar dates,
 *    seconds 00-59; `published`/`updated`/`deleted` may be at most `maxClockSkewMs` (default 5 min)
 *    ahead of `now`.
 *  - `@context` of Verdict/TrustStatement/Checkpoint: an array of bundled context URLs that
 *    includes ActivityStreams and ENDS with https://w3id.org/vouch/v1 (so our terms win and the
 *    object expands offline with no inline redefinitions).
 */
import { z } from 'zod';
import { CRYPTOSUITE, PROOF_PURPOSE, PROOF_TYPE } from '../crypto/data-integrity.js';
import { AS_CONTEXT_URL, VOUCH_CONTEXT_URL, canonicalContextUrl } from './contexts.js';
import { ALGORITHM_REGISTRY, DigestFormatError, parseFrames, type AlgorithmRegistry } from '../algorithms/index.js';
import { VpdqFormatError } from '../hashing/vpdq.js';
import { LABELS, METHODS, type Algorithm, type Label, type Method } from './verdict.js';

// ---------------------------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------------------------

export interface ParseOptions {
  /** Accept `http://` URLs (integration tests on http://127.0.0.x). Default false. */
  allowHttp?: boolean;
  /** Clock for the "not in the future" checks. Default: the current time. */
  now?: Date;
  /** How far ahead of `now` a published/updated/deleted date may be. Default 300 000 ms (5 min). */
  maxClockSkewMs?: number;
  /** Require a `proof` on Verdict / TrustStatement. Default true (objects from peers are signed). */
  requireProof?: boolean;
  /** The hash algorithms subjects may use. Default: this build's registry. */
  registry?: AlgorithmRegistry;
}

export interface VocabIssue {
  /** Dotted path into the input, e.g. `subject[1].digest`; '' for the object itself. */
  readonly path: string;
  readonly reason: string;
}

/** A peer sent something that is not a valid Vouch object. Map to HTTP 400/422. */
export class VocabError extends Error {
  override readonly name = 'VocabError';
  /** Suggested HTTP status. */
  readonly status = 400;
  readonly path: string;
  readonly reason: string;
  /** The first few problems found (at most 10); `path`/`reason` are the first of them. */
  readonly issues: readonly VocabIssue[];
  constructor(path: string, reason: string, issues?: readonly VocabIssue[]) {
    super(`${path === '' ? '(root)' : path}: ${reason}`);
    this.path = path;
    this.reason = reason;
    this.issues = issues && issues.length > 0 ? issues : [{ path, reason }];
  }
}

/** A subject naming one digest. */
export interface DigestSubject {
  /** A name the algorithm registry knows (shared/algorithms). */
  algorithm: Algorithm;
  /** Lower-case hex of the algorithm's digest length. */
  digest: string;
  /** 0..100, only for algorithms with a quality (PDQ). */
  quality?: number;
  frames?: undefined;
}

/** A subject of a frame-list algorithm (vPDQ): `<pdq hex>,<quality>,<seconds>` per frame. */
export interface FrameListSubject {
  algorithm: Algorithm;
  frames: string[];
  digest?: undefined;
  quality?: undefined;
}

export type VerdictSubject = DigestSubject | FrameListSubject;

export interface ClassifierRef {
  name: string;
  version: string;
}

/** The proof members we check (structure only; verifyObject checks the signature). */
/** One source a `consensus` verdict rests on (docs/protocol.md, "Re-attestation"). */
export interface BasisEntry {
  /** The instance that issued the verdict counted. */
  attributedTo: string;
  method: 'classifier' | 'human' | 'hashlist';
  classifier?: ClassifierRef;
  /** What the re-attesting issuer counted it for (its trust × confidence × match), 0..1. */
  contribution: number;
}

export interface ProofShape {
  type: typeof PROOF_TYPE;
  cryptosuite: typeof CRYPTOSUITE;
  verificationMethod: string;
  proofPurpose: typeof PROOF_PURPOSE;
  proofValue: string;
  created?: string;
  expires?: string;
}

export interface VerdictObject {
  '@context': string[];
  type: 'Verdict';
  id: string;
  attributedTo: string;
  subject: VerdictSubject[];
  label: Label;
  confidence: number;
  method: Method;
  classifier?: ClassifierRef;
  /** Only with method `consensus`. */
  basis?: BasisEntry[];
  pipeline?: string;
  published: string;
  updated?: string;
  expires?: string;
  supersedes?: string;
  proof?: ProofShape;
}

export const TRUST_POLARITIES = ['abuse', 'ok'] as const;
export type TrustPolarity = (typeof TRUST_POLARITIES)[number];

export interface TrustEntry {
  /** The trusted/distrusted instance actor URL. */
  peer: string;
  polarity: TrustPolarity;
  /** 0..1 */
  value: number;
  /** Per-label trust for the abuse polarity; absent = all abuse labels. */
  label?: Label;
}

export interface TrustStatementObject {
  '@context': string[];
  type: 'TrustStatement';
  id: string;
  attributedTo: string;
  published: string;
  updated?: string;
  trust: TrustEntry[];
  proof?: ProofShape;
}

export interface CheckpointObject {
  '@context': string[];
  type: 'Checkpoint';
  id: string;
  attributedTo: string;
  /** Log origin line (first line of the checkpoint). */
  origin: string;
  treeSize: number;
  /** Standard base64 of the 32-byte root hash, as in the checkpoint body. */
  rootHash: string;
  /** The whole C2SP signed note (checkpoint body, blank line, signature lines). */
  note: string;
  published: string;
  proof?: ProofShape;
}

export const TOMBSTONE_FORMER_TYPES = ['Verdict', 'TrustStatement'] as const;

export interface TombstoneObject {
  type: 'Tombstone';
  id: string;
  formerType: (typeof TOMBSTONE_FORMER_TYPES)[number];
  deleted: string;
}

export type VouchObject = VerdictObject | TrustStatementObject | CheckpointObject | TombstoneObject;

export const ACTIVITY_TYPES = ['Create', 'Update', 'Delete', 'Follow', 'Accept', 'Reject', 'Undo'] as const;
export type ActivityType = (typeof ACTIVITY_TYPES)[number];

export interface ActivityEnvelope {
  type: ActivityType;
  id: string;
  actor: string;
  /** An embedded object, left RAW (parse it with parseVouchObject etc.), or an object URL. */
  object: string | Record<string, unknown>;
  published?: string;
}

/**
 * Any other activity type: authenticate, acknowledge and ignore. `id` and `actor` are still
 * required and checked (the signer must be the actor; replays are refused by id); `object` is
 * kept raw and unchecked when present.
 */
export interface UnknownActivity {
  type: 'Unknown';
  originalType: string;
  id: string;
  actor: string;
  object?: unknown;
  published?: string;
}

export type ParsedActivity = ActivityEnvelope | UnknownActivity;

// ---------------------------------------------------------------------------------------------
// Limits
// ---------------------------------------------------------------------------------------------

export const MAX_URL_LENGTH = 2048;
export const MAX_SUBJECTS = 16;
export const MAX_BASIS = 16;
export const MAX_TRUST_ENTRIES = 10_000;
export const MAX_CONTEXT_ENTRIES = 8;
export const MAX_NOTE_LENGTH = 16 * 1024;
export const DEFAULT_MAX_CLOCK_SKEW_MS = 5 * 60 * 1000;
const MAX_TEXT = 100;

// ---------------------------------------------------------------------------------------------
// Field checks (exported helpers are handy for the inbox and for tests)
// ---------------------------------------------------------------------------------------------

export interface UrlRules {
  allowHttp: boolean;
  allowFragment: boolean;
}

// eslint-disable-next-line no-control-regex
const FORBIDDEN_URL_CHARS = /[\u0000-\u0020\u007f-\u00a0\u2028\u2029\\]/;

/** Why `s` is not an acceptable URL under `rules`, or undefined when it is. */
export function urlProblem(s: string, rules: UrlRules): string | undefined {
  if (s.length === 0) return 'must not be empty';
  if (s.length > MAX_URL_LENGTH) return `must be at most ${MAX_URL_LENGTH} characters`;
  if (FORBIDDEN_URL_CHARS.test(s)) return 'must not contain whitespace, control characters or backslashes';
  const scheme = s.startsWith('https://') ? 'https' : s.startsWith('http://') ? 'http' : undefined;
  if (scheme === undefined || (scheme === 'http' && !rules.allowHttp)) {
    return rules.allowHttp ? 'must be an absolute http(s) URL' : 'must be an absolute https URL';
  }
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    return 'must be a valid absolute URL';
  }
  const authority = s.slice(scheme.length + 3).split(/[/?#]/, 1)[0] ?? '';
  if (u.username !== '' || u.password !== '' || authority.includes('@')) return 'must not contain credentials';
  if (u.hostname === '') return 'must have a host';
  if (!rules.allowFragment && s.includes('#')) return 'must not contain a fragment';
  return undefined;
}

/** Calendar-valid RFC 3339 date-time → epoch ms, or undefined. */
export function parseRfc3339(s: string): number | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?(Z|([+-])(\d{2}):(\d{2}))$/.exec(s);
  if (m === null) return undefined;
  const [year, month, day, hour, minute, second] = [m[1], m[2], m[3], m[4], m[5], m[6]].map(Number) as [
    number, number, number, number, number, number,
  ];
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59) return undefined;
  const daysInMonth = new Date(Date.UTC(2000, month, 0)).getUTCDate(); // leap-year Feb = 29
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  if (day > (month === 2 && !leap ? 28 : daysInMonth)) return undefined;
  let offsetMin = 0;
  if (m[8] !== 'Z') {
    const oh = Number(m[10]);
    const om = Number(m[11]);
    if (oh > 23 || om > 59) return undefined;
    offsetMin = (m[9] === '-' ? -1 : 1) * (oh * 60 + om);
  }
  const d = new Date(0);
  d.setUTCFullYear(year, month - 1, day);
  const ms = m[7] === undefined ? 0 : Number(`${m[7].slice(1)}00`.slice(0, 3)); // truncate to ms, no float maths
  d.setUTCHours(hour, minute, second, ms);
  return d.getTime() - offsetMin * 60_000;
}

// ---------------------------------------------------------------------------------------------
// Schemas
// ---------------------------------------------------------------------------------------------

const PROOF_VALUE = /^z[1-9A-HJ-NP-Za-km-z]{1,200}$/;
const BASE64_32 = /^[A-Za-z0-9+/]{43}=$/;
// C0, DEL and C1. U+2028/U+2029 are line and paragraph separators, not controls: RFC 8259 and
// JCS (RFC 8785) carry them unescaped, so a text field may hold them.
// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]/;

function urlField(rules: UrlRules) {
  return z.string({ error: 'must be a URL string' }).superRefine((s, ctx) => {
    const problem = urlProblem(s, rules);
    if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
  });
}

const dateField = z.string({ error: 'must be an RFC 3339 date-time string' }).superRefine((s, ctx) => {
  if (s.length > 64 || parseRfc3339(s) === undefined) {
    ctx.addIssue({ code: 'custom', message: 'must be an RFC 3339 date-time (e.g. 2026-11-23T10:00:00Z)' });
  }
});

function textField(max = MAX_TEXT) {
  return z
    .string({ error: 'must be a string' })
    .min(1, { error: 'must not be empty' })
    .max(max, { error: `must be at most ${max} characters` })
    .refine((s) => !CONTROL_CHARS.test(s), { error: 'must not contain control characters' });
}

const labelField = z.enum(LABELS, { error: `must be one of ${LABELS.join(', ')}` });

/** `@context` of a Vouch object: bundled URLs only, AS included, Vouch last. */
const vouchContextField = z
  .array(z.string({ error: 'must be a context URL string (inline contexts are not accepted)' }), {
    error: `must be an array of context URLs ending with ${VOUCH_CONTEXT_URL}`,
  })
  .min(1, { error: 'must not be empty' })
  .max(MAX_CONTEXT_ENTRIES, { error: `must have at most ${MAX_CONTEXT_ENTRIES} entries` })
  .superRefine((ctxs, ctx) => {
    const canonical = ctxs.map((c) => canonicalContextUrl(c));
    canonical.forEach((c, i) => {
      if (c === undefined) ctx.addIssue({ code: 'custom', message: 'is not a context Vouch knows (contexts are never fetched)', path: [i] });
    });
    if (canonical.some((c) => c === undefined)) return;
    if (!canonical.includes(AS_CONTEXT_URL)) ctx.addIssue({ code: 'custom', message: `must include ${AS_CONTEXT_URL}` });
    if (canonical[canonical.length - 1] !== VOUCH_CONTEXT_URL) {
      ctx.addIssue({ code: 'custom', message: `must end with ${VOUCH_CONTEXT_URL}` });
    }
  });

/**
 * A verdict subject: an algorithm the registry knows and a digest its own parser accepts, or, for
 * a frame-list algorithm (vPDQ), a `frames` list its parser accepts (at most maxFrames entries).
 */
function subjectSchema(registry: AlgorithmRegistry) {
  const names = registry.names;
  const maxFrames = Math.max(0, ...registry.frameLists.map((a) => a.frameList!.maxFrames));
  return z
    .object(
      {
        algorithm: z.string({ error: `must be one of ${names.join(', ')}` }).refine((name) => registry.has(name), { error: `must be one of ${names.join(', ')}` }),
        digest: z.string({ error: 'must be a hex string' }).max(1024, { error: 'is too long' }).optional(),
        frames: z.array(z.string({ error: 'must be a string' }).max(100, { error: 'is too long' }), { error: 'must be an array of strings' }).max(maxFrames, { error: `holds at most ${maxFrames} frames` }).optional(),
        quality: z
          .number({ error: 'must be a number' })
          .int({ error: 'must be an integer' })
          .min(0, { error: 'must be between 0 and 100' })
          .max(100, { error: 'must be between 0 and 100' })
          .optional(),
      },
      { error: 'must be an object' },
    )
    .superRefine((s, ctx) => {
      if (!registry.has(s.algorithm)) return;
      const algorithm = registry.get(s.algorithm);
      if (algorithm.frameList) {
        if (s.digest !== undefined) ctx.addIssue({ code: 'custom', message: `is not defined for ${algorithm.name} subjects (they carry frames)`, path: ['digest'] });
        if (s.quality !== undefined) ctx.addIssue({ code: 'custom', message: `is not defined for ${algorithm.name} subjects (each frame carries its own)`, path: ['quality'] });
        if (s.frames === undefined) {
          ctx.addIssue({ code: 'custom', message: `is required for ${algorithm.name} subjects`, path: ['frames'] });
          return;
        }
        try {
          parseFrames(s.frames);
        } catch (err) {
          if (!(err instanceof VpdqFormatError)) throw err;
          ctx.addIssue({ code: 'custom', message: err.message, path: ['frames'] });
        }
        return;
      }
      if (s.frames !== undefined) ctx.addIssue({ code: 'custom', message: `is only defined for frame-list algorithms, not ${algorithm.name}`, path: ['frames'] });
      if (s.digest === undefined) {
        ctx.addIssue({ code: 'custom', message: 'must be a hex string', path: ['digest'] });
        return;
      }
      try {
        algorithm.parse(s.digest);
      } catch (err) {
        if (!(err instanceof DigestFormatError)) throw err;
        ctx.addIssue({ code: 'custom', message: `${err.message.replace(`${algorithm.name} digest `, '')} for ${algorithm.name}`, path: ['digest'] });
      }
      if (s.quality !== undefined && !algorithm.hasQuality) {
        ctx.addIssue({ code: 'custom', message: `quality is not defined for ${algorithm.name} subjects`, path: ['quality'] });
      }
    })
    .transform((s): VerdictSubject =>
      s.frames !== undefined ? { algorithm: s.algorithm, frames: s.frames } : { algorithm: s.algorithm, digest: s.digest ?? '', ...(s.quality === undefined ? {} : { quality: s.quality }) },
    );
}

const trustEntrySchema = z.object(
  {
    peer: z.string({ error: 'must be a URL string' }), // checked with the URL rules in the statement-level refinement (needs allowHttp)
    polarity: z.enum(TRUST_POLARITIES, { error: 'must be "abuse" or "ok"' }),
    value: z
      .number({ error: 'must be a number' })
      .min(0, { error: 'must be between 0 and 1' })
      .max(1, { error: 'must be between 0 and 1' }),
    label: labelField.optional(),
  },
  { error: 'must be an object' },
);

/** Validates an array's length BEFORE validating its items (cheap rejection of huge arrays). */
function boundedArray<T extends z.ZodType>(item: T, min: number, max: number, what: string) {
  return z
    .array(z.unknown(), { error: `must be an array of ${what}` })
    .min(min, { error: `must have at least ${min} ${what}` })
    .max(max, { error: `must have at most ${max} ${what}` })
    .pipe(z.array(item));
}

function buildSchemas(allowHttp: boolean, registry: AlgorithmRegistry) {
  const objectId = urlField({ allowHttp, allowFragment: false });
  const actorUrl = urlField({ allowHttp, allowFragment: false });
  const activityId = urlField({ allowHttp, allowFragment: true });
  const keyUrl = urlField({ allowHttp, allowFragment: true });

  const proof = z.object(
    {
      type: z.literal(PROOF_TYPE, { error: `must be ${PROOF_TYPE}` }),
      cryptosuite: z.literal(CRYPTOSUITE, { error: `must be ${CRYPTOSUITE}` }),
      verificationMethod: keyUrl,
      proofPurpose: z.literal(PROOF_PURPOSE, { error: `must be ${PROOF_PURPOSE}` }),
      proofValue: z.string({ error: 'must be a string' }).regex(PROOF_VALUE, { error: 'must be multibase base58btc ("z…")' }),
      created: dateField.optional(),
      expires: dateField.optional(),
    },
    { error: 'must be a single DataIntegrityProof object' },
  );

  const classifierRef = z.object({ name: textField(), version: textField() }, { error: 'must be an object with name and version' });
  const basisEntry = z
    .object(
      {
        attributedTo: actorUrl,
        method: z.enum(['classifier', 'human', 'hashlist'], { error: 'must be classifier, human or hashlist (a basis is never a consensus)' }),
        classifier: classifierRef.optional(),
        contribution: z
          .number({ error: 'must be a finite number' })
          .min(0, { error: 'must be between 0 and 1' })
          .max(1, { error: 'must be between 0 and 1' }),
      },
      { error: 'must be an object' },
    )
    .superRefine((b, ctx) => {
      if (b.method === 'classifier' && b.classifier === undefined) ctx.addIssue({ code: 'custom', message: 'is required when method is "classifier"', path: ['classifier'] });
    });

  const verdict = z
    .object(
      {
        '@context': vouchContextField,
        type: z.literal('Verdict', { error: 'must be "Verdict"' }),
        id: objectId,
        attributedTo: actorUrl,
        subject: boundedArray(subjectSchema(registry), 1, MAX_SUBJECTS, 'subjects'),
        label: labelField,
        confidence: z
          .number({ error: 'must be a finite number' })
          .min(0, { error: 'must be between 0 and 1' })
          .max(1, { error: 'must be between 0 and 1' }),
        method: z.enum(METHODS, { error: `must be one of ${METHODS.join(', ')}` }),
        classifier: classifierRef.optional(),
        basis: boundedArray(basisEntry, 1, MAX_BASIS, 'basis entries').optional(),
        pipeline: textField().optional(),
        published: dateField,
        updated: dateField.optional(),
        expires: dateField.optional(),
        supersedes: objectId.optional(),
        proof: proof.optional(),
      },
      { error: 'a Verdict must be a JSON object' },
    )
    .superRefine((v, ctx) => {
      const seen = new Set<string>();
      v.subject.forEach((s, i) => {
        // One frame list per algorithm: a second would be a second video.
        const key = s.frames !== undefined ? s.algorithm : `${s.algorithm}:${s.digest}`;
        if (seen.has(key)) ctx.addIssue({ code: 'custom', message: 'duplicate subject (same algorithm and digest)', path: ['subject', i] });
        seen.add(key);
      });
      if (v.method === 'classifier' && v.classifier === undefined) {
        ctx.addIssue({ code: 'custom', message: 'is required when method is "classifier"', path: ['classifier'] });
      }
      if (v.basis !== undefined && v.method !== 'consensus') {
        ctx.addIssue({ code: 'custom', message: 'is only allowed when method is "consensus"', path: ['basis'] });
      }
      const published = parseRfc3339(v.published);
      const updated = v.updated === undefined ? undefined : parseRfc3339(v.updated);
      const expires = v.expires === undefined ? undefined : parseRfc3339(v.expires);
      if (published !== undefined && updated !== undefined && updated < published) {
        ctx.addIssue({ code: 'custom', message: 'must not be before published', path: ['updated'] });
      }
      if (published !== undefined && expires !== undefined && expires <= published) {
        ctx.addIssue({ code: 'custom', message: 'must be after published', path: ['expires'] });
      }
      if (v.supersedes !== undefined && v.supersedes === v.id) {
        ctx.addIssue({ code: 'custom', message: 'a verdict cannot supersede itself', path: ['supersedes'] });
      }
    });

  const trustStatement = z
    .object(
      {
        '@context': vouchContextField,
        type: z.literal('TrustStatement', { error: 'must be "TrustStatement"' }),
        id: objectId,
        attributedTo: actorUrl,
        published: dateField,
        updated: dateField.optional(),
        trust: boundedArray(trustEntrySchema, 0, MAX_TRUST_ENTRIES, 'trust entries'),
        proof: proof.optional(),
      },
      { error: 'a TrustStatement must be a JSON object' },
    )
    .superRefine((t, ctx) => {
      const seen = new Set<string>();
      t.trust.forEach((e, i) => {
        const problem = urlProblem(e.peer, { allowHttp, allowFragment: false });
        if (problem !== undefined) {
          ctx.addIssue({ code: 'custom', message: problem, path: ['trust', i, 'peer'] });
          return;
        }
        if (e.peer === t.attributedTo) {
          ctx.addIssue({ code: 'custom', message: 'an instance cannot state trust in itself', path: ['trust', i, 'peer'] });
        }
        if (e.label !== undefined && (e.polarity === 'ok') !== (e.label === 'ok')) {
          ctx.addIssue({ code: 'custom', message: `label ${e.label === 'ok' ? '"ok" needs' : 'other than "ok" needs'} polarity "${e.label === 'ok' ? 'ok' : 'abuse'}"`, path: ['trust', i, 'label'] });
        }
        const key = `${e.peer} ${e.polarity} ${e.label ?? ''}`;
        if (seen.has(key)) ctx.addIssue({ code: 'custom', message: 'duplicate entry (same peer, polarity and label)', path: ['trust', i] });
        seen.add(key);
      });
      const published = parseRfc3339(t.published);
      const updated = t.updated === undefined ? undefined : parseRfc3339(t.updated);
      if (published !== undefined && updated !== undefined && updated < published) {
        ctx.addIssue({ code: 'custom', message: 'must not be before published', path: ['updated'] });
      }
    });

  const checkpoint = z
    .object(
      {
        '@context': vouchContextField,
        type: z.literal('Checkpoint', { error: 'must be "Checkpoint"' }),
        id: objectId,
        attributedTo: actorUrl,
        origin: z
          .string({ error: 'must be a string' })
          .min(1, { error: 'must not be empty' })
          .max(255, { error: 'must be at most 255 characters' })
          .refine((s) => !CONTROL_CHARS.test(s), { error: 'must not contain control characters' }),
        treeSize: z
          .number({ error: 'must be a number' })
          .int({ error: 'must be a non-negative integer' })
          .min(0, { error: 'must be a non-negative integer' }),
        rootHash: z.string({ error: 'must be a string' }).regex(BASE64_32, { error: 'must be the base64 of 32 bytes' }),
        note: z.string({ error: 'must be a string' }).max(MAX_NOTE_LENGTH, { error: `must be at most ${MAX_NOTE_LENGTH} characters` }),
        published: dateField,
        proof: proof.optional(),
      },
      { error: 'a Checkpoint must be a JSON object' },
    )
    .superRefine((c, ctx) => {
      if (!c.note.startsWith(`${c.origin}\n${c.treeSize}\n${c.rootHash}\n`)) {
        ctx.addIssue({ code: 'custom', message: 'must begin with the origin, treeSize and rootHash lines', path: ['note'] });
      }
    });

  const tombstone = z.object(
    {
      type: z.literal('Tombstone', { error: 'must be "Tombstone"' }),
      id: objectId,
      formerType: z.enum(TOMBSTONE_FORMER_TYPES, { error: `must be one of ${TOMBSTONE_FORMER_TYPES.join(', ')}` }),
      deleted: dateField,
    },
    { error: 'a Tombstone must be a JSON object' },
  );

  const activity = z.object(
    {
      type: z.enum(ACTIVITY_TYPES),
      id: activityId,
      actor: actorUrl,
      object: z.union(
        [activityId, z.custom<Record<string, unknown>>((o) => isPlainObject(o), { error: 'must be a single object or an object URL' })],
        { error: 'must be a single object or an object URL' },
      ),
      published: dateField.optional(),
    },
    { error: 'an activity must be a JSON object' },
  );

  const unknownActivity = z.object(
    { id: activityId, actor: actorUrl, published: dateField.optional() },
    { error: 'an activity must be a JSON object' },
  );

  return { verdict, trustStatement, checkpoint, tombstone, activity, unknownActivity, proof };
}

type Schemas = ReturnType<typeof buildSchemas>;
const SCHEMAS = new WeakMap<AlgorithmRegistry, { https: Schemas; http: Schemas }>();

/** The zod schemas (https-only, or also http with `allowHttp`). Prefer the parse* functions. */
export function vocabSchemas(options: Pick<ParseOptions, 'allowHttp' | 'registry'> = {}): Schemas {
  const registry = options.registry ?? ALGORITHM_REGISTRY;
  let built = SCHEMAS.get(registry);
  if (!built) {
    built = { https: buildSchemas(false, registry), http: buildSchemas(true, registry) };
    SCHEMAS.set(registry, built);
  }
  return options.allowHttp === true ? built.http : built.https;
}

// ---------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------

function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out === '' ? String(p) : `.${String(p)}`;
  }
  return out;
}

function run<T>(schema: z.ZodType<T>, json: unknown): T {
  const r = schema.safeParse(json);
  if (r.success) return r.data;
  const issues = r.error.issues.slice(0, 10).map((i) => ({ path: formatPath(i.path), reason: i.message }));
  const first = issues[0] ?? { path: '', reason: 'invalid' };
  throw new VocabError(first.path, first.reason, issues);
}

function skewCheck(value: string | undefined, path: string, options: ParseOptions): void {
  if (value === undefined) return;
  const now = (options.now ?? new Date()).getTime();
  const skew = options.maxClockSkewMs ?? DEFAULT_MAX_CLOCK_SKEW_MS;
  if ((parseRfc3339(value) ?? NaN) > now + skew) throw new VocabError(path, 'is in the future');
}

function proofCheck(proof: unknown, options: ParseOptions): void {
  if (proof === undefined && options.requireProof !== false) throw new VocabError('proof', 'is required (a DataIntegrityProof)');
}

/** Parses a Verdict from a peer. Throws VocabError. */
export function parseVerdict(json: unknown, options: ParseOptions = {}): VerdictObject {
  const v: VerdictObject = run(vocabSchemas(options).verdict, json);
  skewCheck(v.published, 'published', options);
  skewCheck(v.updated, 'updated', options);
  proofCheck(v.proof, options);
  return v;
}

/** Parses a TrustStatement from a peer. Throws VocabError. */
export function parseTrustStatement(json: unknown, options: ParseOptions = {}): TrustStatementObject {
  const t: TrustStatementObject = run(vocabSchemas(options).trustStatement, json);
  skewCheck(t.published, 'published', options);
  skewCheck(t.updated, 'updated', options);
  proofCheck(t.proof, options);
  return t;
}

/** Parses a Checkpoint object (proof optional: the note carries its own signatures). */
export function parseCheckpointObject(json: unknown, options: ParseOptions = {}): CheckpointObject {
  const c: CheckpointObject = run(vocabSchemas(options).checkpoint, json);
  skewCheck(c.published, 'published', options);
  return c;
}

/** Parses the Tombstone carried by a Delete. Throws VocabError. */
export function parseTombstone(json: unknown, options: ParseOptions = {}): TombstoneObject {
  const t: TombstoneObject = run(vocabSchemas(options).tombstone, json);
  skewCheck(t.deleted, 'deleted', options);
  return t;
}

/** Parses any Vouch object by its `type`. Throws VocabError for other types. */
export function parseVouchObject(json: unknown, options: ParseOptions = {}): VouchObject {
  const type = isPlainObject(json) ? json.type : undefined;
  switch (type) {
    case 'Verdict':
      return parseVerdict(json, options);
    case 'TrustStatement':
      return parseTrustStatement(json, options);
    case 'Checkpoint':
      return parseCheckpointObject(json, options);
    case 'Tombstone':
      return parseTombstone(json, options);
    default:
      if (!isPlainObject(json)) throw new VocabError('', 'must be a JSON object');
      throw new VocabError('type', 'must be Verdict, TrustStatement, Checkpoint or Tombstone');
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Parses an activity envelope. Create/Update/Delete/Follow/Accept/Reject/Undo need `id` (URL,
 * fragment allowed), `actor` (URL) and `object` (an object, left raw, or a URL). Any other string
 * `type` parses as `{ type: 'Unknown', originalType, id, actor }` (id and actor still required)
 * so the inbox can authenticate it, answer 202 and ignore it.
 * Origin rules (id/object on the actor's origin, stored owner for updates) are the inbox's job.
 */
export function parseActivity(json: unknown, options: ParseOptions = {}): ParsedActivity {
  if (!isPlainObject(json)) throw new VocabError('', 'an activity must be a JSON object');
  const type = json.type;
  if (typeof type !== 'string' || type.length === 0 || type.length > MAX_TEXT) {
    throw new VocabError('type', 'must be a non-empty string');
  }
  const schemas = vocabSchemas(options);
  if (!(ACTIVITY_TYPES as readonly string[]).includes(type)) {
    const u = run(schemas.unknownActivity, json);
    skewCheck(u.published, 'published', options);
    return {
      type: 'Unknown',
      originalType: type,
      id: u.id,
      actor: u.actor,
      ...(json.object !== undefined ? { object: json.object } : {}),
      ...(u.published !== undefined ? { published: u.published } : {}),
    };
  }
  const a: ActivityEnvelope = run(schemas.activity, json);
  skewCheck(a.published, 'published', options);
  return a;
}

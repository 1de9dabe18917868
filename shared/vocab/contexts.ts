/**
 * JSON-LD contexts, bundled: no context is ever fetched from the network (docs/architecture.md,
 * "Federation protocol"). `documentLoader` answers the few context URLs Vouch understands from
 * the copies in ./contexts/ and refuses everything else, so jsonld.js can never be made to fetch
 * a URL chosen by a peer (SSRF, tracking, or a context swapped under a signature).
 *
 * The documents are TypeScript modules (not .jsonld files) because the build copies only .ts to
 * dist/. Callers get a fresh deep copy each time: the bundled originals cannot be mutated.
 */
import activityStreams from './contexts/activitystreams.js';
import dataIntegrityV2 from './contexts/data-integrity-v2.js';
import multikeyV1 from './contexts/multikey-v1.js';
import securityV1 from './contexts/security-v1.js';
import vouchV1 from './contexts/vouch-v1.js';

export const AS_CONTEXT_URL = 'https://www.w3.org/ns/activitystreams';
export const DATA_INTEGRITY_CONTEXT_URL = 'https://w3id.org/security/data-integrity/v2';
export const MULTIKEY_CONTEXT_URL = 'https://w3id.org/security/multikey/v1';
export const SECURITY_V1_CONTEXT_URL = 'https://w3id.org/security/v1';
export const VOUCH_CONTEXT_URL = 'https://w3id.org/vouch/v1';
/** Namespace of every Vouch term: `https://w3id.org/vouch#label` etc. */
export const VOUCH_NAMESPACE = 'https://w3id.org/vouch#';
/** Path under which every instance also serves the Vouch context (`GET /ns/v1`). */
export const VOUCH_CONTEXT_PATH = '/ns/v1';
/** Media type to serve a context document with. */
export const JSON_LD_MEDIA_TYPE = 'application/ld+json';

/** The `@context` of every Verdict, TrustStatement, Checkpoint and Tombstone Vouch issues. */
export const VERDICT_CONTEXT = [AS_CONTEXT_URL, DATA_INTEGRITY_CONTEXT_URL, VOUCH_CONTEXT_URL] as const;

/**
 * The `@context` of the instance actor: ActivityStreams, security v1 (`publicKey`/`publicKeyPem`
 * for HTTP Signatures, as Mastodon expects), Data Integrity, Multikey (FEP-521a), and Vouch, which
 * also defines `assertionMethod` (no other bundled context defines it at the top level).
 */
export const ACTOR_CONTEXT = [
  AS_CONTEXT_URL,
  SECURITY_V1_CONTEXT_URL,
  DATA_INTEGRITY_CONTEXT_URL,
  MULTIKEY_CONTEXT_URL,
  VOUCH_CONTEXT_URL,
] as const;

/** A JSON-LD context document: `{ "@context": { ... } }`. */
export interface ContextDocument {
  '@context': Record<string, unknown>;
}

/** jsonld.js RemoteDocument shape (kept local so callers need not import @types/jsonld). */
export interface BundledRemoteDocument {
  contextUrl?: string;
  documentUrl: string;
  document: ContextDocument;
}

/** Thrown (or rejected with) for a context URL that is not bundled. */
export class UnknownContextError extends Error {
  override readonly name = 'UnknownContextError';
  constructor(readonly url: string) {
    super(`JSON-LD context ${JSON.stringify(url.slice(0, 200))} is not bundled; Vouch never fetches contexts`);
  }
}

const BUNDLED: ReadonlyMap<string, ContextDocument> = new Map<string, ContextDocument>([
  [AS_CONTEXT_URL, activityStreams as unknown as ContextDocument],
  [DATA_INTEGRITY_CONTEXT_URL, dataIntegrityV2 as unknown as ContextDocument],
  [MULTIKEY_CONTEXT_URL, multikeyV1 as unknown as ContextDocument],
  [SECURITY_V1_CONTEXT_URL, securityV1 as unknown as ContextDocument],
  [VOUCH_CONTEXT_URL, vouchV1 as unknown as ContextDocument],
]);

/** Canonical URLs of the bundled contexts. */
export const BUNDLED_CONTEXT_URLS: readonly string[] = [...BUNDLED.keys()];

/**
 * Maps a URL as written in a document to the canonical URL of a bundled context, or undefined.
 * Accepted spellings: the canonical https URL, the same with http:// (w3id.org and w3.org both
 * redirect http to https and publishers do write `http://www.w3.org/ns/activitystreams`), each
 * with or without one trailing slash, and the ActivityStreams `.jsonld` file name the W3C also
 * serves. Nothing else: no query, no fragment, no case folding, no other hosts.
 */
export function canonicalContextUrl(url: string): string | undefined {
  if (typeof url !== 'string' || url.length > 200) return undefined;
  let u = url;
  if (u.startsWith('http://')) u = `https://${u.slice('http://'.length)}`;
  if (u.endsWith('/')) u = u.slice(0, -1);
  if (u === `${AS_CONTEXT_URL}.jsonld`) u = AS_CONTEXT_URL;
  return BUNDLED.has(u) ? u : undefined;
}

/** True when `url` names a bundled context (in any accepted spelling). */
export function isBundledContext(url: string): boolean {
  return canonicalContextUrl(url) !== undefined;
}

/**
 * The bundled context document for `url` (a fresh deep copy), or throws UnknownContextError.
 * Serve `bundledContext(VOUCH_CONTEXT_URL)` at `/ns/v1`.
 */
export function bundledContext(url: string): ContextDocument {
  const canonical = canonicalContextUrl(url);
  const doc = canonical === undefined ? undefined : BUNDLED.get(canonical);
  if (doc === undefined) throw new UnknownContextError(String(url));
  return structuredClone(doc);
}

export interface DocumentLoaderOptions {
  /**
   * Extra URL spellings mapped to a bundled canonical URL, e.g. this instance's own
   * `https://vouch.example/ns/v1` → VOUCH_CONTEXT_URL. Targets must be bundled URLs.
   */
  aliases?: Readonly<Record<string, string>>;
}

export type BundledDocumentLoader = (url: string) => Promise<BundledRemoteDocument>;

/** A jsonld.js `documentLoader` that only ever answers from the bundle (never the network). */
export function createDocumentLoader(options: DocumentLoaderOptions = {}): BundledDocumentLoader {
  const aliases = new Map<string, string>();
  for (const [from, to] of Object.entries(options.aliases ?? {})) {
    const target = canonicalContextUrl(to);
    if (target === undefined) throw new UnknownContextError(to);
    aliases.set(from, target);
  }
  return async (url: string): Promise<BundledRemoteDocument> => {
    const target = aliases.get(url) ?? url;
    const document = bundledContext(target); // throws → the returned promise rejects
    return { contextUrl: undefined, documentUrl: url, document };
  };
}

/**
 * The default bundled loader: pass it as `{ documentLoader }` to every jsonld.js call.
 * Rejects with UnknownContextError for any URL that is not bundled.
 */
export const documentLoader: BundledDocumentLoader = createDocumentLoader();

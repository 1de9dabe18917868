/**
 * FEP-8b32 object integrity proofs with the `eddsa-jcs-2022` cryptosuite
 * (W3C Data Integrity EdDSA Cryptosuites v1.0, §3.3).
 *
 *   proofConfig  = proof options without proofValue, with `@context` = the document's `@context`
 *   hashData     = SHA-256(JCS(proofConfig)) || SHA-256(JCS(document without `proof`))
 *   proofValue   = "z" + base58btc(Ed25519.sign(hashData))           (64-byte signature)
 *
 * Deliberate strictness beyond the spec (documented in docs/protocol.md):
 *  - a single proof only (proof sets and chains are refused: `malformed_proof`);
 *  - when the proof carries `@context` it must equal the document's `@context` exactly (the spec
 *    allows the document's list to extend the proof's; we do no JSON-LD processing and verify
 *    exactly what we hold);
 *  - the key must be Ed25519.
 */
import { createHash, createPublicKey, sign as cryptoSign, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import bs58 from 'bs58';
import canonicalize from 'canonicalize';

export const CRYPTOSUITE = 'eddsa-jcs-2022';
export const PROOF_TYPE = 'DataIntegrityProof';
export const PROOF_PURPOSE = 'assertionMethod';

export type ProofErrorReason =
  | 'missing_proof' // no `proof` member
  | 'malformed_proof' // proof is not an object, proof set, missing/invalid verificationMethod or created
  | 'unsupported_cryptosuite' // type is not DataIntegrityProof or cryptosuite is not eddsa-jcs-2022
  | 'purpose_mismatch' // proofPurpose is not the expected one (assertionMethod)
  | 'context_mismatch' // proof @context differs from the document's
  | 'expired' // proof `expires` has passed
  | 'bad_proof_value' // proofValue is not multibase base58btc of 64 bytes
  | 'key_unavailable' // resolvePublicKey threw (cause attached)
  | 'unsupported_key' // the resolved key is not an Ed25519 public key
  | 'malformed_key' // multibaseToEd25519 input is not an Ed25519 Multikey
  | 'bad_signature'; // the signature does not verify

export class ProofError extends Error {
  override readonly name = 'ProofError';
  constructor(
    readonly reason: ProofErrorReason,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface DataIntegrityProof {
  '@context'?: unknown;
  type: typeof PROOF_TYPE;
  cryptosuite: typeof CRYPTOSUITE;
  verificationMethod: string;
  proofPurpose: string;
  created?: string;
  expires?: string;
  proofValue: string;
  [extra: string]: unknown;
}

export type JsonObject = Record<string, unknown>;

export interface SignObjectOptions {
  /** Ed25519 private key. */
  privateKey: KeyObject;
  /** URL (or DID URL) of the Multikey, e.g. `https://vouch.example/actor#ed25519-key`. */
  verificationMethod: string;
  /** Defaults to now, second precision (`2024-01-02T03:04:05Z`). */
  created?: Date | string;
}

export interface VerifyObjectOptions {
  now?: Date;
  /** Defaults to `assertionMethod` (FEP-8b32). */
  expectedPurpose?: string;
}

export interface VerifyObjectResult {
  verificationMethod: string;
  created?: string;
  proof: DataIntegrityProof;
}

const DATETIME_STAMP = /^-?\d{4,}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})$/;
const ED25519_MULTICODEC = Buffer.from([0xed, 0x01]);

function isPlainObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function jcsHash(value: unknown): Buffer {
  const text = canonicalize(value);
  if (text === undefined) throw new TypeError('value cannot be canonicalized');
  return createHash('sha256').update(text, 'utf8').digest();
}

/**
 * JCS of a peer's value: canonicalize recurses, so JSON nested thousands deep (a few KB) throws
 * RangeError; that is a malformed object, not a server error.
 */
function canonicalOrThrow(value: unknown): string | undefined {
  try {
    return canonicalize(value);
  } catch (e) {
    throw new ProofError('malformed_proof', 'object cannot be canonicalized (JCS)', { cause: e });
  }
}

function isoSeconds(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function isValidDatetime(s: unknown): s is string {
  return typeof s === 'string' && DATETIME_STAMP.test(s) && !Number.isNaN(Date.parse(s));
}

/** SHA-256(JCS(proofConfig)) || SHA-256(JCS(document)); exported for known-answer tests. */
export function hashData(proofConfig: JsonObject, unsecuredDocument: JsonObject): Buffer {
  return Buffer.concat([jcsHash(proofConfig), jcsHash(unsecuredDocument)]);
}

function assertEd25519(key: KeyObject, want: 'public' | 'private'): void {
  if (key.type !== want || key.asymmetricKeyType !== 'ed25519') {
    throw new ProofError('unsupported_key', `an Ed25519 ${want} key is required`);
  }
}

/** Returns a copy of `doc` with an eddsa-jcs-2022 `proof` added. `doc` must not already have one. */
export function signObject<T extends JsonObject>(doc: T, opts: SignObjectOptions): T & { proof: DataIntegrityProof } {
  if (!isPlainObject(doc)) throw new TypeError('document must be a JSON object');
  if ('proof' in doc) throw new TypeError('document already has a proof');
  assertEd25519(opts.privateKey, 'private');
  if (typeof opts.verificationMethod !== 'string' || opts.verificationMethod === '') {
    throw new TypeError('verificationMethod is required');
  }
  const created = opts.created === undefined ? isoSeconds(new Date()) : typeof opts.created === 'string' ? opts.created : isoSeconds(opts.created);
  if (!isValidDatetime(created)) throw new TypeError('created must be an XML Schema dateTimeStamp');

  const proofConfig: JsonObject = {};
  if (doc['@context'] !== undefined) proofConfig['@context'] = doc['@context'];
  Object.assign(proofConfig, {
    type: PROOF_TYPE,
    cryptosuite: CRYPTOSUITE,
    verificationMethod: opts.verificationMethod,
    proofPurpose: PROOF_PURPOSE,
    created,
  });
  const signature = cryptoSign(null, hashData(proofConfig, doc), opts.privateKey);
  const proof = { ...proofConfig, proofValue: `z${bs58.encode(signature)}` } as DataIntegrityProof;
  return { ...doc, proof };
}

/**
 * Verifies the eddsa-jcs-2022 proof of `doc`. Structural checks run first; only then is
 * `resolvePublicKey(verificationMethod)` called. The caller must still check that the
 * verification method belongs to the object's owner (same origin as `attributedTo` / actor).
 */
export async function verifyObject(
  doc: unknown,
  resolvePublicKey: (verificationMethod: string) => Promise<KeyObject>,
  opts: VerifyObjectOptions = {},
): Promise<VerifyObjectResult> {
  if (!isPlainObject(doc) || doc.proof === undefined) throw new ProofError('missing_proof', 'object has no proof');
  let proof: unknown = doc.proof;
  if (Array.isArray(proof)) {
    if (proof.length !== 1) throw new ProofError('malformed_proof', 'proof sets and chains are not supported');
    proof = proof[0];
  }
  if (!isPlainObject(proof)) throw new ProofError('malformed_proof', 'proof is not an object');
  if (proof.type !== PROOF_TYPE) {
    throw new ProofError('unsupported_cryptosuite', `proof type must be ${PROOF_TYPE}`);
  }
  if (proof.cryptosuite !== CRYPTOSUITE) {
    throw new ProofError('unsupported_cryptosuite', `cryptosuite must be ${CRYPTOSUITE}`);
  }
  const expectedPurpose = opts.expectedPurpose ?? PROOF_PURPOSE;
  if (proof.proofPurpose !== expectedPurpose) {
    throw new ProofError('purpose_mismatch', `proofPurpose must be ${expectedPurpose}`);
  }
  const vm = proof.verificationMethod;
  if (typeof vm !== 'string' || vm === '') throw new ProofError('malformed_proof', 'verificationMethod must be a string');
  if (proof.created !== undefined && !isValidDatetime(proof.created)) {
    throw new ProofError('malformed_proof', 'created is not a valid dateTimeStamp');
  }
  if (proof.expires !== undefined) {
    if (!isValidDatetime(proof.expires)) throw new ProofError('malformed_proof', 'expires is not a valid dateTimeStamp');
    if (Date.parse(proof.expires) < (opts.now ?? new Date()).getTime()) throw new ProofError('expired', 'proof has expired');
  }
  if (proof['@context'] !== undefined) {
    if (doc['@context'] === undefined || canonicalOrThrow(proof['@context']) !== canonicalOrThrow(doc['@context'])) {
      throw new ProofError('context_mismatch', 'proof @context does not match the document @context');
    }
  }
  const signature = decodeProofValue(proof.proofValue);

  const { proofValue: _pv, ...proofConfig } = proof;
  const { proof: _p, ...unsecured } = doc;
  let data: Buffer;
  try {
    data = hashData(proofConfig, unsecured);
  } catch (e) {
    throw new ProofError('malformed_proof', 'object cannot be canonicalized (JCS)', { cause: e });
  }

  let key: KeyObject;
  try {
    key = await resolvePublicKey(vm);
  } catch (e) {
    throw new ProofError('key_unavailable', 'could not resolve the verification method', { cause: e });
  }
  assertEd25519(key, 'public');

  let ok = false;
  try {
    ok = cryptoVerify(null, data, key, signature);
  } catch {
    ok = false;
  }
  if (!ok) throw new ProofError('bad_signature', 'proof signature does not verify');
  return {
    verificationMethod: vm,
    ...(typeof proof.created === 'string' ? { created: proof.created } : {}),
    proof: proof as DataIntegrityProof,
  };
}

function decodeProofValue(v: unknown): Buffer {
  if (typeof v !== 'string' || v[0] !== 'z' || v.length < 2) {
    throw new ProofError('bad_proof_value', 'proofValue must be a multibase base58btc string ("z...")');
  }
  let bytes: Uint8Array;
  try {
    bytes = bs58.decode(v.slice(1));
  } catch {
    throw new ProofError('bad_proof_value', 'proofValue is not valid base58btc');
  }
  if (bytes.length !== 64) throw new ProofError('bad_proof_value', 'proofValue must encode a 64-byte Ed25519 signature');
  return Buffer.from(bytes);
}

/** Ed25519 public key -> Multikey `publicKeyMultibase`: "z" + base58btc(0xed 0x01 || 32 raw bytes). */
export function ed25519ToMultibase(publicKey: KeyObject): string {
  if (publicKey.asymmetricKeyType !== 'ed25519') throw new TypeError('an Ed25519 key is required');
  const pub = publicKey.type === 'private' ? createPublicKey(publicKey) : publicKey;
  const jwk = pub.export({ format: 'jwk' });
  const raw = Buffer.from(jwk.x as string, 'base64url');
  return `z${bs58.encode(Buffer.concat([ED25519_MULTICODEC, raw]))}`;
}

/** Multikey `publicKeyMultibase` -> Ed25519 public KeyObject. Throws ProofError `malformed_key`. */
export function multibaseToEd25519(value: string): KeyObject {
  if (typeof value !== 'string' || value[0] !== 'z' || value.length < 2 || value.length > 64) {
    throw new ProofError('malformed_key', 'publicKeyMultibase must be a base58btc multibase string ("z...")');
  }
  let bytes: Uint8Array;
  try {
    bytes = bs58.decode(value.slice(1));
  } catch {
    throw new ProofError('malformed_key', 'publicKeyMultibase is not valid base58btc');
  }
  if (bytes.length !== 34 || bytes[0] !== 0xed || bytes[1] !== 0x01) {
    throw new ProofError('malformed_key', 'publicKeyMultibase is not an Ed25519 public key (0xed01 + 32 bytes)');
  }
  try {
    return createPublicKey({
      key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(bytes.subarray(2)).toString('base64url') },
      format: 'jwk',
    });
  } catch {
    throw new ProofError('malformed_key', 'publicKeyMultibase is not a valid Ed25519 key');
  }
}

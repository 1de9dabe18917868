/**
 * Instance key material: generation and PEM loading.
 *
 * An instance holds two key pairs:
 *  - RSA-2048, for HTTP Signatures (rsa-sha256 is what every fediverse server verifies);
 *  - Ed25519, for FEP-8b32 object integrity proofs (eddsa-jcs-2022) and, optionally, hs2019
 *    HTTP Signatures with peers that support it.
 *
 * PEM formats: private keys are PKCS#8 ("BEGIN PRIVATE KEY"), public keys SPKI ("BEGIN PUBLIC KEY"),
 * which is what ActivityPub actors publish in `publicKey.publicKeyPem`.
 *
 * Errors raised here never include key material.
 */
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPair,
  generateKeyPairSync,
  type KeyObject,
} from 'node:crypto';
import { promisify } from 'node:util';

export interface PemKeyPair {
  publicPem: string;
  privatePem: string;
}

export interface InstanceKeys {
  rsa: PemKeyPair;
  ed25519: PemKeyPair;
}

/** Key types this project signs and verifies with. */
export type SupportedKeyType = 'rsa' | 'ed25519';

/** Smallest RSA modulus accepted from a peer or loaded locally. */
export const MIN_RSA_BITS = 2048;

export class KeyError extends Error {
  override readonly name = 'KeyError';
}

const RSA_BITS = 2048;

const generateKeyPairAsync = promisify(generateKeyPair);

/** Generates the instance's RSA-2048 and Ed25519 key pairs (PEM), off the main thread. */
export async function generateInstanceKeys(): Promise<InstanceKeys> {
  const [rsa, ed] = await Promise.all([
    generateKeyPairAsync('rsa', {
      modulusLength: RSA_BITS,
      publicExponent: 0x10001,
      publicKeyEncoding: { type: 'spki', format: 'pem' },
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    }),
    generateKeyPairAsync('ed25519', {
      publicKeyEncoding: { type: 'spki', format: 'pem' },
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    }),
  ]);
  return {
    rsa: { publicPem: rsa.publicKey, privatePem: rsa.privateKey },
    ed25519: { publicPem: ed.publicKey, privatePem: ed.privateKey },
  };
}

/** Synchronous variant of {@link generateInstanceKeys} (blocks the event loop ~50-200 ms). */
export function generateInstanceKeysSync(): InstanceKeys {
  const rsa = generateKeyPairSync('rsa', {
    modulusLength: RSA_BITS,
    publicExponent: 0x10001,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  const ed = generateKeyPairSync('ed25519', {
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  return {
    rsa: { publicPem: rsa.publicKey, privatePem: rsa.privateKey },
    ed25519: { publicPem: ed.publicKey, privatePem: ed.privateKey },
  };
}

/**
 * Returns 'rsa' or 'ed25519' for a supported key, throws {@link KeyError} otherwise
 * (other algorithms, RSA-PSS-only keys, RSA below {@link MIN_RSA_BITS} bits).
 */
export function supportedKeyType(key: KeyObject): SupportedKeyType {
  if (key.type === 'secret') throw new KeyError('symmetric keys are not supported');
  const t = key.asymmetricKeyType;
  if (t === 'ed25519') return 'ed25519';
  if (t === 'rsa') {
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < MIN_RSA_BITS) throw new KeyError(`RSA key of ${bits} bits is too small (minimum ${MIN_RSA_BITS})`);
    return 'rsa';
  }
  throw new KeyError(`unsupported key type: ${String(t)}`);
}

/**
 * Loads a private key from PEM (PKCS#8, or PKCS#1 "RSA PRIVATE KEY"). Only unencrypted keys.
 * Throws {@link KeyError} if the PEM is not a supported private key.
 */
export function loadPrivateKey(pem: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: pem, format: 'pem' });
  } catch {
    throw new KeyError('not a valid unencrypted PEM private key');
  }
  supportedKeyType(key);
  return key;
}

/**
 * Loads a public key from PEM (SPKI "PUBLIC KEY", or PKCS#1 "RSA PUBLIC KEY").
 * A private key PEM is refused (Node would silently derive the public half from it).
 * Throws {@link KeyError} if the PEM is not a supported public key.
 */
export function loadPublicKey(pem: string): KeyObject {
  if (/-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/.test(pem)) {
    throw new KeyError('expected a public key PEM, got a private key');
  }
  let key: KeyObject;
  try {
    key = createPublicKey({ key: pem, format: 'pem' });
  } catch {
    throw new KeyError('not a valid PEM public key');
  }
  supportedKeyType(key);
  return key;
}

/** Public half of a private key, as SPKI PEM. */
export function publicPemFromPrivate(privateKey: KeyObject): string {
  return createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }).toString();
}

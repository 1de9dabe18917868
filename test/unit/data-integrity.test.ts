import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import bs58 from 'bs58';
import { describe, expect, it } from 'vitest';
import {
  ed25519ToMultibase,
  hashData,
  multibaseToEd25519,
  ProofError,
  signObject,
  verifyObject,
  type ProofErrorReason,
} from '../../shared/crypto/data-integrity.js';

const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const other = generateKeyPairSync('ed25519');
const VM = 'https://vouch.example/actor#ed25519-key';
const resolve = async (vm: string): Promise<KeyObject> => {
  if (vm !== VM) throw new Error(`unknown key ${vm}`);
  return publicKey;
};

const verdict = {
  '@context': ['https://www.w3.org/ns/activitystreams', 'https://w3id.org/security/data-integrity/v2', { vouch: 'https://vouch.example/ns#' }],
  id: 'https://vouch.example/verdicts/1',
  type: 'Verdict',
  attributedTo: 'https://vouch.example/actor',
  subject: [{ algorithm: 'sha256', digest: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855' }],
  label: 'csam',
  confidence: 0.97,
  published: '2025-03-01T12:00:00Z',
};

async function expectReason(p: Promise<unknown>, reason: ProofErrorReason): Promise<ProofError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(ProofError);
    expect((e as ProofError).reason).toBe(reason);
    return e as ProofError;
  }
  throw new Error(`expected ProofError(${reason}), nothing thrown`);
}

const clone = <T>(v: T): T => structuredClone(v);

describe('signObject / verifyObject', () => {
  it('round trips and produces a FEP-8b32 proof', async () => {
    const signed = signObject(verdict, { privateKey, verificationMethod: VM, created: new Date('2025-03-01T12:00:00.123Z') });
    expect(signed.proof).toMatchObject({
      '@context': verdict['@context'],
      type: 'DataIntegrityProof',
      cryptosuite: 'eddsa-jcs-2022',
      verificationMethod: VM,
      proofPurpose: 'assertionMethod',
      created: '2025-03-01T12:00:00Z',
    });
    expect(signed.proof.proofValue).toMatch(/^z[1-9A-HJ-NP-Za-km-z]+$/);
    expect(bs58.decode(signed.proof.proofValue.slice(1))).toHaveLength(64);
    expect(verdict).not.toHaveProperty('proof'); // input untouched
    const r = await verifyObject(signed, resolve);
    expect(r.verificationMethod).toBe(VM);
    expect(r.created).toBe('2025-03-01T12:00:00Z');
  });

  it('survives a JSON round trip with reordered keys (JCS)', async () => {
    const signed = signObject(verdict, { privateKey, verificationMethod: VM });
    const reordered = Object.fromEntries(Object.entries(JSON.parse(JSON.stringify(signed))).reverse());
    await expect(verifyObject(reordered, resolve)).resolves.toMatchObject({ verificationMethod: VM });
  });

  it('signs documents without @context (proof then has none)', async () => {
    const { '@context': _c, ...bare } = verdict;
    const signed = signObject(bare, { privateKey, verificationMethod: VM });
    expect(signed.proof).not.toHaveProperty('@context');
    await expect(verifyObject(signed, resolve)).resolves.toBeTruthy();
  });

  it('tampered field -> bad_signature', async () => {
    const signed = clone(signObject(verdict, { privateKey, verificationMethod: VM }));
    signed.label = 'benign';
    await expectReason(verifyObject(signed, resolve), 'bad_signature');
    const s2 = clone(signObject(verdict, { privateKey, verificationMethod: VM }));
    s2.subject[0]!.digest = s2.subject[0]!.digest.replace('e3', 'e4');
    await expectReason(verifyObject(s2, resolve), 'bad_signature');
    const s3 = clone(signObject(verdict, { privateKey, verificationMethod: VM })) as Record<string, unknown>;
    s3.extra = true;
    await expectReason(verifyObject(s3, resolve), 'bad_signature');
  });

  it('tampered proof config (created) -> bad_signature', async () => {
    const signed = clone(signObject(verdict, { privateKey, verificationMethod: VM }));
    signed.proof.created = '2020-01-01T00:00:00Z';
    await expectReason(verifyObject(signed, resolve), 'bad_signature');
  });

  it('proof config fields added after signing -> bad_signature', async () => {
    const signed = clone(signObject(verdict, { privateKey, verificationMethod: VM }));
    (signed.proof as Record<string, unknown>).expires = '2999-01-01T00:00:00Z';
    await expectReason(verifyObject(signed, resolve), 'bad_signature');
  });

  it('verificationMethod swapped to a key the attacker controls -> bad_signature', async () => {
    const signed = clone(signObject(verdict, { privateKey: other.privateKey, verificationMethod: VM }));
    await expectReason(verifyObject(signed, resolve), 'bad_signature');
  });

  it('wrong key -> bad_signature', async () => {
    const signed = signObject(verdict, { privateKey, verificationMethod: VM });
    await expectReason(verifyObject(signed, async () => other.publicKey), 'bad_signature');
  });

  it('non-Ed25519 key -> unsupported_key', async () => {
    const signed = signObject(verdict, { privateKey, verificationMethod: VM });
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    await expectReason(verifyObject(signed, async () => rsa.publicKey), 'unsupported_key');
    expect(() => signObject(verdict, { privateKey: rsa.privateKey, verificationMethod: VM })).toThrow(ProofError);
  });

  it('resolver failure -> key_unavailable, with the cause kept', async () => {
    const signed = signObject(verdict, { privateKey, verificationMethod: 'https://elsewhere.example/k' });
    const e = await expectReason(verifyObject(signed, resolve), 'key_unavailable');
    expect((e.cause as Error).message).toMatch(/unknown key/);
  });

  it('missing proof -> missing_proof', async () => {
    await expectReason(verifyObject(verdict, resolve), 'missing_proof');
    await expectReason(verifyObject(null, resolve), 'missing_proof');
    await expectReason(verifyObject('x', resolve), 'missing_proof');
  });

  it('other cryptosuite or proof type -> unsupported_cryptosuite', async () => {
    const a = clone(signObject(verdict, { privateKey, verificationMethod: VM })) as { proof: Record<string, unknown> };
    a.proof.cryptosuite = 'eddsa-rdfc-2022';
    await expectReason(verifyObject(a, resolve), 'unsupported_cryptosuite');
    const b = clone(signObject(verdict, { privateKey, verificationMethod: VM })) as { proof: Record<string, unknown> };
    b.proof.type = 'Ed25519Signature2020';
    await expectReason(verifyObject(b, resolve), 'unsupported_cryptosuite');
  });

  it('other proofPurpose -> purpose_mismatch', async () => {
    const s = clone(signObject(verdict, { privateKey, verificationMethod: VM }));
    s.proof.proofPurpose = 'authentication';
    await expectReason(verifyObject(s, resolve), 'purpose_mismatch');
  });

  it('bad proofValue encodings -> bad_proof_value', async () => {
    const signed = signObject(verdict, { privateKey, verificationMethod: VM });
    const sig = bs58.decode(signed.proof.proofValue.slice(1));
    for (const pv of [
      undefined,
      42,
      signed.proof.proofValue.slice(1), // no multibase prefix
      `u${Buffer.from(sig).toString('base64url')}`, // base64url multibase
      'z0OIl', // not base58
      `z${bs58.encode(sig.subarray(0, 63))}`, // 63 bytes
      `z${bs58.encode(Buffer.concat([sig, Buffer.from([0])]))}`, // 65 bytes
    ]) {
      const s = clone(signed) as { proof: Record<string, unknown> };
      s.proof.proofValue = pv;
      await expectReason(verifyObject(s, resolve), 'bad_proof_value');
    }
  });

  it('proof @context differing from the document -> context_mismatch', async () => {
    const s = clone(signObject(verdict, { privateKey, verificationMethod: VM })) as Record<string, unknown>;
    s['@context'] = [...verdict['@context'], { evil: 'https://evil.example/ns#' }];
    await expectReason(verifyObject(s, resolve), 'context_mismatch');
  });

  it('a proof @context nested thousands deep (canonicalize recurses) -> malformed_proof, not a RangeError', async () => {
    const s = clone(signObject(verdict, { privateKey, verificationMethod: VM })) as Record<string, unknown>;
    let deep: unknown = [];
    for (let i = 0; i < 5_000; i++) deep = [deep];
    (s.proof as Record<string, unknown>)['@context'] = deep;
    await expectReason(verifyObject(s, resolve), 'malformed_proof');
  });

  it('proof sets and non-object proofs -> malformed_proof; single-element array is accepted', async () => {
    const signed = signObject(verdict, { privateKey, verificationMethod: VM });
    await expectReason(verifyObject({ ...signed, proof: [signed.proof, signed.proof] }, resolve), 'malformed_proof');
    await expectReason(verifyObject({ ...signed, proof: 'x' }, resolve), 'malformed_proof');
    await expect(verifyObject({ ...signed, proof: [signed.proof] }, resolve)).resolves.toBeTruthy();
    const s = clone(signed) as { proof: Record<string, unknown> };
    s.proof.created = 'yesterday';
    await expectReason(verifyObject(s, resolve), 'malformed_proof');
  });

  it('an expired proof -> expired (expires is covered by the signature)', async () => {
    const { '@context': _c, ...bare } = verdict;
    const proofConfig = {
      type: 'DataIntegrityProof',
      cryptosuite: 'eddsa-jcs-2022',
      verificationMethod: VM,
      proofPurpose: 'assertionMethod',
      created: '2025-01-01T00:00:00Z',
      expires: '2025-02-01T00:00:00Z',
    };
    const { sign } = await import('node:crypto');
    const sig = sign(null, hashData(proofConfig, bare), privateKey);
    const doc = { ...bare, proof: { ...proofConfig, proofValue: `z${bs58.encode(sig)}` } };
    await expect(verifyObject(doc, resolve, { now: new Date('2025-01-15T00:00:00Z') })).resolves.toBeTruthy();
    await expectReason(verifyObject(doc, resolve, { now: new Date('2025-03-01T00:00:00Z') }), 'expired');
  });

  it('does not call the resolver for structurally invalid proofs', async () => {
    let calls = 0;
    const counting = async () => {
      calls++;
      return publicKey;
    };
    const s = clone(signObject(verdict, { privateKey, verificationMethod: VM }));
    s.proof.proofValue = 'zzz';
    await expectReason(verifyObject(s, counting), 'bad_proof_value');
    expect(calls).toBe(0);
  });

  it('refuses to sign twice or sign non-objects', () => {
    const signed = signObject(verdict, { privateKey, verificationMethod: VM });
    expect(() => signObject(signed, { privateKey, verificationMethod: VM })).toThrow(/already has a proof/);
    expect(() => signObject([] as never, { privateKey, verificationMethod: VM })).toThrow(TypeError);
  });
});

describe('Multikey helpers', () => {
  it('round trips an Ed25519 public key through publicKeyMultibase', () => {
    const mb = ed25519ToMultibase(publicKey);
    expect(mb).toMatch(/^z6Mk/);
    const back = multibaseToEd25519(mb);
    expect(back.equals(publicKey)).toBe(true);
    expect(ed25519ToMultibase(privateKey)).toBe(mb); // derives the public half
  });

  it.each([
    ['empty', ''],
    ['no z prefix', 'f6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2'],
    ['bad base58', 'z0OIl'],
    ['wrong multicodec (secp256k1 0xe701)', `z${bs58.encode(Buffer.concat([Buffer.from([0xe7, 0x01]), Buffer.alloc(33, 2)]))}`],
    ['wrong length', `z${bs58.encode(Buffer.concat([Buffer.from([0xed, 0x01]), Buffer.alloc(31, 2)]))}`],
    ['private key multicodec', 'z3u2en7t5LR2WtQH5PfFqMqwVHBeXouLzo6haApm8XHqvjxq'],
  ])('multibaseToEd25519 rejects %s', (_n, v) => {
    expect(() => multibaseToEd25519(v)).toThrow(ProofError);
    try {
      multibaseToEd25519(v);
    } catch (e) {
      expect((e as ProofError).reason).toBe('malformed_key');
    }
  });
});

/**
 * Known-answer test: W3C vc-di-eddsa, Appendix "Representation: eddsa-jcs-2022"
 * (w3c/vc-di-eddsa TestVectors/keyPair.json and TestVectors/eddsa-jcs-2022/signedJCS.json).
 */
describe('vc-di-eddsa eddsa-jcs-2022 test vector', () => {
  const publicKeyMultibase = 'z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2';
  const privateKeyMultibase = 'z3u2en7t5LR2WtQH5PfFqMqwVHBeXouLzo6haApm8XHqvjxq';
  const unsigned = {
    '@context': ['https://www.w3.org/ns/credentials/v2', 'https://www.w3.org/ns/credentials/examples/v2'],
    id: 'urn:uuid:58172aac-d8ba-11ed-83dd-0b3aef56cc33',
    type: ['VerifiableCredential', 'AlumniCredential'],
    name: 'Alumni Credential',
    description: 'A minimum viable example of an Alumni Credential.',
    issuer: 'https://vc.example/issuers/5678',
    validFrom: '2023-01-01T00:00:00Z',
    credentialSubject: { id: 'did:example:abcdefgh', alumniOf: 'The School of Examples' },
  };
  const vm = `https://vc.example/issuers/5678#${publicKeyMultibase}`;
  const expectedProofValue = 'z63t83Y53KfzJ5ZosfKTnqfMcKB2dmTrfjSaQjeNNjAD5srBowQfmWqeRb8rRjmeEuCBEsddF9LsVogtuTsijJKh4';

  /** Multikey secret key: 0x8026 || 32-byte seed -> PKCS#8 KeyObject. */
  function privateFromMultibase(mb: string): KeyObject {
    const bytes = Buffer.from(bs58.decode(mb.slice(1)));
    expect([...bytes.subarray(0, 2)]).toEqual([0x80, 0x26]);
    const pkcs8Prefix = Buffer.from('302e020100300506032b657004220420', 'hex');
    return createPrivateKey({ key: Buffer.concat([pkcs8Prefix, bytes.subarray(2)]), format: 'der', type: 'pkcs8' });
  }

  it('the key pair is consistent', () => {
    const priv = privateFromMultibase(privateKeyMultibase);
    expect(ed25519ToMultibase(createPublicKey(priv))).toBe(publicKeyMultibase);
  });

  it('document hash matches the published docHashJCS', () => {
    const docHash = hashData({}, unsigned).subarray(32).toString('hex');
    expect(docHash).toBe('59b7cb6251b8991add1ce0bc83107e3db9dbbab5bd2c28f687db1a03abc92f19');
  });

  it('proof-config hash matches the published proofHashJCS (did:key variant of the vector)', () => {
    const proofConfig = {
      type: 'DataIntegrityProof',
      cryptosuite: 'eddsa-jcs-2022',
      created: '2023-02-24T23:36:38Z',
      verificationMethod: `did:key:${publicKeyMultibase}#${publicKeyMultibase}`,
      proofPurpose: 'assertionMethod',
      '@context': unsigned['@context'],
    };
    expect(hashData(proofConfig, unsigned).toString('hex')).toBe(
      '66ab154f5c2890a140cb8388a22a160454f80575f6eae09e5a097cabe539a1db' +
        '59b7cb6251b8991add1ce0bc83107e3db9dbbab5bd2c28f687db1a03abc92f19',
    );
  });

  it('signing reproduces the published proofValue exactly', () => {
    const signed = signObject(unsigned, {
      privateKey: privateFromMultibase(privateKeyMultibase),
      verificationMethod: vm,
      created: '2023-02-24T23:36:38Z',
    });
    expect(signed.proof.proofValue).toBe(expectedProofValue);
  });

  it('the published signed document verifies', async () => {
    const published = {
      ...unsigned,
      proof: {
        type: 'DataIntegrityProof',
        cryptosuite: 'eddsa-jcs-2022',
        created: '2023-02-24T23:36:38Z',
        verificationMethod: vm,
        proofPurpose: 'assertionMethod',
        '@context': ['https://www.w3.org/ns/credentials/v2', 'https://www.w3.org/ns/credentials/examples/v2'],
        proofValue: expectedProofValue,
      },
    };
    const r = await verifyObject(published, async (v) => multibaseToEd25519(v.split('#')[1]!));
    expect(r.verificationMethod).toBe(vm);
    const tampered = { ...published, name: 'Alumni Credential!' };
    await expectReason(verifyObject(tampered, async (v) => multibaseToEd25519(v.split('#')[1]!)), 'bad_signature');
  });
});

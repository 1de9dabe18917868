// The actor document as JSON-LD (every term it uses expands to an IRI, `manuallyApprovesFollowers`
// and the log endpoint included), and text fields under RFC 8259 / JCS: U+2028 and U+2029 are
// text, C0 and C1 controls are refused.
import { generateKeyPairSync } from 'node:crypto';
import canonicalize from 'canonicalize';
import jsonld from 'jsonld';
import { describe, expect, it } from 'vitest';
import { actorDocument, type Identity } from '../../server/federation/identity.js';
import { ed25519ToMultibase } from '../../shared/crypto/data-integrity.js';
import { VERDICT_CONTEXT, documentLoader } from '../../shared/vocab/contexts.js';
import { VocabError, parseVerdict } from '../../shared/vocab/objects.js';
import { forbidNetwork } from '../helpers/no-network.js';

const AS = 'https://www.w3.org/ns/activitystreams#';
const V = 'https://w3id.org/vouch#';
const XSD = 'http://www.w3.org/2001/XMLSchema#';

forbidNetwork('vocab tests');

function identity(): Identity {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ed = generateKeyPairSync('ed25519');
  const actorId = 'https://a.example/actor';
  return {
    publicUrl: 'https://a.example',
    host: 'a.example',
    actorId,
    rsaKeyId: `${actorId}#main-key`,
    rsaPrivateKey: rsa.privateKey,
    rsaPublicPem: rsa.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    proofKeyId: `${actorId}#proof-key`,
    proofPrivateKey: ed.privateKey,
    proofPublicMultibase: ed25519ToMultibase(ed.publicKey),
    inbox: `${actorId}/inbox`,
    outbox: `${actorId}/outbox`,
    followers: `${actorId}/followers`,
    following: `${actorId}/following`,
  };
}

/** Every property or type that expanded to a blank node (`_:x`): a term no context defines. */
function blankTerms(node: unknown, out: string[] = []): string[] {
  if (Array.isArray(node)) for (const n of node) blankTerms(n, out);
  else if (typeof node === 'object' && node !== null) {
    for (const [key, value] of Object.entries(node)) {
      if (key.startsWith('_:')) out.push(key);
      if (key === '@type') for (const t of [value].flat()) if (typeof t === 'string' && t.startsWith('_:')) out.push(t);
      blankTerms(value, out);
    }
  }
  return out;
}

describe('the actor document in JSON-LD', () => {
  it('expands manuallyApprovesFollowers to as:manuallyApprovesFollowers, and every other term to an IRI', async () => {
    const [e] = (await jsonld.expand(actorDocument(identity()) as jsonld.JsonLdDocument, { documentLoader: documentLoader as never })) as Record<string, any>[];
    expect(e[`${AS}manuallyApprovesFollowers`]).toEqual([{ '@value': true, '@type': `${XSD}boolean` }]);
    const endpoints = e[`${AS}endpoints`][0];
    expect(endpoints[`${V}log`]).toEqual([{ '@id': 'https://a.example/log' }]);
    expect(endpoints[`${V}lookup`]).toEqual([{ '@id': 'https://a.example/actor/lookup' }]);
    expect(blankTerms(e)).toEqual([]);
  });
});

describe('text fields and line separators', () => {
  const verdict = (pipeline: string) => ({
    '@context': [...VERDICT_CONTEXT],
    type: 'Verdict',
    id: 'https://b.example/verdicts/1',
    attributedTo: 'https://b.example/actor',
    subject: [{ algorithm: 'sha256', digest: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855' }],
    label: 'spam',
    confidence: 0.9,
    method: 'human',
    pipeline,
    published: '2026-11-23T10:00:00Z',
  });
  const parse = (v: unknown) => parseVerdict(v, { now: new Date('2026-11-23T10:05:00Z'), requireProof: false });

  it('accepts U+2028 and U+2029, which JCS serializes as themselves', () => {
    const text = 'norm\u2028line\u2029para';
    expect(parse(verdict(text)).pipeline).toBe(text);
    expect(canonicalize({ pipeline: text })).toBe(`{"pipeline":"${text}"}`);
  });

  it.each([
    ['NUL', '\u0000'],
    ['line feed', '\n'],
    ['DEL', '\u007f'],
    ['C1 NEL', '\u0085'],
  ])('refuses a %s', (_name, char) => {
    let caught: unknown;
    try {
      parse(verdict(`a${char}b`));
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(VocabError);
    expect((caught as Error).message).toMatch(/pipeline.*control characters/);
  });
});

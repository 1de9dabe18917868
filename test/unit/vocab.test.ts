import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import jsonld from 'jsonld';
import { describe, expect, it } from 'vitest';
import { ed25519ToMultibase, signObject, verifyObject } from '../../shared/crypto/data-integrity.js';
import {
  ACTOR_CONTEXT,
  AS_CONTEXT_URL,
  BUNDLED_CONTEXT_URLS,
  DATA_INTEGRITY_CONTEXT_URL,
  MULTIKEY_CONTEXT_URL,
  SECURITY_V1_CONTEXT_URL,
  UnknownContextError,
  VERDICT_CONTEXT,
  VOUCH_CONTEXT_URL,
  bundledContext,
  canonicalContextUrl,
  createDocumentLoader,
  documentLoader,
} from '../../shared/vocab/contexts.js';
import {
  MAX_SUBJECTS,
  VocabError,
  parseActivity,
  parseCheckpointObject,
  parseRfc3339,
  parseTombstone,
  parseTrustStatement,
  parseVerdict,
  parseVouchObject,
  type ParseOptions,
} from '../../shared/vocab/objects.js';
import { forbidNetwork } from '../helpers/no-network.js';

const V = 'https://w3id.org/vouch#';
const AS = 'https://www.w3.org/ns/activitystreams#';
const SEC = 'https://w3id.org/security#';
const XSD = 'http://www.w3.org/2001/XMLSchema#';

// No test in this file may reach the network: any fetch is a failure.
const fetchSpy = forbidNetwork('vocab tests');

const expand = (doc: object, loader = documentLoader) =>
  jsonld.expand(doc as jsonld.JsonLdDocument, { documentLoader: loader as never }) as Promise<Record<string, any>[]>;

const NOW = new Date('2026-11-23T10:05:00Z');
const OPTS: ParseOptions = { now: NOW };
const PDQ = 'f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22';
const SHA = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const VM = 'https://b.example/actor#ed25519-key';

function baseVerdict(): Record<string, any> {
  return {
    '@context': [...VERDICT_CONTEXT],
    type: 'Verdict',
    id: 'https://b.example/verdicts/8d0b7c2e-3f7a-4a52-9a55-1f0d2d3c4b5a',
    attributedTo: 'https://b.example/actor',
    subject: [
      { algorithm: 'pdq', digest: PDQ, quality: 100 },
      { algorithm: 'sha256', digest: SHA },
    ],
    label: 'csam',
    confidence: 0.97,
    method: 'classifier',
    classifier: { name: 'nsfw-mobilenet', version: '2.0' },
    pipeline: 'vouch-norm-1',
    published: '2026-11-23T10:00:00Z',
    expires: '2027-11-23T10:00:00Z',
    supersedes: 'https://b.example/verdicts/11111111-2222-4333-8444-555555555555',
  };
}

function signedVerdict(mutate?: (v: Record<string, any>) => void): Record<string, any> {
  const v = baseVerdict();
  mutate?.(v);
  return signObject(v, { privateKey, verificationMethod: VM, created: '2026-11-23T10:00:00Z' });
}

function vouchError(fn: () => unknown): VocabError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(VocabError);
    return e as VocabError;
  }
  throw new Error('expected a VocabError, nothing thrown');
}

// ---------------------------------------------------------------------------------------------

describe('bundled contexts and the document loader', () => {
  it('answers every bundled URL, in the accepted spellings, with a fresh copy', async () => {
    expect(BUNDLED_CONTEXT_URLS).toEqual(
      expect.arrayContaining([AS_CONTEXT_URL, DATA_INTEGRITY_CONTEXT_URL, MULTIKEY_CONTEXT_URL, SECURITY_V1_CONTEXT_URL, VOUCH_CONTEXT_URL]),
    );
    for (const url of BUNDLED_CONTEXT_URLS) {
      const doc = await documentLoader(url);
      expect(doc.documentUrl).toBe(url);
      expect(doc.document['@context']).toBeTypeOf('object');
      expect(canonicalContextUrl(url.replace('https://', 'http://'))).toBe(url);
      expect(canonicalContextUrl(`${url}/`)).toBe(url);
    }
    expect(canonicalContextUrl('https://www.w3.org/ns/activitystreams.jsonld')).toBe(AS_CONTEXT_URL);
    const a = bundledContext(VOUCH_CONTEXT_URL);
    (a['@context'] as Record<string, unknown>).label = 'https://evil.example/label';
    expect((bundledContext(VOUCH_CONTEXT_URL)['@context'] as Record<string, unknown>).label).toBe('vouch:label');
  });

  it('refuses every other URL, clearly, without touching the network', async () => {
    for (const url of [
      'https://evil.example/context.jsonld',
      'https://w3id.org/security/v2',
      'https://w3id.org/security/data-integrity/v1',
      'https://W3ID.org/vouch/v1',
      'https://w3id.org/vouch/v1?x=1',
      'https://w3id.org/vouch/v1#',
      'https://w3id.org/vouch/v1//',
      'file:///etc/passwd',
      '',
    ]) {
      expect(() => bundledContext(url)).toThrow(UnknownContextError);
      await expect(documentLoader(url)).rejects.toThrow(/is not bundled; Vouch never fetches contexts/);
    }
    await expect(expand({ '@context': 'https://evil.example/ctx', type: 'Note' })).rejects.toThrow();
    await expect(expand({ '@context': [AS_CONTEXT_URL, 'http://127.0.0.1:9/x'], type: 'Note' })).rejects.toThrow();
    expect(fetchSpy).not.toHaveBeenCalled();
  });

  it('maps extra aliases (e.g. our own /ns/v1) to bundled contexts only', async () => {
    const loader = createDocumentLoader({ aliases: { 'https://b.example/ns/v1': VOUCH_CONTEXT_URL } });
    expect((await loader('https://b.example/ns/v1')).document).toEqual(bundledContext(VOUCH_CONTEXT_URL));
    await expect(loader('https://c.example/ns/v1')).rejects.toThrow(UnknownContextError);
    expect(() => createDocumentLoader({ aliases: { 'https://b.example/x': 'https://evil.example/y' } })).toThrow(UnknownContextError);
  });
});

describe('JSON-LD expansion with the bundled loader', () => {
  it('expands a signed Verdict to Vouch, ActivityStreams and security IRIs', async () => {
    const v = signedVerdict();
    v.proof.expires = '2030-01-01T00:00:00Z'; // a proof's own `expires` must stay sec:expiration
    const [e] = await expand(v);
    expect(e['@type']).toEqual([`${V}Verdict`]);
    expect(e['@id']).toBe(v.id);
    expect(e[`${AS}attributedTo`]).toEqual([{ '@id': 'https://b.example/actor' }]);
    expect(e[`${V}label`]).toEqual([{ '@value': 'csam' }]);
    expect(e[`${V}confidence`]).toEqual([{ '@value': 0.97, '@type': `${XSD}double` }]);
    expect(e[`${V}method`]).toEqual([{ '@value': 'classifier' }]);
    expect(e[`${V}pipeline`]).toEqual([{ '@value': 'vouch-norm-1' }]);
    expect(e[`${AS}published`]).toEqual([{ '@value': '2026-11-23T10:00:00Z', '@type': `${XSD}dateTime` }]);
    expect(e[`${V}expires`]).toEqual([{ '@value': '2027-11-23T10:00:00Z', '@type': `${XSD}dateTime` }]);
    expect(e[`${V}supersedes`]).toEqual([{ '@id': v.supersedes }]);
    expect(e[`${AS}subject`]).toBeUndefined();
    expect(e[`${V}subject`]).toEqual([
      {
        [`${V}algorithm`]: [{ '@value': 'pdq' }],
        [`${V}digest`]: [{ '@value': PDQ }],
        [`${V}quality`]: [{ '@value': 100, '@type': `${XSD}integer` }],
      },
      { [`${V}algorithm`]: [{ '@value': 'sha256' }], [`${V}digest`]: [{ '@value': SHA }] },
    ]);
    expect(e[`${V}classifier`]).toEqual([
      { [`${AS}name`]: [{ '@value': 'nsfw-mobilenet' }], [`${V}version`]: [{ '@value': '2.0' }] },
    ]);
    const proof = e[`${SEC}proof`][0]['@graph'][0];
    expect(proof['@type']).toEqual([`${SEC}DataIntegrityProof`]);
    expect(proof[`${SEC}cryptosuite`]).toEqual([{ '@value': 'eddsa-jcs-2022', '@type': `${SEC}cryptosuiteString` }]);
    expect(proof[`${SEC}proofPurpose`]).toEqual([{ '@id': `${SEC}assertionMethod` }]);
    expect(proof[`${SEC}verificationMethod`]).toEqual([{ '@id': VM }]);
    expect(proof[`${SEC}expiration`]).toEqual([{ '@value': '2030-01-01T00:00:00Z', '@type': `${XSD}dateTime` }]);
    expect(proof[`${V}expires`]).toBeUndefined();
    expect(proof['http://purl.org/dc/terms/created']).toBeDefined();
  });

  it('would break if the Vouch context were @protected (DI v2 redefines `expires` inside proofs)', async () => {
    const protectedUrl = 'https://vouch.test/protected-variant';
    const variant = bundledContext(VOUCH_CONTEXT_URL);
    (variant['@context'] as Record<string, unknown>)['@protected'] = true;
    const loader = async (url: string) =>
      url === protectedUrl ? { documentUrl: url, document: variant } : documentLoader(url);
    const v = signedVerdict();
    v['@context'] = [AS_CONTEXT_URL, DATA_INTEGRITY_CONTEXT_URL, protectedUrl];
    await expect(expand(v, loader as typeof documentLoader)).rejects.toThrow(/redefine a protected term/);
  });

  it('expands a TrustStatement', async () => {
    const [e] = await expand({
      '@context': VERDICT_CONTEXT,
      type: 'TrustStatement',
      id: 'https://b.example/trust/1',
      attributedTo: 'https://b.example/actor',
      published: '2026-11-23T10:00:00Z',
      trust: [
        { peer: 'https://c.example/actor', polarity: 'abuse', value: 0.8, label: 'csam' },
        { peer: 'https://d.example/actor', polarity: 'ok', value: 0.25 },
      ],
    });
    expect(e['@type']).toEqual([`${V}TrustStatement`]);
    expect(e[`${V}trust`]).toHaveLength(2);
    expect(e[`${V}trust`][0]).toEqual({
      [`${V}peer`]: [{ '@id': 'https://c.example/actor' }],
      [`${V}polarity`]: [{ '@value': 'abuse' }],
      [`${V}value`]: [{ '@value': 0.8, '@type': `${XSD}double` }],
      [`${V}label`]: [{ '@value': 'csam' }],
    });
  });

  it('expands a Checkpoint (origin is vouch:origin, not as:origin)', async () => {
    const [e] = await expand({
      '@context': VERDICT_CONTEXT,
      type: 'Checkpoint',
      id: 'https://b.example/log/checkpoints/42',
      attributedTo: 'https://b.example/actor',
      origin: 'b.example/vouch-log',
      treeSize: 42,
      rootHash: 'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=',
      note: 'b.example/vouch-log\n42\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n\n— b.example/vouch-log AAAA\n',
      published: '2026-11-23T10:00:00Z',
    });
    expect(e['@type']).toEqual([`${V}Checkpoint`]);
    expect(e[`${V}origin`]).toEqual([{ '@value': 'b.example/vouch-log' }]);
    expect(e[`${AS}origin`]).toBeUndefined();
    expect(e[`${V}treeSize`]).toEqual([{ '@value': 42, '@type': `${XSD}nonNegativeInteger` }]);
    expect(e[`${V}rootHash`]).toHaveLength(1);
    expect(e[`${V}note`]).toHaveLength(1);
  });

  it('expands a Create carrying a Verdict and a Delete carrying a Tombstone', async () => {
    const [create] = await expand({
      '@context': VERDICT_CONTEXT,
      type: 'Create',
      id: 'https://b.example/activities/1',
      actor: 'https://b.example/actor',
      object: signedVerdict(),
    });
    expect(create['@type']).toEqual([`${AS}Create`]);
    expect(create[`${AS}actor`]).toEqual([{ '@id': 'https://b.example/actor' }]);
    expect(create[`${AS}object`][0]['@type']).toEqual([`${V}Verdict`]);
    expect(create[`${AS}object`][0][`${V}label`]).toEqual([{ '@value': 'csam' }]);

    const [del] = await expand({
      '@context': VERDICT_CONTEXT,
      type: 'Delete',
      id: 'https://b.example/activities/2',
      actor: 'https://b.example/actor',
      object: { type: 'Tombstone', id: 'https://b.example/verdicts/1', formerType: 'Verdict', deleted: '2026-11-23T10:00:00Z' },
    });
    const tomb = del[`${AS}object`][0];
    expect(tomb['@type']).toEqual([`${AS}Tombstone`]);
    expect(tomb[`${AS}formerType`]).toEqual([{ '@id': `${V}Verdict` }]);
    expect(tomb[`${AS}deleted`]).toEqual([{ '@value': '2026-11-23T10:00:00Z', '@type': `${XSD}dateTime` }]);
  });

  it('expands an actor with a Mastodon-style publicKey and a FEP-521a Multikey', async () => {
    const [e] = await expand({
      '@context': ACTOR_CONTEXT,
      id: 'https://b.example/actor',
      type: 'Application',
      preferredUsername: 'vouch',
      inbox: 'https://b.example/inbox',
      outbox: 'https://b.example/outbox',
      publicKey: {
        id: 'https://b.example/actor#main-key',
        owner: 'https://b.example/actor',
        publicKeyPem: '-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----\n',
      },
      assertionMethod: [
        {
          id: VM,
          type: 'Multikey',
          controller: 'https://b.example/actor',
          publicKeyMultibase: ed25519ToMultibase(publicKey),
        },
      ],
    });
    expect(e['@type']).toEqual([`${AS}Application`]);
    expect(e['http://www.w3.org/ns/ldp#inbox']).toEqual([{ '@id': 'https://b.example/inbox' }]);
    const pk = e[`${SEC}publicKey`][0];
    expect(pk['@id']).toBe('https://b.example/actor#main-key');
    expect(pk[`${SEC}owner`]).toEqual([{ '@id': 'https://b.example/actor' }]);
    expect(pk[`${SEC}publicKeyPem`][0]['@value']).toContain('BEGIN PUBLIC KEY');
    const mk = e[`${SEC}assertionMethod`][0];
    expect(mk['@id']).toBe(VM);
    expect(mk['@type']).toEqual([`${SEC}Multikey`]);
    expect(mk[`${SEC}controller`]).toEqual([{ '@id': 'https://b.example/actor' }]);
    expect(mk[`${SEC}publicKeyMultibase`]).toEqual([{ '@value': ed25519ToMultibase(publicKey), '@type': `${SEC}multibase` }]);
  });
});

// ---------------------------------------------------------------------------------------------

describe('parseVerdict', () => {
  it('accepts a valid signed verdict, drops unknown properties, and the original still verifies', async () => {
    const raw = signedVerdict((v) => {
      v.extra = { nested: [1, 2, 3] };
    });
    const v = parseVerdict(raw, OPTS);
    expect(v.type).toBe('Verdict');
    expect(v.subject).toEqual(raw.subject);
    expect(v.classifier).toEqual({ name: 'nsfw-mobilenet', version: '2.0' });
    expect(v.proof?.verificationMethod).toBe(VM);
    expect(v).not.toHaveProperty('extra');
    const resolve = async (vm: string): Promise<KeyObject> => {
      if (vm !== VM) throw new Error('unknown key');
      return publicKey;
    };
    await expect(verifyObject(raw, resolve)).resolves.toMatchObject({ verificationMethod: VM });
  });

  it('accepts the minimal forms: no optional fields, human method, phash64, http with allowHttp', () => {
    const v = baseVerdict();
    delete v.classifier;
    delete v.pipeline;
    delete v.expires;
    delete v.supersedes;
    v.method = 'human';
    v.subject = [{ algorithm: 'phash64', digest: '0123456789abcdef' }];
    expect(parseVerdict(v, { ...OPTS, requireProof: false }).method).toBe('human');

    const h = baseVerdict();
    h.id = 'http://127.0.0.2:8080/verdicts/1';
    h.attributedTo = 'http://127.0.0.2:8080/actor';
    h.supersedes = 'http://127.0.0.2:8080/verdicts/0';
    const signed = signObject(h, { privateKey, verificationMethod: 'http://127.0.0.2:8080/actor#ed25519-key' });
    expect(parseVerdict(signed, { ...OPTS, allowHttp: true }).id).toBe(h.id);
    expect(vouchError(() => parseVerdict(signed, OPTS)).path).toBe('id');
  });

  it('allows published within the clock skew', () => {
    const v = signedVerdict((x) => {
      x.published = '2026-11-23T10:09:59Z';
    });
    expect(() => parseVerdict(v, OPTS)).not.toThrow();
  });

  const cases: Array<[string, (v: Record<string, any>) => void, string, RegExp]> = [
    ['bad hex', (v) => (v.subject[1].digest = `zz${SHA.slice(2)}`), 'subject[1].digest', /hexadecimal/],
    ['wrong length', (v) => (v.subject[1].digest = SHA.slice(2)), 'subject[1].digest', /64 hex characters for sha256/],
    ['phash64 with a sha256-sized digest', (v) => (v.subject[1] = { algorithm: 'phash64', digest: SHA }), 'subject[1].digest', /16 hex/],
    ['upper-case hex', (v) => (v.subject[0].digest = PDQ.toUpperCase()), 'subject[0].digest', /lower-case/],
    ['unknown algorithm', (v) => (v.subject[1].algorithm = 'tmk'), 'subject[1].algorithm', /one of pdq, sha256, phash64/],
    ['quality on sha256', (v) => (v.subject[1].quality = 50), 'subject[1].quality', /not defined for sha256/],
    ['quality > 100', (v) => (v.subject[0].quality = 101), 'subject[0].quality', /between 0 and 100/],
    ['fractional quality', (v) => (v.subject[0].quality = 50.5), 'subject[0].quality', /integer/],
    ['subject not an object', (v) => (v.subject[0] = PDQ), 'subject[0]', /object/],
    ['unknown label', (v) => (v.label = 'porn'), 'label', /one of csam/],
    ['confidence 1.5', (v) => (v.confidence = 1.5), 'confidence', /between 0 and 1/],
    ['confidence -0.1', (v) => (v.confidence = -0.1), 'confidence', /between 0 and 1/],
    ['confidence NaN', (v) => (v.confidence = NaN), 'confidence', /finite number/],
    ['confidence Infinity', (v) => (v.confidence = Infinity), 'confidence', /finite number/],
    ['confidence as a string', (v) => (v.confidence = '0.9'), 'confidence', /finite number/],
    ['17 subjects', (v) => (v.subject = Array.from({ length: MAX_SUBJECTS + 1 }, (_, i) => ({ algorithm: 'sha256', digest: i.toString(16).padStart(64, '0') }))), 'subject', /at most 16/],
    ['no subject', (v) => (v.subject = []), 'subject', /at least 1/],
    ['subject not an array', (v) => (v.subject = v.subject[0]), 'subject', /array/],
    ['duplicate subjects', (v) => v.subject.push({ ...v.subject[1] }), 'subject[2]', /duplicate/],
    ['non-URL id', (v) => (v.id = 'not-a-url'), 'id', /absolute https URL/],
    ['relative id', (v) => (v.id = '/verdicts/1'), 'id', /absolute https URL/],
    ['ftp id', (v) => (v.id = 'ftp://b.example/verdicts/1'), 'id', /absolute https URL/],
    ['http id without allowHttp', (v) => (v.id = 'http://b.example/verdicts/1'), 'id', /https/],
    ['scheme without slashes', (v) => (v.id = 'https:b.example/verdicts/1'), 'id', /absolute https URL/],
    ['backslash URL', (v) => (v.id = 'https:\\\\b.example\\verdicts\\1'), 'id', /backslash/],
    ['URL with a newline', (v) => (v.id = 'https://b.example/ver\ndicts/1'), 'id', /whitespace/],
    ['credentials in id', (v) => (v.id = 'https://user:secret@b.example/verdicts/1'), 'id', /credentials/],
    ['empty credentials in attributedTo', (v) => (v.attributedTo = 'https://@b.example/actor'), 'attributedTo', /credentials/],
    ['fragment in id', (v) => (v.id = 'https://b.example/verdicts/1#x'), 'id', /fragment/],
    ['supersedes itself', (v) => (v.supersedes = v.id), 'supersedes', /itself/],
    ['future published', (v) => (v.published = '2026-11-23T10:10:01Z'), 'published', /in the future/],
    ['future updated', (v) => (v.updated = '2026-11-24T00:00:00Z'), 'updated', /in the future/],
    ['impossible date', (v) => (v.published = '2026-02-30T10:00:00Z'), 'published', /RFC 3339/],
    ['date without T', (v) => (v.published = '2026-11-23 10:00:00Z'), 'published', /RFC 3339/],
    ['date without zone', (v) => (v.published = '2026-11-23T10:00:00'), 'published', /RFC 3339/],
    ['date as a number', (v) => (v.published = 1_700_000_000), 'published', /RFC 3339/],
    ['expires before published', (v) => (v.expires = '2026-11-22T10:00:00Z'), 'expires', /after published/],
    ['updated before published', (v) => (v.updated = '2026-11-22T10:00:00Z'), 'updated', /before published/],
    ['missing classifier for method classifier', (v) => delete v.classifier, 'classifier', /required when method is "classifier"/],
    ['empty classifier version', (v) => (v.classifier.version = ''), 'classifier.version', /empty/],
    ['long classifier name', (v) => (v.classifier.name = 'x'.repeat(101)), 'classifier.name', /at most 100/],
    ['unknown method', (v) => (v.method = 'vibes'), 'method', /one of classifier/],
    ['wrong type', (v) => (v.type = 'Note'), 'type', /"Verdict"/],
    ['missing id', (v) => delete v.id, 'id', /URL/],
    ['no @context', (v) => delete v['@context'], '@context', /array of context URLs/],
    ['@context without Vouch last', (v) => (v['@context'] = [AS_CONTEXT_URL, VOUCH_CONTEXT_URL, DATA_INTEGRITY_CONTEXT_URL]), '@context', /must end with/],
    ['@context without ActivityStreams', (v) => (v['@context'] = [DATA_INTEGRITY_CONTEXT_URL, VOUCH_CONTEXT_URL]), '@context', /must include/],
    ['unknown context URL', (v) => v['@context'].splice(2, 0, 'https://evil.example/ctx'), '@context[2]', /never fetched/],
    ['inline context', (v) => v['@context'].splice(2, 0, { label: 'https://evil.example/label' }), '@context[2]', /inline contexts/],
  ];

  it.each(cases)('rejects %s', (_name, mutate, path, reason) => {
    const v = signedVerdict();
    mutate(v);
    const err = vouchError(() => parseVerdict(v, OPTS));
    expect(err.path).toBe(path);
    expect(err.reason).toMatch(reason);
    expect(err.message).toBe(`${path}: ${err.reason}`);
    expect(err.status).toBe(400);
  });

  const proofCases: Array<[string, (v: Record<string, any>) => void, string, RegExp]> = [
    ['missing proof', (v) => delete v.proof, 'proof', /required/],
    ['proof set', (v) => (v.proof = [v.proof, v.proof]), 'proof', /single DataIntegrityProof/],
    ['other cryptosuite', (v) => (v.proof.cryptosuite = 'eddsa-rdfc-2022'), 'proof.cryptosuite', /eddsa-jcs-2022/],
    ['other purpose', (v) => (v.proof.proofPurpose = 'authentication'), 'proof.proofPurpose', /assertionMethod/],
    ['non-multibase proofValue', (v) => (v.proof.proofValue = 'abc'), 'proof.proofValue', /multibase/],
  ];
  it.each(proofCases)('rejects %s', (_name, mutate, path, reason) => {
    const v = signedVerdict();
    mutate(v);
    const err = vouchError(() => parseVerdict(v, OPTS));
    expect([err.path, err.reason]).toEqual([path, expect.stringMatching(reason)]);
  });

  it('leaves origin and ownership to the inbox (authorization, 403 there)', () => {
    const v = signedVerdict();
    v.id = 'https://c.example/verdicts/1';
    v.supersedes = 'https://d.example/verdicts/2';
    v.proof.verificationMethod = 'https://e.example/actor#k';
    expect(parseVerdict(v, OPTS).id).toBe('https://c.example/verdicts/1');
  });

  it('rejects non-objects at the root and lists several issues', () => {
    for (const bad of [null, [], 'verdict', 42, undefined]) {
      expect(vouchError(() => parseVerdict(bad, OPTS)).path).toBe('');
    }
    const v = signedVerdict((x) => {
      x.label = 'nope';
      x.confidence = 2;
    });
    const err = vouchError(() => parseVerdict(v, OPTS));
    expect(err.issues.map((i) => i.path)).toEqual(expect.arrayContaining(['label', 'confidence']));
  });

  it('does not echo hostile input in the reason', () => {
    const evil = '<script>alert(1)</script>';
    for (const mutate of [
      (v: Record<string, any>) => (v.label = evil),
      (v: Record<string, any>) => (v.id = `https://b.example/${evil} x`),
      (v: Record<string, any>) => (v.subject[0].digest = evil),
    ]) {
      expect(vouchError(() => parseVerdict(signedVerdict(mutate), OPTS)).message).not.toContain('<script>');
    }
  });
});

describe('parseTrustStatement', () => {
  const base = () => ({
    '@context': [...VERDICT_CONTEXT],
    type: 'TrustStatement',
    id: 'https://b.example/trust/1',
    attributedTo: 'https://b.example/actor',
    published: '2026-11-23T10:00:00Z',
    trust: [
      { peer: 'https://c.example/actor', polarity: 'abuse', value: 0.8, label: 'csam' },
      { peer: 'https://c.example/actor', polarity: 'abuse', value: 0.5 },
      { peer: 'https://d.example/actor', polarity: 'ok', value: 0.25 },
    ],
  });
  const opts = { ...OPTS, requireProof: false };

  it('accepts a valid statement (and an empty one)', () => {
    expect(parseTrustStatement(base(), opts).trust).toHaveLength(3);
    expect(parseTrustStatement({ ...base(), trust: [] }, opts).trust).toEqual([]);
    expect(vouchError(() => parseTrustStatement(base(), OPTS)).path).toBe('proof');
  });

  it.each<[string, (t: Record<string, any>) => void, string, RegExp]>([
    ['too many entries', (t) => (t.trust = Array.from({ length: 10_001 }, (_, i) => ({ peer: `https://p${i}.example/actor`, polarity: 'ok', value: 0.1 }))), 'trust', /at most 10000/],
    ['value > 1', (t) => (t.trust[0].value = 1.5), 'trust[0].value', /between 0 and 1/],
    ['unknown polarity', (t) => (t.trust[2].polarity = 'maybe'), 'trust[2].polarity', /"abuse" or "ok"/],
    ['peer not a URL', (t) => (t.trust[1].peer = 'c.example'), 'trust[1].peer', /absolute https URL/],
    ['peer with credentials', (t) => (t.trust[1].peer = 'https://a:b@c.example/actor'), 'trust[1].peer', /credentials/],
    ['trust in itself', (t) => (t.trust[2].peer = t.attributedTo), 'trust[2].peer', /itself/],
    ['duplicate entry', (t) => t.trust.push({ ...t.trust[0], value: 0.1 }), 'trust[3]', /duplicate/],
    ['ok label on abuse polarity', (t) => (t.trust[0].label = 'ok'), 'trust[0].label', /polarity "ok"/],
    ['abuse label on ok polarity', (t) => (t.trust[2].label = 'gore'), 'trust[2].label', /polarity "abuse"/],
    ['unknown label', (t) => (t.trust[0].label = 'meh'), 'trust[0].label', /one of/],
    ['future published', (t) => (t.published = '2027-01-01T00:00:00Z'), 'published', /future/],
  ])('rejects %s', (_name, mutate, path, reason) => {
    const t = base() as Record<string, any>;
    mutate(t);
    const err = vouchError(() => parseTrustStatement(t, opts));
    expect([err.path, err.reason]).toEqual([path, expect.stringMatching(reason)]);
  });
});

describe('parseTombstone and parseCheckpointObject', () => {
  const tomb = { type: 'Tombstone', id: 'https://b.example/verdicts/1', formerType: 'Verdict', deleted: '2026-11-23T10:00:00Z' };
  const root = 'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=';
  const cp = {
    '@context': [...VERDICT_CONTEXT],
    type: 'Checkpoint',
    id: 'https://b.example/log/checkpoints/42',
    attributedTo: 'https://b.example/actor',
    origin: 'b.example/vouch-log',
    treeSize: 42,
    rootHash: root,
    note: `b.example/vouch-log\n42\n${root}\n\n— b.example/vouch-log AAAA\n`,
    published: '2026-11-23T10:00:00Z',
  };

  it('accepts valid ones', () => {
    expect(parseTombstone({ ...tomb, '@context': VERDICT_CONTEXT }, OPTS)).toEqual(tomb);
    expect(parseCheckpointObject(cp, OPTS).treeSize).toBe(42);
  });

  it.each<[string, unknown, string]>([
    ['other formerType', { ...tomb, formerType: 'Note' }, 'formerType'],
    ['future deletion', { ...tomb, deleted: '2027-01-01T00:00:00Z' }, 'deleted'],
    ['fragment id', { ...tomb, id: 'https://b.example/verdicts/1#frag' }, 'id'],
  ])('rejects a tombstone with %s', (_n, t, path) => {
    expect(vouchError(() => parseTombstone(t, OPTS)).path).toBe(path);
  });

  it.each<[string, unknown, string]>([
    ['a note for another tree', { ...cp, treeSize: 43 }, 'note'],
    ['a short root hash', { ...cp, rootHash: 'AAEC' }, 'rootHash'],
    ['a negative size', { ...cp, treeSize: -1 }, 'treeSize'],
    ['an unsafe size', { ...cp, treeSize: 2 ** 53 }, 'treeSize'],
    ['a multi-line origin', { ...cp, origin: 'a\nb' }, 'origin'],
  ])('rejects a checkpoint with %s', (_n, c, path) => {
    expect(vouchError(() => parseCheckpointObject(c, OPTS)).path).toBe(path);
  });

  it('parseVouchObject dispatches on type', () => {
    expect(parseVouchObject(signedVerdict(), OPTS).type).toBe('Verdict');
    expect(parseVouchObject(tomb, OPTS).type).toBe('Tombstone');
    expect(parseVouchObject(cp, OPTS).type).toBe('Checkpoint');
    expect(vouchError(() => parseVouchObject({ type: 'Note' }, OPTS)).path).toBe('type');
    expect(vouchError(() => parseVouchObject('x', OPTS)).path).toBe('');
  });
});

describe('parseActivity', () => {
  const actor = 'https://b.example/actor';

  it('parses the known envelopes, leaving the object raw', () => {
    const verdict = signedVerdict();
    const create = parseActivity({ '@context': VERDICT_CONTEXT, type: 'Create', id: 'https://b.example/activities/1', actor, object: verdict }, OPTS);
    expect(create).toEqual({ type: 'Create', id: 'https://b.example/activities/1', actor, object: verdict });
    expect(create.type === 'Create' && create.object).toBe(verdict);

    const follow = parseActivity({ type: 'Follow', id: 'https://c.example/follows/9', actor: 'https://c.example/actor', object: actor }, OPTS);
    expect(follow).toMatchObject({ type: 'Follow', object: actor });

    const undo = parseActivity(
      { type: 'Undo', id: 'https://c.example/actor#undo/9', actor: 'https://c.example/actor', object: { type: 'Follow', id: 'https://c.example/follows/9' } },
      OPTS,
    );
    expect(undo).toMatchObject({ type: 'Undo', id: 'https://c.example/actor#undo/9' });
    for (const type of ['Update', 'Delete', 'Accept', 'Reject'] as const) {
      expect(parseActivity({ type, id: 'https://b.example/a/1', actor, object: 'https://b.example/verdicts/1#x' }, OPTS).type).toBe(type);
    }
  });

  it('turns other activity types into Unknown so they can be acknowledged', () => {
    expect(parseActivity({ type: 'Like', id: 'https://m.example/likes/1', actor: 'https://m.example/users/a', object: 'https://b.example/x' }, OPTS)).toEqual({
      type: 'Unknown',
      originalType: 'Like',
      id: 'https://m.example/likes/1',
      actor: 'https://m.example/users/a',
      object: 'https://b.example/x',
    });
    expect(parseActivity({ type: 'EmojiReact', id: 'https://m.example/r/1', actor: 'https://m.example/users/a' }, OPTS)).toEqual({
      type: 'Unknown',
      originalType: 'EmojiReact',
      id: 'https://m.example/r/1',
      actor: 'https://m.example/users/a',
    });
    // Unknown types are still authenticated and deduplicated: id and actor stay mandatory.
    expect(vouchError(() => parseActivity({ type: 'EmojiReact', id: 42, actor: 'https://m.example/users/a' }, OPTS)).path).toBe('id');
    expect(vouchError(() => parseActivity({ type: 'Like', id: 'https://m.example/likes/1' }, OPTS)).path).toBe('actor');
  });

  it.each<[string, unknown, string]>([
    ['a non-object', ['Create'], ''],
    ['no type', { id: 'https://b.example/a/1', actor, object: actor }, 'type'],
    ['an array type', { type: ['Create'], id: 'https://b.example/a/1', actor, object: actor }, 'type'],
    ['no id', { type: 'Create', actor, object: {} }, 'id'],
    ['a credentialed actor', { type: 'Follow', id: 'https://b.example/a/1', actor: 'https://x:y@b.example/actor', object: actor }, 'actor'],
    ['an embedded actor', { type: 'Follow', id: 'https://b.example/a/1', actor: { id: actor }, object: actor }, 'actor'],
    ['no object', { type: 'Delete', id: 'https://b.example/a/1', actor }, 'object'],
    ['an object array', { type: 'Create', id: 'https://b.example/a/1', actor, object: [{}, {}] }, 'object'],
    ['a non-URL object', { type: 'Follow', id: 'https://b.example/a/1', actor, object: 'b.example' }, 'object'],
    ['a future published', { type: 'Follow', id: 'https://b.example/a/1', actor, object: actor, published: '2030-01-01T00:00:00Z' }, 'published'],
  ])('rejects %s', (_n, a, path) => {
    expect(vouchError(() => parseActivity(a, OPTS)).path).toBe(path);
  });
});

describe('parseRfc3339', () => {
  it('checks the calendar and applies offsets', () => {
    expect(parseRfc3339('2024-02-29T00:00:00Z')).toBe(Date.UTC(2024, 1, 29));
    expect(parseRfc3339('2025-02-29T00:00:00Z')).toBeUndefined();
    expect(parseRfc3339('2100-02-29T00:00:00Z')).toBeUndefined();
    expect(parseRfc3339('2000-02-29T00:00:00Z')).toBe(Date.UTC(2000, 1, 29));
    expect(parseRfc3339('2026-04-31T00:00:00Z')).toBeUndefined();
    expect(parseRfc3339('2026-11-23T12:00:00+02:00')).toBe(Date.UTC(2026, 10, 23, 10));
    expect(parseRfc3339('2026-11-23T10:00:00.123456789Z')).toBe(Date.UTC(2026, 10, 23, 10, 0, 0, 123));
    expect(parseRfc3339('2026-11-23T10:00:00.57Z')).toBe(Date.UTC(2026, 10, 23, 10, 0, 0, 570));
    expect(parseRfc3339('2026-11-23T10:00:00.5Z')).toBe(Date.UTC(2026, 10, 23, 10, 0, 0, 500));
    expect(parseRfc3339('2026-11-23T24:00:00Z')).toBeUndefined();
    expect(parseRfc3339('2026-11-23T23:59:60Z')).toBeUndefined();
    expect(parseRfc3339('2026-11-23t10:00:00z')).toBeUndefined();
    expect(parseRfc3339('0099-01-01T00:00:00Z')).toBe(new Date('0099-01-01T00:00:00Z').getTime());
  });
});

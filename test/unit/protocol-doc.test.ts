// Keeps docs/protocol.md honest: every example in it is extracted, run through the strict parsers,
// expanded with the bundled JSON-LD loader, and compared with what the code builds. The signed
// examples are re-signed from the test keys the document publishes (Ed25519 and RSA signatures
// are deterministic), so a changed byte anywhere in an example, a key or the code fails here.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createHash, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import canonicalize from 'canonicalize';
import jsonld from 'jsonld';
import { describe, expect, it } from 'vitest';
import { ed25519ToMultibase, hashData, signObject, verifyObject } from '../../shared/crypto/data-integrity.js';
import { digestHeader, signRequest, verifyRequest } from '../../shared/crypto/http-signature.js';
import { loadPublicKey } from '../../shared/crypto/keys.js';
import { openCheckpoint, verifierKey } from '../../shared/merkle/checkpoint.js';
import { AS_CONTEXT_URL, bundledContext, documentLoader, VOUCH_CONTEXT_URL } from '../../shared/vocab/contexts.js';
import {
  parseActivity,
  parseCheckpointObject,
  parseTombstone,
  parseTrustStatement,
  parseVerdict,
  type ActivityEnvelope,
} from '../../shared/vocab/objects.js';
import { LABELS, METHODS, ALGORITHMS } from '../../shared/vocab/verdict.js';
import { actorDocument, nodeinfoDocument, webfingerDocument, type Identity } from '../../server/federation/identity.js';
import { storedSubjects, verdictObject } from '../../server/verdicts/objects.js';
import { logOrigin } from '../../server/log/checkpoints.js';
import { logMetadata } from '../../server/log/http.js';
import { activityEntry, decodeEntry, openPrivatePart, subjectCommitment } from '../../server/log/entry.js';
import { forbidNetwork } from '../helpers/no-network.js';

// ---------------------------------------------------------------------------------------------
// Extraction
// ---------------------------------------------------------------------------------------------

const DOC_PATH = fileURLToPath(new URL('../../docs/protocol.md', import.meta.url));
const DOC = readFileSync(DOC_PATH, 'utf8');

interface Block {
  /** `example`, `vector` or `test-key`. */
  tag: string;
  kind: string;
  lang: string;
  text: string;
  line: number;
}

/** Every fenced block directly preceded by `<!-- tag: kind -->`. */
function taggedBlocks(md: string): Block[] {
  const re = /<!--\s*(example|vector|test-key):\s*([a-z0-9-]+)\s*-->\r?\n```([a-z]*)\r?\n([\s\S]*?)\r?\n```/g;
  const out: Block[] = [];
  for (const m of md.matchAll(re)) {
    out.push({ tag: m[1]!, kind: m[2]!, lang: m[3]!, text: m[4]!, line: md.slice(0, m.index).split('\n').length });
  }
  return out;
}

const BLOCKS = taggedBlocks(DOC);
const JSON_EXAMPLES = BLOCKS.filter((b) => b.tag === 'example' && b.lang === 'json').map((b) => ({ ...b, json: JSON.parse(b.text) as Record<string, any> }));

function one(tag: string, kind: string): Block {
  const found = BLOCKS.filter((b) => b.tag === tag && b.kind === kind);
  if (found.length !== 1) throw new Error(`docs/protocol.md must have exactly one <!-- ${tag}: ${kind} --> block, found ${found.length}`);
  return found[0]!;
}

function example(kind: string): Record<string, any> {
  const block = one('example', kind);
  if (block.lang !== 'json') throw new Error(`example ${kind} is not a json block`);
  return JSON.parse(block.text) as Record<string, any>;
}

function examplesOf(kind: string) {
  return JSON_EXAMPLES.filter((e) => e.kind === kind);
}

// ---------------------------------------------------------------------------------------------
// The document's test keys and the identity they make
// ---------------------------------------------------------------------------------------------

const ED_PRIVATE = createPrivateKey(one('test-key', 'ed25519-private').text);
const ED_PUBLIC = createPublicKey(ED_PRIVATE);
const ED_MULTIBASE = one('test-key', 'ed25519-multibase').text.trim();
const WITNESS_VKEY = verifierKey('witness.example/w1', createPublicKey(createPrivateKey(one('test-key', 'witness-ed25519-private').text)), 'cosignature/v1');
const RSA_PRIVATE = createPrivateKey(one('test-key', 'rsa-private').text);
const RSA_PUBLIC_PEM = createPublicKey(RSA_PRIVATE).export({ type: 'spki', format: 'pem' }).toString();

const BASE = 'https://a.example';
const ACTOR = `${BASE}/actor`;
const PROOF_KEY_ID = `${ACTOR}#proof-key`;
const RSA_KEY_ID = `${ACTOR}#main-key`;

const IDENTITY: Identity = {
  publicUrl: BASE,
  host: 'a.example',
  actorId: ACTOR,
  rsaKeyId: RSA_KEY_ID,
  rsaPrivateKey: RSA_PRIVATE,
  rsaPublicPem: RSA_PUBLIC_PEM,
  proofKeyId: PROOF_KEY_ID,
  proofPrivateKey: ED_PRIVATE,
  proofPublicMultibase: ED_MULTIBASE,
  inbox: `${ACTOR}/inbox`,
  outbox: `${ACTOR}/outbox`,
  followers: `${ACTOR}/followers`,
  following: `${ACTOR}/following`,
};

const resolveProofKey = async (vm: string): Promise<KeyObject> => {
  if (vm !== PROOF_KEY_ID) throw new Error(`unexpected verification method ${vm}`);
  return ED_PUBLIC;
};

/** Checks a signed object (Verdict/TrustStatement) the way the spec says, and re-signs it. */
async function checkSignedObject(signed: Record<string, any>): Promise<void> {
  expect(signed.proof, 'signed object has a proof').toBeTypeOf('object');
  const { proof, ...unsigned } = signed;
  // Recompute from the doc's key and the unsigned object: the proofValue must be what signObject makes.
  const resigned = signObject(unsigned, { privateKey: ED_PRIVATE, verificationMethod: proof.verificationMethod, created: proof.created });
  expect(resigned.proof).toEqual(proof);
  const result = await verifyObject(signed, resolveProofKey);
  expect(result.verificationMethod).toBe(PROOF_KEY_ID);
}

/** Parses a Verdict from the doc (https only, real clock) and checks its proof. */
async function checkVerdict(v: Record<string, any>): Promise<void> {
  const parsed = parseVerdict(v, { allowHttp: false });
  expect(parsed.attributedTo).toBe(ACTOR);
  expect(new URL(parsed.id).origin).toBe(BASE);
  await checkSignedObject(v);
}

/** Checks an activity envelope and whatever it carries. */
async function checkActivity(a: Record<string, any>, expectedType?: string): Promise<ActivityEnvelope> {
  const parsed = parseActivity(a, { allowHttp: false });
  expect(parsed.type).not.toBe('Unknown');
  if (expectedType) expect(parsed.type).toBe(expectedType);
  const env = parsed as ActivityEnvelope;
  // What Vouch sends: the activity context, on the actor's origin, addressed to its followers.
  expect(a['@context']).toEqual([AS_CONTEXT_URL, VOUCH_CONTEXT_URL]);
  expect(new URL(env.id).origin).toBe(new URL(env.actor).origin);
  expect(a.to).toEqual([`${env.actor}/followers`]);
  expect(typeof a.published).toBe('string');
  if (env.type === 'Create' || env.type === 'Update') {
    expect(env.actor).toBe(ACTOR);
    await checkVerdict(env.object as Record<string, any>);
  } else if (env.type === 'Delete') {
    const t = parseTombstone(env.object, { allowHttp: false });
    expect(new URL(t.id).origin).toBe(new URL(env.actor).origin);
  }
  return env;
}

// ---------------------------------------------------------------------------------------------
// JSON-LD
// ---------------------------------------------------------------------------------------------

/** Kinds that are plain JSON (JRD, NodeInfo, API bodies), not JSON-LD: expanded, but nothing to check. */
const PLAIN_JSON = new Set(['webfinger', 'nodeinfo', 'nodeinfo-links', 'error', 'inbox-response', 'log-metadata', 'log-entry', 'log-private-part']);
/**
 * Terms the document knowingly uses outside every bundled context (spec section 14); none today.
 * The W3C ActivityStreams context sets `"@vocab": "_:"`, so an undefined term is not dropped: it
 * expands to a blank-node predicate `_:term`, which is what the check below looks for.
 */
const KNOWN_UNDEFINED: Record<string, string[]> = {};

interface JsonLdWarning {
  code: string;
  property?: string;
}

async function expand(doc: object): Promise<{ expanded: unknown[]; warnings: JsonLdWarning[] }> {
  const warnings: JsonLdWarning[] = [];
  // @types/jsonld predates `eventHandler` (jsonld.js 6+), hence the local signature.
  const expandFn = jsonld.expand as unknown as (input: object, options: Record<string, unknown>) => Promise<unknown[]>;
  const expanded = await expandFn(doc, {
    documentLoader,
    eventHandler: ({ event }: { event: { level: string; code: string; details?: { property?: string } } }) => {
      if (event.level === 'warning') warnings.push({ code: event.code, property: event.details?.property });
    },
  });
  return { expanded, warnings };
}

/** Terms that expanded to no IRI: blank-node properties and types (`_:x`), anywhere in the tree. */
function undefinedTerms(node: unknown, out = new Set<string>()): Set<string> {
  if (Array.isArray(node)) {
    for (const n of node) undefinedTerms(n, out);
  } else if (typeof node === 'object' && node !== null) {
    for (const [key, value] of Object.entries(node)) {
      if (key.startsWith('_:')) out.add(key.slice(2));
      if (key === '@type') for (const t of [value].flat()) if (typeof t === 'string' && t.startsWith('_:')) out.add(t.slice(2));
      undefinedTerms(value, out);
    }
  }
  return out;
}

// No test here may touch the network: contexts come from the bundle.
forbidNetwork('protocol-doc tests');

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

const KNOWN_KINDS = new Set([
  'context', 'webfinger', 'nodeinfo-links', 'nodeinfo', 'actor', 'verdict', 'video-verdict', 'consensus-verdict', 'tombstone', 'trust-statement', 'checkpoint',
  'inbox-response', 'create', 'update', 'delete', 'follow', 'accept', 'reject', 'undo', 'outbox', 'outbox-page',
  'catchup-page', 'followers', 'error', 'log-metadata', 'log-entry', 'log-private-part',
]);

describe('docs/protocol.md examples', () => {
  it('has the examples it promises (never passes vacuously)', () => {
    expect(JSON_EXAMPLES.length).toBeGreaterThanOrEqual(20);
    for (const kind of KNOWN_KINDS) expect(examplesOf(kind).length, `example: ${kind}`).toBeGreaterThanOrEqual(1);
    // Every ```json block is tagged, and every tag is one this test knows how to check.
    const jsonFences = DOC.match(/^```json$/gm) ?? [];
    expect(jsonFences.length).toBe(JSON_EXAMPLES.length);
    for (const e of JSON_EXAMPLES) expect(KNOWN_KINDS.has(e.kind), `unknown example kind ${e.kind} (line ${e.line})`).toBe(true);
    expect(BLOCKS.filter((b) => b.tag === 'test-key')).toHaveLength(4);
    expect(BLOCKS.filter((b) => b.tag === 'vector')).toHaveLength(4);
  });

  it('labels the published keys as test keys', () => {
    const appendix = DOC.slice(DOC.indexOf('## Appendix A'));
    expect(appendix).toMatch(/test keys?, never use/i);
    expect((appendix.match(/test key, never use/gi) ?? []).length).toBeGreaterThanOrEqual(2);
  });

  it('prints the bundled Vouch context in full', () => {
    expect(example('context')).toEqual(bundledContext(VOUCH_CONTEXT_URL));
  });

  it('every JSON example expands with the bundled loader, JSON-LD ones with every term defined', async () => {
    let checked = 0;
    for (const e of JSON_EXAMPLES) {
      // A Tombstone travels inside an activity and inherits its context.
      const doc = e.kind === 'tombstone' ? { '@context': [AS_CONTEXT_URL, VOUCH_CONTEXT_URL], ...e.json } : e.json;
      const { expanded, warnings } = await expand(doc);
      if (PLAIN_JSON.has(e.kind) || e.kind === 'context') continue;
      expect(expanded.length, `${e.kind} (line ${e.line}) expands to a node`).toBeGreaterThan(0);
      expect(warnings, `${e.kind} (line ${e.line}): JSON-LD warnings`).toEqual([]);
      const terms = [...undefinedTerms(expanded)].sort();
      expect(terms, `${e.kind} (line ${e.line}): terms no bundled context defines`).toEqual([...(KNOWN_UNDEFINED[e.kind] ?? [])].sort());
      checked++;
    }
    expect(checked).toBeGreaterThanOrEqual(15);
  });

  it('the Vouch terms of a Verdict expand to the vouch namespace', async () => {
    const { expanded } = await expand(example('verdict'));
    const node = expanded[0] as Record<string, any>;
    expect(node['@type']).toEqual(['https://w3id.org/vouch#Verdict']);
    expect(node['https://w3id.org/vouch#label']).toEqual([{ '@value': 'sexual' }]);
    expect(node['https://w3id.org/vouch#subject']).toHaveLength(3);
    expect(node['https://w3id.org/security#proof']).toBeDefined();
  });
});

describe('video subjects', () => {
  it('the video Verdict example is signed, is what verdictObject builds from its stored frames, and its frames expand as a list', async () => {
    const v = example('video-verdict');
    await checkVerdict(v);
    const parsed = parseVerdict(v, { requireProof: false });
    const stored = storedSubjects(parsed.subject);
    // One row per distinct frame, each a PDQ digest with its quality and first time.
    expect(stored.filter((s) => s.algorithm === 'vpdq').map((s) => s.seconds)).toEqual([0, 2, 3]);
    const { proof: _proof, ...unsigned } = v;
    const rebuilt = verdictObject({ uri: v.id, issuer: v.attributedTo, subjects: stored, label: v.label, confidence: v.confidence, method: v.method, published: new Date(v.published) });
    expect(rebuilt).toEqual(unsigned);
    const { expanded } = await expand(v);
    const subjects = (expanded[0] as Record<string, any>)['https://w3id.org/vouch#subject'] as Array<Record<string, any>>;
    const frames = subjects.find((s) => s['https://w3id.org/vouch#frames'])!['https://w3id.org/vouch#frames'];
    expect(frames[0]['@list']).toHaveLength(3);
  });

  it('a vpdq subject needs frames, takes no digest or quality, and its frames are parsed strictly and bounded', () => {
    const v = example('video-verdict');
    const withVpdq = (subject: unknown) => ({ ...v, subject: [v.subject[0], subject] });
    const frames = v.subject[2].frames as string[];
    expect(() => parseVerdict(withVpdq({ algorithm: 'vpdq' }), { requireProof: false })).toThrow(/frames.*required/s);
    expect(() => parseVerdict(withVpdq({ algorithm: 'vpdq', frames, digest: frames[0].slice(0, 64) }), { requireProof: false })).toThrow(/digest.*not defined/s);
    expect(() => parseVerdict(withVpdq({ algorithm: 'vpdq', frames: [frames[1], frames[0]] }), { requireProof: false })).toThrow(/goes back in time/);
    expect(() => parseVerdict(withVpdq({ algorithm: 'vpdq', frames: [frames[0].toUpperCase()] }), { requireProof: false })).toThrow(/frame 0/);
    expect(() => parseVerdict(withVpdq({ algorithm: 'vpdq', frames: Array.from({ length: 1801 }, () => frames[0]) }), { requireProof: false })).toThrow(/at most 1800/);
    expect(() => parseVerdict(withVpdq({ algorithm: 'pdq', frames }), { requireProof: false })).toThrow(/frames.*only defined/s);
    expect(() => parseVerdict({ ...v, subject: [...v.subject, v.subject[2]] }, { requireProof: false })).toThrow(/duplicate subject/);
  });
});

describe('re-attestation', () => {
  it('the consensus Verdict example parses, its basis expands to the vouch namespace, and a basis needs method consensus', async () => {
    const v = example('consensus-verdict');
    expect(parseVerdict(v, { requireProof: false }).basis).toHaveLength(2);
    const { expanded } = await expand(v);
    const basis = (expanded[0] as Record<string, any>)['https://w3id.org/vouch#basis'];
    expect(basis).toHaveLength(2);
    expect(basis[0]['https://w3id.org/vouch#contribution']).toEqual([{ '@value': 0.72, '@type': 'http://www.w3.org/2001/XMLSchema#double' }]);
    expect(basis[0]['https://www.w3.org/ns/activitystreams#attributedTo']).toEqual([{ '@id': 'https://c.example/actor' }]);
    expect(() => parseVerdict({ ...v, method: 'human' }, { requireProof: false })).toThrow(/basis.*only allowed when method is "consensus"/s);
    const relayed = { ...v, basis: [{ ...v.basis[0], method: 'consensus' }] };
    expect(() => parseVerdict(relayed, { requireProof: false })).toThrow(/never a consensus/);
    expect(() => parseVerdict({ ...v, basis: Array.from({ length: 17 }, () => v.basis[0]) }, { requireProof: false })).toThrow(/at most 16/);
  });
});

describe('discovery documents', () => {
  it('the actor example is what actorDocument builds from the test keys', () => {
    const actor = example('actor');
    expect(actor).toEqual(actorDocument(IDENTITY));
    // And it meets what a peer requires of a remote actor (spec 4.4).
    const origin = new URL(actor.id).origin;
    expect(new URL(actor.inbox).origin).toBe(origin);
    expect(new URL(actor.publicKey.id).origin).toBe(origin);
    expect(actor.publicKey.owner).toBe(actor.id);
    loadPublicKey(actor.publicKey.publicKeyPem);
    expect(actor.publicKey.publicKeyPem).toBe(RSA_PUBLIC_PEM);
    const [multikey] = actor.assertionMethod;
    expect(multikey).toMatchObject({ id: PROOF_KEY_ID, type: 'Multikey', controller: actor.id });
    expect(multikey.publicKeyMultibase).toBe(ed25519ToMultibase(ED_PUBLIC));
    expect(ED_MULTIBASE).toBe(ed25519ToMultibase(ED_PUBLIC));
  });

  it('the WebFinger and NodeInfo examples are what the code serves', () => {
    expect(example('webfinger')).toEqual(webfingerDocument(IDENTITY));
    const nodeinfo = example('nodeinfo');
    expect(nodeinfo).toEqual(nodeinfoDocument(nodeinfo.software.version));
    expect(example('nodeinfo-links')).toEqual({
      links: [{ rel: 'http://nodeinfo.diaspora.software/ns/schema/2.1', href: `${BASE}/nodeinfo/2.1` }],
    });
  });
});

describe('objects', () => {
  it('the Verdict example is really signed with the test key', async () => {
    const v = example('verdict');
    await checkVerdict(v);
    expect(v.proof.verificationMethod).toBe(PROOF_KEY_ID);
    expect(v.proof.created).toBe('2026-11-01T12:00:00Z');
    // A tampered copy does not verify.
    await expect(verifyObject({ ...v, confidence: 0.92 }, resolveProofKey)).rejects.toThrow(/does not verify/);
  });

  it('the Verdict example is what verdictObject builds', () => {
    const { proof: _proof, ...unsigned } = example('verdict');
    const built = verdictObject({
      uri: unsigned.id,
      issuer: unsigned.attributedTo,
      subjects: unsigned.subject,
      label: unsigned.label,
      confidence: unsigned.confidence,
      method: unsigned.method,
      classifier: unsigned.classifier,
      published: new Date(unsigned.published),
    });
    expect(built).toEqual(unsigned);
    expect(DOC).toContain(`\n${String(built.pipeline)}\n`); // the pipeline id printed in 5.7
  });

  it('the eddsa-jcs-2022 test vectors match the Verdict example', () => {
    const { proof, ...unsigned } = example('verdict');
    const { proofValue: _pv, ...config } = proof;
    expect(one('vector', 'proof-config-jcs').text).toBe(canonicalize(config));
    expect(one('vector', 'document-jcs').text).toBe(canonicalize(unsigned));
    const sha = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');
    expect(one('vector', 'proof-config-hash').text).toBe(sha(canonicalize(config)!));
    expect(one('vector', 'document-hash').text).toBe(sha(canonicalize(unsigned)!));
    expect(hashData(config, unsigned).toString('hex')).toBe(one('vector', 'proof-config-hash').text + one('vector', 'document-hash').text);
  });

  it('the Tombstone example parses and is the object of the Delete', () => {
    const t = example('tombstone');
    expect(parseTombstone(t, { allowHttp: false })).toEqual(t);
    expect(example('delete').object).toEqual(t);
    expect(t.id).toBe(example('verdict').id);
  });

  it('the draft TrustStatement is signed and parses', async () => {
    const t = example('trust-statement');
    parseTrustStatement(t, { allowHttp: false });
    // 5.10: an instance keeps one statement, at <base>/trust/statement.
    expect(t.id).toBe(`${BASE}/trust/statement`);
    await checkSignedObject(t);
  });

  it('the log metadata is what the server publishes for the test keys, and its verifier key opens the Checkpoint example', () => {
    const origin = logOrigin(IDENTITY.host);
    const metadata = example('log-metadata');
    expect(metadata).toEqual(logMetadata(IDENTITY.publicUrl, origin, verifierKey(origin, ED_PUBLIC, 'ed25519'), [WITNESS_VKEY]));
    const { endpoints } = example('actor');
    expect(endpoints.vouchLog).toBe(`${IDENTITY.publicUrl}/log`);
    expect([endpoints.vouchLogOrigin, endpoints.vouchLogVerifierKey]).toEqual([metadata.origin, metadata.verifier_key]);
    expect(openCheckpoint(example('checkpoint').note, metadata.verifier_key).checkpoint.origin).toBe(metadata.origin);
  });

  it('the add-checkpoint exchange: the request is the tlog-witness grammar around the Checkpoint example, the answer cosigns it with the test witness key', () => {
    const request = one('example', 'add-checkpoint-request').text + '\n';
    const note = example('checkpoint').note as string;
    expect(request).toBe(`old 0\n\n${note}`);
    const answer = one('example', 'add-checkpoint-response').text + '\n';
    expect(answer).toMatch(/^(\u2014 \S+ [A-Za-z0-9+/=]+\n)+$/);
    const metadata = example('log-metadata');
    expect(DOC).toContain(WITNESS_VKEY);
    const opened = openCheckpoint(note + answer, metadata.verifier_key, metadata.witnesses);
    expect(opened.cosignatures).toEqual([expect.objectContaining({ name: 'witness.example/w1', type: 'cosignature/v1', timestamp: Date.parse('2026-11-03T08:00:02Z') / 1000 })]);
  });

  it('the version-2 log entry is what its private part makes, and the private part opens it', () => {
    const entry = example('log-entry');
    const privatePart = example('log-private-part');
    const salt = Buffer.from(privatePart.salt, 'base64');
    const built = activityEntry(privatePart.activity, salt);
    expect(Buffer.from(built.entry).toString('utf8')).toBe(canonicalize(entry));
    expect(Buffer.from(built.private).toString('utf8')).toBe(canonicalize(privatePart));
    const decoded = decodeEntry(built.entry);
    if (decoded.version !== 2) throw new Error('expected a version-2 entry');
    expect(openPrivatePart(decoded, built.private).salt).toBe(privatePart.salt);
    // The commitment is over the salt and the subjects, nothing else.
    expect(entry.public.object.subjectCommitment).toBe(subjectCommitment(salt, privatePart.activity.object.subject));
  });

  it('the Checkpoint parses and its note is signed by the test key', () => {
    const c = example('checkpoint');
    const parsed = parseCheckpointObject(c, { allowHttp: false });
    const vkey = verifierKey(parsed.origin, ED_PUBLIC);
    expect(DOC).toContain(vkey);
    const opened = openCheckpoint(parsed.note, vkey);
    expect(opened.checkpoint.size).toBe(parsed.treeSize);
    expect(Buffer.from(opened.checkpoint.rootHash).toString('base64')).toBe(parsed.rootHash);
  });

  it('documents every label, method and algorithm of the vocabulary', () => {
    for (const label of LABELS) expect(DOC).toMatch(new RegExp(`^\\| \`${label}\` \\|`, 'm'));
    for (const method of METHODS) expect(DOC).toMatch(new RegExp(`^\\| \`${method}\` \\|`, 'm'));
    for (const [algorithm, bytes] of Object.entries(ALGORITHMS)) {
      expect(DOC).toMatch(new RegExp(`^\\| \`${algorithm}\` \\| ${bytes} bytes \\(${bytes * 2} hex\\)`, 'm'));
    }
  });
});

describe('activities', () => {
  it('Create carries the signed Verdict example', async () => {
    const create = example('create');
    await checkActivity(create, 'Create');
    expect(create.object).toEqual(example('verdict'));
  });

  it('Update: same id and published, new updated, full object re-signed', async () => {
    const update = example('update');
    await checkActivity(update, 'Update');
    const before = example('verdict');
    const after = update.object;
    expect(after.id).toBe(before.id);
    expect(after.published).toBe(before.published);
    expect(Date.parse(after.updated)).toBeGreaterThan(Date.parse(before.published));
    expect(after.subject).toEqual(before.subject);
    expect(after.method).toBe(before.method);
    expect(after.proof.proofValue).not.toBe(before.proof.proofValue);
  });

  it('Delete carries a Tombstone of the verdict', async () => {
    const del = example('delete');
    await checkActivity(del, 'Delete');
    expect(del.object.formerType).toBe('Verdict');
  });

  it('Follow / Accept / Reject / Undo refer to the same Follow', async () => {
    const follow = example('follow');
    await checkActivity(follow, 'Follow');
    expect(follow.object).toBe(ACTOR);
    for (const kind of ['accept', 'reject', 'undo'] as const) {
      const a = example(kind);
      const env = await checkActivity(a, kind[0]!.toUpperCase() + kind.slice(1));
      expect(env.object).toEqual({ id: follow.id, type: 'Follow', actor: follow.actor, object: follow.object });
    }
    expect(example('accept').actor).toBe(ACTOR);
    expect(example('undo').actor).toBe(follow.actor);
  });

  it('inbox response and error bodies have the documented shape', () => {
    const ok = example('inbox-response');
    expect(Object.keys(ok).sort()).toEqual(['status', 'type']);
    expect(['accepted', 'ignored']).toContain(ok.status);
    const err = example('error');
    expect(Object.keys(err)).toEqual(['error']);
    expect(Object.keys(err.error).sort()).toEqual(['code', 'message']);
    expect(err.error.code).toMatch(/^[a-z_]+$/);
  });
});

describe('collections', () => {
  const OUTBOX = `${ACTOR}/outbox`;

  it('the outbox summary points at the first page', () => {
    expect(example('outbox')).toEqual({ '@context': AS_CONTEXT_URL, id: OUTBOX, type: 'OrderedCollection', totalItems: 3, first: `${OUTBOX}?page=true` });
    expect(example('followers')).toMatchObject({ '@context': AS_CONTEXT_URL, id: `${ACTOR}/followers`, type: 'OrderedCollection' });
  });

  it('outbox pages hold valid, signed activities in the documented order', async () => {
    const pages = [...examplesOf('outbox-page'), ...examplesOf('catchup-page')];
    expect(pages.length).toBeGreaterThanOrEqual(2);
    for (const { kind, json: page } of pages) {
      expect(page['@context']).toEqual([AS_CONTEXT_URL, VOUCH_CONTEXT_URL]);
      expect(page.type).toBe('OrderedCollectionPage');
      expect(page.partOf).toBe(OUTBOX);
      expect(page.id.startsWith(`${OUTBOX}?`)).toBe(true);
      const items = page.orderedItems as Record<string, any>[];
      expect(items.length).toBeGreaterThan(0);
      for (const item of items) await checkActivity(item);
      const times = items.map((i) => Date.parse(i.published));
      const sorted = [...times].sort((a, b) => (kind === 'outbox-page' ? b - a : a - b)); // newest first / oldest first
      expect(times).toEqual(sorted);
    }
    // A catch-up page only has items at or after its `since`.
    const catchup = example('catchup-page');
    const since = Date.parse(decodeURIComponent(/since=([^&]+)/.exec(catchup.id)![1]!));
    for (const item of catchup.orderedItems) expect(Date.parse(item.published)).toBeGreaterThanOrEqual(since);
  });
});

describe('HTTP Signature test vector (Appendix B)', () => {
  const request = one('example', 'http-request').text.split('\n');
  const [requestLine, ...headerLines] = request;
  const headers: Record<string, string> = {};
  for (const line of headerLines) {
    const i = line.indexOf(': ');
    headers[line.slice(0, i).toLowerCase()] = line.slice(i + 2);
  }
  const body = JSON.stringify(example('create'));
  const now = new Date(Date.parse(headers.date!) + 2_000);

  it('Digest and signing string are computed from the Create example', () => {
    expect(requestLine).toBe('POST /inbox HTTP/1.1');
    expect(headers.digest).toBe(digestHeader(body));
    expect(one('example', 'signing-string').text).toBe(
      [`(request-target): post /inbox`, `host: ${headers.host}`, `date: ${headers.date}`, `digest: ${headers.digest}`].join('\n'),
    );
  });

  it('signing with the RSA test key reproduces the Signature header', () => {
    const signed = signRequest({
      method: 'POST',
      url: `https://${headers.host}/inbox`,
      headers: { 'content-type': headers['content-type'] },
      body,
      keyId: RSA_KEY_ID,
      privateKey: RSA_PRIVATE,
      now: new Date(Date.parse(headers.date!)),
    });
    expect(signed.Signature).toBe(headers.signature);
    expect(signed.Date).toBe(headers.date);
    expect(signed.Digest).toBe(headers.digest);
  });

  it('verifies with the actor example\'s public key, and fails outside the Date window', () => {
    const publicKey = loadPublicKey(example('actor').publicKey.publicKeyPem);
    const result = verifyRequest({ method: 'POST', path: '/inbox', headers, body: Buffer.from(body), publicKey, now });
    expect(result).toMatchObject({ keyId: RSA_KEY_ID, algorithm: 'rsa-sha256' });
    expect(() =>
      verifyRequest({ method: 'POST', path: '/inbox', headers, body: Buffer.from(body), publicKey, now: new Date(now.getTime() + 301_000) }),
    ).toThrow(/in the past/);
  });
});

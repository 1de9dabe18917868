// The log's public face, served by the instance's log routes over a real store: the metadata
// document and the actor's link to it (a verifier built from the published key verifies the served
// checkpoint), the visibility of retractions (a Delete is as public as the verdict it retracts),
// and the witness-name rule of the cosignature endpoint. Who is an approved follower is
// federation's business (HTTP Signatures, tested there); here a stand-in answers it.
import { generateKeyPairSync } from 'node:crypto';
import canonicalize from 'canonicalize';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { actorDocument, type Identity } from '../../server/federation/identity.js';
import { logOrigin, type LogCheckpoints } from '../../server/log/checkpoints.js';
import type { TransparencyLog } from '../../server/log/store.js';
import { LogEndpointDirectory } from '../../server/log/witness.js';
import { openStore, type Store } from '../../server/store/index.js';
import { ed25519ToMultibase, multibaseToEd25519 } from '../../shared/crypto/data-integrity.js';
import { cosign, openCheckpoint, parseVerifierKey, verifierKey } from '../../shared/merkle/checkpoint.js';
import { leafHash } from '../../shared/merkle/tree.js';
import { verifyInclusion } from '../../shared/merkle/verify.js';
import { FOLLOWER_HEADER, serveLogRoutes, type LogRoutesServer } from '../helpers/log-routes-server.js';
import { STORE_BACKENDS } from '../helpers/services.js';

const WITNESS_ACTOR = 'https://peer.example/actor';
const witnessKey = generateKeyPairSync('ed25519').privateKey;

function entry(value: unknown): Uint8Array {
  return new Uint8Array(Buffer.from(canonicalize(value)!, 'utf8'));
}

describe('the log as the public and witnesses see it', () => {
  const handle = STORE_BACKENDS[0].create();
  let store: Store;
  let served: LogRoutesServer;
  let base: string;
  let identity: Identity;
  let log: TransparencyLog;
  let checkpoints: LogCheckpoints;

  const verdictId = (n: string) => `${base}/verdicts/${n}`;
  const create = (n: string, label: string) => ({
    type: 'Create',
    id: `${verdictId(n)}#create`,
    actor: identity.actorId,
    object: { type: 'Verdict', id: verdictId(n), label, method: 'human', subject: [{ algorithm: 'sha256', digest: n.padEnd(64, '0') }] },
  });
  const del = (n: string) => ({
    type: 'Delete',
    id: `${verdictId(n)}#delete`,
    actor: identity.actorId,
    object: { type: 'Tombstone', id: verdictId(n), formerType: 'Verdict', deleted: '2026-12-01T00:00:00Z' },
  });

  beforeAll(async () => {
    store = await openStore(handle.config);
    served = await serveLogRoutes(store, {
      peers: { get: async (actor: string) => (actor === WITNESS_ACTOR ? { proofKeys: { [`${WITNESS_ACTOR}#proof-key`]: ed25519ToMultibase(witnessKey) } } : undefined) },
    });
    ({ base, identity, log, checkpoints } = served);
    served.app.get('/actor', (_req, res) => {
      res.json(actorDocument(identity));
    });

    // 0: ok, 1: its retraction; 2: spam, 3: its retraction; 4: ok, 5: updated to spam, 6: retracted;
    // 7: spam, 8: cleared to ok, 9: updated again (ok to ok), 10: retracted.
    const update = (n: string, label: string) => ({ ...create(n, label), id: `${verdictId(n)}#update-${label}`, type: 'Update' });
    const activities = [
      ...[create('a', 'ok'), del('a'), create('b', 'spam'), del('b'), create('c', 'ok'), update('c', 'spam'), del('c')],
      ...[create('d', 'spam'), update('d', 'ok'), { ...update('d', 'ok'), id: `${verdictId('d')}#update-again` }, del('d')],
    ];
    await log.append(activities.map(entry), activities.map((a) => a.object.id));
  });

  afterAll(async () => {
    await served?.close();
    await store?.close();
    await handle.cleanup();
  });

  it('links the log metadata from the actor, and its verifier key verifies the served checkpoint', async () => {
    const actor = await (await fetch(`${base}/actor`)).json();
    expect(actor.endpoints.vouchLog).toBe(`${base}/log`);
    const metadata = await (await fetch(actor.endpoints.vouchLog)).json();
    expect(metadata).toEqual({
      origin: `${identity.host}/vouch-log`,
      verifier_key: expect.any(String),
      checkpoint: `${base}/log/checkpoint`,
      entries: `${base}/log/entries`,
      inclusion_proof: `${base}/log/proof/inclusion`,
      consistency_proof: `${base}/log/proof/consistency`,
      bundle: `${base}/log/bundle`,
      cosignatures: `${base}/log/cosignatures`,
      witnesses: [],
    });
    // The actor carries the same origin and key, so a verifier needs no second fetch.
    expect([actor.endpoints.vouchLogOrigin, actor.endpoints.vouchLogVerifierKey]).toEqual([metadata.origin, metadata.verifier_key]);
    // The published key is the actor's proof key under the origin's name, nothing else.
    const vkey = parseVerifierKey(metadata.verifier_key);
    expect(vkey.name).toBe(metadata.origin);
    expect(metadata.verifier_key).toBe(verifierKey(metadata.origin, multibaseToEd25519(actor.assertionMethod[0].publicKeyMultibase), 'ed25519'));
    const note = await (await fetch(metadata.checkpoint)).text();
    const { checkpoint, signatures } = openCheckpoint(note, metadata.verifier_key);
    expect(checkpoint).toMatchObject({ origin: metadata.origin, size: 11 });
    expect(signatures.map((s) => s.name)).toEqual([metadata.origin]);
    // A key of another name (the host alone, a guess) does not verify it.
    expect(() => openCheckpoint(note, verifierKey(identity.host, identity.proofPrivateKey, 'ed25519'))).toThrow();
  });

  it('serves a retraction wherever the verdict it retracts was served', async () => {
    const page = await (await fetch(`${base}/log/entries?start=0`)).json();
    const withheld = page.entries.map((e: { withheld?: boolean }) => e.withheld === true);
    // The Delete of an ok verdict is public; a spam verdict's is not; a Delete follows the newest
    // version before it (c was updated to spam). As in the outbox, an Update is public only when
    // it keeps an ok verdict ok: the one clearing spam d would hand out d's digests.
    expect(withheld).toEqual([false, false, true, true, false, true, true, true, true, false, false]);
    expect(page.entries[1].entry.object).toEqual(del('a').object);

    const followerPage = await (await fetch(`${base}/log/entries?start=0`, { headers: { [FOLLOWER_HEADER]: WITNESS_ACTOR } })).json();
    expect(followerPage.entries.some((e: { withheld?: boolean }) => e.withheld)).toBe(false);
  });

  it('answers a bundle for a public retraction, verifiable against its checkpoint', async () => {
    const res = await fetch(`${base}/log/bundle?id=${encodeURIComponent(verdictId('a'))}`);
    expect(res.status).toBe(200);
    const bundle = await res.json();
    expect(bundle.index).toBe(1);
    expect(bundle.entry.type).toBe('Delete');
    const { checkpoint } = openCheckpoint(bundle.checkpoint, verifierKey(logOrigin(identity.host), identity.proofPrivateKey, 'ed25519'));
    const proof = bundle.inclusion.hashes.map((h: string) => Buffer.from(h, 'base64'));
    expect(verifyInclusion(leafHash(Buffer.from(bundle.entry_bytes, 'base64')), 1, checkpoint.size, proof, checkpoint.rootHash)).toEqual({ ok: true });
    // A restricted verdict's retraction stays withheld.
    expect((await fetch(`${base}/log/bundle?id=${encodeURIComponent(verdictId('b'))}`)).status).toBe(404);
    expect((await fetch(`${base}/log/bundle?id=${encodeURIComponent(verdictId('c'))}`)).status).toBe(404);
    // d's newest entry is the retraction of a verdict that is ok by then.
    expect((await fetch(`${base}/log/bundle?id=${encodeURIComponent(verdictId('d'))}`)).status).toBe(200);
  });

  it('takes a cosignature under the witness\'s log origin, and names a wrong witness name as such', async () => {
    const note = await (await fetch(`${base}/log/checkpoint`)).text();
    const text = note.slice(0, note.indexOf('\n\n') + 1);
    const post = (cosignature: string) =>
      fetch(`${base}/log/cosignatures`, { method: 'POST', headers: { [FOLLOWER_HEADER]: WITNESS_ACTOR, 'content-type': 'application/json' }, body: JSON.stringify({ cosignature }) });
    const now = Math.floor(Date.now() / 1000);

    const wrongName = await post(cosign(text, 'peer.example', witnessKey, now).trimEnd());
    expect(wrongName.status).toBe(422);
    const wrong = await wrongName.json();
    expect(wrong.error.code).toBe('bad_witness_name');
    expect(wrong.error.message).toContain('"peer.example"');
    expect(wrong.error.message).toContain('"peer.example/vouch-log"');

    const notALine = await post('not a signature line at all');
    expect(notALine.status).toBe(400);

    const otherKey = generateKeyPairSync('ed25519').privateKey;
    const badSignature = await post(cosign(text, 'peer.example/vouch-log', otherKey, now).trimEnd());
    expect(badSignature.status).toBe(422);
    expect((await badSignature.json()).error.code).toBe('bad_cosignature');

    const good = await post(cosign(text, 'peer.example/vouch-log', witnessKey, now).trimEnd());
    expect(good.status).toBe(201);
    expect(await (await fetch(`${base}/log/checkpoint`)).text()).toContain('\n— peer.example/vouch-log ');
  });

  it('lets a witness find the proof and cosignature endpoints from the actor, with the old paths for older peers', async () => {
    const fetched: string[] = [];
    const fetchJson = async (url: string) => {
      fetched.push(url);
      const res = await fetch(url);
      if (res.status !== 200) throw new Error(`GET ${url}: ${res.status}`);
      return res.json();
    };
    const directory = new LogEndpointDirectory(fetchJson);
    const endpoints = { consistencyProof: `${base}/log/proof/consistency`, cosignatures: `${base}/log/cosignatures` };
    expect(await directory.endpointsOf(identity.actorId)).toEqual(endpoints);
    expect(await directory.endpointsOf(identity.actorId)).toEqual(endpoints);
    expect(fetched).toEqual([identity.actorId, `${base}/log`]); // cached

    const actorOf = (endpoints: Record<string, unknown>) => async (url: string) => (url.endsWith('/actor') ? { id: url, endpoints } : fetchJson(url));
    const older = new LogEndpointDirectory(actorOf({ sharedInbox: 'https://old.example/inbox' }));
    expect(await older.endpointsOf('https://old.example/actor')).toEqual({
      consistencyProof: 'https://old.example/log/proof/consistency',
      cosignatures: 'https://old.example/log/cosignatures',
    });
    // Endpoints must stay on the actor's origin: a peer cannot send our cosignatures elsewhere.
    const foreign = new LogEndpointDirectory(actorOf({ vouchLog: `${base}/log` }));
    await expect(foreign.endpointsOf('https://other.example/actor')).rejects.toThrow(/actor's origin/);
  });
});

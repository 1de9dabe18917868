// This instance's identity: its keys (made on first start, kept in the store) and the documents
// that describe it to peers: the Application actor, WebFinger and NodeInfo.
import type { KeyObject } from 'node:crypto';
import type { Db } from '../store/index.js';
import { generateInstanceKeys, loadPrivateKey, loadPublicKey } from '../../shared/crypto/keys.js';
import { ed25519ToMultibase } from '../../shared/crypto/data-integrity.js';
import { verifierKey } from '../../shared/merkle/checkpoint.js';
import { logOrigin } from '../log/checkpoints.js';
import { AS_CONTEXT_URL, DATA_INTEGRITY_CONTEXT_URL, MULTIKEY_CONTEXT_URL, SECURITY_V1_CONTEXT_URL, VOUCH_CONTEXT_URL } from '../../shared/vocab/contexts.js';

export const ACTOR_USERNAME = 'vouch';

export interface Identity {
  publicUrl: string;
  host: string;
  actorId: string;
  /** HTTP Signatures key (RSA: what Mastodon-family servers verify). */
  rsaKeyId: string;
  rsaPrivateKey: KeyObject;
  rsaPublicPem: string;
  /** Object proofs key (Ed25519 Multikey, assertionMethod). */
  proofKeyId: string;
  proofPrivateKey: KeyObject;
  proofPublicMultibase: string;
  inbox: string;
  outbox: string;
  followers: string;
  following: string;
}

/** Loads the active keys, generating and storing them on first start. */
export async function loadIdentity(db: Db, publicUrl: string): Promise<Identity> {
  let rows = await db.selectFrom('instance_keys').selectAll().where('active', '=', true).execute();
  if (rows.length === 0) {
    const keys = await generateInstanceKeys();
    await db
      .insertInto('instance_keys')
      .values([
        { id: 'main-key', kind: 'rsa', public_pem: keys.rsa.publicPem, private_pem: keys.rsa.privatePem },
        { id: 'proof-key', kind: 'ed25519', public_pem: keys.ed25519.publicPem, private_pem: keys.ed25519.privatePem },
      ])
      // Two replicas starting at once: the first one's keys win, the second re-reads them.
      .onConflict((oc) => oc.column('id').doNothing())
      .execute();
    rows = await db.selectFrom('instance_keys').selectAll().where('active', '=', true).execute();
  }
  const rsa = rows.find((r) => r.kind === 'rsa');
  const ed = rows.find((r) => r.kind === 'ed25519');
  if (!rsa || !ed) throw new Error('instance_keys is missing an active rsa or ed25519 key');
  const actorId = `${publicUrl}/actor`;
  return {
    publicUrl,
    host: new URL(publicUrl).host,
    actorId,
    rsaKeyId: `${actorId}#${rsa.id}`,
    rsaPrivateKey: loadPrivateKey(rsa.private_pem),
    rsaPublicPem: rsa.public_pem,
    proofKeyId: `${actorId}#${ed.id}`,
    proofPrivateKey: loadPrivateKey(ed.private_pem),
    proofPublicMultibase: ed25519ToMultibase(loadPublicKey(ed.public_pem)),
    inbox: `${actorId}/inbox`,
    outbox: `${actorId}/outbox`,
    followers: `${actorId}/followers`,
    following: `${actorId}/following`,
  };
}

export function actorDocument(identity: Identity): Record<string, unknown> {
  return {
    '@context': [AS_CONTEXT_URL, SECURITY_V1_CONTEXT_URL, DATA_INTEGRITY_CONTEXT_URL, MULTIKEY_CONTEXT_URL, VOUCH_CONTEXT_URL],
    id: identity.actorId,
    type: 'Application',
    preferredUsername: ACTOR_USERNAME,
    name: `Vouch at ${identity.host}`,
    summary: 'Hash-attestation feed: signed perceptual-hash verdicts. Follow to subscribe; the admin approves.',
    inbox: identity.inbox,
    outbox: identity.outbox,
    followers: identity.followers,
    following: identity.following,
    manuallyApprovesFollowers: true,
    endpoints: {
      sharedInbox: `${identity.publicUrl}/inbox`,
      vouchLookup: `${identity.actorId}/lookup`,
      vouchLog: `${identity.publicUrl}/log`,
      // The log's identity, so a verifier or witness need not derive it from the proof key.
      vouchLogOrigin: logOrigin(identity.host),
      vouchLogVerifierKey: verifierKey(logOrigin(identity.host), identity.proofPrivateKey, 'ed25519'),
    },
    publicKey: { id: identity.rsaKeyId, owner: identity.actorId, publicKeyPem: identity.rsaPublicPem },
    assertionMethod: [
      { id: identity.proofKeyId, type: 'Multikey', controller: identity.actorId, publicKeyMultibase: identity.proofPublicMultibase },
    ],
  };
}

export function webfingerDocument(identity: Identity): Record<string, unknown> {
  return {
    subject: `acct:${ACTOR_USERNAME}@${identity.host}`,
    aliases: [identity.actorId],
    links: [{ rel: 'self', type: 'application/activity+json', href: identity.actorId }],
  };
}

export function nodeinfoDocument(version: string, openRegistrations = false): Record<string, unknown> {
  return {
    version: '2.1',
    software: { name: 'vouch', version },
    protocols: ['activitypub'],
    services: { inbound: [], outbound: [] },
    openRegistrations,
    usage: { users: { total: 0 } },
    metadata: {},
  };
}

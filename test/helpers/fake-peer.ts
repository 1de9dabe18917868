// A minimal hand-driven ActivityPub actor on 127.0.0.x for tests: it serves its actor document and
// keys, records what it receives, and signs whatever the test wants to send — honest or forged.
// It stands in for a remote peer whose behaviour the test must control exactly.
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { generateInstanceKeysSync, loadPrivateKey, loadPublicKey } from '../../shared/crypto/keys.js';
import { ed25519ToMultibase, signObject } from '../../shared/crypto/data-integrity.js';
import { signRequest } from '../../shared/crypto/http-signature.js';

export class FakePeer {
  /** Many peers may share one key pair (benchmarks); each still serves its own actor. */
  constructor(readonly keys = generateInstanceKeysSync()) {}

  readonly received: Array<Record<string, unknown>> = [];
  /** Each POST as it arrived on the wire, for checking the sender's signatures. */
  readonly requests: Array<{ method: string; url: string; headers: Record<string, string | string[] | undefined> }> = [];
  /** What this peer answers to pull-on-miss lookups (GET /actor/lookup). */
  lookupVerdicts: Array<Record<string, unknown>> = [];
  readonly lookups: string[] = [];
  /** What the inbox answers (a test may make it refuse). */
  inboxStatus = 202;
  /** Called with each activity as it arrives. */
  onReceive?: (activity: Record<string, unknown>) => void;
  private server?: Server;
  origin = '';

  get actor(): string {
    return `${this.origin}/actor`;
  }
  get keyId(): string {
    return `${this.actor}#main-key`;
  }
  get proofKeyId(): string {
    return `${this.actor}#proof-key`;
  }

  async start(host: string): Promise<void> {
    this.server = createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        if (req.method === 'GET' && req.url?.startsWith('/actor/lookup?')) {
          this.lookups.push(req.url);
          res.setHeader('content-type', 'application/activity+json');
          res.end(JSON.stringify({ verdicts: this.lookupVerdicts }));
        } else if (req.method === 'GET' && req.url === '/actor') {
          res.setHeader('content-type', 'application/activity+json');
          res.end(JSON.stringify(this.actorDocument()));
        } else if (req.method === 'POST' && req.url === '/inbox') {
          this.requests.push({ method: req.method, url: req.url, headers: req.headers });
          if (this.inboxStatus >= 300) {
            res.statusCode = this.inboxStatus;
            res.end();
            return;
          }
          const activity = JSON.parse(body) as Record<string, unknown>;
          this.received.push(activity);
          this.onReceive?.(activity);
          res.statusCode = 202;
          res.end();
        } else {
          res.statusCode = 404;
          res.end();
        }
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, host, resolve));
    const { port } = this.server.address() as AddressInfo;
    this.origin = `http://${host}:${port}`;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }

  actorDocument(): Record<string, unknown> {
    return {
      '@context': ['https://www.w3.org/ns/activitystreams', 'https://w3id.org/security/v1'],
      id: this.actor,
      type: 'Application',
      inbox: `${this.origin}/inbox`,
      outbox: `${this.origin}/outbox`,
      endpoints: { vouchLookup: `${this.origin}/actor/lookup` },
      publicKey: { id: this.keyId, owner: this.actor, publicKeyPem: this.keys.rsa.publicPem },
      assertionMethod: [
        { id: this.proofKeyId, type: 'Multikey', controller: this.actor, publicKeyMultibase: ed25519ToMultibase(loadPublicKey(this.keys.ed25519.publicPem)) },
      ],
    };
  }

  activity(type: string, object: unknown, overrides: Record<string, unknown> = {}): Record<string, unknown> {
    return { '@context': 'https://www.w3.org/ns/activitystreams', id: `${this.origin}/activities/${randomUUID()}`, type, actor: this.actor, object, ...overrides };
  }

  verdict(subject: Array<Record<string, unknown>>, overrides: Record<string, unknown> = {}): Record<string, unknown> {
    return {
      '@context': ['https://www.w3.org/ns/activitystreams', 'https://w3id.org/security/data-integrity/v2', 'https://w3id.org/vouch/v1'],
      type: 'Verdict',
      id: `${this.origin}/verdicts/${randomUUID()}`,
      attributedTo: this.actor,
      subject,
      label: 'csam',
      confidence: 0.9,
      method: 'human',
      published: new Date().toISOString(),
      ...overrides,
    };
  }

  signObject(object: Record<string, unknown>): Record<string, unknown> {
    return signObject(object, { privateKey: loadPrivateKey(this.keys.ed25519.privatePem), verificationMethod: this.proofKeyId });
  }

  /** Headers of a correctly signed request; tests then tamper with what they need to. */
  signedHeaders(method: string, url: string, body?: string, options: { keyId?: string; date?: Date } = {}): Record<string, string> {
    const headers: Record<string, string> = { 'content-type': 'application/activity+json' };
    if (options.date) headers.date = options.date.toUTCString();
    const signed = signRequest({
      method,
      url,
      headers,
      body,
      keyId: options.keyId ?? this.keyId,
      privateKey: loadPrivateKey(this.keys.rsa.privatePem),
    });
    for (const [k, v] of Object.entries(signed)) if (v !== undefined) headers[k.toLowerCase()] = v;
    return headers;
  }

  async post(url: string, activity: unknown, options: { keyId?: string; date?: Date } = {}): Promise<Response> {
    const body = JSON.stringify(activity);
    return fetch(url, { method: 'POST', headers: this.signedHeaders('POST', url, body, options), body });
  }
}

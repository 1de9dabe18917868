// Entries everyone can count: a log holding version-1 entries (whole activities) and version-2
// entries (public part + digest of a private part), served by the instance's log routes over real
// HTTP from the real PostgreSQL. An anonymous client recomputes every leaf from what it is served
// and verifies the tree against the signed checkpoint; an approved follower also opens every
// private part; a public part that lies (altered in the database, or logged so from the start) is
// caught. Who is an approved follower is federation's business (HTTP Signatures, tested there):
// here a stand-in header answers it, as in log-public.test.ts.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import canonicalize from 'canonicalize';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Identity } from '../../server/federation/identity.js';
import { auditLog, type AuditOptions } from '../../server/log/audit.js';
import type { LogCheckpoints } from '../../server/log/checkpoints.js';
import { activityEntry, decodeEntry, subjectCommitment } from '../../server/log/entry.js';
import type { TransparencyLog } from '../../server/log/store.js';
import { openStore, type Store } from '../../server/store/index.js';
import { openCheckpoint } from '../../shared/merkle/checkpoint.js';
import { leafHash, MemoryTree } from '../../shared/merkle/tree.js';
import { verifyInclusion } from '../../shared/merkle/verify.js';
import { FOLLOWER_HEADER, serveLogRoutes, type LogRoutesServer } from '../helpers/log-routes-server.js';
import { HAVE_POSTGRES, STORE_BACKENDS } from '../helpers/services.js';

const FOLLOWER = 'https://follower.example/actor';
const jcs = (value: unknown) => new Uint8Array(Buffer.from(canonicalize(value)!, 'utf8'));
const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');

interface Page {
  size: number;
  entries: Array<{ index: number; leaf_hash: string; entry?: Record<string, unknown>; withheld?: true; private?: { activity: Record<string, unknown>; salt: string }; private_withheld?: true }>;
}

describe.skipIf(!HAVE_POSTGRES)('log entries with public and private parts', () => {
  const handle = STORE_BACKENDS.find((s) => s.name === 'postgres')!.create();
  let store: Store;
  let served: LogRoutesServer;
  let base: string;
  let identity: Identity;
  let log: TransparencyLog;
  let checkpoints: LogCheckpoints;
  const digests = { aSha: randomBytes(32).toString('hex'), aPdq: randomBytes(32).toString('hex'), cSha: randomBytes(32).toString('hex') };

  const verdictId = (n: string) => `${base}/verdicts/${n}`;
  const create = (n: string, label: string, subject: Array<{ algorithm: string; digest: string }>, extra: Record<string, unknown> = {}) => ({
    '@context': ['https://www.w3.org/ns/activitystreams', 'https://vouch.example/ns/v1'],
    type: 'Create',
    id: `${base}/activities/create-${n}`,
    actor: identity.actorId,
    published: '2026-03-01T10:00:00.000Z',
    to: [`${identity.actorId}/followers`],
    object: { type: 'Verdict', id: verdictId(n), attributedTo: identity.actorId, subject, label, confidence: 0.9, method: 'human', published: '2026-03-01T10:00:00.000Z', ...extra },
  });
  const del = (n: string) => ({
    type: 'Delete',
    id: `${base}/activities/delete-${n}`,
    actor: identity.actorId,
    published: '2026-03-02T10:00:00.000Z',
    object: { type: 'Tombstone', id: verdictId(n), formerType: 'Verdict', deleted: '2026-03-02T10:00:00.000Z' },
  });
  const get = async (path: string, follower = false) => {
    const res = await fetch(`${base}${path}`, { headers: follower ? { [FOLLOWER_HEADER]: FOLLOWER } : {} });
    if (res.status !== 200) throw new Error(`GET ${path}: ${res.status}`);
    return res;
  };
  const page = async (follower = false) => (await (await get('/log/entries?start=0', follower)).json()) as Page;
  const audit = (follower: boolean, extra: Partial<AuditOptions> = {}) =>
    auditLog({
      baseUrl: base,
      logVerifierKey: checkpoints.verifierKey,
      fetchJson: async (url) => (await fetch(url, { headers: follower ? { [FOLLOWER_HEADER]: FOLLOWER } : {} })).json(),
      fetchText: async (url) => (await fetch(url)).text(),
      stateDir: mkdtempSync(join(tmpdir(), 'vouch-audit-')),
      all: true,
      ...extra,
    });
  const tamper = async (fn: () => Promise<unknown>) => {
    await sql.raw('ALTER TABLE log_entries DISABLE TRIGGER USER').execute(store.db);
    try {
      await fn();
    } finally {
      await sql.raw('ALTER TABLE log_entries ENABLE TRIGGER USER').execute(store.db);
    }
  };

  beforeAll(async () => {
    store = await openStore(handle.config);
    served = await serveLogRoutes(store);
    ({ base, identity, log, checkpoints } = served);

    // 0, 1: version 1 (a csam verdict, an ok one), as older versions logged them.
    const old = [create('old', 'csam', [{ algorithm: 'sha256', digest: randomBytes(32).toString('hex') }]), create('old-ok', 'ok', [])];
    await log.append(old.map(jcs), old.map((a) => a.object.id));
    // 2: csam (two digests), 3: ok, 4: the ok one retracted, 5: the csam one retracted, 6: a classifier's spam.
    const activities = [
      create('a', 'csam', [
        { algorithm: 'sha256', digest: digests.aSha },
        { algorithm: 'pdq', digest: digests.aPdq },
      ]),
      create('b', 'ok', [{ algorithm: 'sha256', digest: randomBytes(32).toString('hex') }]),
      del('b'),
      del('a'),
      create('c', 'spam', [{ algorithm: 'sha256', digest: digests.cSha }], { method: 'classifier', classifier: { name: 'nsfwjs', version: '2.0' }, expires: '2027-01-01T00:00:00.000Z' }),
    ];
    const built = activities.map((a) => activityEntry(a));
    await log.append(
      built.map((b) => b.entry),
      activities.map((a) => a.object.id),
      built.map((b) => b.private),
    );
  });

  afterAll(async () => {
    await served?.close();
    await store?.close();
    await handle.cleanup();
  });

  it('serves every version-2 public part to anyone, the digests to no one but followers and public verdicts\' readers', async () => {
    const anonymous = await page();
    const text = JSON.stringify(anonymous);
    for (const digest of Object.values(digests)) expect(text).not.toContain(digest);
    expect(anonymous.entries.map((e) => (e.withheld ? 'withheld' : e.entry?.vouchLogEntry === 2 ? (e.private ? 'v2+private' : 'v2') : 'v1'))).toEqual([
      'withheld',
      'v1',
      'v2',
      'v2+private', // an ok verdict (publicOkFeed)
      'v2+private', // its retraction: as public as the verdict it retracts
      'v2',
      'v2',
    ]);
    expect(anonymous.entries.filter((e) => e.private_withheld).map((e) => e.index)).toEqual([2, 5, 6]);
    const csam = decodeEntry(jcs(anonymous.entries[2].entry));
    if (csam.version !== 2) throw new Error('expected a version-2 entry');
    expect(csam.public).toEqual({
      id: `${base}/activities/create-a`,
      type: 'Create',
      actor: identity.actorId,
      published: '2026-03-01T10:00:00.000Z',
      object: {
        id: verdictId('a'),
        type: 'Verdict',
        attributedTo: identity.actorId,
        label: 'csam',
        method: 'human',
        published: '2026-03-01T10:00:00.000Z',
        subjectCommitment: expect.stringMatching(/^[A-Za-z0-9+/]{43}=$/),
      },
    });
    const retraction = decodeEntry(jcs(anonymous.entries[5].entry));
    expect(retraction.version === 2 && retraction.public.object).toEqual({ id: verdictId('a'), type: 'Tombstone', formerType: 'Verdict', deleted: '2026-03-02T10:00:00.000Z' });
    const classified = decodeEntry(jcs(anonymous.entries[6].entry));
    expect(classified.version === 2 && classified.public.object).toMatchObject({ method: 'classifier', classifier: { name: 'nsfwjs', version: '2.0' }, expires: '2027-01-01T00:00:00.000Z' });
  });

  it('lets an anonymous client recompute every leaf and verify the tree against the signed checkpoint, version-1 entries included', async () => {
    const note = await (await get('/log/checkpoint')).text();
    const { checkpoint } = openCheckpoint(note, checkpoints.verifierKey);
    expect(checkpoint.size).toBe(7);
    // By hand, as a researcher would: the leaf of a served entry is SHA-256(0x00 ‖ JCS(entry)).
    const tree = new MemoryTree();
    for (const e of (await page()).entries) {
      const leaf = e.withheld ? Buffer.from(e.leaf_hash, 'base64') : leafHash(jcs(e.entry));
      expect(b64(leaf)).toBe(e.leaf_hash);
      tree.appendLeafHash(new Uint8Array(leaf));
    }
    expect(b64(tree.root())).toBe(b64(checkpoint.rootHash));
    // And the auditor: every entry but the restricted version-1 one read and placed in the tree.
    const report = await audit(false);
    expect(report.failures).toEqual([]);
    expect(report).toMatchObject({ ok: true, entries: { checked: 7, withheld: 1, publicParts: 5, privateWithheld: 3, privateOpened: 2 } });
  });

  it('lets a follower open every private part against its digest and commitment', async () => {
    const seen: string[] = [];
    const report = await audit(true, { verifyEntry: async (activity) => void seen.push(String((activity as { id?: unknown }).id)) });
    expect(report.failures).toEqual([]);
    expect(report).toMatchObject({ ok: true, entries: { checked: 7, withheld: 0, publicParts: 5, privateWithheld: 0, privateOpened: 5, verified: 7 } });
    expect(seen).toContain(`${base}/activities/create-a`);
    const served = (await page(true)).entries[2];
    expect(served.private?.activity.object).toMatchObject({ subject: [{ digest: digests.aSha }, { digest: digests.aPdq }] });
  });

  it('exports CSV rows whose confidence and subjects come only from the private parts the reader opened', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vouch-csv-'));
    // RFC 4180 fields of one line (the entry column holds quoted JSON).
    const fields = (line: string) => [...line.matchAll(/("(?:[^"]|"")*"|[^,]*)(?:,|$)/g)].map((m) => (m[1].startsWith('"') ? m[1].slice(1, -1).replace(/""/g, '"') : m[1]));
    const rows = async (follower: boolean) => {
      const path = join(dir, `${follower ? 'follower' : 'anonymous'}.csv`);
      expect((await audit(follower, { out: { path, format: 'csv' } })).ok).toBe(true);
      const [header, ...lines] = readFileSync(path, 'utf8').trimEnd().split('\r\n');
      const names = header.split(',');
      return lines.map((line) => Object.fromEntries(fields(line).slice(0, names.length).map((v, i) => [names[i], v])));
    };
    // Entry 2: the csam verdict with two digests.
    expect((await rows(false))[2]).toMatchObject({ version: '2', withheld: 'true', label: 'csam', method: 'human', confidence: '', subjects: '' });
    expect((await rows(true))[2]).toMatchObject({ version: '2', withheld: 'false', label: 'csam', confidence: '0.9', subjects: `sha256:${digests.aSha} pdq:${digests.aPdq}` });
  });

  it('commits to the subjects so that a guessed digest cannot be confirmed without the salt', async () => {
    const [anonymous, follower] = [(await page()).entries[2], (await page(true)).entries[2]];
    const commitment = (anonymous.entry!.public as { object: { subjectCommitment: string } }).object.subjectCommitment;
    const subject = (follower.private!.activity.object as { subject: unknown }).subject;
    // The follower, with the salt, confirms it.
    expect(subjectCommitment(Buffer.from(follower.private!.salt, 'base64'), subject)).toBe(commitment);
    // Someone who guessed the very digests (they hashed the known image) cannot: the unsalted
    // hash, or any salt but the entry's, gives another value, and the salt is not served.
    expect(createHash('sha256').update(canonicalize(subject)!).digest('base64')).not.toBe(commitment);
    expect(subjectCommitment(new Uint8Array(16), subject)).not.toBe(commitment);
    expect(JSON.stringify(anonymous)).not.toContain(follower.private!.salt);
    // Two entries about the same digests do not share a commitment either (a fresh salt each).
    const again = activityEntry(follower.private!.activity);
    const decoded = decodeEntry(again.entry);
    expect(decoded.version === 2 && decoded.public.object.subjectCommitment).not.toBe(commitment);
  });

  it('binds the public part to the leaf: an altered label, issuer or time no longer verifies', async () => {
    const note = await (await get('/log/checkpoint')).text();
    const { checkpoint } = openCheckpoint(note, checkpoints.verifierKey);
    const proof = ((await (await get(`/log/proof/inclusion?index=2&size=${checkpoint.size}`)).json()) as { hashes: string[] }).hashes.map((h) => Buffer.from(h, 'base64'));
    const served = (await page()).entries[2].entry as { public: { actor: string; object: Record<string, unknown> } };
    expect(verifyInclusion(leafHash(jcs(served)), 2, checkpoint.size, proof, checkpoint.rootHash)).toEqual({ ok: true });
    const altered = [
      { ...served, public: { ...served.public, object: { ...served.public.object, label: 'spam' } } },
      { ...served, public: { ...served.public, actor: 'https://someone-else.example/actor' } },
      { ...served, public: { ...served.public, object: { ...served.public.object, published: '2026-01-01T00:00:00.000Z' } } },
    ];
    for (const lie of altered) expect(verifyInclusion(leafHash(jcs(lie)), 2, checkpoint.size, proof, checkpoint.rootHash).ok).toBe(false);

    // A server that serves a public part lying about the label is caught by an anonymous audit.
    const [row] = await log.entries(2, 3);
    const lie = jcs(altered[0]);
    await tamper(() => sql`UPDATE log_entries SET entry = ${lie} WHERE idx = 2`.execute(store.db));
    try {
      const report = await audit(false);
      expect(report.ok).toBe(false);
      expect(report.failures.map((f) => [f.kind, f.index])).toEqual([
        ['leaf_hash_mismatch', 2],
        ['root_mismatch', undefined],
        ['inclusion', 2],
      ]);
    } finally {
      await tamper(() => sql`UPDATE log_entries SET entry = ${row.entry} WHERE idx = 2`.execute(store.db));
    }
    expect((await audit(false)).ok).toBe(true);
  });

  it('serves a bundle\'s public part to anyone, its private part to followers', async () => {
    const anonymous = await (await get(`/log/bundle?id=${encodeURIComponent(verdictId('a'))}`)).json();
    expect(anonymous).toMatchObject({ index: 5, private_withheld: true, entry: { vouchLogEntry: 2, public: { type: 'Delete' } } });
    expect(anonymous.private).toBeUndefined();
    const { checkpoint } = openCheckpoint(anonymous.checkpoint, checkpoints.verifierKey);
    const proof = anonymous.inclusion.hashes.map((h: string) => Buffer.from(h, 'base64'));
    expect(verifyInclusion(leafHash(jcs(anonymous.entry)), 5, checkpoint.size, proof, checkpoint.rootHash)).toEqual({ ok: true });
    const follower = await (await get(`/log/bundle?id=${encodeURIComponent(verdictId('a'))}`, true)).json();
    expect(follower.private.activity).toEqual(del('a'));
    // A version-1 entry a client may not read is still withheld whole.
    expect((await fetch(`${base}/log/bundle?id=${encodeURIComponent(verdictId('old'))}`)).status).toBe(404);
  });

  it('catches a public part logged with a label the signed activity does not say, once the private part is read', async () => {
    const honest = activityEntry(create('d', 'csam', [{ algorithm: 'sha256', digest: randomBytes(32).toString('hex') }]));
    const decoded = decodeEntry(honest.entry);
    if (decoded.version !== 2) throw new Error('expected a version-2 entry');
    const lying = jcs({ vouchLogEntry: 2, public: { ...decoded.public, object: { ...decoded.public.object, label: 'spam' } }, privateDigest: decoded.privateDigest });
    await log.append([lying], [verdictId('d')], [honest.private]);
    await checkpoints.signCheckpoint();
    // The tree is consistent with what was logged, so an anonymous audit cannot tell...
    expect((await audit(false)).ok).toBe(true);
    // ...but a follower, who opens the private part, can.
    const report = await audit(true);
    expect(report.ok).toBe(false);
    expect(report.failures).toEqual([{ kind: 'private_mismatch', index: 7, message: expect.stringContaining('object.label') }]);
  });
});

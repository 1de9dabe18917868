// The transparency log on both store backends: appends, proofs against a naive recomputation,
// concurrent appenders, checkpoints and cosignatures, a witness catching forks, rollbacks and bad
// proofs, and the HTTP API with the auditor end to end, before and after tampering with the
// database.
import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Server } from 'node:http';
import canonicalize from 'canonicalize';
import express from 'express';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cosign, formatCheckpoint, NoteError, openCheckpoint, openNote, signNote, verifierKey } from '../../shared/merkle/checkpoint.js';
import { consistencyPlan, consistencyProof, emptyRoot, inclusionProof, leafHash, MemoryTree, rootFromLeafHashes } from '../../shared/merkle/tree.js';
import { verifyConsistency, verifyInclusion } from '../../shared/merkle/verify.js';
import { auditLog, type AuditOptions } from '../../server/log/audit.js';
import { LogCheckpoints, logOrigin, type SignedCheckpoint } from '../../server/log/checkpoints.js';
import { logRouter } from '../../server/log/http.js';
import { LogRangeError, TransparencyLog } from '../../server/log/store.js';
import { CheckpointWitness } from '../../server/log/witness.js';
import { openStore, type Store } from '../../server/store/index.js';
import { STORE_BACKENDS } from '../helpers/services.js';

const ORIGIN = logOrigin('log.test');
const ACTOR = 'https://log.test/actor';

/** A plausible log entry: the JCS of a signed Create{Verdict}, ~300-400 bytes. */
function activity(tag: string): Uint8Array {
  const id = `https://log.test/verdicts/${tag}`;
  const value = {
    type: 'Create',
    id: `${id}/create`,
    actor: ACTOR,
    published: '2025-01-01T00:00:00Z',
    object: {
      type: 'Verdict',
      id,
      attributedTo: ACTOR,
      label: 'spam',
      confidence: 0.9,
      method: 'hashlist',
      subject: [{ algorithm: 'sha256', digest: randomBytes(32).toString('hex') }],
      proof: { type: 'DataIntegrityProof', proofValue: `z${randomBytes(32).toString('hex')}` },
    },
  };
  return new Uint8Array(Buffer.from(canonicalize(value)!, 'utf8'));
}

const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');

async function expectRejects(p: Promise<unknown>, check: (err: unknown) => void): Promise<void> {
  let caught: unknown;
  try {
    await p;
  } catch (err) {
    caught = err;
  }
  expect(caught, 'expected a rejection').toBeDefined();
  check(caught);
}

async function listen(app: express.Express): Promise<{ server: Server; base: string }> {
  return new Promise((resolve) => {
    const server = app.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({ server, base: `http://127.0.0.1:${port}` });
    });
  });
}

async function fetchJson(url: string): Promise<unknown> {
  const res = await fetch(url);
  const body = (await res.json()) as unknown;
  if (!res.ok) throw new Error(`GET ${url}: ${res.status} ${JSON.stringify(body)}`);
  return body;
}

async function fetchText(url: string): Promise<string> {
  const res = await fetch(url);
  const text = await res.text();
  if (!res.ok) throw new Error(`GET ${url}: ${res.status} ${text}`);
  return text;
}

/** Runs `fn` with the append-only triggers of the log tables off: what an attacker with DB access does. */
async function tamper(store: Store, fn: () => Promise<unknown>): Promise<void> {
  for (const t of ['log_entries', 'log_nodes']) await sql.raw(`ALTER TABLE ${t} DISABLE TRIGGER USER`).execute(store.db);
  try {
    await fn();
  } finally {
    for (const t of ['log_entries', 'log_nodes']) await sql.raw(`ALTER TABLE ${t} ENABLE TRIGGER USER`).execute(store.db);
  }
}

for (const backend of STORE_BACKENDS) {
  describe.skipIf(!backend.available)(`transparency log on ${backend.name}`, () => {
    const handles: ReturnType<typeof backend.create>[] = [];
    let storeA: Store; // the log under test (and its checkpoints)
    let storeB: Store; // a follower: its witness tables, and its own log tables for a forked copy
    let logA: TransparencyLog;
    let logB: TransparencyLog;
    let checkpointsA: LogCheckpoints;
    let checkpointsB: LogCheckpoints;
    const logKey: KeyObject = generateKeyPairSync('ed25519').privateKey;
    const witnessKey: KeyObject = generateKeyPairSync('ed25519').privateKey;
    const entriesA: Uint8Array[] = []; // mirror of log A, in index order
    const servers: Server[] = [];
    const dirs: string[] = [];

    beforeAll(async () => {
      const [ha, hb] = [backend.create(), backend.create()];
      handles.push(ha, hb);
      [storeA, storeB] = await Promise.all([openStore(ha.config), openStore(hb.config)]);
      logA = new TransparencyLog(storeA.db);
      logB = new TransparencyLog(storeB.db);
      checkpointsA = new LogCheckpoints(storeA.db, logA, { origin: ORIGIN, privateKey: logKey });
      checkpointsB = new LogCheckpoints(storeB.db, logB, { origin: ORIGIN, privateKey: logKey }); // same key: a fork
    });

    afterAll(async () => {
      for (const s of servers) await new Promise((r) => s.close(r));
      await storeA?.close();
      await storeB?.close();
      for (const h of handles) await h.cleanup();
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
    });

    it('appends in batches and singly, and serves back exactly what it stored', async () => {
      expect(await logA.size()).toBe(0);
      expect(await logA.root()).toEqual(emptyRoot());
      expect(await logA.append([])).toEqual({ firstIndex: 0, size: 0, root: emptyRoot() });

      const batches = [[activity('0')], Array.from({ length: 20 }, (_, i) => activity(`b${i}`))];
      for (let i = 0; i < 5; i++) batches.push([activity(`s${i}`)]);
      batches.push(Array.from({ length: 38 }, (_, i) => activity(`c${i}`)));
      for (const batch of batches) {
        const before = entriesA.length;
        const result = await logA.append(batch);
        entriesA.push(...batch);
        expect(result.firstIndex).toBe(before);
        expect(result.size).toBe(entriesA.length);
        expect(result.root).toEqual(rootFromLeafHashes(entriesA.map(leafHash)));
      }
      expect(await logA.size()).toBe(64);
      const stored = await logA.entries(0, 64);
      expect(stored.map((e) => e.index)).toEqual([...Array(64).keys()]);
      stored.forEach((e, i) => {
        expect(e.entry).toEqual(entriesA[i]);
        expect(e.leafHash).toEqual(leafHash(entriesA[i]));
      });
      expect((await logA.entries(10, 12)).map((e) => e.index)).toEqual([10, 11]);
      expect(await logA.entries(64, 70)).toEqual([]);
      expect((await logA.entry(5))?.entry).toEqual(entriesA[5]);

      await expectRejects(logA.append(['nope' as unknown as Uint8Array]), (e) => expect(e).toBeInstanceOf(LogRangeError));
      await expectRejects(logA.entries(5, 3), (e) => expect(e).toBeInstanceOf(LogRangeError));
      // Append-only, also in the database: no code path of ours can rewrite history by mistake.
      await expectRejects(sql`UPDATE log_entries SET entry = '\\x00' WHERE idx = 1`.execute(storeA.db), (e) =>
        expect(String(e)).toMatch(/append-only/),
      );
      await expectRejects(sql`DELETE FROM log_nodes WHERE level = 0 AND idx = 1`.execute(storeA.db), (e) => expect(String(e)).toMatch(/append-only/));
    });

    it('serves inclusion and consistency proofs for every size 1..64 matching a naive recomputation', async () => {
      const leaves = entriesA.slice(0, 64).map(leafHash);
      const memory = new MemoryTree();
      leaves.forEach((l) => memory.appendLeafHash(l));
      const roots = [emptyRoot(), ...leaves.map((_, i) => rootFromLeafHashes(leaves.slice(0, i + 1)))];
      const same = (a: readonly Uint8Array[], b: readonly Uint8Array[]) => a.length === b.length && a.every((h, i) => Buffer.compare(h, b[i]) === 0);
      const problems: string[] = [];
      for (let n = 1; n <= 64; n++) {
        // All pairs of one size at once: PostgreSQL answers them on several pooled connections.
        const [root, inclusions, consistencies] = await Promise.all([
          logA.root(n),
          Promise.all(Array.from({ length: n }, (_, m) => logA.inclusionProof(m, n))),
          Promise.all(Array.from({ length: n }, (_, i) => logA.consistencyProof(i + 1, n))),
        ]);
        if (!same([root], [roots[n]])) problems.push(`root(${n})`);
        for (let m = 0; m < n; m++) {
          const proof = inclusions[m];
          if (!verifyInclusion(leaves[m], m, n, proof, roots[n]).ok) problems.push(`inclusion ${m}/${n} does not verify`);
          if (!same(proof, await inclusionProof(m, n, memory))) problems.push(`inclusion ${m}/${n} differs from MemoryTree`);
          const from = m + 1;
          const cproof = consistencies[m];
          if (!verifyConsistency(from, n, cproof, roots[from], roots[n]).ok) problems.push(`consistency ${from}->${n} does not verify`);
          if (!same(cproof, await consistencyProof(from, n, memory))) problems.push(`consistency ${from}->${n} differs from MemoryTree`);
        }
      }
      expect(problems).toEqual([]);
      const outOfRange = (e: unknown) => expect(e).toMatchObject({ name: 'LogRangeError', code: 'out_of_range' });
      await expectRejects(logA.inclusionProof(0, 65), outOfRange);
      await expectRejects(logA.inclusionProof(64, 64), outOfRange);
      await expectRejects(logA.consistencyProof(0, 5), outOfRange);
      await expectRejects(logA.consistencyProof(6, 5), outOfRange);
      await expectRejects(logA.consistencyProof(5, 65), outOfRange);
      await expectRejects(logA.root(65), outOfRange);
      await expectRejects(logA.inclusionProof(-1, 5), (e) => expect(e).toMatchObject({ code: 'invalid_argument' }));
    });

    it('serialises concurrent appenders: disjoint contiguous ranges, one consistent tree', async () => {
      const writers = Array.from({ length: 16 }, (_, w) => Array.from({ length: 4 }, (_, i) => activity(`w${w}-${i}`)));
      const results = await Promise.all(writers.map((batch) => logA.append(batch)));
      const starts = results.map((r) => r.firstIndex).sort((x, y) => x - y);
      expect(starts).toEqual(Array.from({ length: 16 }, (_, i) => 64 + 4 * i));
      expect(await logA.size()).toBe(128);
      const stored = await logA.entries(64, 128);
      results.forEach((r, w) => {
        writers[w].forEach((entry, i) => expect(stored[r.firstIndex - 64 + i].entry).toEqual(entry));
      });
      entriesA.push(...stored.map((e) => e.entry));
      expect(await logA.root()).toEqual(rootFromLeafHashes(entriesA.map(leafHash)));
      // Every batch's reported root is the root at its own size.
      for (const r of results) expect(await logA.root(r.size)).toEqual(r.root);
    });

    it('signs checkpoints once per size and keeps only cosignatures that verify', async () => {
      const first = await checkpointsA.signCheckpoint();
      expect(first).toMatchObject({ size: 128, created: true });
      const opened = openCheckpoint(first.note, checkpointsA.verifierKey);
      expect(opened.checkpoint).toMatchObject({ origin: ORIGIN, size: 128 });
      expect(opened.checkpoint.rootHash).toEqual(await logA.root(128));
      expect(checkpointsA.verifierKey).toBe(verifierKey(ORIGIN, logKey));
      expect(await checkpointsA.signCheckpoint()).toMatchObject({ size: 128, created: false, note: first.note });
      expect(await checkpointsA.latestCheckpoint()).toBe(first.note);

      const witnessName = 'witness.test';
      const witnessVkey = verifierKey(witnessName, witnessKey, 'cosignature/v1');
      const line = cosign(opened.text, witnessName, witnessKey, 1_700_000_000);
      expect(await checkpointsA.addCosignature(line, witnessVkey)).toEqual({ size: 128, witness: witnessName, added: true });
      expect(await checkpointsA.addCosignature(line, witnessVkey, 128)).toEqual({ size: 128, witness: witnessName, added: false });
      const served = await checkpointsA.latestCheckpoint();
      const withCosig = openCheckpoint(served!, checkpointsA.verifierKey, [witnessVkey]);
      expect(withCosig.cosignatures).toEqual([expect.objectContaining({ name: witnessName, timestamp: 1_700_000_000 })]);

      // Refused: another key's cosignature under this witness's name, a cosignature of another
      // checkpoint, a log key passed as a witness key, two lines at once.
      const impostor = cosign(opened.text, witnessName, generateKeyPairSync('ed25519').privateKey, 1_700_000_000);
      await expectRejects(checkpointsA.addCosignature(impostor, witnessVkey), (e) => expect(e).toBeInstanceOf(NoteError));
      const otherText = formatCheckpoint({ origin: ORIGIN, size: 128, rootHash: randomBytes(32) });
      await expectRejects(checkpointsA.addCosignature(cosign(otherText, witnessName, witnessKey, 1), witnessVkey), (e) =>
        expect(e).toMatchObject({ code: 'invalid_signature' }),
      );
      await expectRejects(checkpointsA.addCosignature(line, checkpointsA.verifierKey), (e) => expect(e).toMatchObject({ code: 'malformed_key' }));
      await expectRejects(checkpointsA.addCosignature(line + line, witnessVkey), (e) => expect(e).toMatchObject({ code: 'malformed_note' }));
      await expectRejects(checkpointsA.addCosignature(line, witnessVkey, 5), (e) => expect(e).toBeInstanceOf(NoteError));

      // The scheduler: a new checkpoint after 3 appends, handed to onCheckpoint.
      const seen: SignedCheckpoint[] = [];
      const scheduler = checkpointsA.startCheckpointing({ afterAppends: 3, everyMs: 60_000, signOnStart: false, onCheckpoint: (cp) => void seen.push(cp) });
      const batch = [activity('sched-0'), activity('sched-1'), activity('sched-2')];
      await logA.append(batch.slice(0, 2));
      entriesA.push(...batch.slice(0, 2));
      await scheduler.signNow(); // explicit signing still works, and resets the count
      await logA.append(batch.slice(2)); // 1 of 3: no checkpoint yet
      entriesA.push(batch[2]);
      await logA.append([]); // empty appends count for nothing
      await scheduler.stop();
      expect(seen.map((cp) => cp.size)).toEqual([130]);
      const again = checkpointsA.startCheckpointing({ onCheckpoint: (cp) => void seen.push(cp) }); // signs on start
      await again.stop();
      expect(seen.map((cp) => cp.size)).toEqual([130, 131]);
      expect(openCheckpoint((await checkpointsA.latestCheckpoint())!, checkpointsA.verifierKey).checkpoint.size).toBe(131);
    });

    it('witnesses a peer: cosigns consistent growth, keeps late ones, alerts on fork, rollback and bad proofs', async () => {
      const alerts: string[] = [];
      const witness = new CheckpointWitness(storeB.db, { name: 'follower.test', privateKey: witnessKey, onAlert: (a) => void alerts.push(a.kind) });
      const fromLog = (log: TransparencyLog) => async (from: number, to: number) => {
        try {
          return await log.consistencyProof(from, to);
        } catch (err) {
          if (err instanceof LogRangeError) return null; // the log answered 400
          throw err;
        }
      };
      const receive = (note: string, log: TransparencyLog = logA) =>
        witness.receiveCheckpoint({ note, logVerifierKey: checkpointsA.verifierKey, fetchConsistencyProof: fromLog(log) });

      // First checkpoint: nothing to compare with; cosigned, and the log accepts the cosignature.
      const at131 = (await checkpointsA.latestCheckpoint())!;
      const r1 = await receive(at131);
      expect(r1).toMatchObject({ status: 'cosigned', previousSize: null, checkpoint: { origin: ORIGIN, size: 131 } });
      if (r1.status !== 'cosigned') throw new Error('unreachable');
      expect(await checkpointsA.addCosignature(r1.cosignature, witness.verifierKey)).toMatchObject({ size: 131, added: true });

      // Growth: the consistency proof is fetched and verified.
      const more = Array.from({ length: 9 }, (_, i) => activity(`g${i}`));
      await logA.append(more);
      entriesA.push(...more);
      const at140 = (await checkpointsA.signCheckpoint()).note;
      expect(await receive(at140)).toMatchObject({ status: 'cosigned', previousSize: 131, checkpoint: { size: 140 } });
      expect(await receive(at140)).toMatchObject({ status: 'cosigned', previousSize: 140 }); // redelivery
      expect((await witness.latest(ORIGIN))?.size).toBe(140);

      // A late delivery of an older checkpoint that is a prefix: kept, not cosigned, no alert.
      const old64 = signNote(formatCheckpoint({ origin: ORIGIN, size: 64, rootHash: await logA.root(64) }), ORIGIN, logKey);
      expect(await receive(old64)).toMatchObject({ status: 'stale', latestSize: 140 });

      // Fork: the same key signs another tree of size 140 (100 shared entries, then others).
      await logB.append(entriesA.slice(0, 100));
      await logB.append(Array.from({ length: 40 }, (_, i) => activity(`fork${i}`)));
      const forked = (await checkpointsB.signCheckpoint()).note;
      const fork = await receive(forked, logB);
      expect(fork).toMatchObject({ status: 'alert', alert: { kind: 'fork', logOrigin: ORIGIN } });
      if (fork.status !== 'alert') throw new Error('unreachable');
      expect(fork.alert.evidence.previous.note).toBe(at140);
      expect(fork.alert.evidence.received.note).toBe(forked);
      expect(fork.alert.evidence.reason).toMatch(/two different roots signed for size 140/);
      // Both notes verify with the log key: that is the evidence.
      expect(() => openNote(fork.alert.evidence.previous.note, [checkpointsA.verifierKey])).not.toThrow();
      expect(() => openNote(fork.alert.evidence.received.note, [checkpointsA.verifierKey])).not.toThrow();

      // Rollback: the log presents size 120 (a tree diverging after 100) after having signed 140;
      // it cannot prove 120 -> 140.
      const rolled = new MemoryTree();
      for (const e of entriesA.slice(0, 100)) rolled.append(e);
      for (let i = 0; i < 20; i++) rolled.append(activity(`rb${i}`));
      const at120 = signNote(formatCheckpoint({ origin: ORIGIN, size: 120, rootHash: rolled.root() }), ORIGIN, logKey);
      const rollback = await receive(at120, logB); // logB stands for the rolled-back log: no valid proof
      expect(rollback).toMatchObject({ status: 'alert', alert: { kind: 'rollback' } });
      // ...and a rolled-back log that answers with no proof at all.
      const refused = await witness.receiveCheckpoint({ note: at120, logVerifierKey: checkpointsA.verifierKey, fetchConsistencyProof: async () => null });
      expect(refused).toMatchObject({ status: 'alert', alert: { kind: 'rollback' } });

      // A bad consistency proof: the signed root at 150 is honest, a stored node is then corrupted.
      const later = Array.from({ length: 10 }, (_, i) => activity(`h${i}`));
      await logA.append(later);
      entriesA.push(...later);
      const at150 = (await checkpointsA.signCheckpoint()).note;
      const [victim] = consistencyPlan(140, 150).flat();
      const original = (await logA.hashesOf([victim]))[0];
      await tamper(storeA, () => sql`UPDATE log_nodes SET hash = ${randomBytes(32)} WHERE level = ${victim.level} AND idx = ${victim.index}`.execute(storeA.db));
      try {
        // Asked of a log object that has not cached the node (as a process reading the tampered
        // database would be): logA holds the honest copy in memory and keeps serving it.
        const bad = await receive(at150, new TransparencyLog(storeA.db));
        expect(bad).toMatchObject({ status: 'alert', alert: { kind: 'inconsistent' } });
        if (bad.status !== 'alert') throw new Error('unreachable');
        expect(bad.alert.evidence).toMatchObject({ proofFrom: 140, proofTo: 150, previous: { note: at140 }, received: { note: at150 } });
        expect(bad.alert.evidence.reason).toMatch(/does not extend checkpoint 140/);
      } finally {
        await tamper(storeA, () => sql`UPDATE log_nodes SET hash = ${original} WHERE level = ${victim.level} AND idx = ${victim.index}`.execute(storeA.db));
      }
      // With the node restored, the same checkpoint verifies.
      expect(await receive(at150)).toMatchObject({ status: 'cosigned', previousSize: 140 });

      // The same contradiction again is the same alert; alerts are listed newest first.
      const again = await receive(forked, logB);
      expect(again.status === 'alert' && again.alert.id).toBe(fork.alert.id);
      expect(refused.status === 'alert' && refused.alert.id).toBe(rollback.status === 'alert' && rollback.alert.id);
      expect((await witness.alerts()).map((a) => a.kind)).toEqual(['inconsistent', 'rollback', 'fork']);
      expect(alerts).toEqual(['fork', 'rollback', 'inconsistent']);
      expect((await witness.alerts({ logOrigin: 'other.test/vouch-log' })).length).toBe(0);

      // A note not signed by the log key is refused outright: not evidence of anything.
      const stranger = signNote(formatCheckpoint({ origin: ORIGIN, size: 999, rootHash: randomBytes(32) }), ORIGIN, generateKeyPairSync('ed25519').privateKey);
      await expectRejects(receive(stranger), (e) => expect(e).toBeInstanceOf(NoteError));
      expect(await witness.alerts()).toHaveLength(3);
    });

    it('serves the log over HTTP; the auditor verifies it, exports it, and pinpoints each tampering', async () => {
      // Entries whose index ends in 3 are "restricted": withheld from this (anonymous) client.
      const app = express();
      app.use(logRouter({ log: logA, checkpoints: checkpointsA, canReadEntries: async (_req, rows) => rows.map((r) => r.index % 10 !== 3) }));
      const { server, base } = await listen(app);
      servers.push(server);
      const size = await logA.size();
      expect(size).toBe(150);

      // Input validation and the wire format.
      const bad = async (path: string, code: string) => {
        const res = await fetch(`${base}${path}`);
        expect(res.status, path).toBe(400);
        expect(((await res.json()) as { error: { code: string } }).error.code, path).toBe(code);
      };
      await bad('/log/entries', 'invalid_parameter');
      await bad('/log/entries?start=abc', 'invalid_parameter');
      await bad('/log/entries?start=-1', 'invalid_parameter');
      await bad('/log/entries?start=01', 'invalid_parameter');
      await bad('/log/entries?start=5&end=2', 'invalid_parameter');
      await bad('/log/entries?start=1&start=2', 'invalid_parameter');
      await bad('/log/entries?start=151', 'out_of_range');
      await bad('/log/proof/inclusion?index=0&size=151', 'out_of_range');
      await bad('/log/proof/inclusion?index=150&size=150', 'out_of_range');
      await bad('/log/proof/inclusion?index=0', 'invalid_parameter');
      await bad('/log/proof/consistency?from=0&to=10', 'out_of_range');
      await bad('/log/proof/consistency?from=20&to=10', 'out_of_range');
      await bad('/log/proof/consistency?from=10&to=99999999999999999', 'invalid_parameter');

      const checkpointRes = await fetch(`${base}/log/checkpoint`);
      expect(checkpointRes.headers.get('content-type')).toMatch(/^text\/plain/);
      const note = await checkpointRes.text();
      expect(openCheckpoint(note, checkpointsA.verifierKey).checkpoint.size).toBe(150);

      const page = (await fetchJson(`${base}/log/entries?start=0&end=5000`)) as {
        start: number;
        end: number;
        next: number | null;
        entries: { index: number; entry?: unknown; withheld?: boolean; leaf_hash: string }[];
      };
      expect(page).toMatchObject({ start: 0, end: 150, next: null });
      expect(page.entries).toHaveLength(150);
      expect(page.entries[3]).toEqual({ index: 3, withheld: true, leaf_hash: b64(leafHash(entriesA[3])) });
      expect(page.entries[4]).toEqual({ index: 4, entry: JSON.parse(Buffer.from(entriesA[4]).toString('utf8')), leaf_hash: b64(leafHash(entriesA[4])) });
      const proof = (await fetchJson(`${base}/log/proof/inclusion?index=7&size=150`)) as { hashes: string[] };
      const root150 = await logA.root(150);
      expect(verifyInclusion(leafHash(entriesA[7]), 7, 150, proof.hashes.map((h) => Buffer.from(h, 'base64')), root150)).toEqual({ ok: true });
      const cons = (await fetchJson(`${base}/log/proof/consistency?from=64&to=150`)) as { hashes: string[] };
      expect(verifyConsistency(64, 150, cons.hashes.map((h) => Buffer.from(h, 'base64')), await logA.root(64), root150)).toEqual({ ok: true });

      // The auditor: a clean log passes (all entries, and a sample), exports, saves its baseline.
      const stateDir = mkdtempSync(join(tmpdir(), 'vouch-audit-'));
      dirs.push(stateDir);
      const verified: number[] = [];
      const audit = (extra: Partial<AuditOptions> = {}) =>
        auditLog({
          baseUrl: base,
          logVerifierKey: checkpointsA.verifierKey,
          fetchJson,
          fetchText,
          stateDir,
          all: true,
          pageSize: 64, // several pages even for this small log
          verifyEntry: async (_entry, index) => void verified.push(index),
          ...extra,
        });
      const jsonl = join(stateDir, 'entries.jsonl');
      const clean = await audit({ out: { path: jsonl, format: 'jsonl' } });
      expect(clean.failures).toEqual([]);
      expect(clean).toMatchObject({ ok: true, stateSaved: true, checkpoint: { origin: ORIGIN, size: 150 }, entries: { mode: 'all', checked: 150, withheld: 15, verified: 135 } });
      expect(clean.exported).toEqual({ path: jsonl, format: 'jsonl', count: 150 });
      const lines = readFileSync(jsonl, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { index: number; withheld?: boolean });
      expect(lines.map((l) => l.index)).toEqual([...Array(150).keys()]);
      expect(lines[13]).toMatchObject({ withheld: true });
      const csvPath = join(stateDir, 'entries.csv');
      const csv = await audit({ out: { path: csvPath, format: 'csv' } });
      expect(csv.ok).toBe(true);
      expect(csv.previous).toEqual([{ size: 150, rootHash: b64(root150) }]);
      const rows = readFileSync(csvPath, 'utf8').trim().split('\r\n');
      expect(rows[0]).toBe(
        'index,leaf_hash,version,withheld,activity_type,activity_id,actor,published,object_type,object_id,label,confidence,method,classifier,object_published,expires,supersedes,deleted,subjects,entry',
      );
      expect(rows).toHaveLength(151);
      expect(rows[5]).toMatch(
        /^4,[^,]+,1,false,Create,https:\/\/log\.test\/verdicts\/[^,]+\/create,https:\/\/log\.test\/actor,2025-01-01T00:00:00Z,Verdict,.*,spam,0\.9,hashlist,,[^,]*,[^,]*,[^,]*,[^,]*,sha256:[0-9a-f]{64},"\{""actor""/,
      );
      expect(await audit({ all: false, sample: 20 })).toMatchObject({ ok: true, entries: { mode: 'sample', checked: 22 } });

      const failuresOf = async (extra: Partial<AuditOptions> = {}) => {
        const report = await audit(extra);
        expect(report.ok).toBe(false);
        expect(report.stateSaved).toBe(false);
        return report.failures.map((f) => ({ kind: f.kind, index: f.index, message: f.message }));
      };

      // 1. One stored entry changed.
      const changed = activity('evil');
      await tamper(storeA, () => sql`UPDATE log_entries SET entry = ${changed} WHERE idx = 7`.execute(storeA.db));
      let failures = await failuresOf();
      expect(failures).toContainEqual({ kind: 'leaf_hash_mismatch', index: 7, message: expect.stringMatching(/^entry 7: leaf hash mismatch/) });
      expect(failures).toContainEqual({ kind: 'inclusion', index: 7, message: expect.stringMatching(/^entry 7: inclusion proof failed/) });
      expect(failures.filter((f) => f.index !== undefined && f.index !== 7)).toEqual([]);
      // A sampled audit that includes it fails the same way (the first and last are always checked).
      await tamper(storeA, () => sql`UPDATE log_entries SET entry = ${changed} WHERE idx = 0`.execute(storeA.db));
      failures = await failuresOf({ all: false, sample: 0 });
      expect(failures.map((f) => [f.kind, f.index])).toEqual([
        ['leaf_hash_mismatch', 0],
        ['inclusion', 0],
      ]);
      await tamper(storeA, () => sql`UPDATE log_entries SET entry = ${entriesA[0]} WHERE idx = 0`.execute(storeA.db));
      await tamper(storeA, () => sql`UPDATE log_entries SET entry = ${entriesA[7]} WHERE idx = 7`.execute(storeA.db));
      expect((await audit()).ok).toBe(true);

      // 2. One entry deleted.
      await tamper(storeA, () => sql`DELETE FROM log_entries WHERE idx = 12`.execute(storeA.db));
      failures = await failuresOf();
      expect(failures).toEqual([{ kind: 'entry_missing', index: 12, message: 'entry 12 is missing: the log served no entry at index 12 below the checkpoint size 150' }, expect.objectContaining({ kind: 'root_mismatch' })]);
      await sql`INSERT INTO log_entries (idx, entry, leaf_hash) VALUES (12, ${entriesA[12]}, ${leafHash(entriesA[12])})`.execute(storeA.db);

      // 3. Two entries swapped, leaf hashes and all: each is in the wrong place in the signed tree.
      await tamper(storeA, async () => {
        await sql`UPDATE log_entries SET entry = ${entriesA[6]}, leaf_hash = ${leafHash(entriesA[6])} WHERE idx = 5`.execute(storeA.db);
        await sql`UPDATE log_entries SET entry = ${entriesA[5]}, leaf_hash = ${leafHash(entriesA[5])} WHERE idx = 6`.execute(storeA.db);
      });
      failures = await failuresOf();
      expect(failures.filter((f) => f.kind === 'inclusion')).toEqual([
        { kind: 'inclusion', index: 5, message: 'entry 5: inclusion proof failed: the served entry is not leaf 5 of the signed tree of size 150' },
        { kind: 'inclusion', index: 6, message: 'entry 6: inclusion proof failed: the served entry is not leaf 6 of the signed tree of size 150' },
      ]);
      expect(failures.map((f) => f.kind).sort()).toEqual(['inclusion', 'inclusion', 'root_mismatch']);
      await tamper(storeA, async () => {
        await sql`UPDATE log_entries SET entry = ${entriesA[5]}, leaf_hash = ${leafHash(entriesA[5])} WHERE idx = 5`.execute(storeA.db);
        await sql`UPDATE log_entries SET entry = ${entriesA[6]}, leaf_hash = ${leafHash(entriesA[6])} WHERE idx = 6`.execute(storeA.db);
      });
      expect((await audit()).ok).toBe(true);

      // 4. An entry whose own proof does not verify.
      failures = await failuresOf({
        verifyEntry: async (_e, index) => {
          if (index === 9) throw new Error('object proof signature does not verify');
        },
      });
      expect(failures).toEqual([{ kind: 'entry_invalid', index: 9, message: 'entry 9: proof invalid: object proof signature does not verify' }]);

      // 5. The wrong key.
      failures = await failuresOf({ logVerifierKey: verifierKey(ORIGIN, generateKeyPairSync('ed25519').privateKey) });
      expect(failures).toEqual([{ kind: 'signature', index: undefined, message: expect.stringMatching(/does not verify with the log key.*unverified_note/) }]);

      // 6. A fork: the same key signs a different tree of size 150, served from another database.
      await logB.append(Array.from({ length: 150 - (await logB.size()) }, (_, i) => activity(`forkB${i}`)));
      await checkpointsB.signCheckpoint();
      const appB = express();
      appB.use(logRouter({ log: logB, checkpoints: checkpointsB, canReadEntries: async (_req, rows) => rows.map(() => true) }));
      const { server: serverB, base: baseB } = await listen(appB);
      servers.push(serverB);
      failures = await failuresOf({ baseUrl: baseB });
      expect(failures[0]).toEqual({
        kind: 'fork',
        index: undefined,
        message: expect.stringMatching(new RegExp(`^fork: the log signed two different trees of size 150: root \\S+ now, root ${b64(root150).replace(/[+/]/g, '\\$&')} in checkpoint 150 saved by an earlier audit`)),
      });
      expect(failures.map((f) => f.kind)).toEqual(['fork']); // B is self-consistent: only the fork shows

      // ...and when the forked log grows, it cannot prove it extends the checkpoint seen before.
      await logB.append([activity('forkB-more')]);
      await checkpointsB.signCheckpoint();
      failures = await failuresOf({ baseUrl: baseB });
      expect(failures).toEqual([
        { kind: 'inconsistent', index: undefined, message: expect.stringMatching(/^inconsistent with checkpoint 150 saved by an earlier audit .*: the consistency proof 150 -> 151 fails \(root1_mismatch\)/) },
      ]);

      // 7. A rollback: an auditor that saw the forked log at 151 now sees this log at 150.
      const stateB = mkdtempSync(join(tmpdir(), 'vouch-audit-'));
      dirs.push(stateB);
      expect((await audit({ baseUrl: baseB, stateDir: stateB })).ok).toBe(true);
      failures = await failuresOf({ stateDir: stateB });
      expect(failures).toEqual([{ kind: 'rollback', index: undefined, message: expect.stringMatching(/^rollback: the log now serves a checkpoint of size 150, smaller than checkpoint 151/) }]);

      // The baseline of the first state directory never moved.
      expect((await audit()).previous).toEqual([{ size: 150, rootHash: b64(root150) }]);
    });
  });
}

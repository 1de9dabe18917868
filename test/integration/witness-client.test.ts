// Our log and outside witnesses over real HTTP on loopback addresses: a witness written from the
// C2SP tlog-witness text alone (test/helpers/c2sp-witness.ts) cosigns our checkpoints as the log
// grows, a crash between its answer and our store is repaired by the 409 exchange, a split view
// is caught, and hostile witnesses (bad signature, huge body, wrong name, redirect to a private
// address, malformed 409, zero timestamp, the spec's own example answer) get nothing stored.
import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSafeFetcher } from '../../server/federation/safe-fetch.js';
import { LogCheckpoints, logOrigin } from '../../server/log/checkpoints.js';
import { TransparencyLog } from '../../server/log/store.js';
import { WitnessClient, type OutsideWitness, type WitnessClientOptions } from '../../server/log/witness-client.js';
import { openStore, type Store } from '../../server/store/index.js';
import { cosign, formatCheckpoint, openCheckpoint, signNote, verifierKey } from '../../shared/merkle/checkpoint.js';
import { startC2spWitness, type C2spWitness } from '../helpers/c2sp-witness.js';
import { STORE_BACKENDS } from '../helpers/services.js';

const ORIGIN = logOrigin('log.witness.test');
const logger = pino({ level: 'silent' });
const specResponse = readFileSync(new URL('../fixtures/c2sp/tlog-witness-add-checkpoint-response.txt', import.meta.url), 'utf8');

const entries = (n: number) => Array.from({ length: n }, () => new Uint8Array(randomBytes(40)));

/** A plain HTTP server on a loopback address answering every request with `answer`. */
async function hostileWitness(host: string, answer: (body: string, res: import('node:http').ServerResponse) => void): Promise<{ url: string; hits: () => number; close(): Promise<void> }> {
  let hits = 0;
  const server: Server = createServer((req, res) => {
    hits += 1;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => answer(Buffer.concat(chunks).toString('utf8'), res));
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host}:${port}/w`,
    hits: () => hits,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

/** The checkpoint text of a submitted add-checkpoint body (after the first blank line, up to the signatures). */
function submittedText(body: string): string {
  const note = body.slice(body.indexOf('\n\n') + 2);
  return note.slice(0, note.lastIndexOf('\n\n') + 1);
}

for (const backend of STORE_BACKENDS) {
  describe.skipIf(!backend.available)(`outside witnesses (C2SP tlog-witness) on ${backend.name}`, () => {
    const handles: ReturnType<typeof backend.create>[] = [];
    const closers: Array<() => Promise<void>> = [];
    let store: Store;
    let log: TransparencyLog;
    let checkpoints: LogCheckpoints;
    const logKey: KeyObject = generateKeyPairSync('ed25519').privateKey;
    const logVkey = verifierKey(ORIGIN, logKey, 'ed25519');

    /** A client for one witness, allowed to reach only that witness's address. */
    const clientFor = (witness: OutsideWitness, host: string, options: WitnessClientOptions = {}) =>
      new WitnessClient(log, checkpoints, [witness], createSafeFetcher({ allowPrivate: [`${host}/32`], maxRedirects: 0, timeoutMs: 5_000 }), logger, {
        random: () => 0,
        ...options,
      });

    const grow = async (n: number) => {
      await log.append(entries(n));
      return checkpoints.signCheckpoint();
    };

    beforeAll(async () => {
      const handle = backend.create();
      handles.push(handle);
      store = await openStore(handle.config);
      log = new TransparencyLog(store.db);
      checkpoints = new LogCheckpoints(store.db, log, { origin: ORIGIN, privateKey: logKey });
    });

    afterAll(async () => {
      for (const close of closers.reverse()) await close();
      await store?.close();
      for (const h of handles) await h.cleanup();
    });

    it('a spec-only witness cosigns each new checkpoint with a consistency proof from the last, and the cosignature is served with the checkpoint', async () => {
      const witness = await startC2spWitness({ name: 'witness.test/w1', host: '127.0.0.21', logs: { [ORIGIN]: [logVkey] } });
      closers.push(() => witness.close());
      const client = clientFor({ vkey: witness.vkey, url: witness.url }, witness.host);

      await grow(5);
      expect(await client.sweep()).toEqual([{ witness: 'witness.test/w1', status: 'cosigned', size: 5 }]);
      expect(witness.requests).toEqual([{ old: 0, size: 5, status: 200 }]);
      const served = await checkpoints.latestCheckpoint();
      const opened = openCheckpoint(served!, logVkey, [witness.vkey]);
      expect(opened.checkpoint.size).toBe(5);
      expect(opened.cosignatures.map((c) => c.name)).toEqual(['witness.test/w1']);
      // The witness's own record (its monitoring view) holds the same checkpoint.
      expect(witness.latest(ORIGIN)?.size).toBe(5);

      // Up to date: nothing is sent.
      expect(await client.sweep(true)).toEqual([{ witness: 'witness.test/w1', status: 'up_to_date', size: 5 }]);
      expect(witness.requests).toHaveLength(1);

      // The log grows by a size that needs a real proof (5 -> 13: not a power of two).
      await grow(8);
      expect(await client.sweep()).toEqual([{ witness: 'witness.test/w1', status: 'cosigned', size: 13 }]);
      expect(witness.requests.at(-1)).toEqual({ old: 5, size: 13, status: 200 });
      expect(openCheckpoint((await checkpoints.latestCheckpoint())!, logVkey, [witness.vkey]).cosignatures).toHaveLength(1);
      expect(await checkpoints.witnesses()).toContainEqual(expect.objectContaining({ witness: witness.vkey, size: 13 }));
    });

    it('a crash between the witness cosigning and our store is repaired: 409 names its size, the same checkpoint is sent again, one line is kept', async () => {
      const witness = await startC2spWitness({ name: 'witness.test/w2', host: '127.0.0.22', logs: { [ORIGIN]: [logVkey] } });
      closers.push(() => witness.close());
      const client = clientFor({ vkey: witness.vkey, url: witness.url }, witness.host);
      const cp = await grow(3);

      witness.dropNextAnswer(); // it records and cosigns, and we never hear back
      const [lost] = await client.sweep();
      expect(lost).toMatchObject({ status: 'failed', reason: 'unreachable', size: cp.size });
      expect(witness.latest(ORIGIN)?.size).toBe(cp.size);
      expect(await checkpoints.largestCosignedBy(witness.vkey)).toBeNull();

      expect(await client.sweep(true)).toEqual([{ witness: 'witness.test/w2', status: 'cosigned', size: cp.size }]);
      expect(witness.requests.slice(-2)).toEqual([
        { old: 0, size: cp.size, status: 409 },
        { old: cp.size, size: cp.size, status: 200 },
      ]);
      const lines = await store.db.selectFrom('log_cosignatures').select('line').where('witness', '=', witness.vkey).execute();
      expect(lines).toHaveLength(1);
      // Again, and from two clients at once (two replicas): still one line.
      await grow(2);
      const other = clientFor({ vkey: witness.vkey, url: witness.url }, witness.host);
      const outcomes = [...(await Promise.all([client.sweep(true), other.sweep(true)])).flat()];
      expect(outcomes.every((o) => o.status === 'cosigned' || o.status === 'up_to_date')).toBe(true);
      const sizes = await store.db.selectFrom('log_cosignatures').select('size').where('witness', '=', witness.vkey).execute();
      expect(sizes.map((s) => Number(s.size)).sort((a, b) => a - b)).toEqual([cp.size, cp.size + 2]);
    });

    it('a sweep asked for while one is under way (a checkpoint signed meanwhile) is not lost: the chain goes on to the newer checkpoint', async () => {
      const witness = await startC2spWitness({ name: 'witness.test/w7', host: '127.0.0.28', logs: { [ORIGIN]: [logVkey] } });
      // In front of it, a gate that holds the first request until released, then passes everything on.
      let release!: () => void;
      const released = new Promise<void>((resolve) => (release = resolve));
      let arrived!: () => void;
      const firstArrived = new Promise<void>((resolve) => (arrived = resolve));
      const gate = await hostileWitness('127.0.0.27', (body, res) => {
        arrived();
        void released.then(async () => {
          const answer = await fetch(`${witness.url}/add-checkpoint`, { method: 'POST', body });
          res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'text/plain' }).end(await answer.text());
        });
      });
      closers.push(() => witness.close(), gate.close);
      const client = clientFor({ vkey: witness.vkey, url: gate.url }, '127.0.0.27');
      const older = await grow(2);
      const first = client.sweep();
      await firstArrived; // the first attempt read the latest checkpoint and sent it
      const newer = await grow(3);
      const second = client.sweep(); // a checkpoint was signed: shares the chain under way
      release();
      const [outcome] = await second;
      expect(outcome).toEqual({ witness: 'witness.test/w7', status: 'cosigned', size: newer.size });
      expect((await first)[0]).toEqual(outcome);
      expect(witness.requests).toEqual([
        { old: 0, size: older.size, status: 200 },
        { old: older.size, size: newer.size, status: 200 },
      ]);
    });

    it('a witness that does not know our origin (404) or our key (403) is told nothing twice until the backoff ends', async () => {
      const stranger = await startC2spWitness({ name: 'witness.test/w3', host: '127.0.0.23', logs: {} });
      const otherKey = verifierKey(ORIGIN, generateKeyPairSync('ed25519').privateKey, 'ed25519');
      const rekeyed = await startC2spWitness({ name: 'witness.test/w4', host: '127.0.0.24', logs: { [ORIGIN]: [otherKey] } });
      closers.push(() => stranger.close(), () => rekeyed.close());
      let clock = 1_000_000;
      const a = clientFor({ vkey: stranger.vkey, url: stranger.url }, stranger.host, { now: () => clock, random: () => 0.5, backoffBaseMs: 1000 });
      const b = clientFor({ vkey: rekeyed.vkey, url: rekeyed.url }, rekeyed.host);
      expect((await a.sweep())[0]).toMatchObject({ status: 'failed', reason: 'unknown_log' });
      expect((await b.sweep())[0]).toMatchObject({ status: 'failed', reason: 'forbidden' });
      // Backing off: a sweep before the retry time sends nothing; after it, it tries again.
      expect(await a.sweep()).toEqual([]);
      clock += 500;
      expect((await a.sweep())[0]).toMatchObject({ reason: 'unknown_log' });
      expect(stranger.requests).toHaveLength(2);
    });

    it('a witness holding a larger tree of our log than we ever signed (a split view) is reported, not fed', async () => {
      const witness = await startC2spWitness({ name: 'witness.test/w5', host: '127.0.0.25', logs: { [ORIGIN]: [logVkey] } });
      closers.push(() => witness.close());
      // Someone with our key showed the witness a tree we never signed: a fork far ahead of ours.
      const size = (await log.size()) + 1000;
      const note = signNote(formatCheckpoint({ origin: ORIGIN, size, rootHash: Buffer.alloc(32, 7) }), ORIGIN, logKey);
      const res = await fetch(`${witness.url}/add-checkpoint`, { method: 'POST', body: `old 0\n\n${note}` });
      expect(res.status).toBe(200);
      const [outcome] = await clientFor({ vkey: witness.vkey, url: witness.url }, witness.host).sweep();
      expect(outcome).toMatchObject({ status: 'failed', reason: 'ahead' });
      expect(await checkpoints.largestCosignedBy(witness.vkey)).toBeNull();
    });

    it('a witness that saw another tree of the same size range answers 422: inconsistent, nothing stored', async () => {
      const witness = await startC2spWitness({ name: 'witness.test/w6', host: '127.0.0.26', logs: { [ORIGIN]: [logVkey] } });
      closers.push(() => witness.close());
      const note = signNote(formatCheckpoint({ origin: ORIGIN, size: 2, rootHash: Buffer.alloc(32, 9) }), ORIGIN, logKey);
      expect((await fetch(`${witness.url}/add-checkpoint`, { method: 'POST', body: `old 0\n\n${note}` })).status).toBe(200);
      const [outcome] = await clientFor({ vkey: witness.vkey, url: witness.url }, witness.host).sweep();
      expect(outcome).toMatchObject({ status: 'failed', reason: 'inconsistent' });
      expect(witness.requests.at(-1)).toMatchObject({ old: 2, status: 422 });
    });

    describe('hostile witnesses', () => {
      const witnessKey = generateKeyPairSync('ed25519').privateKey;
      const NAME = 'hostile.test/w';
      const vkey = verifierKey(NAME, witnessKey, 'cosignature/v1');
      const nowSeconds = () => Math.floor(Date.now() / 1000);

      const expectNothingStored = async () => expect(await checkpoints.largestCosignedBy(vkey)).toBeNull();

      it('a cosignature under the right name and key ID that does not verify', async () => {
        const w = await hostileWitness('127.0.0.31', (body, res) => {
          const line = cosign(submittedText(body), NAME, witnessKey, nowSeconds());
          const blob = Buffer.from(line.slice(line.lastIndexOf(' ') + 1, -1), 'base64');
          blob[blob.length - 1] ^= 1;
          res.writeHead(200).end(`\u2014 ${NAME} ${blob.toString('base64')}\n`);
        });
        closers.push(w.close);
        const [outcome] = await clientFor({ vkey, url: w.url }, '127.0.0.31').sweep();
        expect(outcome).toMatchObject({ status: 'failed', reason: 'bad_response' });
        expect(outcome.status === 'failed' && outcome.message).toMatch(/does not verify/);
        await expectNothingStored();
      });

      it('a huge body is cut off, not read', async () => {
        const w = await hostileWitness('127.0.0.32', (_body, res) => {
          res.writeHead(200);
          const chunk = `\u2014 ${NAME} ${'A'.repeat(1020)}\n`;
          let sent = 0;
          const more = () => {
            while (sent < 4096) {
              sent += 1;
              if (!res.write(chunk)) return void res.once('drain', more);
            }
            res.end();
          };
          res.on('error', () => {});
          more();
        });
        closers.push(w.close);
        const [outcome] = await clientFor({ vkey, url: w.url }, '127.0.0.32').sweep();
        expect(outcome).toMatchObject({ status: 'failed', reason: 'unreachable' });
        expect(outcome.status === 'failed' && outcome.message).toMatch(/too large|exceeds|bytes/i);
        await expectNothingStored();
      });

      it('a valid cosignature under another name than the configured one is ignored: no cosignature by the witness', async () => {
        const w = await hostileWitness('127.0.0.33', (body, res) => res.writeHead(200).end(cosign(submittedText(body), 'someone.else/w', witnessKey, nowSeconds())));
        closers.push(w.close);
        const [outcome] = await clientFor({ vkey, url: w.url }, '127.0.0.33').sweep();
        expect(outcome).toMatchObject({ status: 'failed', reason: 'bad_response' });
        expect(outcome.status === 'failed' && outcome.message).toContain(`no cosignature by ${vkey}`);
        await expectNothingStored();
      });

      it('a redirect, even to an address the fetcher would refuse, is not followed', async () => {
        let reached = 0;
        const target = await hostileWitness('127.0.0.35', (_b, res) => {
          reached += 1;
          res.writeHead(200).end();
        });
        const w = await hostileWitness('127.0.0.34', (_body, res) => res.writeHead(307, { location: `${target.url}/add-checkpoint` }).end());
        closers.push(w.close, target.close);
        const [outcome] = await clientFor({ vkey, url: w.url }, '127.0.0.34').sweep();
        expect(outcome).toMatchObject({ status: 'failed', reason: 'unreachable' });
        expect(reached).toBe(0);
        await expectNothingStored();
      });

      it('a 409 without a text/x.tlog.size body, and a cosignature with a zero timestamp', async () => {
        const conflict = await hostileWitness('127.0.0.36', (_b, res) => res.writeHead(409, { 'content-type': 'text/plain' }).end('12\n'));
        const zero = await hostileWitness('127.0.0.37', (body, res) => res.writeHead(200).end(cosign(submittedText(body), NAME, witnessKey, 0)));
        closers.push(conflict.close, zero.close);
        expect((await clientFor({ vkey, url: conflict.url }, '127.0.0.36').sweep())[0]).toMatchObject({ status: 'failed', reason: 'bad_response' });
        const [outcome] = await clientFor({ vkey, url: zero.url }, '127.0.0.37').sweep();
        expect(outcome.status === 'failed' && outcome.message).toMatch(/zero timestamp/);
        await expectNothingStored();
      });

      it("the spec's example answer (cosignatures by keys we do not know) is ignored line by line", async () => {
        const w = await hostileWitness('127.0.0.38', (_b, res) => res.writeHead(200).end(specResponse));
        closers.push(w.close);
        const [outcome] = await clientFor({ vkey, url: w.url }, '127.0.0.38').sweep();
        expect(outcome).toMatchObject({ status: 'failed', reason: 'bad_response' });
        expect(outcome.status === 'failed' && outcome.message).toContain('no cosignature by');
        await expectNothingStored();
      });

      it('a witness at an address outside the allowed ranges is never contacted', async () => {
        const w = await hostileWitness('127.0.0.39', (_b, res) => res.writeHead(200).end());
        closers.push(w.close);
        const [outcome] = await clientFor({ vkey, url: w.url }, '127.0.0.40').sweep();
        expect(outcome).toMatchObject({ status: 'failed', reason: 'unreachable' });
        expect(w.hits()).toBe(0);
      });
    });
  });
}

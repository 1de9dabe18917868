// `vouch serve` with VOUCH_WITNESSES, as an operator runs it: a real server process (on the real
// PostgreSQL) and a C2SP tlog-witness written from the spec alone (test/helpers/c2sp-witness.ts)
// on loopback addresses. The log first runs without a witness; its verifier key (from `GET /log`)
// is given to the witness, and the server is restarted with the witness configured. Everything
// is checked over HTTP: the metadata publishes the witness key, `GET /log/checkpoint` carries
// the witness's cosignature line (verified here from the c2sp texts, not with shared/merkle), the
// witness cosigns each larger checkpoint after checking our consistency proof, and a kill -9
// after the witness cosigned a checkpoint whose answer we lost (with entries past it) ends with
// the witness at our latest checkpoint and one line per witness on it.
import { createPublicKey, randomBytes, verify } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminApi } from '../helpers/admin-api.js';
import { startC2spWitness, type C2spWitness } from '../helpers/c2sp-witness.js';
import { eventually, freePort, startServerProcess, type ServerProcess } from '../helpers/process.js';
import { HAVE_POSTGRES, POSTGRES_URL, STORE_BACKENDS } from '../helpers/services.js';
import { openCheckpoint } from '../../shared/merkle/checkpoint.js';

const TOKEN = randomBytes(32).toString('hex');
const { admin } = adminApi(TOKEN);
const SERVER_HOST = '127.0.0.101';
const WITNESS_HOST = '127.0.0.102';
const WITNESS_NAME = 'witness.test/serve';

interface Metadata {
  origin: string;
  verifier_key: string;
  witnesses: string[];
}

/** The lines of a served checkpoint note signed under `name`. */
const linesBy = (note: string, name: string) => note.split('\n').filter((l) => l.startsWith(`\u2014 ${name} `));

/**
 * Checks one `cosignature/v1` line over the note's checkpoint text against a verifier key, from
 * c2sp.org/signed-note and c2sp.org/tlog-cosignature: the key is name+hex(key ID)+base64(0x04 ||
 * Ed25519 key); the signature is key ID (4) || timestamp (8, big-endian) || Ed25519 signature over
 * "cosignature/v1\ntime <timestamp>\n" + the checkpoint text.
 */
function verifiesCosignature(note: string, line: string, vkey: string): boolean {
  const [name, keyIdHex, material] = [vkey.slice(0, vkey.indexOf('+')), vkey.split('+')[1]!, vkey.split('+').slice(2).join('+')];
  const keyBytes = Buffer.from(material, 'base64');
  const sig = Buffer.from(line.slice(line.lastIndexOf(' ') + 1), 'base64');
  if (!line.startsWith(`\u2014 ${name} `) || keyBytes.length !== 33 || keyBytes[0] !== 0x04 || sig.length !== 76) return false;
  if (sig.readUInt32BE(0) !== parseInt(keyIdHex, 16)) return false;
  const text = note.slice(0, note.indexOf('\n\n') + 1);
  const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: keyBytes.subarray(1).toString('base64url') }, format: 'jwk' });
  return verify(null, Buffer.from(`cosignature/v1\ntime ${sig.readBigUInt64BE(4)}\n${text}`, 'utf8'), key, sig.subarray(12));
}

describe.skipIf(!HAVE_POSTGRES)('vouch serve with an outside witness (VOUCH_WITNESSES)', () => {
  const storeHandle = STORE_BACKENDS.find((s) => s.name === 'postgres')!.create();
  let env: Record<string, string>;
  let server: ServerProcess;
  let url: string;
  let witness: C2spWitness;
  let metadata: Metadata;
  let issued = 0;

  const issueVerdicts = async (n: number) => {
    for (let i = 0; i < n; i++) {
      const res = await admin({ url }, 'POST', '/verdicts', {
        subjects: [{ algorithm: 'sha256', digest: randomBytes(32).toString('hex') }],
        label: 'ok',
        confidence: 0.9,
        method: 'human',
      });
      expect(res.status).toBe(201);
      issued += 1;
    }
  };
  const servedCheckpoint = async () => {
    const res = await fetch(`${url}/log/checkpoint`);
    expect(res.status).toBe(200);
    return res.text();
  };
  const sizeOf = (note: string) => Number(note.split('\n')[1]);
  /** The served checkpoint once it is of `size` (and carries the witness's line, when `cosigned`). */
  const checkpointOf = (size: number, cosigned = true) =>
    eventually(
      async () => {
        const note = await servedCheckpoint();
        return sizeOf(note) === size && (!cosigned || linesBy(note, WITNESS_NAME).length > 0) ? note : undefined;
      },
      20_000,
      `the checkpoint of size ${size}${cosigned ? " with the witness's cosignature" : ''}`,
    );
  const metrics = async () => (await fetch(`${url}/metrics`)).text();

  beforeAll(async () => {
    const port = await freePort(SERVER_HOST);
    url = `http://${SERVER_HOST}:${port}`;
    env = {
      VOUCH_DATA_DIR: storeHandle.config.dataDir,
      DATABASE_URL: POSTGRES_URL,
      VOUCH_DATABASE_SCHEMA: storeHandle.config.databaseSchema!,
      REDIS_URL: '',
      VOUCH_HOST: SERVER_HOST,
      VOUCH_PORT: String(port),
      VOUCH_PUBLIC_URL: url,
      VOUCH_ADMIN_TOKEN: TOKEN,
      VOUCH_FEDERATION_ALLOW_HTTP: 'true',
      // The witness's address only: the private range the server may reach.
      VOUCH_ALLOW_PRIVATE_NETWORKS: `${WITNESS_HOST}/32`,
      // A checkpoint after every third verdict and no timed ones: the sizes are known.
      VOUCH_CHECKPOINT_AFTER_APPENDS: '3',
      VOUCH_CHECKPOINT_EVERY_MS: '3600000',
    };
    server = await startServerProcess(env);
  });

  afterAll(async () => {
    await server?.stop();
    await witness?.close();
    await storeHandle.cleanup();
  });

  it('a log joins a witness: its key goes to the witness, and restarted with VOUCH_WITNESSES it publishes the witness key and serves its cosignature', async () => {
    metadata = (await (await fetch(`${url}/log`)).json()) as Metadata;
    expect(metadata.witnesses).toEqual([]);
    await issueVerdicts(3);
    await checkpointOf(3, false);

    // The witness operator adds our log by the key we publish.
    witness = await startC2spWitness({ name: WITNESS_NAME, host: WITNESS_HOST, logs: { [metadata.origin]: [metadata.verifier_key] } });
    expect(await server.stop()).toBe(0);
    env.VOUCH_WITNESSES = `${witness.vkey} ${witness.url}`;
    server = await startServerProcess(env);

    const published = (await (await fetch(`${url}/log`)).json()) as Metadata;
    expect(published).toMatchObject({ origin: metadata.origin, verifier_key: metadata.verifier_key, witnesses: [witness.vkey] });
    // The first sweep on start brings the witness to the checkpoint signed before the restart.
    const note = await checkpointOf(3);
    const [line] = linesBy(note, WITNESS_NAME);
    expect(linesBy(note, WITNESS_NAME)).toHaveLength(1);
    expect(verifiesCosignature(note, line!, published.witnesses[0]!)).toBe(true);
    expect(verifiesCosignature(note.replace(`\n3\n`, `\n4\n`), line!, published.witnesses[0]!)).toBe(false);
    // The project's own verifier agrees: the log's signature and the witness's cosignature.
    const opened = openCheckpoint(note, published.verifier_key, published.witnesses);
    expect(opened.checkpoint.size).toBe(3);
    expect(opened.cosignatures.map((c) => c.name)).toEqual([WITNESS_NAME]);
    expect(witness.requests).toEqual([{ old: 0, size: 3, status: 200 }]);
  });

  it('as the log grows, the witness cosigns each larger checkpoint after checking our consistency proof from the size it held', async () => {
    await issueVerdicts(3);
    const note = await checkpointOf(6);
    expect(verifiesCosignature(note, linesBy(note, WITNESS_NAME)[0]!, witness.vkey)).toBe(true);
    // old 3 -> 6 carries a real proof (3 is not a power of two); the witness refuses bad ones with 422.
    expect(witness.requests.at(-1)).toEqual({ old: 3, size: 6, status: 200 });
    expect(witness.latest(metadata.origin)?.size).toBe(6);
    expect(await metrics()).toContain(`vouch_log_witness_outcomes_total{witness="${WITNESS_NAME}",outcome="cosigned"} 2`);
  });

  it('killed (-9) after the witness cosigned a checkpoint whose answer was lost, with entries past it: restarted, the witness ends at our latest checkpoint, one line per size', async () => {
    witness.dropNextAnswer();
    await issueVerdicts(3);
    // The witness recorded and cosigned 9, but we never heard back.
    await eventually(async () => witness.requests.at(-1)?.status === 0, 20_000, 'the witness to cosign 9 and drop the answer');
    expect(witness.requests.at(-1)).toEqual({ old: 6, size: 9, status: 0 });
    expect(witness.latest(metadata.origin)?.size).toBe(9);
    const lost = await servedCheckpoint();
    expect(sizeOf(lost)).toBe(9);
    expect(linesBy(lost, WITNESS_NAME)).toEqual([]);
    expect(await metrics()).toContain(`vouch_log_witness_outcomes_total{witness="${WITNESS_NAME}",outcome="unreachable"} 1`);
    // Two more verdicts: logged, no checkpoint of them yet. Then the crash.
    await issueVerdicts(2);
    const before = witness.requests.length;
    await server.stop('SIGKILL');
    server = await startServerProcess(env);

    // On start it signs a checkpoint of all 11 entries and tells the witness, which names the size it
    // holds (409: 9, not the 6 we last stored); we resend from there. The first sweep on start
    // usually reads checkpoint 9 before 11 is signed: 11 must then follow at once (the sweep asked
    // for by the new checkpoint joins the one under way), not at the 30 s poll, past this wait.
    const note = await checkpointOf(issued);
    expect(issued).toBe(11);
    expect(linesBy(note, WITNESS_NAME)).toHaveLength(1);
    expect(verifiesCosignature(note, linesBy(note, WITNESS_NAME)[0]!, witness.vkey)).toBe(true);
    expect(witness.latest(metadata.origin)?.size).toBe(11);
    const after = witness.requests.slice(before);
    expect(after[0]).toMatchObject({ old: 6, status: 409 });
    expect(after.at(-1)).toEqual({ old: 9, size: 11, status: 200 });
    expect(after.every((r) => r.status === 200 || r.status === 409)).toBe(true);
    // Whether the first attempt after the restart read checkpoint 9 or 11, our store holds one
    // cosignature per size, for sizes we signed and up to the latest.
    const db = new pg.Client({ connectionString: POSTGRES_URL });
    await db.connect();
    try {
      const { rows } = await db.query<{ size: string }>(`SELECT size FROM ${env.VOUCH_DATABASE_SCHEMA}.log_cosignatures WHERE witness = $1 ORDER BY size`, [witness.vkey]);
      const sizes = rows.map((r) => Number(r.size));
      expect(new Set(sizes).size).toBe(sizes.length);
      expect(sizes).toEqual(expect.arrayContaining([3, 6, 11]));
      expect(sizes.every((s) => [3, 6, 9, 11].includes(s))).toBe(true);
    } finally {
      await db.end();
    }
    expect(witness.requests.filter((r) => r.status === 200 && r.size === 11)).toHaveLength(1);
  });
});

// Outside witnesses as the C2SP specs print them and as operators configure them: the spec's
// examples (test/fixtures/c2sp) against our cosignature format and the test witness's request
// parser, and hostile witness configuration refused at start with the reason.
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../server/config/index.js';
import { cosign, cosignatureMessage, parseCheckpoint, verifierKey } from '../../shared/merkle/checkpoint.js';
import { startC2spWitness, type C2spWitness } from '../helpers/c2sp-witness.js';

const fixture = (name: string) => readFileSync(new URL(`../fixtures/c2sp/${name}`, import.meta.url), 'utf8');
const SPEC_REQUEST = fixture('tlog-witness-add-checkpoint-request.txt');
const SPEC_COSIGNED = fixture('tlog-cosignature-checkpoint.txt');

describe('the C2SP examples', () => {
  it("tlog-cosignature's example line has the layout we write: key ID, big-endian timestamp, 64-byte Ed25519 signature", () => {
    const text = SPEC_COSIGNED.slice(0, SPEC_COSIGNED.indexOf('\n\n') + 1);
    expect(parseCheckpoint(text)).toMatchObject({ origin: 'example.com/behind-the-sofa', size: 20852163 });
    const line = SPEC_COSIGNED.split('\n').find((l) => l.startsWith('\u2014 witness.example.com/w1 '))!;
    const blob = Buffer.from(line.split(' ')[2]!, 'base64');
    expect(blob).toHaveLength(4 + 8 + 64);
    // The spec's signed-message example says "time 1679315147" for this checkpoint.
    expect(blob.readBigUInt64BE(4)).toBe(1679315147n);
    expect(cosignatureMessage(text, 1679315147)).toBe(
      'cosignature/v1\ntime 1679315147\nexample.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n',
    );
    // Ours, over the same text, is laid out the same way.
    const ours = cosign(text, 'witness.example.com/w1', generateKeyPairSync('ed25519').privateKey, 1679315147);
    const oursBlob = Buffer.from(ours.trim().split(' ')[2]!, 'base64');
    expect(oursBlob).toHaveLength(76);
    expect(oursBlob.readBigUInt64BE(4)).toBe(1679315147n);
  });

  describe("tlog-witness's example request, sent to the test witness", () => {
    let unknown: C2spWitness;
    let known: C2spWitness;
    beforeAll(async () => {
      unknown = await startC2spWitness({ name: 'w.test/unknown', logs: {} });
      // Knows the origin, under a key that did not sign the example.
      const other = verifierKey('example.com/behind-the-sofa', generateKeyPairSync('ed25519').privateKey, 'ed25519');
      known = await startC2spWitness({ name: 'w.test/known', logs: { 'example.com/behind-the-sofa': [other] } });
    });
    afterAll(async () => {
      await unknown?.close();
      await known?.close();
    });

    it('parses as a well-formed request: 404 for an unknown origin, 403 for a known one without a trusted signature', async () => {
      const post = (w: C2spWitness, body: string) => fetch(`${w.url}/add-checkpoint`, { method: 'POST', body }).then((r) => r.status);
      expect(await post(unknown, SPEC_REQUEST)).toBe(404);
      expect(await post(known, SPEC_REQUEST)).toBe(403);
      expect(known.requests.at(-1)).toEqual({ old: 20852014, size: 20852163, status: 403 });
      // And what is not well formed is a 400: a leading zero, a 64th proof line, no blank line.
      expect(await post(known, SPEC_REQUEST.replace('old 20852014', 'old 020852014'))).toBe(400);
      const proofLine = SPEC_REQUEST.split('\n')[1]!;
      expect(await post(known, SPEC_REQUEST.replace(`${proofLine}\n`, `${proofLine}\n`.repeat(64)))).toBe(400);
      expect(await post(known, SPEC_REQUEST.replace('\n\n', '\n'))).toBe(400);
    });
  });
});

describe('witness configuration', () => {
  const key = generateKeyPairSync('ed25519').privateKey;
  const vkey = verifierKey('witness.example/w1', key, 'cosignature/v1');

  it('reads VOUCH_WITNESSES entries "<vkey> <url>" separated by commas or newlines, and a file list', () => {
    const second = verifierKey('witness.example/w2', generateKeyPairSync('ed25519').privateKey, 'cosignature/v1');
    const config = loadConfig({ VOUCH_WITNESSES: `${vkey} https://witness.example/w1,\n ${second}   https://witness.example/w2/ ` });
    expect(config.log.witnesses).toEqual([
      { vkey, url: 'https://witness.example/w1' },
      { vkey: second, url: 'https://witness.example/w2/' },
    ]);
    expect(loadConfig({}).log.witnesses).toEqual([]);
  });

  it.each([
    ['a log (ed25519) key instead of a cosignature key', `${verifierKey('witness.example/w1', key, 'ed25519')} https://witness.example/w1`, /log\.witnesses\.0\.vkey.*0x04/],
    ['a key whose hash does not match', `${vkey.replace(/\+[0-9a-f]{8}\+/, '+00000000+')} https://witness.example/w1`, /key hash does not match/],
    ['a URL with credentials', `${vkey} https://user:pw@witness.example/w1`, /no credentials, query or fragment/],
    ['a URL with a query', `${vkey} https://witness.example/w1?x=1`, /no credentials, query or fragment/],
    ['a non-http URL', `${vkey} ftp://witness.example/w1`, /log\.witnesses\.0\.url/],
    ['an entry without a URL', vkey, /entry 1 is not "<vkey> <url>"/],
    ['a key listed twice', `${vkey} https://a.example/w, ${vkey} https://b.example/w`, /listed twice/],
  ])('refuses %s, naming what is wrong', (_what, value, message) => {
    expect(() => loadConfig({ VOUCH_WITNESSES: value })).toThrow(ConfigError);
    expect(() => loadConfig({ VOUCH_WITNESSES: value })).toThrow(message);
  });

  it('refuses a name that is not the key\'s name (config file form)', () => {
    expect(() => loadConfig({}, { 'log.witnesses': [{ name: 'witness.example/other', vkey, url: 'https://witness.example/w1' }] })).toThrow(/not the key's name/);
  });
});

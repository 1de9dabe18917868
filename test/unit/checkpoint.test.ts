/**
 * Signed notes, checkpoints and cosignatures: published vectors (Go sumdb/note, c2sp.org
 * signed-note, a real witnessed checkpoint), round trips with node:crypto keys, and rejections.
 */
import { createPrivateKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  appendSignatureLines,
  cosign,
  cosignatureMessage,
  formatCheckpoint,
  keyId,
  NoteError,
  openCheckpoint,
  openNote,
  parseCheckpoint,
  parseVerifierKey,
  signNote,
  verifierKey,
  type NoteErrorCode,
} from '../../shared/merkle/checkpoint.js';
import { leafHash, MemoryTree } from '../../shared/merkle/tree.js';

/** Asserts `fn` throws a NoteError with `code` (and optionally a message matching `msg`). */
function expectNoteError(fn: () => unknown, code: NoteErrorCode, msg?: RegExp): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught, `expected NoteError ${code}`).toBeInstanceOf(NoteError);
  expect((caught as NoteError).code, (caught as NoteError).message).toBe(code);
  if (msg) expect((caught as NoteError).message).toMatch(msg);
}

/** Ed25519 private key from a 32-byte seed (PKCS#8 DER: fixed prefix || seed). */
function keyFromSeed(seed: Uint8Array): KeyObject {
  const prefix = Buffer.from('302e020100300506032b657004220420', 'hex');
  return createPrivateKey({ key: Buffer.concat([prefix, seed]), format: 'der', type: 'pkcs8' });
}

/** Decodes a Go note signer key "PRIVATE+KEY+name+hash+base64(0x01 || seed)". */
function goSignerKey(skey: string): { name: string; key: KeyObject } {
  const m = /^PRIVATE\+KEY\+([^+]+)\+[0-9a-f]{8}\+(.+)$/.exec(skey);
  if (!m) throw new Error('not a Go signer key');
  const raw = Buffer.from(m[2], 'base64');
  expect(raw[0]).toBe(0x01);
  return { name: m[1], key: keyFromSeed(raw.subarray(1)) };
}

const root32 = leafHash(new TextEncoder().encode('some root'));
const ed25519 = (): { publicKey: KeyObject; privateKey: KeyObject } => generateKeyPairSync('ed25519');

// ---------------------------------------------------------------------------------------------
// Published vectors
// ---------------------------------------------------------------------------------------------

describe('golang.org/x/mod/sumdb/note vectors', () => {
  const vkey = 'PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW';
  const skey = 'PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz';
  const text = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
  const peterLine = '— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n';
  const enochKey = 'EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop';
  const enochLine = '— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n';

  it('derives the same verifier key and signs byte for byte like Go', () => {
    const { name, key } = goSignerKey(skey);
    expect(verifierKey(name, key)).toBe(vkey);
    expect(keyId(name, key)).toBe(0xc74f20a3);
    expect(signNote(text, name, key)).toBe(`${text}\n${peterLine}`);
  });

  it('opens the published notes (singly and doubly signed)', () => {
    const opened = openNote(`${text}\n${peterLine}`, [vkey]);
    expect(opened.text).toBe(text);
    expect(opened.signatures).toEqual([
      { name: 'PeterNeumann', keyId: 0xc74f20a3, base64: peterLine.slice(15, -1), type: 'ed25519' },
    ]);
    const both = `${text}\n${peterLine}${enochLine}`;
    expect(openNote(both, [vkey, enochKey]).signatures.map((s) => s.name)).toEqual(['PeterNeumann', 'EnochRoot']);
    const onlyPeter = openNote(both, [vkey]);
    expect(onlyPeter.unverified).toEqual([{ name: 'EnochRoot', keyId: 0xaf0cfe78, base64: enochLine.slice(12, -1) }]);
    // Bytes in, same result.
    expect(openNote(new TextEncoder().encode(both), [vkey, enochKey]).signatures).toHaveLength(2);
  });

  it('rejects the published note once modified', () => {
    expectNoteError(() => openNote(`${text.replace('cryptography', 'cryptographY')}\n${peterLine}`, [vkey]), 'invalid_signature');
  });
});

describe('c2sp.org/signed-note example', () => {
  it('verifies the spec example', () => {
    const vkey = 'example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k';
    const v = parseVerifierKey(vkey);
    expect(v).toMatchObject({ name: 'example.com/foo', keyId: 0x530d903a, type: 'ed25519' });
    expect(Buffer.from(v.publicKey).toString('hex')).toBe('e932791ae6e7a840a46164c904786426d5e7821dd8b29a00d61cae72afdd4da4');
    expect(verifierKey(v.name, v.key)).toBe(vkey);
    const note =
      'This is an example message.\n\n— example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n';
    expect(openNote(note, [v]).text).toBe('This is an example message.\n');
  });
});

describe('a real witnessed checkpoint (transparency.dev witness network)', () => {
  // arche2025h1 staging CT log: an RFC 6962 signature (type 0x05, unknown to us, same name as the
  // log key), the log's Ed25519 signature, and five witness cosignatures (cosignature/v1).
  const body = 'arche2025h1.staging.ct.transparency.dev\n1432088532\nU7WM79jrzyhGZ5/GUBTpM7NzwdyfFx61t3RovgcC4Ro=\n';
  const sigs = [
    '— arche2025h1.staging.ct.transparency.dev zTM8sQAAAZ5W0WdjBAMARjBEAiBjW5IQf9pvsYLfQFX6hoGREPMHbdQ3urbllzalApkptQIgIpwtEroeW2BXaHAI4kJXFbon5Ch9MNL5zRNZ55lvGt0=',
    '— arche2025h1.staging.ct.transparency.dev ui8GwCF1+kWqZrxGdhj4aX3gcw7XUlXQQabg/27lefwhUkzbC3NygNI75MdhL1bfTW9g8Ei59RA23oHP7Ry1k3ZFWwQ=',
    '— transparency.dev/DEV:witness-little-garden 2AQqhwAAAABqEiEgzgFIqqhbUoDwjMWE6UP8nd8/KYTzwZ2rhIgcqoXHAwVkjZr4AscylP3v7sEodkRAErumC2q44vdgJY096st5BQ==',
    '— witness1.smartit.nu/witness1 pIyCDwAAAABqEiEghIp82KWebrw7/oHQwlTAm3g2RKS4+eebl8eO0WH+/iEcxZ75W3u5hNI7TOQtmJbqmNWVuE0tgh0XwzdZsDsUAQ==',
    '— remora.n621.de 2net5wAAAABqEiEgPlfF3V06o0Y+fHM+J5J9s27wgxxcOVSpZ/2g/KSiXCg9DEZI+aVCIobWX9sXTynk5XeU/zZ0WBxtqB0DrAWfBw==',
    '— witness.stagemole.eu Z/euoAAAAABqEiEgw0i+7g2ENfDAWHmtRzCfKTHSDwYDJA2NmKeGi9Y8FtEyOUvVr+AJmIY/2TUFucgKi7lI7cUiOvKFYe/TmN9DAg==',
  ];
  const note = `${body}\n${sigs.join('\n')}\n`;
  const logKey = 'arche2025h1.staging.ct.transparency.dev+ba2f06c0+AU0vHmlGCS/PdN8b2OaGmKprLI8HKM+dJ472xgFYh15f';
  const witnesses = [
    'remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2',
    'witness.stagemole.eu+67f7aea0+BEqSG3yu9YrmcM3BHvQYTxwFj3uSWakQepafafpUqklv',
    'transparency.dev/DEV:witness-little-garden+d8042a87+BCtusOxINQNUTN5Oj8HObRkh2yHf/MwYaGX4CPdiVEPM',
    'witness1.smartit.nu/witness1+a48c820f+BPSFWg9G6KPiO7QPryYO5Xq4oYJJ+kAvLKLSimDhoxMO',
  ];

  it('verifies the log signature and four Ed25519 cosignatures with their timestamps', () => {
    const opened = openCheckpoint(note, logKey, witnesses);
    expect(opened.checkpoint).toMatchObject({ origin: 'arche2025h1.staging.ct.transparency.dev', size: 1432088532, extensions: [] });
    expect(opened.logSignature).toMatchObject({ keyId: 0xba2f06c0, type: 'ed25519' });
    expect(opened.cosignatures.map((c) => [c.name, c.type, c.timestamp])).toEqual([
      ['transparency.dev/DEV:witness-little-garden', 'cosignature/v1', 0x6a122120],
      ['witness1.smartit.nu/witness1', 'cosignature/v1', 0x6a122120],
      ['remora.n621.de', 'cosignature/v1', 0x6a122120],
      ['witness.stagemole.eu', 'cosignature/v1', 0x6a122120],
    ]);
    // The RFC 6962 signature shares the log's name but not its key ID: ignored, not an error.
    expect(opened.unverified).toEqual([expect.objectContaining({ name: 'arche2025h1.staging.ct.transparency.dev', keyId: 0xcd333cb1 })]);
    expect(parseVerifierKey(witnesses[0]).type).toBe('cosignature/v1');
  });

  it('rejects it when the size is changed', () => {
    const forged = note.replace('\n1432088532\n', '\n1432088533\n');
    expectNoteError(() => openNote(forged, [witnesses[0]]), 'invalid_signature', /remora\.n621\.de\+da77ade7/);
    expectNoteError(() => openCheckpoint(forged, logKey), 'invalid_signature');
  });
});

// ---------------------------------------------------------------------------------------------
// Checkpoint body
// ---------------------------------------------------------------------------------------------

describe('checkpoint body', () => {
  it('formats and parses round trip, with and without extensions', () => {
    const text = formatCheckpoint({ origin: 'vouch.example/log', size: 42, rootHash: root32 });
    expect(text).toBe(`vouch.example/log\n42\n${Buffer.from(root32).toString('base64')}\n`);
    const cp = parseCheckpoint(text);
    expect(cp).toEqual({ origin: 'vouch.example/log', size: 42, rootHash: root32, extensions: [] });
    const ext = formatCheckpoint({ ...cp, extensions: ['— not a signature', 'x'] });
    expect(parseCheckpoint(ext).extensions).toEqual(['— not a signature', 'x']);
    expect(parseCheckpoint(formatCheckpoint({ origin: 'o', size: 0, rootHash: root32 })).size).toBe(0);
    expect(parseCheckpoint(formatCheckpoint({ origin: 'o', size: 2 ** 53 - 1, rootHash: root32 })).size).toBe(2 ** 53 - 1);
  });

  it('parses the tlog-checkpoint spec example', () => {
    const cp = parseCheckpoint('example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n');
    expect(cp.origin).toBe('example.com/behind-the-sofa');
    expect(cp.size).toBe(20852163);
    expect(cp.rootHash).toHaveLength(32);
  });

  it('rejects every malformed body', () => {
    const r = Buffer.from(root32).toString('base64');
    const bad: [string, RegExp][] = [
      [`o\n42\n${r}`, /end with a newline/],
      [`o\n42\n`, /at least 3 lines/],
      [`\n42\n${r}\n`, /empty origin/],
      [`o\n042\n${r}\n`, /leading zeros/],
      [`o\n+42\n${r}\n`, /decimal/],
      [`o\n-1\n${r}\n`, /decimal/],
      [`o\n4.2\n${r}\n`, /decimal/],
      [`o\n 42\n${r}\n`, /decimal/],
      [`o\n\n${r}\n`, /decimal/],
      [`o\n0x2a\n${r}\n`, /decimal/],
      [`o\n١٢\n${r}\n`, /decimal/],
      [`o\n18446744073709551615\n${r}\n`, /exceeds 2\^53 - 1/],
      [`o\n42\n${r.slice(0, -1)}\n`, /base64/],
      [`o\n42\n${r.replace('=', '')}\n`, /base64/],
      [`o\n42\n${r} \n`, /base64/],
      [`o\n42\n${Buffer.from(root32).toString('base64url')}=\n`, /base64/],
      [`o\n42\n${Buffer.alloc(31).toString('base64')}\n`, /31 bytes/],
      [`o\n42\n${Buffer.alloc(33).toString('base64')}\n`, /33 bytes/],
      [`o\n42\n${r}\n\n`, /extension line 0 is empty/],
      [`o\n42\n${r}\next\n\n`, /extension line 1 is empty/],
      [`o\r\n42\n${r}\n`, /control character U\+000D/],
      [`o\t\n42\n${r}\n`, /control character U\+0009/],
      [`o\uD800\n42\n${r}\n`, /UTF-8/],
    ];
    for (const [text, why] of bad) expectNoteError(() => parseCheckpoint(text), 'malformed_checkpoint', why);
    // Non-canonical base64: same bytes, different padding bits.
    const last = r.at(-2)!;
    const sibling = 'AEIMQUYcgkosw048'.includes(last) ? String.fromCharCode(last.charCodeAt(0) + 1) : last;
    if (sibling !== last) expectNoteError(() => parseCheckpoint(`o\n1\n${r.slice(0, -2)}${sibling}=\n`), 'malformed_checkpoint', /base64/);
  });

  it('refuses to format what it could not parse back', () => {
    expectNoteError(() => formatCheckpoint({ origin: '', size: 1, rootHash: root32 }), 'invalid_argument', /origin/);
    expectNoteError(() => formatCheckpoint({ origin: 'a\nb', size: 1, rootHash: root32 }), 'invalid_argument', /newline/);
    expectNoteError(() => formatCheckpoint({ origin: 'o', size: -1, rootHash: root32 }), 'invalid_argument', /size/);
    expectNoteError(() => formatCheckpoint({ origin: 'o', size: 1.5, rootHash: root32 }), 'invalid_argument', /size/);
    expectNoteError(() => formatCheckpoint({ origin: 'o', size: 1, rootHash: root32.subarray(1) }), 'invalid_argument', /32 bytes/);
    expectNoteError(() => formatCheckpoint({ origin: 'o', size: 1, rootHash: root32, extensions: [''] }), 'invalid_argument', /extension line 0/);
    expectNoteError(() => formatCheckpoint({ origin: 'o\u0007', size: 1, rootHash: root32 }), 'invalid_argument', /control/);
  });
});

// ---------------------------------------------------------------------------------------------
// Signing and opening with node:crypto keys
// ---------------------------------------------------------------------------------------------

describe('signed checkpoints with node:crypto keys', () => {
  const log = ed25519();
  const name = 'vouch.example/log';
  const vkey = verifierKey(name, log.publicKey);
  const tree = new MemoryTree();
  for (let i = 0; i < 5; i++) tree.append(new TextEncoder().encode(`verdict ${i}`));
  const body = formatCheckpoint({ origin: name, size: tree.size, rootHash: tree.root() });
  const note = signNote(body, name, log.privateKey);

  it('signs and opens a checkpoint', () => {
    expect(vkey).toMatch(/^vouch\.example\/log\+[0-9a-f]{8}\+A[A-Za-z0-9+/]{43}$/);
    expect(verifierKey(name, log.privateKey)).toBe(vkey); // a private key yields the same verifier key
    expect(note.startsWith(`${body}\n— ${name} `)).toBe(true);
    expect(note.endsWith('\n')).toBe(true);
    const opened = openCheckpoint(note, vkey);
    expect(opened.checkpoint.size).toBe(5);
    expect(Buffer.from(opened.checkpoint.rootHash)).toEqual(Buffer.from(tree.root()));
    expect(opened.cosignatures).toEqual([]);
    expect(openNote(note, [parseVerifierKey(vkey)]).text).toBe(body);
  });

  it('rejects a wrong key, a modified body, and notes signed only by unknown keys', () => {
    const other = ed25519();
    // Same name, other key: the key ID differs, so the signature is from an unknown key.
    expectNoteError(() => openNote(note, [verifierKey(name, other.publicKey)]), 'unverified_note', /no signature by a trusted key/);
    // Other name, same key: unknown as well.
    expectNoteError(() => openNote(note, [verifierKey('someone.else', log.publicKey)]), 'unverified_note');
    // Modified body, known key.
    expectNoteError(() => openNote(note.replace('\n5\n', '\n6\n'), [vkey]), 'invalid_signature');
    // A note with only an unknown signer.
    expectNoteError(() => openNote(signNote(body, 'stranger', other.privateKey), [vkey]), 'unverified_note', /stranger\+/);
    // No trusted keys at all.
    expectNoteError(() => openNote(note, []), 'unverified_note');
    // Forged signature bytes under the right key ID.
    const [head, sig] = note.split(`— ${name} `);
    const raw = Buffer.from(sig.trim(), 'base64');
    raw[10] ^= 1;
    expectNoteError(() => openNote(`${head}— ${name} ${raw.toString('base64')}\n`, [vkey]), 'invalid_signature');
    // Truncated signature under the right key ID.
    expectNoteError(() => openNote(`${head}— ${name} ${raw.subarray(0, 40).toString('base64')}\n`, [vkey]), 'invalid_signature', /is 36 bytes, expected 64/);
    // A valid signature next to a bad one by the same trusted key: the note is rejected.
    expectNoteError(() => openNote(`${note}— ${name} ${raw.toString('base64')}\n`, [vkey]), 'invalid_signature');
  });

  it('rejects malformed notes', () => {
    const line = note.slice(body.length + 1);
    const bad: [string, RegExp][] = [
      [note.slice(0, -1), /final newline/],
      [`${body}${line}`, /no blank line/],
      [body, /no blank line/],
      [`${body}\n`, /no signature lines/],
      [`${body}\n${line.replace('—', '-')}`, /em dash/],
      [`${body}\n${line.replace('— ', '—')}`, /em dash/],
      [`${body}\n${line.replace(' ', '  ')}`, /invalid key name/],
      [`${body}\n${line.slice(0, -3)}\n`, /base64/],
      [`${body}\n${line.slice(0, -1)} \n`, /base64/],
      [`${body}\n— ${name}\n`, /no signature/],
      [`${body}\n— ${name} AAAA\n`, /too short/],
      [`${body}\n${line}\n`, /no signature lines/], // the last blank line wins, as in Go
      [`${body}\n${line}${line.replace('\n', '\r\n')}`, /control character/],
      [`${body.replace('\n', '\u0000\n')}\n${line}`, /control character U\+0000/],
      [`\uDC00${note}`, /UTF-8/],
      [`${body}\n${line.repeat(101)}`, /more than 100 signatures/],
    ];
    for (const [text, why] of bad) expectNoteError(() => openNote(text, [vkey]), 'malformed_note', why);
    expectNoteError(() => openNote(Uint8Array.of(0x61, 0x0a, 0x0a, 0xff, 0x0a), [vkey]), 'malformed_note', /UTF-8/);
  });

  it('rejects a malformed checkpoint inside a valid note, and a foreign origin', () => {
    const nonCheckpoint = signNote('hello\n', name, log.privateKey);
    expect(openNote(nonCheckpoint, [vkey]).text).toBe('hello\n');
    expectNoteError(() => openCheckpoint(nonCheckpoint, vkey), 'malformed_checkpoint');
    const leadingZero = signNote(body.replace('\n5\n', '\n05\n'), name, log.privateKey);
    expectNoteError(() => openCheckpoint(leadingZero, vkey), 'malformed_checkpoint', /leading zeros/);
    const foreign = signNote(formatCheckpoint({ origin: 'other.example/log', size: 1, rootHash: root32 }), name, log.privateKey);
    expectNoteError(() => openCheckpoint(foreign, vkey), 'wrong_origin');
    expect(openCheckpoint(foreign, vkey, [], { origin: 'other.example/log' }).checkpoint.origin).toBe('other.example/log');
    // Signed by a witness only, not by the log.
    const w = ed25519();
    const onlyWitness = `${body}\n${cosign(body, 'witness.example', w.privateKey, 1_700_000_000)}`;
    expectNoteError(() => openCheckpoint(onlyWitness, vkey, [verifierKey('witness.example', w.publicKey, 'cosignature/v1')]), 'unverified_note', /log key/);
  });

  it('rejects bad verifier keys and ambiguous trust lists', () => {
    const good = vkey;
    const [n, h, k] = [good.slice(0, good.indexOf('+')), good.split('+')[1], good.slice(good.indexOf('+', good.indexOf('+') + 1) + 1)];
    const bad: [string, RegExp][] = [
      [`${n}+${h}`, /name\+hash\+key/],
      [`${n}`, /name\+hash\+key/],
      [`+${h}+${k}`, /invalid key name/],
      [`a b+${h}+${k}`, /invalid key name/],
      [`${n}+${h.slice(1)}+${k}`, /8 hex digits/],
      [`${n}+zzzzzzzz+${k}`, /8 hex digits/],
      [`${n}+00000000+${k}`, /does not match/],
      [`x${n}+${h}+${k}`, /does not match/],
      [`${n}+${h}+${k.slice(0, -1)}`, /base64/],
      [`${n}+${h}+`, /base64/],
      [`${n}+${h}+${Buffer.concat([Buffer.of(0x02), Buffer.from(k, 'base64').subarray(1)]).toString('base64')}`, /unsupported signature type 0x02/],
      [`${n}+${h}+${Buffer.from(k, 'base64').subarray(0, 32).toString('base64')}`, /31 bytes/],
    ];
    for (const [key, why] of bad) expectNoteError(() => parseVerifierKey(key), 'malformed_key', why);
    expectNoteError(() => openNote(note, [vkey, vkey]), 'ambiguous_key');
    expectNoteError(() => verifierKey('bad name', log.publicKey), 'invalid_argument');
    expectNoteError(() => verifierKey('a+b', log.publicKey), 'invalid_argument');
    expectNoteError(() => verifierKey(name, generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey), 'invalid_argument', /Ed25519/);
    expectNoteError(() => signNote(body, name, log.publicKey), 'invalid_argument', /private/);
    expectNoteError(() => signNote(body.slice(0, -1), name, log.privateKey), 'invalid_argument', /newline/);
  });
});

// ---------------------------------------------------------------------------------------------
// Cosignatures
// ---------------------------------------------------------------------------------------------

describe('cosignature/v1', () => {
  const log = ed25519();
  const witness = ed25519();
  const logName = 'vouch.example/log';
  const witnessName = 'peer.example/witness';
  const body = formatCheckpoint({ origin: logName, size: 7, rootHash: root32 });
  const note = signNote(body, logName, log.privateKey);
  const logKey = verifierKey(logName, log.publicKey);
  const cosigKey = verifierKey(witnessName, witness.publicKey, 'cosignature/v1');
  const t = 1_760_000_000;

  it('produces keyID || uint64be(time) || signature over the cosignature/v1 message', () => {
    const line = cosign(body, witnessName, witness.privateKey, t);
    expect(line.startsWith(`— ${witnessName} `)).toBe(true);
    const blob = Buffer.from(line.slice(`— ${witnessName} `.length, -1), 'base64');
    expect(blob).toHaveLength(4 + 8 + 64);
    expect(blob.readUInt32BE(0)).toBe(keyId(witnessName, witness.publicKey, 'cosignature/v1'));
    expect(blob.readUInt32BE(0)).not.toBe(keyId(witnessName, witness.publicKey, 'ed25519'));
    expect(blob.readBigUInt64BE(4)).toBe(BigInt(t));
    expect(cosignatureMessage(body, t)).toBe(`cosignature/v1\ntime ${t}\n${body}`);
    expect(cosigKey.split('+')[2].startsWith('B')).toBe(true); // 0x04 type byte
  });

  it('verifies cosignatures appended to the log-signed checkpoint', () => {
    const w2 = ed25519();
    const lines = [cosign(body, witnessName, witness.privateKey, t), cosign(body, 'w2.example', w2.privateKey, t + 5)];
    const full = appendSignatureLines(note, lines);
    const opened = openCheckpoint(full, logKey, [cosigKey, verifierKey('w2.example', w2.publicKey, 'cosignature/v1')]);
    expect(opened.cosignatures.map((c) => [c.name, c.timestamp])).toEqual([
      [witnessName, t],
      ['w2.example', t + 5],
    ]);
    // Witnesses unknown to the caller are ignored.
    expect(openCheckpoint(full, logKey).unverified.map((u) => u.name)).toEqual([witnessName, 'w2.example']);
  });

  it('rejects tampered timestamps, bodies and cross-type keys', () => {
    const line = cosign(body, witnessName, witness.privateKey, t);
    const blob = Buffer.from(line.slice(`— ${witnessName} `.length, -1), 'base64');
    const at = (mutate: (b: Buffer) => void): string => {
      const b = Buffer.from(blob);
      mutate(b);
      return `${note}— ${witnessName} ${b.toString('base64')}\n`;
    };
    expectNoteError(() => openNote(at((b) => b.writeBigUInt64BE(BigInt(t + 1), 4)), [logKey, cosigKey]), 'invalid_signature', /does not verify/);
    expectNoteError(() => openNote(at((b) => b.writeBigUInt64BE(2n ** 63n, 4)), [logKey, cosigKey]), 'invalid_signature', /2\^63/);
    expectNoteError(() => openNote(at((b) => (b[20] ^= 1)), [logKey, cosigKey]), 'invalid_signature');
    const other = formatCheckpoint({ origin: logName, size: 8, rootHash: root32 });
    expectNoteError(() => openNote(`${signNote(other, logName, log.privateKey)}${line}`, [cosigKey]), 'invalid_signature');
    // A type-0x01 verifier of the witness key does not match the cosignature's key ID (ignored),
    // and a log signature cannot pass as a cosignature of the same key.
    expectNoteError(() => openNote(`${body}\n${line}`, [verifierKey(witnessName, witness.publicKey)]), 'unverified_note');
    const plainByWitness = signNote(body, witnessName, witness.privateKey);
    expectNoteError(() => openNote(plainByWitness, [cosigKey]), 'unverified_note');
  });

  it('refuses to cosign anything but a checkpoint, or with bad arguments', () => {
    expectNoteError(() => cosign('hello\n', witnessName, witness.privateKey, t), 'malformed_checkpoint');
    expectNoteError(() => cosign(body, witnessName, witness.privateKey, -1), 'invalid_argument', /time/);
    expectNoteError(() => cosign(body, witnessName, witness.privateKey, 1.5), 'invalid_argument', /time/);
    expectNoteError(() => cosign(body, 'bad name', witness.privateKey, t), 'invalid_argument');
    expectNoteError(() => cosign(body, witnessName, witness.publicKey, t), 'invalid_argument', /private/);
    expectNoteError(() => appendSignatureLines(note, ['— x AAAA\n']), 'malformed_note', /too short/);
    expectNoteError(() => appendSignatureLines(note, ['not a line\n']), 'malformed_note', /em dash/);
    expectNoteError(() => appendSignatureLines(note, [cosign(body, witnessName, witness.privateKey, t).slice(0, -1)]), 'malformed_note', /one line/);
    expectNoteError(() => appendSignatureLines(body, []), 'malformed_note');
  });
});

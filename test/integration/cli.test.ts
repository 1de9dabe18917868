// The `vouch` CLI as a user runs it: real processes, real files, the embedded store.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../server/config/index.js';
import { Quarantine, parseQuarantineKey } from '../../server/scanning/quarantine.js';
import { openStore } from '../../server/store/index.js';
import { FakePeer } from '../helpers/fake-peer.js';
import { syntheticJpeg, syntheticPng } from '../helpers/images.js';
import { LOCAL_FEDERATION_ENV, VOUCH_BIN, eventually, freePort, runCli, startServerProcess, startVouch, type CliResult } from '../helpers/process.js';
import { tempDir } from '../helpers/services.js';
import { HAVE_FFMPEG, distinctFrames, videoOfFrames } from '../helpers/videos.js';
import { meanColourConfig, meanColourModel } from '../helpers/models.js';
import { syntheticPixels } from '../helpers/images.js';

const TESTDATA = new URL('../fixtures/pdq/', import.meta.url);
/** The key `vouch scan --quarantine` encrypts with (VOUCH_QUARANTINE_KEY). */
const QUARANTINE_KEY = randomBytes(32).toString('base64');

/** A quarantined item and its bytes, read back through the quarantine as the console would (logged). */
async function readQuarantined(dataDir: string, id: number) {
  const store = await openStore(loadConfig({ VOUCH_DATA_DIR: dataDir }));
  try {
    const quarantine = new Quarantine({ db: store.db, dataDir, key: parseQuarantineKey(QUARANTINE_KEY), retentionDays: 365 });
    const bytes = await quarantine.read(id, { actor: 'test', reason: 'the sweep kept what it removed', action: 'reveal' });
    return { bytes, item: await quarantine.get(id), log: await quarantine.accessLog(id) };
  } finally {
    await store.close();
  }
}

describe('vouch hash', () => {
  it('prints one JSON line per file, and fails with a JSON error for a bad one', async () => {
    const dir = tempDir();
    const bad = join(dir, 'not-an-image.jpg');
    writeFileSync(bad, 'hello');
    const bridge = new URL('dih_bridge-1-original.jpg', TESTDATA).pathname;
    const result = await runCli(['hash', bridge, bad, join(dir, 'missing.png')]);
    expect(result.code).toBe(1);
    const lines = result.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines).toHaveLength(3);
    expect(Object.keys(lines[0]).sort()).toEqual(['file', 'pdq', 'pdq_quality', 'phash64', 'pipeline', 'sha256']);
    expect(lines[0].file).toBe(bridge);
    expect(lines[0].sha256).toBe(
      (await import('node:crypto')).createHash('sha256').update(readFileSync(bridge)).digest('hex'),
    );
    expect(lines[1]).toMatchObject({ file: bad, error: { code: 'unsupported_format' } });
    expect(lines[2]).toMatchObject({ error: { code: 'unreadable' } });
    expect(result.stderr).toContain('not-an-image.jpg');
    rmSync(dir, { recursive: true, force: true });
  });

  describe('on many files', () => {
    let dir: string;
    const files: string[] = [];
    const digests = new Map<string, string>();
    const BAD = 17;

    beforeAll(async () => {
      dir = tempDir();
      for (let i = 0; i < 41; i++) {
        const file = join(dir, `${String(40 - i).padStart(2, '0')}.jpg`); // input order is not name order
        const bytes = i === BAD ? Buffer.from('not a picture') : await syntheticJpeg(500 + i, 96, 72);
        writeFileSync(file, bytes);
        files.push(file);
        digests.set(file, createHash('sha256').update(bytes).digest('hex'));
      }
    });

    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it('hashes far more files than 5 x threads, one line each in the order given', async () => {
      // The pool's queue holds 4 x threads tasks: 41 files on 2 threads once crashed the command.
      const result = await runCli(['hash', ...files], { VOUCH_HASH_THREADS: '2' });
      expect(result.code).toBe(1);
      const lines = result.stdout.trim().split('\n').map((l) => JSON.parse(l));
      expect(lines.map((l) => l.file)).toEqual(files);
      for (const [i, line] of lines.entries()) {
        if (i === BAD) expect(line).toMatchObject({ error: { code: 'unsupported_format' } });
        else expect(line.sha256).toBe(digests.get(line.file));
      }
      expect(result.stderr.trim().split('\n')).toEqual([expect.stringContaining(files[BAD])]);
    });

    it('ends quietly when its reader stops early, as `vouch hash … | head -1` does', async () => {
      const child = spawn(process.execPath, [VOUCH_BIN, 'hash', ...files.slice(0, BAD)], {
        env: { ...process.env, VOUCH_LOG_LEVEL: 'warn', VOUCH_HASH_THREADS: '2' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (d) => (stderr += d));
      let firstRead = '';
      child.stdout.once('data', (d) => {
        firstRead = String(d);
        child.stdout.destroy(); // the reader goes away after its first read
      });
      const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
      // Lines were still to come when the reader left, so the command did write into a closed pipe.
      expect(firstRead.trim().split('\n').length).toBeLessThan(BAD);
      expect(stderr).toBe('');
      expect(code).toBe(0);
    });
  });

  it('documents every command in --help', async () => {
    const result = await runCli(['--help']);
    expect(result.code).toBe(0);
    for (const command of ['serve', 'hash', 'scan', 'import-hashes']) expect(result.stdout).toContain(command);
    expect(result.stdout).toContain('VOUCH_DATA_DIR');
  });
});

describe('vouch scan and import-hashes', () => {
  let root: string;
  let media: string;
  let env: Record<string, string>;
  const files: Record<string, Buffer> = {};

  beforeAll(async () => {
    root = tempDir();
    media = join(root, 'pictrs', 'files');
    mkdirSync(join(media, 'a', 'b'), { recursive: true });
    files['a/known.jpg'] = await syntheticJpeg(11);
    files['a/b/unknown.png'] = await syntheticPng(12);
    files['a/b/other.jpg'] = await syntheticJpeg(13);
    // A turned copy of the known image: found through the dihedral PDQ variants.
    files['a/b/turned.jpg'] = await sharp(files['a/known.jpg']).rotate(90).jpeg({ quality: 80 }).toBuffer();
    files['broken.jpg'] = Buffer.from('definitely not a jpeg');
    for (const [rel, bytes] of Object.entries(files)) writeFileSync(join(media, rel), bytes);
    env = { VOUCH_DATA_DIR: join(root, 'data') };
  });

  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('imports a list, sweeps, quarantines what the list blocks into the encrypted quarantine, and resumes', async () => {
    const hashed = JSON.parse((await runCli(['hash', join(media, 'a/known.jpg')], env)).stdout);
    // A near-duplicate of the known image, as a partner would have hashed it.
    const list = join(root, 'partner.csv');
    writeFileSync(list, `hash,label,confidence\npdq:${hashed.pdq},csam,0.95\nsha256:${randomBytes(32).toString('hex')},spam\n`);
    const imported = await runCli(['import-hashes', list], env);
    expect(imported.code, imported.stderr).toBe(0);
    expect(JSON.parse(imported.stdout)).toEqual({ imported: 2, skipped: 0 });

    const report = join(root, 'report.jsonl');
    const first = await runCli(['scan', media, '--report', report, '--quarantine'], { ...env, VOUCH_QUARANTINE_KEY: QUARANTINE_KEY });
    expect(first.code, first.stderr).toBe(0);
    const lines = readFileSync(report, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const byFile = Object.fromEntries(lines.map((l) => [l.file, l]));
    expect(Object.keys(byFile).sort()).toEqual(Object.keys(files).sort());
    // Our own imported list decides at an exact PDQ match.
    expect(byFile['a/known.jpg']).toMatchObject({ status: 'quarantined', outcome: 'block', label: 'csam', matches: [{ label: 'csam', distance: 0 }] });
    expect(byFile['a/known.jpg'].reason).toEqual(expect.any(String));
    expect(byFile['a/b/unknown.png']).toMatchObject({ status: 'unknown', outcome: 'unknown', label: null, matches: [] });
    expect(byFile['a/b/turned.jpg']).toMatchObject({ status: 'quarantined', outcome: 'block', matches: [{ label: 'csam', matched_by: 'pdq' }] });
    expect(byFile['a/b/turned.jpg'].matches[0].distance).toBeLessThanOrEqual(16);
    expect(byFile['broken.jpg']).toMatchObject({ status: 'error', error: { code: 'unsupported_format' } });
    expect(first.stderr).toMatch(/decided 2 block, 0 review, 0 allow; 2 quarantined/);

    // Gone from the folder, kept encrypted: the bytes read back through the quarantine are the file's.
    expect(existsSync(join(media, 'a/known.jpg'))).toBe(false);
    expect(existsSync(join(media, 'a/b/turned.jpg'))).toBe(false);
    const kept = await readQuarantined(env.VOUCH_DATA_DIR, byFile['a/known.jpg'].quarantine_id);
    expect(kept.bytes.equals(files['a/known.jpg'])).toBe(true);
    expect(kept.item).toMatchObject({ sha256: byFile['a/known.jpg'].sha256, source: `sweep:${media}`, decision: { outcome: 'block', label: 'csam' } });

    // A second run skips what is done and handles only the new file.
    writeFileSync(join(media, 'new.jpg'), await syntheticJpeg(14));
    const second = await runCli(['scan', media, '--report', report], env);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stderr).toMatch(/1 unknown.*3 already done/);
    const all = readFileSync(report, 'utf8').trim().split('\n');
    expect(all).toHaveLength(lines.length + 1);
    expect(JSON.parse(all[all.length - 1]).file).toBe('new.jpg');
  });

  it('classifies what no verdict matched with --classify, and remembers it', async () => {
    const fresh = join(root, 'fresh');
    mkdirSync(fresh);
    writeFileSync(join(fresh, 'new.jpg'), await syntheticJpeg(21));
    const report = join(root, 'classified.jsonl');
    // Both bundled models, as a scanner that lets peers allow on one scan runs them.
    const result = await runCli(['scan', fresh, '--classify', '--report', report], { ...env, VOUCH_CLASSIFIER: 'default,inception' });
    expect(result.code, result.stderr).toBe(0);
    const [line] = readFileSync(report, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    // The bundled models are adult-content triage: they only ever say ok or sexual.
    const triage = expect.stringMatching(/^(ok|sexual)$/);
    expect(line).toMatchObject({
      status: 'unknown',
      classified: [
        { label: triage, classifier: expect.stringMatching(/^nsfwjs-mobilenet-v2@/) },
        { label: triage, classifier: expect.stringMatching(/^nsfwjs-inception-v3@/) },
      ],
    });
    // Decided again with our scanner's verdicts as evidence: no longer unknown.
    expect(['allow', 'review', 'block']).toContain(line.outcome);
    const hashed = JSON.parse((await runCli(['hash', join(fresh, 'new.jpg')], env)).stdout);
    writeFileSync(join(fresh, 'copy.jpg'), readFileSync(join(fresh, 'new.jpg')));
    const again = await runCli(['scan', fresh, '--report', report], env);
    expect(again.code, again.stderr).toBe(0);
    const last = JSON.parse(readFileSync(report, 'utf8').trim().split('\n').pop()!);
    // The copy is decided from what was remembered, the same way, without classifying it again.
    expect(last).toMatchObject({ file: 'copy.jpg', sha256: hashed.sha256, status: 'match', outcome: line.outcome, label: line.label });
    expect(last.classified).toBeUndefined();
    expect(last.matches.map((m: { label: string }) => m.label).sort()).toEqual(line.classified.map((c: { label: string }) => c.label).sort());
  });

  it('refuses a bad list without importing any of it', async () => {
    const list = join(root, 'bad.csv');
    writeFileSync(list, `pdq:${'ab'.repeat(32)},csam\npdq:xyz,csam\n`);
    const result = await runCli(['import-hashes', list], env);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/line 2: pdq hash must be 64 hex characters/);
    const again = await runCli(['import-hashes', list.replace('bad', 'missing')], env);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/cannot read/);
  });

  it('rejects bad configuration with a clear message and a non-zero exit', async () => {
    const result = await runCli(['scan', media], { ...env, DATABASE_URL: 'mysql://nope' });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/invalid configuration:\n\s+databaseUrl: must be a postgres/);
  });
});

// Videos in a swept folder, told by content: hashed as videos under the configured limits, decided
// by their MD5, SHA-256 and frames, classified by sampled frames. The classifier is the generated
// mean-colour model (test/helpers/models.ts), which a red-tinted video steers to `sexual`.
describe.skipIf(!HAVE_FFMPEG)('vouch scan on videos', () => {
  const W = 160;
  const H = 120;
  let root: string;

  beforeAll(() => {
    root = tempDir();
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('decides a video by a listed frame, classifies an unknown one by its frames, and reports refused ones', async () => {
    const media = join(root, 'files');
    mkdirSync(media);
    const env = { VOUCH_DATA_DIR: join(root, 'data'), VOUCH_VIDEO_MAX_SECONDS: '10', VOUCH_VIDEO_SCAN_FRAMES: '4' };
    // A 6 s video whose 3rd second is an image on our list.
    const reference = syntheticPixels(9_001, W, H);
    const referencePng = join(root, 'reference.png');
    writeFileSync(referencePng, await sharp(reference, { raw: { width: W, height: H, channels: 3 } }).png().toBuffer());
    const listed = distinctFrames(9_100, 6, W, H);
    listed[2] = reference;
    writeFileSync(join(media, 'listed.mp4'), readFileSync(await videoOfFrames(root, 'listed', listed, W, H, { codec: 'h264' })));
    // 4 s of red-tinted frames: `sexual` to the mean-colour model.
    const red = distinctFrames(9_200, 4, W, H).map((f) => {
      for (let i = 0; i < f.length; i += 3) f[i] = 200 + (f[i] >> 3);
      return f;
    });
    const redVideo = readFileSync(await videoOfFrames(root, 'red', red, W, H, { codec: 'vp9' }));
    writeFileSync(join(media, 'red.bin'), redVideo);
    writeFileSync(join(media, 'truncated.mp4'), readFileSync(join(media, 'listed.mp4')).subarray(0, 2_000));
    writeFileSync(join(media, 'long.mp4'), readFileSync(await videoOfFrames(root, 'long', distinctFrames(9_300, 12, W, H), W, H, { codec: 'h264' })));
    writeFileSync(join(media, 'still.png'), await syntheticPng(9_400));

    const hashed = JSON.parse((await runCli(['hash', referencePng], env)).stdout) as { pdq: string };
    const list = join(root, 'list.csv');
    writeFileSync(list, `pdq:${hashed.pdq},csam,1\n`);
    expect((await runCli(['import-hashes', list], env)).code).toBe(0);
    writeFileSync(join(root, 'mean-nchw.onnx'), meanColourModel('NCHW', 'batch'));
    writeFileSync(join(root, 'colour.json'), JSON.stringify(meanColourConfig()));

    const report = join(root, 'report.jsonl');
    const result = await runCli(['scan', media, '--report', report, '--classify'], { ...env, VOUCH_CLASSIFIER: join(root, 'colour.json') });
    expect(result.code, result.stderr).toBe(0);
    const byFile = Object.fromEntries(readFileSync(report, 'utf8').trim().split('\n').map((l) => JSON.parse(l)).map((l) => [l.file, l]));
    const md5 = (file: string) => createHash('md5').update(readFileSync(join(media, file))).digest('hex');
    expect(byFile['listed.mp4']).toMatchObject({ status: 'match', outcome: 'block', label: 'csam', md5: md5('listed.mp4'), vpdq_frames: 6, matches: [{ label: 'csam', matched_by: 'pdq' }] });
    expect(byFile['listed.mp4'].pdq).toBeUndefined();
    expect(byFile['listed.mp4'].classified).toBeUndefined();
    // Told by content, not by name; classified by its frames, then decided with that verdict.
    expect(byFile['red.bin']).toMatchObject({ status: 'unknown', md5: md5('red.bin'), classified: [{ label: 'sexual', classifier: 'test-mean-colour@1' }] });
    expect(byFile['red.bin'].outcome).not.toBe('unknown');
    expect(byFile['truncated.mp4']).toMatchObject({ status: 'error', error: { code: 'corrupt' } });
    expect(byFile['long.mp4']).toMatchObject({ status: 'error', error: { code: 'too_long' } });
    expect(byFile['still.png'].pdq).toEqual(expect.any(String));

    // The classifier's verdict names the video by MD5 and carries the frames behind it.
    const explained = await (async () => {
      const store = await openStore(loadConfig(env));
      try {
        return await store.db.selectFrom('verdicts').select(['label', 'scanned_frames']).where('classifier', '=', 'test-mean-colour@1').where('label', '=', 'sexual').execute();
      } finally {
        await store.close();
      }
    })();
    expect(explained).toHaveLength(1);
    expect(explained[0].scanned_frames).toMatchObject({ sampled: 4, frames: expect.arrayContaining([expect.objectContaining({ label: 'sexual' })]) });
  }, 180_000);
});

describe('vouch scan decides with trust and policy, as the server does', () => {
  const TOKEN = randomBytes(32).toString('hex');
  const trusted = new FakePeer();
  const stranger = new FakePeer();
  let root: string;
  let media: string;
  let env: Record<string, string>;
  const files: Record<string, Buffer> = {};

  beforeAll(async () => {
    root = tempDir();
    media = join(root, 'media');
    mkdirSync(media);
    files['trusted-says-csam.jpg'] = await syntheticJpeg(41);
    files['stranger-says-csam.jpg'] = await syntheticJpeg(42);
    for (const [name, bytes] of Object.entries(files)) writeFileSync(join(media, name), bytes);
    await Promise.all([trusted.start('127.0.0.71'), stranger.start('127.0.0.72')]);
    const port = await freePort('127.0.0.73');
    const base = `http://127.0.0.73:${port}`;
    env = { VOUCH_DATA_DIR: join(root, 'data'), VOUCH_PUBLIC_URL: base };
    // The server follows both peers and trusts one; each peer's human verdict reaches its inbox.
    const server = await startServerProcess({
      ...env,
      ...LOCAL_FEDERATION_ENV,
      VOUCH_HOST: '127.0.0.73',
      VOUCH_PORT: String(port),
      VOUCH_ADMIN_TOKEN: TOKEN,
      VOUCH_SCANNER: 'off',
      REDIS_URL: '',
    });
    try {
      const admin = (method: string, path: string, body: unknown) =>
        fetch(`${base}/api/v1/admin${path}`, { method, headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      for (const peer of [trusted, stranger]) {
        expect((await admin('POST', '/peers/follow', { target: peer.actor })).status).toBe(202);
        const follow = await eventually(async () => peer.received.find((a) => a.type === 'Follow'), 15_000, 'the Follow');
        expect((await peer.post(`${base}/actor/inbox`, peer.activity('Accept', follow))).status).toBe(202);
      }
      expect((await admin('PUT', '/trust', { peer: trusted.actor, abuse: 0.9 })).status).toBe(200);
      for (const [peer, name] of [[trusted, 'trusted-says-csam.jpg'], [stranger, 'stranger-says-csam.jpg']] as const) {
        const digest = createHash('sha256').update(files[name]).digest('hex');
        const verdict = peer.signObject(peer.verdict([{ algorithm: 'sha256', digest }]));
        expect((await peer.post(`${base}/actor/inbox`, peer.activity('Create', verdict))).status).toBe(202);
      }
    } finally {
      // The embedded database admits one process: the sweep runs once the server has stopped.
      await server.stop();
    }
  });

  afterAll(async () => {
    await Promise.all([trusted.stop(), stranger.stop()]);
    rmSync(root, { recursive: true, force: true });
  });

  it('quarantines, encrypted, what a trusted peer blocks, and leaves what an untrusted issuer says alone', async () => {
    const result = await runCli(['scan', media, '--quarantine'], { ...env, VOUCH_QUARANTINE_KEY: QUARANTINE_KEY });
    expect(result.code, result.stderr).toBe(0);
    const byFile = Object.fromEntries(result.stdout.trim().split('\n').map((l) => JSON.parse(l)).map((l) => [l.file, l]));

    const blocked = byFile['trusted-says-csam.jpg'];
    expect(blocked).toMatchObject({ status: 'quarantined', outcome: 'block', label: 'csam', matches: [{ issuer: trusted.actor, label: 'csam', distance: 0 }] });
    expect(existsSync(join(media, 'trusted-says-csam.jpg'))).toBe(false);
    const kept = await readQuarantined(env.VOUCH_DATA_DIR, blocked.quarantine_id);
    expect(kept.bytes.equals(files['trusted-says-csam.jpg'])).toBe(true);
    expect(kept.item?.decision).toMatchObject({ outcome: 'block', label: 'csam', summary: blocked.reason, top: [{ issuer: trusted.actor }] });
    expect(kept.log.map((e) => [e.actor, e.action])).toEqual([['vouch scan', 'quarantine'], ['test', 'reveal']]);
    // On disk it is ciphertext, not the image.
    const onDisk = readFileSync(join(env.VOUCH_DATA_DIR, 'quarantine', blocked.sha256.slice(0, 2), `${blocked.sha256}.bin`));
    expect(onDisk.includes(files['trusted-says-csam.jpg'].subarray(0, 64))).toBe(false);

    // Matched, but by an issuer nobody trusts: no weight, no decision, the file stays.
    const matched = byFile['stranger-says-csam.jpg'];
    expect(matched).toMatchObject({ status: 'match', outcome: 'unknown', matches: [{ issuer: stranger.actor, label: 'csam', distance: 0 }] });
    expect(matched.quarantine_id).toBeUndefined();
    expect(readFileSync(join(media, 'stranger-says-csam.jpg')).equals(files['stranger-says-csam.jpg'])).toBe(true);
  });
});

/** An ordinary mistake: a non-zero exit and a one-line message first on stderr, never a stack trace. */
function expectMistake(result: CliResult, message: RegExp): void {
  expect(result.code, result.stderr).not.toBe(0);
  expect(result.stderr.split('\n')[0]).toMatch(message);
  expect(result.stderr).not.toMatch(/^\s+at /m);
}

describe('vouch on an ordinary mistake', () => {
  let root: string;
  let env: Record<string, string>;

  beforeAll(() => {
    root = tempDir();
    mkdirSync(join(root, 'media'));
    env = { VOUCH_DATA_DIR: join(root, 'data') };
  });

  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('scan: a path that does not exist, or is not a directory', async () => {
    expectMistake(await runCli(['scan', join(root, 'missing')], env), /^vouch: cannot scan .*missing: no such directory$/);
    const file = join(root, 'file.jpg');
    writeFileSync(file, 'x');
    expectMistake(await runCli(['scan', file], env), /^vouch: cannot scan .*file\.jpg: not a directory/);
    expectMistake(await runCli(['scan', root, '--report', join(root, 'missing', 'report.jsonl')], env), /^vouch: cannot write the report to .*report\.jsonl: ENOENT/);
    // What the file system refuses on a path the operator chose is theirs to fix, not a bug.
    expectMistake(await runCli(['scan', root], { VOUCH_DATA_DIR: join(file, 'data') }), /^vouch: ENOTDIR: not a directory, mkdir '.*file\.jpg\/data/);
  });

  it('scan --quarantine: without a usable VOUCH_QUARANTINE_KEY, or with a folder as it once took', async () => {
    const media = join(root, 'media');
    expectMistake(await runCli(['scan', media, '--quarantine'], env), /^vouch: --quarantine keeps files encrypted: set VOUCH_QUARANTINE_KEY /);
    expectMistake(
      await runCli(['scan', media, '--quarantine'], { ...env, VOUCH_QUARANTINE_KEY: Buffer.alloc(16).toString('base64') }),
      /^vouch: VOUCH_QUARANTINE_KEY: the quarantine key must be exactly 32 bytes/,
    );
    const key = { ...env, VOUCH_QUARANTINE_KEY: QUARANTINE_KEY };
    expectMistake(await runCli(['scan', media, '--quarantine', join(root, 'kept')], key), /^vouch: --quarantine takes no folder: files go into the encrypted quarantine in the data directory/);
    expectMistake(await runCli(['scan', media, '--quarantine', '--delete-matches'], key), /^vouch: choose --quarantine or --delete-matches, not both$/);
  });

  it('scan --classify: a classifier config that does not exist', async () => {
    const result = await runCli(['scan', join(root, 'media'), '--classify'], { ...env, VOUCH_CLASSIFIER: join(root, 'missing-model.json') });
    expectMistake(result, /^vouch: cannot read ONNX classifier config .*missing-model\.json: ENOENT/);
  });

  it('serve: a port already in use', async () => {
    const { createServer } = await import('node:net');
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const { port } = taken.address() as { port: number };
    try {
      const result = await runCli(['serve'], { ...env, VOUCH_HOST: '127.0.0.1', VOUCH_PORT: String(port), VOUCH_SCANNER: 'off', REDIS_URL: '' });
      expectMistake(result, new RegExp(`^vouch: listen EADDRINUSE: address already in use 127\\.0\\.0\\.1:${port}$`));
    } finally {
      taken.close();
    }
  });

  it('audit: something that is not a URL', async () => {
    expectMistake(await runCli(['audit', 'not-a-url'], env), /'not-a-url' is invalid .*must be an http:\/\/ or https:\/\/ URL/);
  });

  it('audit: a loopback address names the setting that allows it, and the setting does', async () => {
    const port = await freePort('127.0.0.1');
    const refused = await runCli(['audit', `http://127.0.0.1:${port}`], env);
    expectMistake(refused, /^vouch: http:\/\/127\.0\.0\.1:\d+ refused: 127\.0\.0\.1 is a loopback address, .*only inside VOUCH_ALLOW_PRIVATE_NETWORKS \(CIDRs, e\.g\. 127\.0\.0\.0\/8/);
    expectMistake(await runCli(['audit', `https://127.0.0.1:${port}`], env), /address 127\.0\.0\.1 is loopback: the audit reaches private addresses only inside VOUCH_ALLOW_PRIVATE_NETWORKS/);
    // Allowed, it gets as far as connecting (nothing listens there).
    const allowed = await runCli(['audit', `http://127.0.0.1:${port}`], { ...env, VOUCH_ALLOW_PRIVATE_NETWORKS: '127.0.0.0/8' });
    expectMistake(allowed, /^vouch: outbound request to 127\.0\.0\.1 failed: connection failed/);
  });

  it('explain: a hex string that is not a digest, or a file that does not exist', async () => {
    expectMistake(await runCli(['explain', 'deadbeef'], env), /^vouch: deadbeef is neither a file nor a PDQ\/SHA-256 digest \(64 hex characters/);
    expectMistake(await runCli(['explain', 'pdq:xyz'], env), /^vouch: pdq:xyz is neither a file nor a PDQ\/SHA-256 digest/);
  });

  it('peers: a --server that is not a URL', async () => {
    expectMistake(await runCli(['peers', '--server', 'not-a-url', 'list'], env), /--server <url>' argument 'not-a-url' is invalid\. must be an http:\/\/ or https:\/\/ URL/);
  });

  it('users add: no password on stdin and no terminal says how to give one', async () => {
    const result = await runCli(['users', 'add', 'alice'], env, '');
    expectMistake(result, /^vouch: no password given: run this on a terminal .*first line of stdin \(echo "\$PASSWORD" \| vouch users add alice\)$/);
    expect(result.stderr).not.toMatch(/characters/);
    // A short one is still refused for its length.
    expectMistake(await runCli(['users', 'add', 'alice'], env, 'short\n'), /^vouch: passwords need 12 characters at least$/);
  });

  it('a boolean setting that is none of the accepted forms names the variable and the forms', async () => {
    const result = await runCli(['scan', root], { ...env, VOUCH_FEDERATION_ALLOW_HTTP: 'on' });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/federation\.allowHttp: must be true\/false, 1\/0 or yes\/no \(set by VOUCH_FEDERATION_ALLOW_HTTP\)/);
    expect(result.stderr).not.toMatch(/^\s+at /m);
  });
});

describe('vouch on an error it has no better words for', () => {
  it('prints one line, and the stack trace only under --debug', async () => {
    // A PostgreSQL server that is not there fails the migrations with a plain Error.
    const dir = tempDir();
    const env = { DATABASE_URL: `postgres://postgres@127.0.0.1:${await freePort('127.0.0.1')}/nowhere` };
    const plain = await runCli(['scan', dir], env);
    expect(plain.code).toBe(2);
    expect(plain.stderr).toMatch(/^vouch: unexpected error: .*ECONNREFUSED.* \(run again with --debug for its stack trace\)\n$/);
    const debug = await runCli(['--debug', 'scan', dir], env);
    expect(debug.code).toBe(2);
    expect(debug.stderr).toMatch(/^vouch: unexpected error: .*ECONNREFUSED.*\n.*\n\s+at /);
    rmSync(dir, { recursive: true, force: true });
  });
});

describe('vouch peers follow user@host', () => {
  const TOKEN = randomBytes(32).toString('hex');
  const servers: Array<Awaited<ReturnType<typeof startVouch>>> = [];

  afterAll(async () => {
    for (const s of servers) {
      await s.server.stop();
      await s.cleanup();
    }
  });

  it('finds a plain-http peer through WebFinger when VOUCH_FEDERATION_ALLOW_HTTP is on', async () => {
    // "1": a boolean form the settings once ignored.
    const federation = { ...LOCAL_FEDERATION_ENV, VOUCH_FEDERATION_ALLOW_HTTP: '1', VOUCH_ADMIN_TOKEN: TOKEN, VOUCH_SCANNER: 'off' };
    const [a, b] = await Promise.all([startVouch('127.0.0.61', federation), startVouch('127.0.0.62', federation)]);
    servers.push(a, b);
    const handle = `vouch@${new URL(b.url).host}`;
    const follow = await runCli(['peers', '--server', a.url, 'follow', handle], { VOUCH_ADMIN_TOKEN: TOKEN });
    expect(follow.code, follow.stderr).toBe(0);
    expect(JSON.parse(follow.stdout)).toMatchObject({ actor: `${b.url}/actor`, following: 'pending' });
    // B sees the request once the Follow is delivered.
    const request = `${a.url}/actor\tyou follow: none\tfollows you: pending`;
    await eventually(async () => (await runCli(['peers', '--server', b.url, 'list'], { VOUCH_ADMIN_TOKEN: TOKEN })).stdout.includes(request), 30_000, 'B to list A\'s request');
  });
});

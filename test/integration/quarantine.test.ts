// The quarantine on both store backends: blocked media kept encrypted at rest, access-logged,
// exported for reports, released, deleted only on request (leaving a tombstone), and refusing to
// return anything when the key is wrong or the stored file was tampered with. Generated images only.
import { createHash, randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  parseQuarantineKey,
  Quarantine,
  QuarantineDeletedError,
  QuarantineInputError,
  QuarantineIntegrityError,
  QuarantineKeyError,
  quarantineKeyId,
  type QuarantineDecision,
} from '../../server/scanning/quarantine.js';
import { openStore, type Store } from '../../server/store/index.js';
import { syntheticJpeg } from '../helpers/images.js';
import { STORE_BACKENDS, tempDir } from '../helpers/services.js';

const DAY = 86_400_000;
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

const DECISION: QuarantineDecision = {
  outcome: 'block',
  label: 'csam',
  summary: 'blocked: a local hash-list verdict labels it csam',
  decidedBy: 'local',
  localVerdict: { uri: 'https://q.test/verdicts/1', issuer: 'https://q.test/actor', label: 'csam', confidence: 1, method: 'hashlist', classifier: null },
};

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

/** True when some run of `n` bytes of `needle` occurs in `haystack`. */
function sharesRun(haystack: Buffer, needle: Buffer, n: number): boolean {
  const windows = new Set<string>();
  for (let i = 0; i + n <= haystack.length; i++) windows.add(haystack.toString('latin1', i, i + n));
  for (let i = 0; i + n <= needle.length; i++) if (windows.has(needle.toString('latin1', i, i + n))) return true;
  return false;
}

for (const backend of STORE_BACKENDS) {
  describe.skipIf(!backend.available)(`quarantine on ${backend.name}`, () => {
    let handle: ReturnType<typeof backend.create>;
    let store: Store;
    let q: Quarantine;
    let clock = Date.now();
    const now = () => new Date(clock);
    const key = randomBytes(32);
    let jpeg: Buffer;
    let other: Buffer;
    let third: Buffer;
    let exportRoot: string;

    beforeAll(async () => {
      handle = backend.create();
      store = await openStore(handle.config);
      q = new Quarantine({ db: store.db, dataDir: handle.config.dataDir, key, retentionDays: 30, now });
      jpeg = await syntheticJpeg(101, 320, 240);
      other = await syntheticJpeg(102, 320, 240);
      third = await syntheticJpeg(103, 200, 150);
      exportRoot = tempDir('vouch-quarantine-export-');
    });

    afterAll(async () => {
      await store?.close();
      await handle?.cleanup();
      if (exportRoot) rmSync(exportRoot, { recursive: true, force: true });
    });

    const logCount = async () => Number((await sql<{ n: number }>`select count(*)::int as n from quarantine_access`.execute(store.db)).rows[0].n);

    it('refuses a key that is not 32 bytes, without echoing it', () => {
      for (const bad of [randomBytes(16), randomBytes(33), Buffer.alloc(0)]) {
        expect(() => new Quarantine({ db: store.db, dataDir: handle.config.dataDir, key: bad, retentionDays: 30 })).toThrow(QuarantineKeyError);
      }
      expect(() => new Quarantine({ db: store.db, dataDir: handle.config.dataDir, key: 'x' as unknown as Buffer, retentionDays: 30 })).toThrow(/exactly 32 bytes/);
      const text = randomBytes(24).toString('base64');
      let message = '';
      try {
        parseQuarantineKey(text);
      } catch (err) {
        expect(err).toBeInstanceOf(QuarantineKeyError);
        message = (err as Error).message;
      }
      expect(message).toMatch(/32 bytes.*openssl rand -base64 32/);
      expect(message).not.toContain(text);
      expect(() => parseQuarantineKey('not base64!')).toThrow(QuarantineKeyError);
      expect(parseQuarantineKey(`${key.toString('base64')}\n`).equals(key)).toBe(true);
      // The key object never shows the key.
      expect(JSON.stringify(q)).not.toContain(key.toString('base64'));
      expect(JSON.stringify(q)).not.toContain(key.toString('hex'));
    });

    it('keeps media encrypted and gives it back, logging the access', async () => {
      const item = await q.put({ bytes: jpeg, sha256: sha(jpeg), pdq: 'ab'.repeat(32), format: 'jpeg', source: 'pict-rs', decision: DECISION, actor: 'system:pict-rs' });
      expect(item).toMatchObject({
        sha256: sha(jpeg),
        pdq: 'ab'.repeat(32),
        byteSize: jpeg.length,
        format: 'jpeg',
        source: 'pict-rs',
        decision: DECISION,
        keyId: quarantineKeyId(key),
        state: 'held',
        expired: false,
        releasedAt: null,
        deletedAt: null,
      });
      expect(item.retainUntil.getTime() - item.quarantinedAt.getTime()).toBe(30 * DAY);
      expect(await q.get(item.id)).toEqual(item);
      expect(await q.getBySha256(sha(jpeg))).toEqual(item);

      const before = await logCount();
      const back = await q.read(item.id, { actor: 'admin:alice', reason: 'review of report #12', action: 'view' });
      expect(back.equals(jpeg)).toBe(true);
      expect(await logCount()).toBe(before + 1);
      const log = await q.accessLog(item.id);
      expect(log.map((e) => [e.action, e.actor])).toEqual([
        ['quarantine', 'system:pict-rs'],
        ['view', 'admin:alice'],
      ]);
      expect(log[0].reason).toContain('block/csam from pict-rs');
      expect(log[1]).toMatchObject({ itemId: item.id, reason: 'review of report #12' });

      // No read without an actor and a reason, and nothing logged for a refused one.
      expect(await rejection(q.read(item.id, { actor: 'admin:alice', reason: '  ', action: 'reveal' }))).toBeInstanceOf(QuarantineInputError);
      expect(await rejection(q.read(item.id, { actor: '', reason: 'x', action: 'reveal' }))).toBeInstanceOf(QuarantineInputError);
      expect(await rejection(q.read(item.id, { actor: 'a', reason: 'x', action: 'export' as 'view' }))).toBeInstanceOf(QuarantineInputError);
      expect(await logCount()).toBe(before + 1);

      // A claimed SHA-256 that is not the bytes' is refused.
      expect(await rejection(q.put({ bytes: jpeg, sha256: sha(other), source: 'api', decision: DECISION, actor: 'x' }))).toBeInstanceOf(QuarantineInputError);
    });

    it('stores ciphertext only: no JPEG magic, nothing in common with the plaintext, private modes', async () => {
      const path = q.filePath(sha(jpeg));
      expect(path).toBe(join(handle.config.dataDir, 'quarantine', sha(jpeg).slice(0, 2), `${sha(jpeg)}.bin`));
      const file = readFileSync(path);
      expect(file.length).toBe(jpeg.length + 36);
      expect(file.includes(Buffer.from([0xff, 0xd8, 0xff]))).toBe(false);
      expect(sharesRun(file, jpeg, 12)).toBe(false);
      expect(file.includes(key)).toBe(false);
      expect(statSync(path).mode & 0o777).toBe(0o600);
      expect(statSync(join(handle.config.dataDir, 'quarantine', sha(jpeg).slice(0, 2))).mode & 0o777).toBe(0o700);
      expect(statSync(join(handle.config.dataDir, 'quarantine')).mode & 0o777).toBe(0o700);
      // No temp files left behind.
      expect(readdirSync(join(handle.config.dataDir, 'quarantine', sha(jpeg).slice(0, 2)))).toEqual([`${sha(jpeg)}.bin`]);
      // The key is nowhere in the metadata.
      const rows = await sql`select * from quarantine`.execute(store.db);
      const dump = JSON.stringify(rows.rows, (_k, v) => (v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v));
      expect(dump).not.toContain(key.toString('hex'));
      expect(dump).not.toContain(key.toString('base64'));
    });

    it('is idempotent: the same media twice is one item with both events logged', async () => {
      const first = (await q.getBySha256(sha(jpeg)))!;
      const fileBefore = readFileSync(q.filePath(sha(jpeg)));
      clock += 2 * DAY;
      const again = await q.put({ bytes: jpeg, sha256: sha(jpeg), source: 'sweep:/srv/pictrs/files/x.jpg', decision: DECISION, actor: 'system:sweep' });
      expect(again.id).toBe(first.id);
      expect(again.source).toBe('pict-rs');
      expect(again.quarantinedAt).toEqual(first.quarantinedAt);
      // Retention runs from the latest event.
      expect(again.retainUntil.getTime()).toBe(first.retainUntil.getTime() + 2 * DAY);
      expect(readFileSync(q.filePath(sha(jpeg))).equals(fileBefore)).toBe(true);
      const events = (await q.accessLog(first.id)).filter((e) => e.action === 'quarantine');
      expect(events.map((e) => e.actor)).toEqual(['system:pict-rs', 'system:sweep']);
      expect(events[1].reason).toContain('quarantined again');
      expect((await q.list({ limit: 100 })).filter((i) => i.sha256 === sha(jpeg))).toHaveLength(1);
    });

    it('exports a report bundle whose checksums verify', async () => {
      const item = (await q.getBySha256(sha(jpeg)))!;
      const outDir = join(exportRoot, `report-${backend.name}`);
      const result = await q.exportBundle(item.id, { actor: 'admin:alice', reason: 'report to the national hotline, case 2024-17', outDir });
      expect(result.dir).toBe(outDir);
      expect(result.mediaFile).toBe('media.jpg');
      expect(readdirSync(outDir).sort()).toEqual(['SHA256SUMS', 'access-log.json', 'media.jpg', 'metadata.json']);
      expect(readdirSync(exportRoot).filter((n) => n.includes('partial'))).toEqual([]);
      expect(statSync(outDir).mode & 0o777).toBe(0o700);
      for (const name of readdirSync(outDir)) expect(statSync(join(outDir, name)).mode & 0o777).toBe(0o600);

      expect(readFileSync(join(outDir, 'media.jpg')).equals(jpeg)).toBe(true);
      const sums = readFileSync(join(outDir, 'SHA256SUMS'), 'utf8').trim().split('\n');
      expect(sums).toHaveLength(3);
      for (const line of sums) {
        const match = /^([0-9a-f]{64}) {2}(\S+)$/.exec(line);
        expect(match, line).not.toBeNull();
        expect(sha(readFileSync(join(outDir, match![2])))).toBe(match![1]);
        expect(result.files[match![2]]).toBe(match![1]);
      }

      const metadata = JSON.parse(readFileSync(join(outDir, 'metadata.json'), 'utf8'));
      expect(metadata).toMatchObject({
        format: 'vouch-quarantine-export/1',
        exported: { by: 'admin:alice', reason: 'report to the national hotline, case 2024-17' },
        item: { id: item.id, sha256: sha(jpeg), pdq: 'ab'.repeat(32), byteSize: jpeg.length, source: 'pict-rs', quarantinedAt: item.quarantinedAt.toISOString(), state: 'held' },
        decision: DECISION,
        retention: { retainUntil: item.retainUntil.toISOString() },
        media: { file: 'media.jpg', sha256: sha(jpeg) },
      });
      expect(JSON.stringify(metadata)).not.toContain(key.toString('base64'));
      const log = JSON.parse(readFileSync(join(outDir, 'access-log.json'), 'utf8'));
      expect(log.map((e: { action: string }) => e.action)).toEqual(['quarantine', 'view', 'quarantine', 'export']);
      expect((await q.accessLog(item.id)).at(-1)).toMatchObject({ action: 'export', actor: 'admin:alice' });

      // Never into a directory that holds something already.
      const count = await logCount();
      expect(await rejection(q.exportBundle(item.id, { actor: 'admin:alice', reason: 'again', outDir }))).toBeInstanceOf(QuarantineInputError);
      expect(await rejection(q.exportBundle(item.id, { actor: 'admin:alice', reason: '', outDir: join(exportRoot, 'x') }))).toBeInstanceOf(QuarantineInputError);
      expect(await logCount()).toBe(count);
      // An empty existing directory is fine.
      const empty = join(exportRoot, `empty-${backend.name}`);
      mkdirSync(empty);
      await q.exportBundle(item.id, { actor: 'admin:bob', reason: 'second copy', outDir: empty });
      expect(readdirSync(empty)).toHaveLength(4);
    });

    it('refuses to decrypt under another key, with a clear error and no log row', async () => {
      const item = (await q.getBySha256(sha(jpeg)))!;
      const otherKey = randomBytes(32);
      const rotated = new Quarantine({ db: store.db, dataDir: handle.config.dataDir, key: otherKey, retentionDays: 30 });
      const count = await logCount();
      const err = await rejection(rotated.read(item.id, { actor: 'admin:alice', reason: 'look', action: 'view' }));
      expect(err).toBeInstanceOf(QuarantineKeyError);
      expect(err.message).toContain(quarantineKeyId(key));
      expect(err.message).toContain(quarantineKeyId(otherKey));
      expect(err.message).toMatch(/rotated/);
      for (const k of [key, otherKey]) {
        expect(err.message).not.toContain(k.toString('base64'));
        expect(err.message).not.toContain(k.toString('hex'));
      }
      expect(await logCount()).toBe(count);
    });

    it('detects a modified ciphertext, tag, header or record: QuarantineIntegrityError, never wrong bytes', async () => {
      const item = await q.put({ bytes: third, sha256: sha(third), format: 'image/jpeg', source: 'api', decision: DECISION, actor: 'admin:carol' });
      const path = q.filePath(item.sha256);
      const original = readFileSync(path);
      const count = await logCount();
      const read = () => q.read(item.id, { actor: 'admin:carol', reason: 'check', action: 'reveal' });

      const tamper = async (offset: number) => {
        const copy = Buffer.from(original);
        copy[offset] ^= 0x01;
        writeFileSync(path, copy);
        return rejection(read());
      };
      for (const offset of [36, 36 + Math.floor(third.length / 2), original.length - 1, 10, 25]) {
        const err = await tamper(offset);
        expect(err, `byte ${offset}`).toBeInstanceOf(QuarantineIntegrityError);
      }
      // Header: magic and key id.
      expect(await tamper(0)).toBeInstanceOf(QuarantineIntegrityError);
      expect(await tamper(5)).toBeInstanceOf(QuarantineIntegrityError);
      // Truncated, and missing.
      writeFileSync(path, original.subarray(0, original.length - 10));
      expect(await rejection(read())).toBeInstanceOf(QuarantineIntegrityError);
      rmSync(path);
      expect(await rejection(read())).toBeInstanceOf(QuarantineIntegrityError);
      writeFileSync(path, original, { mode: 0o600 });

      // Metadata that no longer matches the file.
      await sql`update quarantine set byte_size = byte_size + 1 where id = ${item.id}`.execute(store.db);
      expect(await rejection(read())).toBeInstanceOf(QuarantineIntegrityError);
      await sql`update quarantine set byte_size = byte_size - 1, key_id = '00000000' where id = ${item.id}`.execute(store.db);
      expect(await rejection(read())).toBeInstanceOf(QuarantineIntegrityError);
      await sql`update quarantine set key_id = ${quarantineKeyId(key)} where id = ${item.id}`.execute(store.db);

      expect(await logCount()).toBe(count);
      expect((await read()).equals(third)).toBe(true);
    });

    it('detects files swapped between two items, even of the same size', async () => {
      // Same length, so only the authenticated SHA-256 tells them apart (JPEG allows trailing bytes).
      const length = Math.max(jpeg.length, other.length);
      const a = Buffer.concat([jpeg, Buffer.alloc(length - jpeg.length)]);
      const b = Buffer.concat([other, Buffer.alloc(length - other.length)]);
      const itemA = await q.put({ bytes: a, sha256: sha(a), format: 'jpeg', source: 'api', decision: DECISION, actor: 'admin:carol' });
      const itemB = await q.put({ bytes: b, sha256: sha(b), format: 'jpeg', source: 'api', decision: DECISION, actor: 'admin:carol' });
      const pathA = q.filePath(itemA.sha256);
      const pathB = q.filePath(itemB.sha256);
      const fileA = readFileSync(pathA);
      const fileB = readFileSync(pathB);
      expect(fileA.length).toBe(fileB.length);
      writeFileSync(pathA, fileB);
      writeFileSync(pathB, fileA);
      for (const item of [itemA, itemB]) {
        expect(await rejection(q.read(item.id, { actor: 'admin:carol', reason: 'check', action: 'view' }))).toBeInstanceOf(QuarantineIntegrityError);
        expect(await rejection(q.exportBundle(item.id, { actor: 'admin:carol', reason: 'report', outDir: join(exportRoot, `swap-${backend.name}-${item.id}`) }))).toBeInstanceOf(QuarantineIntegrityError);
      }
      expect(existsSync(join(exportRoot, `swap-${backend.name}-${itemA.id}`))).toBe(false);
      // An item whose file is a different length is caught as well.
      copyFileSync(q.filePath(sha(jpeg)), pathA);
      expect(await rejection(q.read(itemA.id, { actor: 'admin:carol', reason: 'check', action: 'view' }))).toBeInstanceOf(QuarantineIntegrityError);
      writeFileSync(pathA, fileA);
      writeFileSync(pathB, fileB);
      expect((await q.read(itemA.id, { actor: 'admin:carol', reason: 'check', action: 'view' })).equals(a)).toBe(true);
    });

    it('releases a false positive but keeps its bytes', async () => {
      const item = (await q.getBySha256(sha(third)))!;
      expect(await rejection(q.release(item.id, { actor: 'admin:dan', reason: '' }))).toBeInstanceOf(QuarantineInputError);
      expect(await q.release(item.id, { actor: 'admin:dan', reason: 'false positive: a landscape' })).toBe(true);
      expect(await q.release(item.id, { actor: 'admin:dan', reason: 'again' })).toBe(false);
      const released = (await q.get(item.id))!;
      expect(released.state).toBe('released');
      expect(released.releasedAt).toBeInstanceOf(Date);
      expect(existsSync(q.filePath(item.sha256))).toBe(true);
      expect((await q.read(item.id, { actor: 'admin:dan', reason: 'confirm', action: 'view' })).equals(third)).toBe(true);
      expect((await q.accessLog(item.id)).filter((e) => e.action === 'release')).toHaveLength(1);
    });

    it('deletes only with a reason: the file goes, the record and its log stay', async () => {
      const item = (await q.getBySha256(sha(third)))!;
      const path = q.filePath(item.sha256);
      for (const reason of ['', '   ', undefined as unknown as string]) {
        expect(await rejection(q.delete(item.id, { actor: 'admin:erin', reason }))).toBeInstanceOf(QuarantineInputError);
      }
      expect(existsSync(path)).toBe(true);
      const logBefore = await q.accessLog(item.id);

      expect(await q.delete(item.id, { actor: 'admin:erin', reason: 'retention over; no open report' })).toBe(true);
      expect(existsSync(path)).toBe(false);
      const tomb = (await q.get(item.id))!;
      expect(tomb).toMatchObject({ state: 'deleted', deletedBy: 'admin:erin', deleteReason: 'retention over; no open report', sha256: sha(third), decision: DECISION, expired: false });
      expect(tomb.deletedAt).toBeInstanceOf(Date);
      const logAfter = await q.accessLog(item.id);
      expect(logAfter.slice(0, logBefore.length)).toEqual(logBefore);
      expect(logAfter.at(-1)).toMatchObject({ action: 'delete', actor: 'admin:erin', reason: 'retention over; no open report' });

      expect(await q.delete(item.id, { actor: 'admin:erin', reason: 'again' })).toBe(false);
      expect(await q.accessLog(item.id)).toHaveLength(logAfter.length);
      expect(await rejection(q.read(item.id, { actor: 'admin:erin', reason: 'x', action: 'view' }))).toBeInstanceOf(QuarantineDeletedError);
      expect(await rejection(q.exportBundle(item.id, { actor: 'admin:erin', reason: 'x', outDir: join(exportRoot, `gone-${backend.name}`) }))).toBeInstanceOf(QuarantineDeletedError);

      // The database itself refuses to drop records or rewrite the log.
      await expect(sql`delete from quarantine where id = ${item.id}`.execute(store.db)).rejects.toThrow(/kept/);
      await expect(sql`update quarantine_access set reason = 'nothing' where item_id = ${item.id}`.execute(store.db)).rejects.toThrow(/kept/);
      await expect(sql`delete from quarantine_access where item_id = ${item.id}`.execute(store.db)).rejects.toThrow(/kept/);

      // Blocked again after deletion: the new event's evidence is kept again.
      const back = await q.put({ bytes: third, sha256: sha(third), source: 'pict-rs', decision: DECISION, actor: 'system:pict-rs' });
      expect(back).toMatchObject({ id: item.id, state: 'released', deletedAt: null, deletedBy: null });
      expect((await q.read(item.id, { actor: 'admin:erin', reason: 'x', action: 'view' })).equals(third)).toBe(true);
      expect((await q.accessLog(item.id)).filter((e) => e.action === 'delete')).toHaveLength(1);
    });

    it('lists items past retention for the admin, and deletes none by itself', async () => {
      const fresh = new Quarantine({ db: store.db, dataDir: handle.config.dataDir, key, retentionDays: 30, now });
      expect(await fresh.list({ expiredOnly: true })).toEqual([]);
      clock += 31 * DAY;
      const late = await syntheticJpeg(104, 160, 120);
      const newer = await fresh.put({ bytes: late, sha256: sha(late), source: 'api', decision: DECISION, actor: 'system:api' });
      const all = await fresh.list({ limit: 100 });
      expect(all.map((i) => i.id)).toEqual([...all.map((i) => i.id)].sort((x, y) => y - x));
      const expired = await fresh.list({ expiredOnly: true });
      expect(expired.length).toBeGreaterThanOrEqual(3);
      expect(expired.every((i) => i.expired && i.state !== 'deleted' && i.retainUntil.getTime() <= clock)).toBe(true);
      expect(expired.map((i) => i.id)).not.toContain(newer.id);
      expect(expired.map((i) => i.sha256)).toContain(sha(jpeg));

      // Tombstones are not "awaiting a decision".
      const victim = expired[expired.length - 1];
      await fresh.delete(victim.id, { actor: 'admin:erin', reason: 'past retention, reviewed' });
      expect((await fresh.list({ expiredOnly: true })).map((i) => i.id)).not.toContain(victim.id);
      // Nothing else went: every other expired item still decrypts.
      for (const item of expired.filter((i) => i.id !== victim.id)) {
        expect(existsSync(fresh.filePath(item.sha256))).toBe(true);
      }

      // Paging by id.
      const page1 = await fresh.list({ limit: 2 });
      const page2 = await fresh.list({ limit: 2, before: page1[1].id });
      expect(page1).toHaveLength(2);
      expect(page2.every((i) => i.id < page1[1].id)).toBe(true);
    });
  });
}

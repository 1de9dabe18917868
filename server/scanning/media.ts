// Media seen by this instance: one row per distinct original (SHA-256), with when and where it was
// seen. Owns the media table.
import { sql } from 'kysely';
import type { Db } from '../store/index.js';
import type { ImageHashes } from '../../shared/hashing/index.js';

export async function recordMedia(
  db: Db,
  hashes: ImageHashes,
  byteSize: number,
  source: string,
): Promise<number> {
  const row = await db
    .insertInto('media')
    .values({
      sha256: Buffer.from(hashes.sha256, 'hex'),
      pdq: Buffer.from(hashes.pdq, 'hex'),
      pdq_quality: hashes.pdqQuality,
      phash64: Buffer.from(hashes.phash64, 'hex'),
      pipeline: hashes.pipeline,
      width: hashes.width,
      height: hashes.height,
      byte_size: byteSize,
      source,
    })
    .onConflict((oc) =>
      oc.column('sha256').doUpdateSet({ last_seen: sql`now()`, seen_count: sql`media.seen_count + 1` }),
    )
    .returning('id')
    .executeTakeFirstOrThrow();
  return row.id;
}

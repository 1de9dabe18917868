// Media seen by this instance: one row per distinct original (SHA-256), with when and where it was
// seen, images with their image hashes, videos with MD5 and vPDQ. Owns the media table.
import { sql } from 'kysely';
import type { Db } from '../store/index.js';
import type { ImageHashes, ImageHashesWithDihedral } from '../../shared/hashing/index.js';
import { queryOf, type MatchQuery } from '../matching/matcher.js';
import { imageSubjects, parseFrames, videoSubjects } from '../../shared/algorithms/index.js';
import { encodeVpdq } from '../../shared/hashing/vpdq.js';
import type { VideoHashes } from '../video/index.js';

const PDQ_BYTES = 32;

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

export async function recordMedia(
  db: Db,
  hashes: ImageHashes | ImageHashesWithDihedral,
  byteSize: number,
  source: string,
): Promise<number> {
  const dihedral = 'pdqDihedral' in hashes ? Buffer.concat(Object.values(hashes.pdqDihedral).map((hex) => Buffer.from(hex, 'hex'))) : null;
  const row = await db
    .insertInto('media')
    .values({
      sha256: Buffer.from(hashes.sha256, 'hex'),
      pdq: Buffer.from(hashes.pdq, 'hex'),
      pdq_quality: hashes.pdqQuality,
      pdq_dihedral: dihedral,
      phash64: Buffer.from(hashes.phash64, 'hex'),
      pipeline: hashes.pipeline,
      width: hashes.width,
      height: hashes.height,
      byte_size: byteSize,
      source,
    })
    .onConflict((oc) =>
      oc.column('sha256').doUpdateSet({
        last_seen: sql`now()`,
        seen_count: sql`media.seen_count + 1`,
        pdq_dihedral: sql`coalesce(media.pdq_dihedral, excluded.pdq_dihedral)`,
      }),
    )
    .returning('id')
    .executeTakeFirstOrThrow();
  return row.id;
}

/** Records a video (no image hashes): its SHA-256, MD5 and vPDQ frame list. */
export async function recordVideoMedia(db: Db, hashes: VideoHashes, source: string): Promise<number> {
  const row = await db
    .insertInto('media')
    .values({
      sha256: Buffer.from(hashes.sha256, 'hex'),
      md5: Buffer.from(hashes.md5, 'hex'),
      vpdq: JSON.stringify(encodeVpdq(hashes.frames)),
      pdq: null,
      pdq_quality: null,
      pdq_dihedral: null,
      phash64: null,
      pipeline: hashes.pipeline,
      width: hashes.width,
      height: hashes.height,
      byte_size: hashes.byteSize,
      source,
    })
    .onConflict((oc) => oc.column('sha256').doUpdateSet({ last_seen: sql`now()`, seen_count: sql`media.seen_count + 1` }))
    .returning('id')
    .executeTakeFirstOrThrow();
  return row.id;
}

/** Every verdict that may match a video: its SHA-256 and MD5, and each distinct frame in the PDQ space. */
export function videoLookupQuery(hashes: Pick<VideoHashes, 'sha256' | 'md5' | 'frames'>): MatchQuery {
  return queryOf(videoSubjects(hashes));
}

/**
 * The lookup a decision about media we have seen uses: its SHA-256, the PDQs of its rotations
 * and mirrors (its own PDQ alone if those were not recorded) and its pHash-64; undefined for media
 * never seen.
 */
export async function mediaQuery(db: Db, sha256: string): Promise<MatchQuery | undefined> {
  const row = await db
    .selectFrom('media')
    .select(['pdq', 'pdq_quality', 'pdq_dihedral', 'phash64', 'md5', 'vpdq'])
    .where('sha256', '=', Buffer.from(sha256, 'hex'))
    .executeTakeFirst();
  if (!row) return undefined;
  if (row.md5 && row.vpdq) return videoLookupQuery({ sha256, md5: hex(row.md5), frames: parseFrames(row.vpdq) });
  const pdq: string[] = [];
  if (row.pdq_dihedral) for (let i = 0; i + PDQ_BYTES <= row.pdq_dihedral.length; i += PDQ_BYTES) pdq.push(hex(row.pdq_dihedral.subarray(i, i + PDQ_BYTES)));
  else if (row.pdq) pdq.push(hex(row.pdq));
  return queryOf(imageSubjects({ sha256, pdq, pdqQuality: row.pdq_quality ?? undefined, phash64: row.phash64 ? hex(row.phash64) : undefined }));
}

/**
 * The subjects our verdicts about recorded media carry: a video's SHA-256, MD5 and distinct frames;
 * an image's SHA-256, PDQ (with its quality) and pHash-64, so that peers can tell a near-duplicate
 * from a crafted PDQ collision. Undefined for media never seen.
 */
export async function mediaSubjects(db: Db, sha256: string): Promise<Array<{ algorithm: string; digest: string; quality?: number }> | undefined> {
  const row = await db
    .selectFrom('media')
    .select(['pdq', 'pdq_quality', 'phash64', 'md5', 'vpdq'])
    .where('sha256', '=', Buffer.from(sha256, 'hex'))
    .executeTakeFirst();
  if (!row) return undefined;
  if (row.md5 && row.vpdq) return videoSubjects({ sha256, md5: hex(row.md5), frames: parseFrames(row.vpdq) });
  return imageSubjects({
    sha256,
    pdq: row.pdq ? [hex(row.pdq)] : [],
    pdqQuality: row.pdq_quality ?? undefined,
    phash64: row.phash64 ? hex(row.phash64) : undefined,
  });
}

/**
 * Every verdict that may match hashed media: its SHA-256, and its PDQ in all eight rotations and
 * mirrors; its pHash-64 is the second hash the decider checks near-duplicate matches with.
 */
export function lookupQuery(hashes: ImageHashesWithDihedral): MatchQuery {
  return queryOf(imageSubjects({ sha256: hashes.sha256, pdq: Object.values(hashes.pdqDihedral), pdqQuality: hashes.pdqQuality, phash64: hashes.phash64 }));
}

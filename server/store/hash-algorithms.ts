// The `hash_algorithms` table follows the algorithm registry (shared/algorithms): every start adds
// the algorithms this build knows, so verdict subjects of a new algorithm pass the foreign key,
// and refuses to run against a store that knows an algorithm by another digest length (two builds
// disagreeing on what a digest is would corrupt matching). Algorithms the store knows and this
// build does not stay, with their subjects: an older build keeps reading what a newer one wrote.
import type { Kysely } from 'kysely';
import type { AlgorithmRegistry } from '../../shared/algorithms/index.js';
import type { Database } from './schema.js';

export class HashAlgorithmMismatchError extends Error {
  override name = 'HashAlgorithmMismatchError';
}

export async function syncHashAlgorithms(db: Kysely<Database>, registry: AlgorithmRegistry): Promise<void> {
  const rows = registry.all.map((a) => ({ name: a.name, digest_bytes: a.digestBytes }));
  await db.insertInto('hash_algorithms').values(rows).onConflict((oc) => oc.column('name').doNothing()).execute();
  const stored = await db
    .selectFrom('hash_algorithms')
    .select(['name', 'digest_bytes'])
    .where('name', 'in', registry.names)
    .execute();
  for (const row of stored) {
    const expected = registry.get(row.name).digestBytes;
    if (row.digest_bytes !== expected) {
      throw new HashAlgorithmMismatchError(
        `the store holds ${row.name} digests of ${row.digest_bytes} bytes, this build's registry says ${expected}: refusing to start`,
      );
    }
  }
}

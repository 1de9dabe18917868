// Migrations are plain SQL files in <repo>/migrations, applied in name order on start by Kysely's
// migrator (which records them and takes a lock, so concurrent replicas do not race).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MIGRATIONS_DIR } from '../config/paths.js';
import { Migrator, sql, type Kysely, type Migration, type MigrationProvider } from 'kysely';

/**
 * PGlite runs one statement per query (extended protocol), so files are split on a `;` that ends
 * a line. Migration files follow that rule (see migrations/README.md): no dollar-quoted bodies.
 */
function splitStatements(text: string): string[] {
  return text
    .replace(/^\s*--.*$/gm, '')
    .split(/;\s*$/m)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

class SqlFileMigrationProvider implements MigrationProvider {
  constructor(private readonly dir: string) {}

  async getMigrations(): Promise<Record<string, Migration>> {
    const migrations: Record<string, Migration> = {};
    for (const file of readdirSync(this.dir).filter((f) => f.endsWith('.sql')).sort()) {
      const text = readFileSync(join(this.dir, file), 'utf8');
      migrations[file.replace(/\.sql$/, '')] = {
        up: async (db) => {
          for (const statement of splitStatements(text)) await sql.raw(statement).execute(db);
        },
      };
    }
    return migrations;
  }
}

export async function migrateToLatest(db: Kysely<any>, schema?: string): Promise<void> {
  const migrator = new Migrator({
    db,
    provider: new SqlFileMigrationProvider(MIGRATIONS_DIR),
    // Kysely looks for its bookkeeping tables across all schemas unless told which one: another
    // deployment's tables in the same database would otherwise be mistaken for ours.
    ...(schema ? { migrationTableSchema: schema } : {}),
  });
  for (let attempt = 1; ; attempt++) {
    const { error, results } = await migrator.migrateToLatest();
    if (error && attempt < 5 && otherSchemaVanished(error, schema)) continue;
    const failed = results?.find((r) => r.status === 'Error');
    if (error) {
      const detail = error instanceof Error ? error.message : String(error);
      throw new Error(`database migration ${failed?.migrationName ?? ''} failed: ${detail}`);
    }
    return;
  }
}

/**
 * Kysely's migrator lists the tables of every schema the role may use; another deployment (or
 * test) dropping its own schema during that listing fails it with 3F000 naming that schema.
 * Nothing was applied then, so the migration is simply tried again.
 */
function otherSchemaVanished(error: unknown, ours: string | undefined): boolean {
  if (!(error instanceof Error) || (error as { code?: unknown }).code !== '3F000') return false;
  return ours === undefined || !error.message.includes(`"${ours}"`);
}

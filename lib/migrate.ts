/**
 * SQL migrations from `schemas/migrations/NNNN_name.sql`, applied in order, each in its own
 * transaction, under an advisory lock so that two processes starting at once do not race.
 * Applied files are recorded with a checksum; running twice is a no-op, and a file edited after
 * it was applied is refused (add a new migration instead).
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { PROJECT_ROOT } from './config.ts';
import { MigrationError } from './errors.ts';

export const MIGRATIONS_DIR = path.join(PROJECT_ROOT, 'schemas', 'migrations');
const LOCK_KEY = 0x1_5e_7c; // arbitrary, constant: "invsync migrations"

export interface Migration {
  version: string;
  name: string;
  sql: string;
  checksum: string;
}

const FILE_PATTERN = /^(\d{4})_([a-z0-9_]+)\.sql$/;

/** Pure: turns directory entries into ordered migrations, refusing duplicates and odd names. */
export function parseMigrations(files: Array<{ file: string; sql: string }>): Migration[] {
  const seen = new Set<string>();
  const out: Migration[] = [];
  for (const { file, sql } of files) {
    const match = FILE_PATTERN.exec(file);
    if (!match) throw new MigrationError(`migration file ${file} must be named NNNN_snake_name.sql`);
    const version = match[1]!;
    if (seen.has(version)) throw new MigrationError(`two migrations share the number ${version}`);
    seen.add(version);
    out.push({ version, name: match[2]!, sql, checksum: createHash('sha256').update(sql).digest('hex') });
  }
  return out.sort((a, b) => a.version.localeCompare(b.version));
}

export function loadMigrations(dir = MIGRATIONS_DIR): Migration[] {
  const files = fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.sql'))
    .map((file) => ({ file, sql: fs.readFileSync(path.join(dir, file), 'utf8') }));
  return parseMigrations(files);
}

export interface MigrateResult {
  applied: string[];
  alreadyApplied: string[];
}

export async function migrate(
  connectionString: string,
  { migrations = loadMigrations(), onApply }: { migrations?: Migration[]; onApply?: (m: Migration) => void } = {},
): Promise<MigrateResult> {
  const client = new pg.Client({ connectionString });
  await client.connect();
  try {
    await client.query('SELECT pg_advisory_lock($1)', [LOCK_KEY]);
    await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version text PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now())`);
    const { rows } = await client.query<{ version: string; checksum: string }>(
      'SELECT version, checksum FROM schema_migrations',
    );
    const done = new Map(rows.map((r) => [r.version, r.checksum]));
    const result: MigrateResult = { applied: [], alreadyApplied: [] };
    for (const m of migrations) {
      const previous = done.get(m.version);
      if (previous !== undefined) {
        if (previous !== m.checksum) {
          throw new MigrationError(
            `migration ${m.version}_${m.name}.sql was changed after it was applied; add a new migration instead`,
          );
        }
        result.alreadyApplied.push(m.version);
        continue;
      }
      try {
        await client.query('BEGIN');
        await client.query(m.sql);
        await client.query('INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)', [
          m.version,
          m.name,
          m.checksum,
        ]);
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw new MigrationError(`migration ${m.version}_${m.name}.sql failed: ${(err as Error).message}`, {
          cause: err,
        });
      }
      onApply?.(m);
      result.applied.push(m.version);
    }
    return result;
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [LOCK_KEY]).catch(() => undefined);
    await client.end().catch(() => undefined);
  }
}

/**
 * Applies migrations kept in Prisma's folder layout (`<dir>/<timestamp>_<name>/migration.sql`)
 * the way `prisma migrate deploy` does, with node-postgres only, so it works where Prisma's
 * schema-engine binary cannot be installed. The `_prisma_migrations` rows it writes are the ones
 * Prisma's engine writes, so `prisma migrate deploy` on the same folder later sees nothing to do.
 * @module
 */
import { createHash, randomUUID } from 'node:crypto'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import pg from 'pg'

/** The advisory lock key Prisma's migration engine takes; holding it keeps both from racing. */
const PRISMA_MIGRATE_LOCK = 72707369

const CREATE_MIGRATIONS_TABLE = `CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
  "id" VARCHAR(36) PRIMARY KEY NOT NULL,
  "checksum" VARCHAR(64) NOT NULL,
  "finished_at" TIMESTAMPTZ,
  "migration_name" VARCHAR(255) NOT NULL,
  "logs" TEXT,
  "rolled_back_at" TIMESTAMPTZ,
  "started_at" TIMESTAMPTZ NOT NULL DEFAULT now(),
  "applied_steps_count" INTEGER NOT NULL DEFAULT 0
)`

export interface MigrationResult {
  /** Folder names applied by this call, in order. */
  applied: string[]
  /** Folder names that were already applied. */
  skipped: string[]
}

/** Lists migration folder names of `dir` in the order Prisma applies them. */
export async function listMigrations(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true })
  return entries
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort()
}

/**
 * Applies every migration folder of each directory in `dirs` not yet recorded in
 * `_prisma_migrations`, in name order per directory.
 *
 * @param connectionString - a PostgreSQL URL
 * @param dirs - migration folders (Prisma layout); several may share one database
 * @throws Error naming the migration that failed (its message is also stored in `logs`), or
 *   when an earlier migration failed and was never resolved (Prisma's P3009)
 */
export async function applyMigrations(connectionString: string, dirs: string[]): Promise<MigrationResult> {
  const client = new pg.Client({ connectionString })
  await client.connect()
  const result: MigrationResult = { applied: [], skipped: [] }
  try {
    await client.query('SELECT pg_advisory_lock($1)', [PRISMA_MIGRATE_LOCK])
    await client.query(CREATE_MIGRATIONS_TABLE)
    const failed = await client.query<{ migration_name: string }>(
      'SELECT migration_name FROM "_prisma_migrations" WHERE finished_at IS NULL AND rolled_back_at IS NULL',
    )
    if (failed.rows.length > 0) {
      const names = failed.rows.map((r) => r.migration_name).join(', ')
      throw new Error(
        `migration(s) ${names} failed earlier and were never resolved; fix the database, then mark them rolled back`,
      )
    }
    const done = await client.query<{ migration_name: string }>(
      'SELECT migration_name FROM "_prisma_migrations" WHERE finished_at IS NOT NULL',
    )
    const applied = new Set(done.rows.map((r) => r.migration_name))
    for (const dir of dirs) {
      for (const name of await listMigrations(dir)) {
        if (applied.has(name)) {
          result.skipped.push(name)
          continue
        }
        await applyOne(client, dir, name)
        applied.add(name)
        result.applied.push(name)
      }
    }
    return result
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [PRISMA_MIGRATE_LOCK]).catch(() => {})
    await client.end()
  }
}

async function applyOne(client: pg.Client, dir: string, name: string): Promise<void> {
  const sql = await readFile(join(dir, name, 'migration.sql'))
  const checksum = createHash('sha256').update(sql).digest('hex')
  const id = randomUUID()
  await client.query(
    'INSERT INTO "_prisma_migrations" (id, checksum, migration_name, started_at, applied_steps_count) VALUES ($1, $2, $3, now(), 0)',
    [id, checksum, name],
  )
  try {
    // Like Prisma's engine: the whole file as one simple query, no wrapping transaction.
    await client.query(sql.toString('utf8'))
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error)
    await client.query('UPDATE "_prisma_migrations" SET logs = $2 WHERE id = $1', [id, message])
    throw new Error(`migration ${name} failed: ${message}`, { cause: error })
  }
  await client.query(
    'UPDATE "_prisma_migrations" SET finished_at = now(), applied_steps_count = 1 WHERE id = $1',
    [id],
  )
}

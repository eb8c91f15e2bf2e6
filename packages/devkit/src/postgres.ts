/**
 * Isolated PostgreSQL databases for tests: each call creates a database of its own, with
 * migrations applied, on the server named by `DATABASE_URL` (default: the local server).
 * @module
 */
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { applyMigrations } from './migrate.js'

/** The server tests use when `DATABASE_URL` is not set. */
export const DEFAULT_DATABASE_URL = 'postgresql://postgres@127.0.0.1:5432/postgres'

export interface TestDatabase {
  /** Name of the database created for this test. */
  name: string
  /** Connection URL of the new database. */
  url: string
  /** A pool on the new database, closed by `drop()`. */
  pool: pg.Pool
  /** Closes the pool and drops the database (also when other sessions are still connected). */
  drop(): Promise<void>
}

/** Returns `base` with its database name replaced by `database`. */
export function withDatabase(base: string, database: string): string {
  const url = new URL(base)
  url.pathname = `/${database}`
  return url.toString()
}

/**
 * Creates a fresh, uniquely named database and applies the given migration folders.
 *
 * @param options.migrations - Prisma-layout migration folders, applied in order
 * @param [options.baseUrl=process.env.DATABASE_URL ?? DEFAULT_DATABASE_URL] - server to use
 * @example
 * const db = await createTestDatabase({ migrations: ['prisma/migrations'] })
 * afterAll(() => db.drop())
 */
export async function createTestDatabase(options: {
  migrations: string[]
  baseUrl?: string
  prefix?: string
}): Promise<TestDatabase> {
  const baseUrl = options.baseUrl ?? process.env.DATABASE_URL ?? DEFAULT_DATABASE_URL
  const name = `${options.prefix ?? 'outbox_test'}_${randomBytes(6).toString('hex')}`
  const admin = new pg.Client({ connectionString: baseUrl })
  await admin.connect().catch((error: unknown) => {
    throw new Error(
      `cannot connect to PostgreSQL at ${redact(baseUrl)}: ${(error as Error).message}. Start it (bash scripts/services.sh up) or set DATABASE_URL.`,
      { cause: error },
    )
  })
  try {
    await admin.query(`CREATE DATABASE "${name}"`)
  } finally {
    await admin.end()
  }
  const url = withDatabase(baseUrl, name)
  await applyMigrations(url, options.migrations)
  const pool = new pg.Pool({ connectionString: url, max: 10 })
  // drop() ends the pool, then DROP DATABASE … WITH (FORCE) terminates what is still connected: an
  // idle client still closing then reports 57P01 through the pool, which must not crash the run.
  // A test that uses the pool still sees errors on its own queries.
  pool.on('error', () => {})
  return {
    name,
    url,
    pool,
    async drop() {
      await pool.end()
      const client = new pg.Client({ connectionString: baseUrl })
      await client.connect()
      try {
        await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)
      } finally {
        await client.end()
      }
    },
  }
}

/** Hides the password of a connection URL for messages. */
export function redact(url: string): string {
  try {
    const u = new URL(url)
    if (u.password) u.password = '***'
    return u.toString()
  } catch {
    return '<invalid url>'
  }
}

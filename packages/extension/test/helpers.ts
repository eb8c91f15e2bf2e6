import { fileURLToPath } from 'node:url'
import { PrismaPg } from '@prisma/adapter-pg'
import { createTestDatabase, type TestDatabase } from '@prisma-outbox/devkit'
import { afterAll, beforeAll, beforeEach } from 'vitest'
import { PrismaClient } from './generated/client/client.js'
import { outbox } from './generated/outbox/index.js'

export const OUTBOX_MIGRATIONS = fileURLToPath(new URL('../prisma/migrations', import.meta.url))
export const TEST_MIGRATIONS = fileURLToPath(new URL('./prisma/migrations', import.meta.url))

/** A fresh database with the outbox table and the test models. */
export function testDatabase(): Promise<TestDatabase> {
  return createTestDatabase({ migrations: [OUTBOX_MIGRATIONS, TEST_MIGRATIONS], prefix: 'outbox_ext' })
}

export function basePrisma(db: TestDatabase): PrismaClient {
  return new PrismaClient({ adapter: new PrismaPg({ connectionString: db.url }) })
}

/** The client the tests exercise: annotated models captured, as a user would set it up. */
export function extendedPrisma(db: TestDatabase, options: Parameters<typeof outbox>[0] = {}) {
  return basePrisma(db).$extends(outbox(options))
}

export type ExtendedPrisma = ReturnType<typeof extendedPrisma>

export interface OutboxRowView {
  id: string
  aggregatetype: string
  aggregateid: string
  type: string
  payload: Record<string, unknown>
  topic: string
  headers: Record<string, string>
}

/** All outbox rows in insertion order. */
export async function outboxRows(db: TestDatabase): Promise<OutboxRowView[]> {
  const { rows } = await db.pool.query<OutboxRowView>(
    'SELECT id, aggregatetype, aggregateid, type, payload, topic, headers FROM outbox_event ORDER BY seq',
  )
  return rows
}

/**
 * Disconnects the clients, waits until their connections are really closed (adapter-pg ends its
 * pool asynchronously), then drops the database. Dropping earlier makes `DROP ... WITH (FORCE)`
 * kill half-closed connections, which surfaces as an unhandled "terminating connection" error.
 */
export async function dispose(
  db: TestDatabase | undefined,
  ...clients: ({ $disconnect(): Promise<void> } | undefined)[]
): Promise<void> {
  for (const client of clients) await client?.$disconnect()
  if (!db) return
  for (let i = 0; i < 100; i++) {
    const { rows } = await db.pool.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()',
    )
    // The helper pool's own idle connections remain; drop() closes those itself.
    if ((rows[0]?.n ?? 0) <= db.pool.totalCount - 1) break
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  await db.drop()
}

/**
 * The hooks the capture test files share: one database and one base and one extended client for
 * the file, every table emptied before each test, all closed after the file (with
 * `alsoDisconnect`, clients the file adds later).
 * @example
 * useCaptureDatabase({ db: (d) => (db = d), base: (c) => (base = c), prisma: (c) => (prisma = c) })
 */
export function useCaptureDatabase(
  use: { db(db: TestDatabase): void; base(client: PrismaClient): void; prisma(client: ExtendedPrisma): void },
  alsoDisconnect: { $disconnect(): Promise<void> }[] = [],
): void {
  let db: TestDatabase | undefined
  let base: PrismaClient | undefined
  let prisma: ExtendedPrisma | undefined
  beforeAll(async () => {
    db = await testDatabase()
    base = basePrisma(db)
    prisma = extendedPrisma(db)
    // Capture triggers in place before any test, so writes of every client are captured.
    await prisma.$outbox.ready()
    use.db(db)
    use.base(base)
    use.prisma(prisma)
  })
  afterAll(async () => {
    await dispose(db, prisma, base, ...alsoDisconnect)
  })
  beforeEach(async () => {
    // A client with other options may have replaced the triggers: put the default ones back.
    await prisma?.$outbox.ready()
    await db?.pool.query(
      'TRUNCATE employee, department, membership, blob, audit_note, parent, mid, leaf, probe, pair, wide, outbox_event RESTART IDENTITY',
    )
  })
}

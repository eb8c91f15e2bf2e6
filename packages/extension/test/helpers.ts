import { fileURLToPath } from 'node:url'
import { createTestDatabase, type TestDatabase } from '@prisma-outbox/devkit'
import { PrismaPg } from '@prisma/adapter-pg'
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

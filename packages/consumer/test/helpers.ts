import { randomUUID } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { PrismaPg } from '@prisma/adapter-pg'
import { createTestDatabase, type TestDatabase } from '@prisma-outbox/devkit'
import type { Kafka } from 'kafkajs'
import { afterAll, beforeAll } from 'vitest'
import type { OutboxEvent } from '../src/index.js'
import { PrismaClient } from './generated/client/client.js'

export const migrations = [
  fileURLToPath(new URL('../prisma/migrations', import.meta.url)),
  fileURLToPath(new URL('./prisma/migrations', import.meta.url)),
]

/**
 * A database of this test file's own, with the inbox and the test models, and a client on it:
 * registers the hooks that create them before the file's tests and drop them after.
 */
export function useTestDatabase(prefix: string): { db: TestDatabase; prisma: PrismaClient } {
  const context = {} as { db: TestDatabase; prisma: PrismaClient }
  beforeAll(async () => {
    context.db = await createTestDatabase({ migrations, prefix })
    context.prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: context.db.url }) })
  })
  afterAll(async () => {
    await context.prisma?.$disconnect()
    await context.db?.drop()
  })
  return context
}

export type Tx = Parameters<Parameters<PrismaClient['$transaction']>[0]>[0]

/** The test handler: counts how often an aggregate's events were applied. */
export const bump = (e: OutboxEvent, tx: Tx) =>
  tx.tally
    .upsert({
      where: { aggregateId: e.aggregateId ?? '' },
      create: { aggregateId: e.aggregateId ?? '', applied: 1 },
      update: { applied: { increment: 1 } },
    })
    .then(() => undefined)

/** An outbox message as the relay sends it. */
export const outboxMessage = (key: string, id = randomUUID(), value = '{}') => ({
  key,
  value,
  headers: { id, eventType: 'thing.updated', aggregateType: 'thing' },
})

/** Sends messages with an idempotent producer, acked by all replicas. */
export async function produce(
  kafka: Kafka,
  topic: string,
  messages: { key: string; value: string; headers: Record<string, string> }[],
) {
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 })
  await producer.connect()
  try {
    await producer.send({ topic, acks: -1, messages })
  } finally {
    await producer.disconnect()
  }
}

/** A promise and the function that resolves it: a barrier for events of another connection. */
export function barrier<T = void>() {
  let open!: (value: T) => void
  const reached = new Promise<T>((resolve) => {
    open = resolve
  })
  return { reached, open }
}

/**
 * Shared setup of the stream relay's integration tests: one private PostgreSQL cluster with
 * `wal_level = logical` per test file, a database of its own per test.
 */
import {
  createTestDatabase,
  type LogicalPostgres,
  startLogicalPostgres,
  type TestDatabase,
} from '@prisma-outbox/devkit'
import type { Kafka } from 'kafkajs'
import { afterAll, afterEach, beforeAll, beforeEach } from 'vitest'
import type { KafkaPublisher } from '../src/index.js'
import { kafkaPublisher, MIGRATIONS } from './helpers.js'

export interface StreamTestContext {
  cluster: LogicalPostgres
  db: TestDatabase
  /** A slot name unique to the test's database. */
  slot: string
}

/**
 * Starts the file's cluster before all tests and a fresh database (with its own slot name) before
 * each; drops the database's slots, the database and the cluster afterwards.
 */
export function useStreamDatabase(): StreamTestContext {
  const context = {} as StreamTestContext
  beforeAll(async () => {
    context.cluster = await startLogicalPostgres()
  }, 120_000)
  afterAll(async () => {
    await context.cluster?.stop()
  })
  beforeEach(async () => {
    context.db = await createTestDatabase({
      migrations: [MIGRATIONS],
      baseUrl: context.cluster.url,
      prefix: 'stream',
    })
    context.slot = `slot_${context.db.name}`
  })
  afterEach(async () => {
    const { db } = context
    await db.pool.query(
      `SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots
       WHERE database = current_database() AND active_pid IS NOT NULL`,
    )
    await db.pool.query(
      `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots
       WHERE database = current_database() AND NOT active`,
    )
    await db.drop()
  })
  return context
}

/** Resolves when `check` returns true, polling the database every 50 ms (bounded by `timeoutMs`). */
export async function waitFor(
  check: () => Promise<boolean> | boolean,
  what: string,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

/** A connected publisher on the real broker for the whole file: `get()` it inside a test. */
export function useStreamPublisher(kafka: Kafka): { get(): KafkaPublisher } {
  let publisher: KafkaPublisher | undefined
  beforeAll(async () => {
    publisher = await kafkaPublisher(kafka)
  })
  afterAll(async () => {
    await publisher?.disconnect()
  })
  return {
    get() {
      if (!publisher) throw new Error('the publisher is connected in beforeAll')
      return publisher
    },
  }
}

/** Each key's payload counter `n`, in the order the topic delivered the messages. */
export function orderByKey(
  messages: Array<{ key: string | null; value: string | null }>,
): Map<string, number[]> {
  const byKey = new Map<string, number[]>()
  for (const m of messages) {
    const list = byKey.get(m.key ?? '') ?? []
    list.push((JSON.parse(m.value ?? '{}') as { n: number }).n)
    byKey.set(m.key ?? '', list)
  }
  return byKey
}

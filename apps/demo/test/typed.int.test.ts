/**
 * Typed events end to end on the demo schema: the generated catalogue's types (`expectTypeOf`),
 * then a write through the extension → the relay library → Kafka → the inbox's typed handlers,
 * whose handlers receive exactly the typed payloads (real PostgreSQL and Kafka).
 */
import { randomUUID } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { createInbox, subscribe, typedHandler } from '@prisma-outbox/consumer'
import {
  createTestDatabase,
  createTopics,
  type TestDatabase,
  testKafka,
  uniqueTopic,
} from '@prisma-outbox/devkit'
import { createEngine, KafkaPublisher } from '@prisma-outbox/relay'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from 'vitest'
import { createPrisma, type DemoPrisma } from '../src/db.js'
import {
  type EmployeePayload,
  events,
  type OutboxEvents,
  type OutboxEventType,
} from '../src/generated/outbox/index.js'

const MIGRATIONS = fileURLToPath(new URL('../../../prisma/migrations', import.meta.url))

describe('the demo schema catalogue', () => {
  it('types employee payloads as encoded: DateTime as ISO strings, optional fields nullable', () => {
    expectTypeOf<OutboxEventType>().toEqualTypeOf<
      'employee.created' | 'employee.updated' | 'employee.deleted'
    >()
    expectTypeOf<OutboxEvents['employee.created']>().toEqualTypeOf<{
      id: string
      email: string
      name: string
      title: string | null
      department: string | null
      createdAt: string
      updatedAt: string
    }>()
    expectTypeOf<OutboxEvents['employee.deleted']>().toEqualTypeOf<EmployeePayload>()
    expect(Object.keys(events)).toEqual(['employee.created', 'employee.updated', 'employee.deleted'])
    expect(events['employee.created'].topic).toBe('outbox.event.employee')
  })
})

describe('typed events end to end', () => {
  let db: TestDatabase
  let prisma: DemoPrisma
  let pool: pg.Pool
  const kafka = testKafka()
  const topic = uniqueTopic('demo.typed')
  const publisher = new KafkaPublisher({ kafka })

  beforeAll(async () => {
    db = await createTestDatabase({ migrations: [MIGRATIONS], prefix: 'outbox_demo_typed' })
    prisma = createPrisma(db.url, topic)
    pool = new pg.Pool({ connectionString: db.url, max: 2 })
    await createTopics(kafka, [topic], 1)
    await publisher.connect()
  })
  afterAll(async () => {
    await publisher.disconnect?.()
    await prisma?.$disconnect()
    await pool?.end()
    await db?.drop()
  })

  it('write → relay → Kafka → consumer: each handler receives exactly the typed payload', async () => {
    const ada = await prisma.employee.create({
      data: { email: 'ada@example.com', name: 'Ada', title: 'Engineer' },
    })
    const renamed = await prisma.employee.update({
      where: { id: ada.id },
      data: { name: 'Ada L.', title: null },
    })
    await prisma.employee.delete({ where: { id: ada.id } })

    const engine = createEngine({ pool, publisher })
    let published = 0
    while (published < 3) {
      const result = await engine.drain({ budgetMs: 5_000 })
      if (result.published === 0 && result.remaining === 0) break
      published += result.published
    }
    expect(published).toBe(3)

    const received: [string, unknown, string | undefined][] = []
    let done: () => void = () => undefined
    const all = new Promise<void>((resolve) => (done = resolve))
    const record = (type: string, payload: EmployeePayload, version: string | undefined) => {
      received.push([type, payload, version])
      if (received.length === 3) done()
    }
    const inbox = createInbox(prisma, { consumer: `typed-${randomUUID()}` })
    const handler = typedHandler(events, {
      'employee.created': async (event) => {
        expectTypeOf(event.payload).toEqualTypeOf<EmployeePayload>()
        record(event.type, event.payload, event.schemaVersion)
      },
      'employee.updated': async (event) => record(event.type, event.payload, event.schemaVersion),
      'employee.deleted': async (event) => record(event.type, event.payload, event.schemaVersion),
    })
    const consumer = kafka.consumer({ groupId: `typed-${randomUUID()}` })
    await consumer.connect()
    await subscribe(consumer, { topics: [topic], fromBeginning: true })
    await consumer.run({ eachMessage: inbox.eachMessage(handler) })
    await all
    await consumer.disconnect()

    const version = events['employee.created'].version
    const encoded = (e: typeof ada): EmployeePayload => ({
      id: e.id,
      email: e.email,
      name: e.name,
      title: e.title,
      department: e.department,
      createdAt: e.createdAt.toISOString(),
      updatedAt: e.updatedAt.toISOString(),
    })
    expect(received).toEqual([
      ['employee.created', encoded(ada), version],
      ['employee.updated', encoded(renamed), version],
      ['employee.deleted', encoded(renamed), version],
    ])
    expect(inbox.counters()).toMatchObject({ processed: 3, retries: 0, deadLettered: 0, failed: 0 })
  })
})

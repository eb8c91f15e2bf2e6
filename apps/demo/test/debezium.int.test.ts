/**
 * The outbox table is Debezium-compatible: Debezium's outbox EventRouter (Kafka Connect, settings
 * of scripts/debezium.sh) and the relay publish the same message for the same row, and a consumer
 * behind the inbox handles each event once while both run during a switch (docs/migrate-to-debezium.md).
 * Real PostgreSQL (a private cluster: Debezium needs wal_level = logical) and the real broker.
 */
import { randomUUID } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { createInbox, subscribe } from '@prisma-outbox/consumer'
import {
  createTestDatabase,
  createTopics,
  type DebeziumWorker,
  type LogicalPostgres,
  startDebezium,
  startLogicalPostgres,
  type TestDatabase,
  testKafka,
  uniqueTopic,
} from '@prisma-outbox/devkit'
import { createEngine, createWatcher, KafkaPublisher } from '@prisma-outbox/relay'
import type { Consumer } from 'kafkajs'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createPrisma, type DemoPrisma } from '../src/db.js'

const MIGRATIONS = fileURLToPath(new URL('../../../prisma/migrations', import.meta.url))
const SLOT = 'debezium_outbox'

const kafka = testKafka('outbox-debezium-test')
const topic = uniqueTopic('outbox.event.employee')
const payrollTopic = uniqueTopic('outbox.event.payroll')
let cluster: LogicalPostgres
let db: TestDatabase
let prisma: DemoPrisma
let debezium: DebeziumWorker | undefined
let publisher: KafkaPublisher

/** A message as it lies in Kafka: headers as the raw list of (name, value) pairs, in order. */
interface Raw {
  topic: string
  partition: number
  offset: number
  key: string | null
  value: string | null
  headers: Array<[string, string]>
}

/** Every message of the test's topics, from the beginning, as they arrive. */
const tap: { messages: Raw[]; consumer?: Consumer } = { messages: [] }

beforeAll(async () => {
  cluster = await startLogicalPostgres()
  db = await createTestDatabase({ migrations: [MIGRATIONS], baseUrl: cluster.url, prefix: 'outbox_dbz' })
  await createTopics(kafka, [topic, payrollTopic], 3)
  // As the guide says: a publication of INSERTs only, so the relay's status updates and
  // retention deletes never reach Debezium.
  await db.pool.query(`CREATE PUBLICATION debezium_outbox FOR TABLE outbox_event WITH (publish = 'insert')`)
  // Cold, this downloads the jars with Maven first (about 80 s).
  debezium = await startDebezium({
    databaseUrl: db.url,
    slot: SLOT,
    publicationAutocreate: 'disabled',
    pollIntervalMs: 20,
    offsetFlushMs: 200,
  })
  prisma = createPrisma(db.url, topic)
  publisher = new KafkaPublisher({ kafka, createTopics: false })
  await publisher.connect()
  tap.consumer = kafka.consumer({ groupId: `dbz-tap-${randomUUID()}`, maxWaitTimeInMs: 100 })
  await tap.consumer.connect()
  await tap.consumer.subscribe({ topics: [topic, payrollTopic], fromBeginning: true })
  await tap.consumer.run({
    eachMessage: async ({ topic, partition, message }) => {
      tap.messages.push({
        topic,
        partition,
        offset: Number(message.offset),
        key: message.key?.toString() ?? null,
        value: message.value?.toString() ?? null,
        headers: Object.entries(message.headers ?? {}).flatMap(([name, v]) =>
          (Array.isArray(v) ? v : [v]).map((one): [string, string] => [name, String(one)]),
        ),
      })
    },
  })
}, 300_000)

afterAll(async () => {
  await tap.consumer?.disconnect()
  await publisher?.disconnect()
  await prisma?.$disconnect()
  await debezium?.stop()
  await db?.pool.query('SELECT pg_drop_replication_slot($1)', [SLOT]).catch(() => {})
  await db?.drop()
  await cluster?.stop()
}, 60_000)

async function until(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

const messagesOf = (id: string) =>
  tap.messages.filter((m) => m.headers.some(([n, v]) => n === 'id' && v === id))

async function outboxIds(status?: string): Promise<string[]> {
  const { rows } = await db.pool.query<{ id: string }>(
    `SELECT id::text FROM outbox_event ${status ? 'WHERE status = $1' : ''} ORDER BY seq`,
    status ? [status] : [],
  )
  return rows.map((r) => r.id)
}

/** Created, updated and deleted employees plus a custom event with headers of its own. */
async function writeEvents(tag: string): Promise<void> {
  const ada = await prisma.employee.create({ data: { email: `ada-${tag}@example.com`, name: 'Ada' } })
  await prisma.$transaction(async (tx) => {
    await tx.employee.update({ where: { id: ada.id }, data: { title: 'Engineer' } })
    await tx.$outbox.emit({
      aggregateType: 'payroll',
      aggregateId: ada.id,
      type: 'payroll.recalculated',
      topic: payrollTopic,
      payload: { id: ada.id, gross: 1234.5, note: 'ünïcödé "quoted"', nested: { list: [1, null, true] } },
      headers: {
        traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
        schemaVersion: '2',
        id: 'spoofed', // the row's id always wins, with both publishers
      },
    })
  })
  await prisma.employee.create({ data: { email: `grace-${tag}@example.com`, name: 'Grace' } })
  await prisma.employee.delete({ where: { id: ada.id } })
}

async function drainAll(): Promise<void> {
  const engine = createEngine({ pool: db.pool, publisher })
  while ((await engine.drain()).remaining > 0) {}
}

describe('Debezium outbox EventRouter on the same table', () => {
  it('publishes the same topic, partition, key, value and headers as the relay for every row', async () => {
    await writeEvents('same')
    const ids = await outboxIds()
    expect(ids).toHaveLength(5)
    // Debezium first (the relay has not run yet), then the relay on the same rows.
    await until('Debezium to publish the 5 events', () => tap.messages.length >= 5)
    await drainAll()
    expect(await outboxIds('pending')).toEqual([])
    await until('the relay to publish the 5 events', () => tap.messages.length >= 10)

    const types: string[] = []
    for (const id of ids) {
      const [fromDebezium, fromRelay, ...more] = messagesOf(id).sort((a, b) => a.offset - b.offset)
      expect(more).toEqual([])
      expect(fromRelay).toBeDefined()
      const { offset: _d, ...debeziumMessage } = fromDebezium as Raw
      const { offset: _r, ...relayMessage } = fromRelay as Raw
      expect(debeziumMessage).toEqual(relayMessage)
      types.push(relayMessage.headers.find(([n]) => n === 'eventType')?.[1] ?? '')
    }
    expect(types).toEqual([
      'employee.created',
      'employee.updated',
      'payroll.recalculated',
      'employee.created',
      'employee.deleted',
    ])
    const payroll = messagesOf(ids[2] as string)[0] as Raw
    expect(payroll.topic).toBe(payrollTopic)
    expect(payroll.headers).toEqual([
      ['traceparent', '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'],
      ['schemaVersion', '2'],
      ['id', ids[2]],
      ['eventType', 'payroll.recalculated'],
      ['aggregateType', 'payroll'],
    ])
  })

  it('lets the inbox handle each event once while both publish, and after the relay stops', async () => {
    const handled: string[] = []
    let duplicates = 0
    const inbox = createInbox(prisma, {
      consumer: `switch-${randomUUID()}`,
      hooks: { onDuplicate: () => duplicates++ },
    })
    const consumer = kafka.consumer({ groupId: `switch-${randomUUID()}`, maxWaitTimeInMs: 100 })
    await consumer.connect()
    await subscribe(consumer, { topics: [topic, payrollTopic], fromBeginning: true })
    await consumer.run({
      eachMessage: inbox.eachMessage(async (event) => {
        handled.push(event.id)
      }),
    })
    // The migration window: the relay (watch mode) and Debezium both publish every new row.
    const engine = createEngine({ pool: db.pool, publisher })
    const watcher = createWatcher({
      engine,
      createClient: () => new pg.Client({ connectionString: db.url }),
      pollMs: 200,
    })
    await watcher.start()
    try {
      for (let i = 0; i < 4; i++) await writeEvents(`window-${i}`)
      await until('the relay to publish the window', async () => (await outboxIds('pending')).length === 0)
    } finally {
      await watcher.stop()
    }
    // The relay is gone: Debezium alone publishes; its rows stay pending in the table.
    for (let i = 0; i < 2; i++) await writeEvents(`after-${i}`)
    const all = await outboxIds()
    expect(all).toHaveLength(5 + 20 + 10)
    expect(await outboxIds('pending')).toHaveLength(10)

    await until('every copy to reach the topic', () => tap.messages.length >= 2 * 25 + 10)
    // Every copy consumed: each id handled once, every other copy skipped as a duplicate.
    await until('the consumer to pass every copy', () => handled.length + duplicates >= tap.messages.length)
    await consumer.disconnect()
    expect([...handled].sort()).toEqual([...all].sort())
    for (const id of all.slice(5, 25)) expect(messagesOf(id)).toHaveLength(2)
    for (const id of all.slice(25)) expect(messagesOf(id)).toHaveLength(1)
  })
})

import { randomUUID } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { PrismaPg } from '@prisma/adapter-pg'
import {
  createTestDatabase,
  createTopics,
  type TestDatabase,
  testKafka,
  uniqueTopic,
} from '@prisma-outbox/devkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createInbox, type OutboxEvent } from '../src/index.js'
import { PrismaClient } from './generated/client/client.js'

const migrations = [
  fileURLToPath(new URL('../prisma/migrations', import.meta.url)),
  fileURLToPath(new URL('./prisma/migrations', import.meta.url)),
]

let db: TestDatabase
let prisma: PrismaClient
beforeAll(async () => {
  db = await createTestDatabase({ migrations, prefix: 'outbox_inbox' })
  prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: db.url }) })
})
afterAll(async () => {
  await prisma?.$disconnect()
  await db?.drop()
})

function event(id: string, aggregateId: string): OutboxEvent {
  return {
    id,
    type: 'thing.updated',
    aggregateType: 'thing',
    aggregateId,
    payload: {},
    headers: { id },
    topic: 't',
    partition: 0,
    offset: '0',
  }
}

const bump = (e: OutboxEvent, tx: Parameters<Parameters<PrismaClient['$transaction']>[0]>[0]) =>
  tx.tally
    .upsert({
      where: { aggregateId: e.aggregateId ?? '' },
      create: { aggregateId: e.aggregateId ?? '', applied: 1 },
      update: { applied: { increment: 1 } },
    })
    .then(() => undefined)

describe('inbox.handle', () => {
  it('applies an event once, however often it is delivered, per consumer', async () => {
    const inbox = createInbox(prisma, { consumer: 'tally' })
    const other = createInbox(prisma, { consumer: 'audit' })
    const e = event(randomUUID(), 'a-1')
    expect(await inbox.handle(e, bump)).toBe('processed')
    expect(await inbox.handle(e, bump)).toBe('duplicate')
    expect(await inbox.handle(e, bump)).toBe('duplicate')
    expect(await other.handle(e, async () => {})).toBe('processed')
    expect(await prisma.tally.findUnique({ where: { aggregateId: 'a-1' } })).toMatchObject({ applied: 1 })
  })

  it('records nothing when the handler fails, so the redelivery is applied', async () => {
    const inbox = createInbox(prisma, { consumer: 'tally' })
    const e = event(randomUUID(), 'a-2')
    await expect(
      inbox.handle(e, async (ev, tx) => {
        await bump(ev, tx)
        throw new Error('handler failed')
      }),
    ).rejects.toThrow('handler failed')
    expect(await prisma.tally.findUnique({ where: { aggregateId: 'a-2' } })).toBeNull()
    expect(await inbox.handle(e, bump)).toBe('processed')
    expect(await prisma.tally.findUnique({ where: { aggregateId: 'a-2' } })).toMatchObject({ applied: 1 })
  })

  it('lets only one of two concurrent deliveries through', async () => {
    const inbox = createInbox(prisma, { consumer: 'tally' })
    const e = event(randomUUID(), 'a-3')
    const results = await Promise.all([inbox.handle(e, bump), inbox.handle(e, bump)])
    expect(results.sort()).toEqual(['duplicate', 'processed'])
    expect(await prisma.tally.findUnique({ where: { aggregateId: 'a-3' } })).toMatchObject({ applied: 1 })
  })

  it('rejects bad options with a message naming the option', () => {
    expect(() => createInbox(prisma, { consumer: '' })).toThrow(/options.consumer/)
    expect(() => createInbox(prisma, { consumer: 'x', table: 'a; drop' })).toThrow(/options.table/)
  })
})

describe('inbox.eachMessage with a real Kafka consumer', () => {
  it('changes the projection once when the same event arrives three times', async () => {
    const kafka = testKafka()
    const topic = uniqueTopic('inbox')
    await createTopics(kafka, [topic], 1)
    const id = randomUUID()
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 })
    await producer.connect()
    const message = { key: 'k-1', value: '{"n":1}', headers: { id, eventType: 'thing.updated' } }
    await producer.send({ topic, acks: -1, messages: [message, message, message] })
    await producer.disconnect()

    const inbox = createInbox(prisma, { consumer: 'tally-kafka' })
    const consumer = kafka.consumer({ groupId: `tally-${randomUUID()}` })
    await consumer.connect()
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    let seen = 0
    const handler = inbox.eachMessage(bump)
    await new Promise<void>((resolve, reject) => {
      consumer
        .run({
          eachMessage: async (payload) => {
            await handler(payload)
            if (++seen === 3) resolve()
          },
        })
        .catch(reject)
    })
    await consumer.disconnect()
    expect(await prisma.tally.findUnique({ where: { aggregateId: 'k-1' } })).toMatchObject({ applied: 1 })
    const inboxRows = await db.pool.query(
      'SELECT event_id, event_type, topic FROM outbox_inbox WHERE consumer = $1',
      ['tally-kafka'],
    )
    expect(inboxRows.rows).toEqual([{ event_id: id, event_type: 'thing.updated', topic }])
  })
})

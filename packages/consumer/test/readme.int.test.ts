/**
 * The examples of packages/consumer/README.md, run as written (connection, topics, logger and the
 * events to consume supplied) against the real broker and PostgreSQL.
 */
import { randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { collectMessages, createTopics, testKafka, uniqueTopic } from '@prisma-outbox/devkit'
import type { Kafka } from 'kafkajs'
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { createInbox, subscribe, typedHandler } from '../src/index.js'
import { traced } from '../src/otel/index.js'
import { barrier, produce, useTestDatabase } from './helpers.js'

const t = useTestDatabase('outbox_inbox_readme')
const kafka: Kafka = testKafka()

interface Employee {
  id: string
  name: string
}

const employeeEvent = (employee: Employee, eventId = randomUUID()) => ({
  key: employee.id,
  value: JSON.stringify(employee),
  headers: { id: eventId, eventType: 'employee.created', aggregateType: 'employee' },
})

describe('README', () => {
  it('1: the model it shows is the one the package ships', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')
    const shipped = readFileSync(new URL('../prisma/inbox.prisma', import.meta.url), 'utf8')
    const model = shipped.slice(shipped.indexOf('model InboxEvent')).trim()
    expect(readme).toContain(model)
  })

  it('2: handle events: each applied once, a redelivery skipped', async () => {
    const { prisma } = t
    const topic = uniqueTopic('outbox.event.employee')
    const ada = { id: randomUUID(), name: 'Ada' }
    const event = employeeEvent(ada)
    // The same event twice (a relay that crashed after publishing), then a rename.
    await createTopics(kafka, [topic], 1)
    await produce(kafka, topic, [event, event, employeeEvent({ ...ada, name: 'Ada L.' })])
    const done = barrier()
    let seen = 0

    const inbox = createInbox(prisma, { consumer: 'directory' })
    const consumer = kafka.consumer({ groupId: `directory-${randomUUID()}` })
    await consumer.connect()
    await subscribe(consumer, { topics: [topic], fromBeginning: true })
    const eachMessage = inbox.eachMessage<Employee>(async (event, tx) => {
      // event.id, event.type ('employee.created'), event.aggregateId, event.payload, event.headers
      await tx.directoryEntry.upsert({
        where: { employeeId: event.payload.id },
        create: { employeeId: event.payload.id, name: event.payload.name },
        update: { name: event.payload.name },
      })
    })
    await consumer.run({
      eachMessage: async (payload) => {
        await eachMessage(payload)
        if (++seen === 3) done.open()
      },
    })

    await done.reached
    await consumer.disconnect()
    expect(await prisma.directoryEntry.findUnique({ where: { employeeId: ada.id } })).toEqual({
      employeeId: ada.id,
      name: 'Ada L.',
    })
    expect(inbox.counters()).toMatchObject({ processed: 2, duplicates: 1 })
  })

  it('2b: typed handlers (traced): each gets its parsed payload; a payload failing its schema is dead-lettered', async () => {
    const { prisma } = t
    const topic = uniqueTopic('outbox.event.employee')
    await createTopics(kafka, [topic, `${topic}.dlq`], 1)
    // The generated catalogue's shape: event type -> { schema, version }.
    const EmployeePayload = z.object({ id: z.string(), name: z.string() })
    const events = {
      'employee.created': { version: 'v1', schema: EmployeePayload },
      'employee.deleted': { version: 'v1', schema: EmployeePayload },
    }
    const ada = { id: randomUUID(), name: 'Ada' }
    const grace = { id: randomUUID(), name: 'Grace' }
    const deleted = {
      ...employeeEvent(grace),
      headers: { ...employeeEvent(grace).headers, eventType: 'employee.deleted' },
    }
    const broken = { ...employeeEvent(ada), value: JSON.stringify({ id: ada.id }) }
    await produce(kafka, topic, [employeeEvent(grace), broken, employeeEvent(ada), deleted])
    const producer = kafka.producer({ idempotent: true })
    await producer.connect()
    const inbox = createInbox(prisma, { consumer: 'directory-typed', deadLetter: { producer } })
    const consumer = kafka.consumer({ groupId: `directory-${randomUUID()}` })
    await consumer.connect()
    await subscribe(consumer, { topics: [topic], fromBeginning: true })
    const done = barrier()
    let seen = 0

    const eachMessage = inbox.eachMessage(
      traced(
        typedHandler(events, {
          'employee.created': async (event, tx) => {
            await tx.directoryEntry.create({
              data: { employeeId: event.payload.id, name: event.payload.name },
            })
          },
          'employee.deleted': async (event, tx) => {
            await tx.directoryEntry.deleteMany({ where: { employeeId: event.payload.id } })
          },
        }),
        { consumerGroup: 'directory' },
      ),
    )
    await consumer.run({
      eachMessage: async (payload) => {
        await eachMessage(payload)
        if (++seen === 4) done.open()
      },
    })
    await done.reached
    await consumer.disconnect()
    await producer.disconnect()
    expect(
      await prisma.directoryEntry.findMany({ where: { employeeId: { in: [ada.id, grace.id] } } }),
    ).toEqual([{ employeeId: ada.id, name: 'Ada' }])
    expect(inbox.counters()).toMatchObject({ processed: 3, deadLettered: 1, retries: 0 })
    const [dead] = await collectMessages(kafka, [`${topic}.dlq`], { count: 1 })
    expect(dead?.headers['dlq.error']).toMatch(/INBOX_INVALID_PAYLOAD|does not match its schema/)
  })

  it('3: when a handler fails: retried, then dead-lettered with the hooks called', async () => {
    const { prisma } = t
    const topic = uniqueTopic('outbox.event.employee')
    await createTopics(kafka, [topic, `${topic}.dlq`], 1)
    const broken = { id: randomUUID(), name: 'Broken' }
    await produce(kafka, topic, [employeeEvent(broken)])
    const lines: string[] = []
    const log = {
      info: (_fields: object, message: string) => lines.push(message),
      warn: (_fields: object, message: string) => lines.push(message),
      error: (_fields: object, message: string) => lines.push(message),
    }

    const producer = kafka.producer({ idempotent: true })
    await producer.connect()
    const inbox = createInbox(prisma, {
      consumer: 'directory',
      retry: { maxAttempts: 5, initialDelayMs: 200, maxDelayMs: 10_000 },
      deadLetter: { producer }, // to '<topic>.dlq'; or deadLetter: { producer, topic: 'directory.dlq' }
      hooks: {
        onDuplicate: (event) => log.info({ id: event.id }, 'duplicate skipped'),
        onRetry: ({ event, attempt, delayMs, error }) =>
          log.warn({ id: event.id, attempt, delayMs, error }, 'retrying'),
        onDeadLetter: ({ topic, partition, offset, deadLetterTopic, error }) =>
          log.error({ topic, partition, offset, deadLetterTopic, error }, 'dead-lettered'),
      },
    })

    const consumer = kafka.consumer({ groupId: `directory-${randomUUID()}` })
    await consumer.connect()
    await subscribe(consumer, { topics: [topic], fromBeginning: true })
    const handled = barrier()
    const eachMessage = inbox.eachMessage(async () => {
      throw new Error('directory unavailable')
    })
    await consumer.run({
      eachMessage: async (payload) => {
        await eachMessage(payload)
        handled.open()
      },
    })
    await handled.reached
    await consumer.disconnect()
    await producer.disconnect()
    expect(lines).toEqual(['retrying', 'retrying', 'retrying', 'retrying', 'dead-lettered'])
    const [dead] = await collectMessages(kafka, [`${topic}.dlq`], { count: 1 })
    expect(dead?.headers).toMatchObject({ id: expect.any(String), 'dlq.attempts': '5' })
    expect(dead?.headers['dlq.error']).toContain('directory unavailable')
    expect(inbox.counters()).toMatchObject({ retries: 4, deadLettered: 1, processed: 0 })
  }, 60_000)

  it('5: retention deletes old rows', async () => {
    const { prisma } = t
    const inbox = createInbox(prisma, { consumer: 'directory' })
    await t.db.pool.query(
      `INSERT INTO outbox_inbox (consumer, event_id, processed_at)
       VALUES ('directory', gen_random_uuid(), now() - interval '15 days')`,
    )
    const deleted = await inbox.purge({ olderThanMs: 14 * 24 * 3600_000 }) // 14 days
    expect(deleted).toBe(1)
  })
})

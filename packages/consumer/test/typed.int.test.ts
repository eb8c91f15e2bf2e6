/**
 * Typed handlers against the real broker and PostgreSQL: each handler receives its event type's
 * payload parsed by the catalogue's schema; a payload failing its schema goes to the dead-letter
 * topic at once (no retry, no handler call) and the partition moves on; events of types the map
 * does not handle are recorded and skipped, or failed with `unhandled: 'fail'`.
 */
import { randomUUID } from 'node:crypto'
import { collectMessages, createTopics, testKafka, uniqueTopic } from '@prisma-outbox/devkit'
import { describe, expect, expectTypeOf, it } from 'vitest'
import { z } from 'zod'
import { createInbox, type DeadLetterInfo, InboxError, typedHandler } from '../src/index.js'
import { barrier, produce, type Tx, useTestDatabase } from './helpers.js'

const t = useTestDatabase('outbox_inbox_typed')
const kafka = testKafka()

const catalogue = {
  'employee.created': {
    version: 'v2',
    schema: z.object({ id: z.string(), name: z.string(), salary: z.string().regex(/^-?\d+(\.\d+)?$/) }),
  },
  'employee.deleted': { version: 'v2', schema: z.object({ id: z.string() }) },
  'employee.updated': { version: 'v2', schema: z.object({ id: z.string(), name: z.string() }) },
}

const message = (type: string, payload: unknown, headers: Record<string, string> = {}) => ({
  key: 'e-1',
  value: JSON.stringify(payload),
  headers: { id: randomUUID(), eventType: type, aggregateType: 'employee', schemaVersion: 'v2', ...headers },
})

describe('typed handlers', () => {
  it('hand each handler its typed payload; a payload failing its schema is dead-lettered at once', async () => {
    const topic = uniqueTopic('inbox.typed')
    await createTopics(kafka, [topic, `${topic}.dlq`], 1)
    const bad = message('employee.created', { id: 'e-1', name: 'Ada', salary: 100 }, { schemaVersion: 'v1' })
    await produce(kafka, topic, [
      message('employee.created', { id: 'e-1', name: 'Ada', salary: '100.50', extra: 'dropped' }), // 0
      bad, // 1: salary is a number, an old schema version
      message('employee.updated', { id: 'e-1', name: 'Ada L.' }), // 2: no handler: skipped
      message('employee.deleted', { id: 'e-1' }), // 3
    ])
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 })
    await producer.connect()
    const deadLetters: DeadLetterInfo[] = []
    const inbox = createInbox(t.prisma, {
      consumer: 'typed',
      retry: { maxAttempts: 3, initialDelayMs: 5, maxDelayMs: 20 },
      deadLetter: { producer },
      hooks: { onDeadLetter: (info) => deadLetters.push(info) },
    })
    const received: unknown[] = []
    const handler = typedHandler(catalogue, {
      'employee.created': async (event, tx: Tx) => {
        expectTypeOf(event.payload).toEqualTypeOf<{ id: string; name: string; salary: string }>()
        expectTypeOf(event.type).toEqualTypeOf<'employee.created'>()
        received.push([event.type, event.payload, event.schemaVersion])
        await tx.tally.create({ data: { aggregateId: event.payload.id, applied: 1 } })
      },
      'employee.deleted': async (event) => {
        expectTypeOf(event.payload).toEqualTypeOf<{ id: string }>()
        received.push([event.type, event.payload, event.schemaVersion])
      },
    })
    const last = barrier()
    const consumer = kafka.consumer({ groupId: `typed-${randomUUID()}` })
    await consumer.connect()
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    const eachMessage = inbox.eachMessage(handler)
    await consumer.run({
      eachMessage: async (payload) => {
        await eachMessage(payload)
        if (payload.message.offset === '3') last.open()
      },
    })
    await last.reached
    await consumer.disconnect()
    await producer.disconnect()

    expect(received).toEqual([
      ['employee.created', { id: 'e-1', name: 'Ada', salary: '100.50' }, 'v2'],
      ['employee.deleted', { id: 'e-1' }, 'v2'],
    ])
    expect(inbox.counters()).toEqual({
      processed: 3,
      duplicates: 0,
      retries: 0,
      deadLettered: 1,
      failed: 0,
      recordedFailed: 0,
    })
    expect(deadLetters.map((d) => [d.offset, d.attempts, (d.error as InboxError).code])).toEqual([
      ['1', 1, 'INBOX_INVALID_PAYLOAD'],
    ])
    expect(String((deadLetters[0]?.error as Error | undefined)?.message)).toMatch(
      /employee\.created.*event schemaVersion v1, catalogue version v2.*salary/s,
    )
    const [dead] = await collectMessages(kafka, [`${topic}.dlq`], { count: 1 })
    expect([dead?.headers.id, dead?.headers['dlq.attempts']]).toEqual([bad.headers.id, '1'])
    // The skipped type is recorded in the inbox, so a redelivery is a duplicate; the bad one is not.
    const recorded = await t.prisma.inboxEvent.findMany({
      where: { consumer: 'typed' },
      orderBy: { offset: 'asc' },
    })
    expect(recorded.map((r) => r.eventType)).toEqual([
      'employee.created',
      'employee.updated',
      'employee.deleted',
    ])
  })

  it("with unhandled: 'fail' an event of a type the map does not handle goes to the failure policy", async () => {
    const inbox = createInbox(t.prisma, { consumer: 'typed-strict', retry: { maxAttempts: 3 } })
    const handler = typedHandler(
      catalogue,
      { 'employee.deleted': async () => undefined },
      { unhandled: 'fail' },
    )
    const m = message('employee.updated', { id: 'e-2', name: 'B' })
    const run = inbox.eachMessage(handler)({
      topic: 't',
      partition: 0,
      message: {
        key: Buffer.from(m.key),
        value: Buffer.from(m.value),
        headers: Object.fromEntries(Object.entries(m.headers).map(([k, v]) => [k, Buffer.from(v)])),
        offset: '5',
        timestamp: '0',
        attributes: 0,
      },
      heartbeat: async () => undefined,
      pause: () => () => undefined,
    })
    await expect(run).rejects.toMatchObject({ code: 'INBOX_UNHANDLED_EVENT' })
    expect(inbox.counters()).toMatchObject({ processed: 0, retries: 0, failed: 1 })
  })

  it('refuses a handler for a type the catalogue does not know, naming it', () => {
    expect(() =>
      // @ts-expect-error: 'employee.craeted' is not in the catalogue
      typedHandler(catalogue, { 'employee.craeted': async () => undefined }),
    ).toThrow(/handler for "employee.craeted", which is not in the catalogue/)
    expect(() => typedHandler(catalogue, {}, { unhandled: 'drop' as never })).toThrow(InboxError)
  })
})

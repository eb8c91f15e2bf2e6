/**
 * The failure policy against the real broker and PostgreSQL: a handler that keeps failing, or a
 * message that is no outbox event, goes to the dead-letter topic after bounded retries and the
 * partition moves on; a handler that fails a few times is retried and applied once.
 */
import { randomUUID } from 'node:crypto'
import { collectMessages, createTopics, testKafka, uniqueTopic } from '@prisma-outbox/devkit'
import type { EachBatchPayload, EachMessagePayload } from 'kafkajs'
import { Registry } from 'prom-client'
import { describe, expect, it } from 'vitest'
import { createInbox, type DeadLetterInfo, type OutboxEvent, registerInboxMetrics } from '../src/index.js'
import { barrier, bump, outboxMessage, produce, type Tx, useTestDatabase } from './helpers.js'

const t = useTestDatabase('outbox_inbox_failure')
const kafka = testKafka()

const tally = async (aggregateId: string) =>
  (await t.prisma.tally.findUnique({ where: { aggregateId } }))?.applied ?? 0

describe.each(['eachMessage', 'eachBatch'] as const)('the failure policy with %s', (mode) => {
  it('retries, then dead-letters a failing or invalid message, and the partition moves on', async () => {
    const topic = uniqueTopic(`inbox.failure.${mode}`)
    const deadLetterTopic = `${topic}.dlq`
    await createTopics(kafka, [topic, deadLetterTopic], 1)
    const poison = `poison-${randomUUID()}`
    const flaky = `flaky-${randomUUID()}`
    const healthy = `ok-${randomUUID()}`
    const poisonId = randomUUID()
    await produce(kafka, topic, [
      outboxMessage(poison, poisonId), // offset 0: the handler always fails
      outboxMessage(healthy), // 1
      { key: 'no-id', value: '{}', headers: { eventType: 'thing.updated' } }, // 2: not an outbox event
      outboxMessage(flaky), // 3: fails twice, then succeeds
      outboxMessage(healthy), // 4
    ])

    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 })
    await producer.connect()
    const deadLetters: DeadLetterInfo[] = []
    const retried: string[] = []
    const inbox = createInbox(t.prisma, {
      consumer: `failure-${mode}`,
      retry: { maxAttempts: 3, initialDelayMs: 5, maxDelayMs: 20 },
      deadLetter: { producer },
      hooks: {
        onDeadLetter: (info) => deadLetters.push(info),
        onRetry: ({ event, attempt }) => retried.push(`${event.aggregateId}#${attempt}`),
      },
    })
    let flakyFailures = 0
    const handler = async (event: OutboxEvent, tx: Tx) => {
      if (event.aggregateId === poison) throw new Error('poison: cannot apply this event')
      if (event.aggregateId === flaky && flakyFailures++ < 2) throw new Error('flaky: try again')
      await bump(event, tx)
    }
    const last = barrier()
    const consumer = kafka.consumer({ groupId: `failure-${randomUUID()}` })
    await consumer.connect()
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    const eachMessage = inbox.eachMessage(handler)
    const eachBatch = inbox.eachBatch(handler)
    const run =
      mode === 'eachMessage'
        ? consumer.run({
            eachMessage: async (payload: EachMessagePayload) => {
              await eachMessage(payload)
              if (payload.message.offset === '4') last.open()
            },
          })
        : consumer.run({
            eachBatchAutoResolve: false,
            eachBatch: async (payload: EachBatchPayload) => {
              await eachBatch(payload)
              if (payload.batch.messages.some((m) => m.offset === '4')) last.open()
            },
          })
    await run
    await last.reached
    await consumer.disconnect()
    await producer.disconnect()

    // Applied once each; the poison event not at all.
    expect(await tally(healthy)).toBe(2)
    expect(await tally(flaky)).toBe(1)
    expect(await tally(poison)).toBe(0)
    expect(retried).toEqual([`${poison}#1`, `${poison}#2`, `${flaky}#1`, `${flaky}#2`])
    expect(inbox.counters()).toEqual({
      processed: 3,
      duplicates: 0,
      retries: 4,
      deadLettered: 2,
      failed: 0,
      recordedFailed: 0,
    })
    // The same counters in the app's own prom-client registry.
    const registry = new Registry()
    registerInboxMetrics(registry, { inboxes: { [`failure-${mode}`]: inbox } })
    const text = await registry.metrics()
    for (const [name, value] of [
      ['processed', 3],
      ['retries', 4],
      ['dead_lettered', 2],
      ['failed', 0],
    ] as const)
      expect(text).toContain(`outbox_inbox_${name}_total{consumer="failure-${mode}"} ${value}\n`)
    expect(deadLetters.map((d) => [d.offset, d.attempts, d.deadLetterTopic, d.event?.id])).toEqual([
      ['0', 3, deadLetterTopic, poisonId],
      ['2', 1, deadLetterTopic, undefined],
    ])

    // The dead-letter topic has both, with their key, value and where and why they failed.
    const dead = await collectMessages(kafka, [deadLetterTopic], { count: 2 })
    expect(
      dead.map((m) => [m.key, m.value, m.headers.id, m.headers['dlq.offset'], m.headers['dlq.attempts']]),
    ).toEqual([
      [poison, '{}', poisonId, '0', '3'],
      ['no-id', '{}', undefined, '2', '1'],
    ])
    expect(dead[0]?.headers).toMatchObject({
      'dlq.topic': topic,
      'dlq.partition': '0',
      'dlq.consumer': `failure-${mode}`,
      'dlq.error': 'Error: poison: cannot apply this event',
    })
    expect(dead[1]?.headers['dlq.error']).toMatch(/has no event id/)
  })
})

describe('the failure policy without a dead-letter topic', () => {
  it('rethrows the last error after the bounded retries, and records nothing', async () => {
    const given: DeadLetterInfo[] = []
    const inbox = createInbox(t.prisma, {
      consumer: 'no-dead-letter',
      retry: { maxAttempts: 2, initialDelayMs: 1, maxDelayMs: 1 },
      hooks: { onDeadLetter: (info) => given.push(info) },
    })
    const id = randomUUID()
    const message = { ...outboxMessage('k'), headers: { id } }
    let attempts = 0
    const heartbeats: string[] = []
    const payload = {
      topic: 't',
      partition: 0,
      message: {
        key: Buffer.from(message.key),
        value: Buffer.from(message.value),
        headers: { id: Buffer.from(id) },
        offset: '9',
        timestamp: '0',
        attributes: 0,
      },
      heartbeat: async () => {
        heartbeats.push('beat')
      },
      pause: () => () => {},
    }
    await expect(
      inbox.eachMessage(async () => {
        attempts++
        throw new Error(`attempt ${attempts} failed`)
      })(payload),
    ).rejects.toThrow('attempt 2 failed')
    expect(attempts).toBe(2)
    expect(heartbeats.length).toBeGreaterThan(0)
    expect(inbox.counters()).toMatchObject({ retries: 1, failed: 1, deadLettered: 0, processed: 0 })
    expect(given.map((g) => [g.offset, g.attempts, g.deadLetterTopic])).toEqual([['9', 2, undefined]])
    const rows = await t.db.pool.query('SELECT 1 FROM outbox_inbox WHERE event_id = $1', [id])
    expect(rows.rowCount).toBe(0)
  })
})

describe('failed records in the inbox (recordFailed)', () => {
  it('records a poison event as failed, skips its redelivery, lists it, and retries it on demand', async () => {
    const topic = uniqueTopic('outbox.event.thing')
    await createTopics(kafka, [topic], 1)
    const [poison, healthy] = [`p-${randomUUID()}`, `h-${randomUUID()}`]
    const poisonMessage = outboxMessage(poison)
    const poisonId = poisonMessage.headers.id
    // The poison event twice (a redelivery after a relay crash), a healthy one between them.
    await produce(kafka, topic, [poisonMessage, outboxMessage(healthy), poisonMessage])
    const given: DeadLetterInfo[] = []
    const inbox = createInbox(t.prisma, {
      consumer: 'records-failed',
      retry: { maxAttempts: 2, initialDelayMs: 1, maxDelayMs: 1 },
      recordFailed: true,
      hooks: { onDeadLetter: (info) => given.push(info) },
    })
    let calls = 0
    const broken = async (event: OutboxEvent, tx: Tx) => {
      calls++
      if (event.aggregateId === poison) throw new Error('poison: cannot apply this event')
      await bump(event, tx)
    }
    const last = barrier()
    const consumer = kafka.consumer({ groupId: `records-failed-${randomUUID()}` })
    await consumer.connect()
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    const eachMessage = inbox.eachMessage(broken)
    await consumer.run({
      eachMessage: async (payload: EachMessagePayload) => {
        await eachMessage(payload)
        if (payload.message.offset === '2') last.open()
      },
    })
    await last.reached
    await consumer.disconnect()

    // Two attempts of the poison event, one of the healthy one; the redelivery is not handled.
    expect(calls).toBe(3)
    expect(await tally(healthy)).toBe(1)
    expect(await tally(poison)).toBe(0)
    expect(inbox.counters()).toMatchObject({ processed: 1, duplicates: 1, recordedFailed: 1, failed: 0 })
    expect(given.map((g) => [g.offset, g.attempts, g.recordedFailed, g.deadLetterTopic])).toEqual([
      ['0', 2, true, undefined],
    ])
    const failed = await inbox.failed()
    expect(failed).toEqual([
      expect.objectContaining({
        eventId: poisonId,
        eventType: 'thing.updated',
        topic,
        partition: 0,
        offset: '0',
        attempts: 2,
        lastError: 'Error: poison: cannot apply this event',
      }),
    ])
    expect(failed[0]?.failedAt).toBeInstanceOf(Date)
    // Old failed records are kept by purge: they wait for an operator.
    expect(await inbox.purge({ olderThanMs: 0 })).toBe(1)
    expect(await inbox.failed()).toHaveLength(1)

    // A retry that fails again keeps the record, counting the attempt.
    await expect(inbox.retryFailed(poisonId, broken)).rejects.toThrow('poison')
    expect(await inbox.failed()).toEqual([expect.objectContaining({ eventId: poisonId, attempts: 3 })])
    // Fixed: applied once, with the event rebuilt from the stored message, and no longer failed.
    const seen: OutboxEvent[] = []
    const fixed = async (event: OutboxEvent, tx: Tx) => {
      seen.push(event)
      await bump(event, tx)
    }
    expect(await inbox.retryFailed(poisonId, fixed)).toBe('processed')
    expect(seen.map((e) => [e.id, e.aggregateId, e.topic, e.offset])).toEqual([
      [poisonId, poison, topic, '0'],
    ])
    expect(await tally(poison)).toBe(1)
    expect(await inbox.failed()).toEqual([])
    expect(await inbox.retryFailed(poisonId, fixed)).toBe('not-found')
    // Now processed: a later redelivery is a duplicate.
    expect(await inbox.handle(seen[0] as OutboxEvent, fixed)).toBe('duplicate')
  })

  it('refuses recordFailed together with a dead-letter topic', () => {
    expect(() =>
      createInbox(t.prisma, {
        consumer: 'both',
        recordFailed: true,
        deadLetter: { producer: { send: async () => undefined } },
      }),
    ).toThrow(/recordFailed and options.deadLetter exclude each other/)
  })
})

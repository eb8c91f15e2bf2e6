/**
 * Start-up order: a consumer that subscribes before the relay created the topic waits for it
 * instead of crashing, then handles what the relay publishes.
 */
import { randomUUID } from 'node:crypto'
import { createTopics, testKafka, uniqueTopic } from '@prisma-outbox/devkit'
import { describe, expect, it } from 'vitest'
import { createInbox, subscribe } from '../src/index.js'
import { barrier, bump, outboxMessage, produce, useTestDatabase } from './helpers.js'

const t = useTestDatabase('outbox_inbox_subscribe')
const kafka = testKafka()

describe('subscribe before the topic exists', () => {
  it("is what makes kafkajs's own subscribe fail", async () => {
    // A broker without auto-creation (the common production setting), as the consumer sees it.
    const consumer = kafka.consumer({ groupId: `early-${randomUUID()}`, allowAutoTopicCreation: false })
    await consumer.connect()
    try {
      await expect(consumer.subscribe({ topics: [uniqueTopic('inbox.missing')] })).rejects.toMatchObject({
        type: 'UNKNOWN_TOPIC_OR_PARTITION',
      })
    } finally {
      await consumer.disconnect()
    }
  })

  it('waits for the topic, then consumes what is published to it', async () => {
    const topic = uniqueTopic('inbox.late')
    const consumer = kafka.consumer({ groupId: `early-${randomUUID()}`, allowAutoTopicCreation: false })
    await consumer.connect()
    const waiting = barrier<number>()
    const waits: number[] = []
    const subscribed = subscribe(consumer, {
      topics: [topic],
      fromBeginning: true,
      maxDelayMs: 200,
      onWaiting: ({ attempt }) => {
        waits.push(attempt)
        waiting.open(attempt)
      },
    })
    // The consumer is up and waiting before the topic exists; now the relay's side creates it.
    await waiting.reached
    await createTopics(kafka, [topic], 1)
    await subscribed

    const key = `late-${randomUUID()}`
    const handled = barrier()
    const inbox = createInbox(t.prisma, { consumer: 'late' })
    const eachMessage = inbox.eachMessage(bump)
    await consumer.run({
      eachMessage: async (payload) => {
        await eachMessage(payload)
        handled.open()
      },
    })
    await produce(kafka, topic, [outboxMessage(key)])
    await handled.reached
    await consumer.disconnect()
    expect(waits[0]).toBe(1)
    expect((await t.prisma.tally.findUnique({ where: { aggregateId: key } }))?.applied).toBe(1)
  })

  it('gives up after timeoutMs with the broker error, and rejects bad options', async () => {
    const consumer = kafka.consumer({ groupId: `early-${randomUUID()}`, allowAutoTopicCreation: false })
    await consumer.connect()
    try {
      await expect(
        subscribe(consumer, { topics: [uniqueTopic('inbox.never')], timeoutMs: 300, onWaiting: () => {} }),
      ).rejects.toMatchObject({ type: 'UNKNOWN_TOPIC_OR_PARTITION' })
      await expect(subscribe(consumer, { topics: [] })).rejects.toThrow(/options.topics/)
    } finally {
      await consumer.disconnect()
    }
  })
})

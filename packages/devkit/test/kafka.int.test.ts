import { describe, expect, it } from 'vitest'
import { collectMessages, createTopics, testKafka, uniqueTopic } from '../src/index.js'

describe('the local Kafka broker', () => {
  it('round-trips a keyed message with headers through an idempotent, acks=all producer', async () => {
    const kafka = testKafka()
    const topic = uniqueTopic('plumbing')
    await createTopics(kafka, [topic])
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 })
    await producer.connect()
    try {
      await producer.send({
        topic,
        acks: -1,
        messages: [
          { key: 'employee-1', value: '{"n":1}', headers: { id: 'evt-1', eventType: 'employee.created' } },
          { key: 'employee-1', value: '{"n":2}', headers: { id: 'evt-2', eventType: 'employee.updated' } },
        ],
      })
    } finally {
      await producer.disconnect()
    }
    const received = await collectMessages(kafka, [topic], { count: 2 })
    expect(received.map(({ key, value, headers }) => ({ key, value, headers }))).toEqual([
      { key: 'employee-1', value: '{"n":1}', headers: { id: 'evt-1', eventType: 'employee.created' } },
      { key: 'employee-1', value: '{"n":2}', headers: { id: 'evt-2', eventType: 'employee.updated' } },
    ])
    expect(new Set(received.map((m) => m.partition)).size).toBe(1)
  })
})

/**
 * One contract for every Kafka publisher, run against the real broker: the same records (topic,
 * partition, key, value, headers) as kafkajs writes, order per key, and the same verdict on
 * failures (the event's fault or the infrastructure's). The confluent client joins when
 * `RELAY_CONFLUENT_DIR` is set: `npm run test:confluent`.
 */
import {
  collectMessages,
  createTopics,
  freePort,
  kafkaBrokers,
  testKafka,
  uniqueTopic,
} from '@prisma-outbox/devkit'
import { Partitioners } from 'kafkajs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { isRelayError } from '../src/core/errors.js'
import { classifyPublishFailure, type OutboxMessage, type Publisher } from '../src/core/publisher.js'
import { kafkaPublisher, silentListener } from './helpers.js'
import { publisherClients } from './publisher-clients.js'

const kafka = testKafka('publisher-contract-check')
const PARTITIONS = 3

/** The partition kafkajs' Java-compatible partitioner picks for `key` among 3 partitions. */
function kafkajsPartition(topic: string, key: string): number {
  const partitionMetadata = Array.from({ length: PARTITIONS }, (_, partitionId) => ({
    partitionId,
    leader: 1,
    partitionErrorCode: 0,
    replicas: [1],
    isr: [1],
  }))
  return Partitioners.DefaultPartitioner()({ topic, partitionMetadata, message: { key, value: null } })
}

let seq = 0
function message(topic: string, key: string, extra: Partial<OutboxMessage> = {}): OutboxMessage {
  const id = `00000000-0000-4000-8000-${String(++seq).padStart(12, '0')}`
  return {
    id,
    topic,
    key,
    value: JSON.stringify({ n: seq, key }),
    headers: { id, eventType: 'thing.updated', aggregateType: 'thing' },
    ...extra,
  }
}

async function failure(run: () => Promise<unknown>): Promise<unknown> {
  return run().then(
    () => {
      throw new Error('expected a failure')
    },
    (error: unknown) => error,
  )
}

describe.each(publisherClients())('$name publisher', (client) => {
  let publisher: Publisher

  beforeAll(async () => {
    publisher = client.create({ brokers: kafkaBrokers(), numPartitions: PARTITIONS })
    await publisher.connect()
  })

  afterAll(async () => {
    await publisher?.disconnect()
  })

  it('Should write topic, partition, key, value and headers exactly as kafkajs does, creating a missing topic', async () => {
    const existing = uniqueTopic(`contract-${client.name}`)
    const created = uniqueTopic(`contract-${client.name}-new`)
    await createTopics(kafka, [existing], PARTITIONS)
    const batch = [
      message(existing, 'order-1'),
      message(created, 'ключ-λ-🙂', { value: '{"name":"Ada Lovelace","note":"ünïcødé \\u0000"}' }),
      message(existing, 'order-2', {
        headers: {
          traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
          json: '{"a":[1,2]}',
          empty: '',
          id: 'x',
          eventType: 'order.placed',
          aggregateType: 'order',
        },
      }),
      message(existing, 'order-1'),
    ]
    await publisher.publish(batch)
    const got = await collectMessages(kafka, [existing, created], { count: batch.length })
    const expected = batch.map((m) => ({
      topic: m.topic,
      partition: kafkajsPartition(m.topic, m.key),
      key: m.key,
      value: m.value,
      headers: m.headers,
    }))
    const received = got.map(({ topic, partition, key, value, headers }) => ({
      topic,
      partition,
      key,
      value,
      headers,
    }))
    expect(received).toHaveLength(batch.length)
    expect(received).toEqual(expect.arrayContaining(expected))
  })

  it('Should keep the order of each key across batches', async () => {
    const topic = uniqueTopic(`contract-order-${client.name}`)
    await createTopics(kafka, [topic], PARTITIONS)
    const keys = ['a', 'b', 'c', 'd', 'e']
    const sent: OutboxMessage[] = []
    for (let b = 0; b < 8; b++) {
      const batch = Array.from({ length: 50 }, (_, i) => message(topic, keys[i % keys.length] as string))
      sent.push(...batch)
      await publisher.publish(batch)
    }
    const got = await collectMessages(kafka, [topic], { count: sent.length })
    for (const key of keys) {
      const order = (list: Array<{ key: string | null; value: string | null }>) =>
        list.filter((m) => m.key === key).map((m) => m.value)
      expect(order(got)).toEqual(order(sent))
    }
  })

  it('Should fail a batch with a message over the broker limit as the event’s fault, then publish again', async () => {
    const topic = uniqueTopic(`contract-large-${client.name}`)
    await createTopics(kafka, [topic], PARTITIONS)
    const big = message(topic, 'big', { value: JSON.stringify('x'.repeat(2 * 1024 * 1024)) })
    const error = await failure(() => publisher.publish([message(topic, 'small'), big]))
    expect(isRelayError(error, 'RELAY_PUBLISH_PERMANENT')).toBe(true)
    expect(classifyPublishFailure(error)).toBe('permanent')
    expect(String((error as Error).message)).toMatch(
      /too large|MESSAGE_TOO_LARGE|RECORD_LIST_TOO_LARGE|larger/i,
    )
    const after = message(topic, 'small')
    await publisher.publish([after])
    const got = await collectMessages(kafka, [topic], { count: 2, timeoutMs: 10_000 })
    expect(got.map((m) => m.value)).toContain(after.value)
    expect(got.map((m) => m.key)).not.toContain('big')
  })

  it('Should fail a batch with an invalid topic as the event’s fault, then publish again', async () => {
    const topic = uniqueTopic(`contract-invalid-${client.name}`)
    await createTopics(kafka, [topic], PARTITIONS)
    const error = await failure(() =>
      publisher.publish([message(topic, 'k'), message('not a valid topic!', 'k')]),
    )
    expect(isRelayError(error, 'RELAY_PUBLISH_PERMANENT')).toBe(true)
    const after = message(topic, 'k')
    await publisher.publish([after])
    const got = await collectMessages(kafka, [topic], { count: 1, timeoutMs: 10_000 })
    expect(got.map((m) => m.value)).toContain(after.value)
  })

  it('Should publish again after disconnect() and connect()', async () => {
    const topic = uniqueTopic(`contract-reconnect-${client.name}`)
    await createTopics(kafka, [topic], PARTITIONS)
    const again = client.create({ brokers: kafkaBrokers(), numPartitions: PARTITIONS })
    try {
      await again.connect()
      await again.publish([message(topic, 'k')])
      await again.disconnect()
      await again.connect()
      await again.publish([message(topic, 'k')])
    } finally {
      await again.disconnect()
    }
    expect(await collectMessages(kafka, [topic], { count: 2, timeoutMs: 10_000 })).toHaveLength(2)
  })

  it('Should give up on a broker that accepts connections and never answers, blaming the infrastructure', async () => {
    const silent = await silentListener()
    const down = client.create({ brokers: [`127.0.0.1:${silent.port}`], sendTimeoutMs: 4_000 })
    try {
      const error = await failure(async () => {
        await down.connect()
        await down.publish([message(uniqueTopic('contract-silent'), 'k')])
      })
      expect(['unavailable', 'timeout']).toContain(classifyPublishFailure(error))
    } finally {
      await down.disconnect()
      await silent.close()
    }
  })

  it('Should blame the infrastructure, not the event, when no broker listens', async () => {
    const down = client.create({ brokers: [`127.0.0.1:${await freePort()}`], sendTimeoutMs: 4_000 })
    try {
      const error = await failure(async () => {
        await down.connect()
        await down.publish([message(uniqueTopic('contract-down'), 'k')])
      })
      expect(classifyPublishFailure(error)).toBe('unavailable')
    } finally {
      await down.disconnect()
    }
  })
})

describe('kafkajs publisher between sends', () => {
  it('Should not wake the process every millisecond while connected and idle (kafkajs 2.2.4 did)', async () => {
    const publisher = await kafkaPublisher(testKafka('publisher-idle-check'))
    const topic = uniqueTopic('publisher-idle')
    await createTopics(kafka, [topic], 1)
    try {
      await publisher.publish([message(topic, 'k')])
      const original = globalThis.setTimeout
      let timers = 0
      globalThis.setTimeout = ((...args: Parameters<typeof setTimeout>) => {
        timers++
        return original(...args)
      }) as typeof setTimeout
      try {
        await new Promise((resolve) => original(resolve, 500))
      } finally {
        globalThis.setTimeout = original
      }
      // Unfixed, each broker connection (producer and admin) arms a 1 ms timer after each one: hundreds.
      expect(timers).toBeLessThan(25)
    } finally {
      await publisher.disconnect()
    }
  })
})

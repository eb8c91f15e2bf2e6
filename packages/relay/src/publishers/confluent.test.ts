import { describe, expect, it } from 'vitest'
import { RelayError } from '../core/errors.js'
import { classifyPublishFailure } from '../core/publisher.js'
import { type ConfluentModule, ConfluentPublisher } from './confluent.js'

/** librdkafka's error as `@confluentinc/kafka-javascript` builds it (`LibrdKafkaError`). */
const librdkafkaError = (code: number, message: string) =>
  Object.assign(new Error(message), { code, errno: code, origin: code > 0 ? 'kafka' : 'local' })

/** Its KafkaJS-style wrapper: `retriable` is only meaningful for transactions (false here). */
const kafkaJSError = (name: string, code: number, type: string) =>
  Object.assign(new Error(type), { name, code, type, retriable: false, fatal: false, abortable: false })

describe('classifyPublishFailure on @confluentinc/kafka-javascript errors', () => {
  it.each([
    [10, 'ERR_MSG_SIZE_TOO_LARGE', 'permanent'],
    [18, 'ERR_RECORD_LIST_TOO_LARGE', 'permanent'],
    [17, 'ERR_TOPIC_EXCEPTION', 'permanent'],
    [87, 'ERR_INVALID_RECORD', 'permanent'],
    [2, 'ERR_INVALID_MSG', 'permanent'],
    [29, 'ERR_TOPIC_AUTHORIZATION_FAILED', 'rejected'],
    [6, 'ERR_NOT_LEADER_FOR_PARTITION', 'unavailable'],
    [5, 'ERR_LEADER_NOT_AVAILABLE', 'unavailable'],
    [7, 'ERR_REQUEST_TIMED_OUT', 'unavailable'],
    [31, 'ERR_CLUSTER_AUTHORIZATION_FAILED', 'unavailable'],
    [45, 'ERR_OUT_OF_ORDER_SEQUENCE_NUMBER', 'unavailable'],
    [-192, 'ERR__MSG_TIMED_OUT', 'unavailable'],
    [-195, 'ERR__TRANSPORT', 'unavailable'],
    [-187, 'ERR__ALL_BROKERS_DOWN', 'unavailable'],
    [-150, 'ERR__FATAL', 'unavailable'],
  ])('Should put code %d (%s) on the %s side', (code, type, expected) => {
    const name = code > 0 ? 'KafkaJSProtocolError' : 'KafkaJSError'
    expect(classifyPublishFailure(kafkaJSError(name, code, type))).toBe(expected)
    expect(classifyPublishFailure(librdkafkaError(code, type))).toBe(expected)
  })

  it('Should judge topic creation errors inside the aggregate the admin client throws', () => {
    const created = kafkaJSError('KafkaJSCreateTopicError', 17, 'ERR_TOPIC_EXCEPTION')
    const aggregate = Object.assign(new Error('Topic creation errors'), {
      name: 'KafkaJSAggregateError',
      errors: [created],
    })
    expect(classifyPublishFailure(aggregate)).toBe('permanent')
  })
})

/** A fake of the library's KafkaJS namespace, recording configs and sends. */
function fakeModule(failFirstSend?: Error) {
  const producerConfigs: Array<Record<string, unknown>> = []
  const sends: unknown[] = []
  const created: unknown[] = []
  let fail = failFirstSend
  let disconnects = 0
  const events: string[] = []
  const module = {
    KafkaJS: {
      Kafka: class {
        producer(config: Record<string, unknown>) {
          producerConfigs.push(config)
          return {
            connect: async () => {},
            disconnect: async () => {
              disconnects++
            },
            sendBatch: async (batch: unknown) => {
              if (fail) {
                const e = fail
                fail = undefined
                events.push('send failed')
                throw e
              }
              sends.push(batch)
            },
            flush: async () => {
              await new Promise((resolve) => setTimeout(resolve, 5))
              events.push('flushed')
            },
          }
        }
        admin() {
          return {
            connect: async () => {},
            disconnect: async () => {},
            listTopics: async () => ['existing'],
            createTopics: async (args: unknown) => {
              created.push(args)
              return true
            },
          }
        }
      },
    },
  } as unknown as ConfluentModule
  return { module, producerConfigs, sends, created, events, disconnects: () => disconnects }
}

describe('ConfluentPublisher', () => {
  const m = (id: string, topic: string, key: string) => ({
    id,
    topic,
    key,
    value: `"${id}"`,
    headers: { id },
  })

  it('Should send one batch from an idempotent, acks=all, murmur2 producer, creating missing topics once', async () => {
    const fake = fakeModule()
    const publisher = new ConfluentPublisher({
      brokers: ['b:9092'],
      module: fake.module,
      numPartitions: 3,
      config: { 'enable.idempotence': false, acks: 1, 'compression.codec': 'lz4' },
    })
    await publisher.connect()
    await publisher.publish([m('1', 'new', 'a'), m('2', 'existing', 'b'), m('3', 'new', 'a')])
    await publisher.publish([m('4', 'new', 'a')])
    expect(fake.producerConfigs[0]).toMatchObject({
      'enable.idempotence': true,
      acks: -1,
      partitioner: 'murmur2_random',
      'compression.codec': 'lz4',
    })
    expect(fake.created).toEqual([
      { timeout: 10_000, topics: [{ topic: 'new', numPartitions: 3, replicationFactor: -1 }] },
    ])
    expect(fake.sends[0]).toEqual({
      topicMessages: [
        {
          topic: 'new',
          messages: [
            { key: 'a', value: '"1"', headers: { id: '1' } },
            { key: 'a', value: '"3"', headers: { id: '3' } },
          ],
        },
        { topic: 'existing', messages: [{ key: 'b', value: '"2"', headers: { id: '2' } }] },
      ],
    })
    await publisher.disconnect()
  })

  it('Should let the rest of a failed batch settle before it reports the failure', async () => {
    const fake = fakeModule(kafkaJSError('KafkaJSProtocolError', 10, 'ERR_MSG_SIZE_TOO_LARGE'))
    const publisher = new ConfluentPublisher({ brokers: ['b:9092'], module: fake.module })
    await publisher.connect()
    await publisher.publish([m('1', 'existing', 'a')]).catch((e: unknown) => {
      fake.events.push('rejected')
      return e
    })
    expect(fake.events).toEqual(['send failed', 'flushed', 'rejected'])
  })

  it('Should classify a failed send and replace the producer before the next one', async () => {
    const fake = fakeModule(kafkaJSError('KafkaJSProtocolError', 10, 'ERR_MSG_SIZE_TOO_LARGE'))
    const publisher = new ConfluentPublisher({ brokers: ['b:9092'], module: fake.module })
    await publisher.connect()
    const error = await publisher.publish([m('1', 'existing', 'a')]).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(RelayError)
    expect((error as RelayError).code).toBe('RELAY_PUBLISH_PERMANENT')
    await publisher.publish([m('2', 'existing', 'a')])
    expect(fake.producerConfigs).toHaveLength(2)
    expect(fake.disconnects()).toBe(1)
    expect(fake.sends).toHaveLength(1)
  })
})

import {
  type Kafka,
  KafkaJSConnectionError,
  KafkaJSNonRetriableError,
  KafkaJSNumberOfRetriesExceeded,
  KafkaJSProtocolError,
  Partitioners,
} from 'kafkajs'
import { describe, expect, it } from 'vitest'
import { RelayError } from './errors.js'
import { classifyPublishError, classifyPublishFailure, KafkaPublisher } from './publisher.js'

const protocolError = (type: string, retriable: boolean) =>
  new KafkaJSProtocolError({ type, code: 1, retriable, message: type } as never)

describe('classifyPublishError', () => {
  it.each([
    ['MESSAGE_TOO_LARGE', false, 'permanent'],
    ['RECORD_LIST_TOO_LARGE', false, 'permanent'],
    ['INVALID_RECORD', false, 'permanent'],
    ['INVALID_TOPIC_EXCEPTION', false, 'permanent'],
    ['UNSUPPORTED_VERSION', false, 'permanent'],
    ['TOPIC_AUTHORIZATION_FAILED', false, 'retriable'],
    ['OUT_OF_ORDER_SEQUENCE_NUMBER', false, 'retriable'],
    ['NOT_LEADER_FOR_PARTITION', true, 'retriable'],
  ])('Should classify %s as %s', (type, retriable, expected) => {
    const error = protocolError(type, retriable)
    expect(classifyPublishError(error)).toBe(expected)
    // as kafkajs' retrier wraps it
    expect(classifyPublishError(Object.assign(new KafkaJSNonRetriableError(error), { cause: error }))).toBe(
      expected,
    )
  })

  it('Should treat connection errors, exhausted retries and unknown errors as retriable', () => {
    const connection = new KafkaJSConnectionError('Connection error: ECONNREFUSED')
    expect(classifyPublishError(connection)).toBe('retriable')
    expect(
      classifyPublishError(
        new KafkaJSNumberOfRetriesExceeded(connection, { retryCount: 5, retryTime: 100 } as never),
      ),
    ).toBe('retriable')
    expect(classifyPublishError(new Error('???'))).toBe('retriable')
    expect(classifyPublishError('string')).toBe('retriable')
  })

  it.each([
    ['MESSAGE_TOO_LARGE', false, 'permanent'],
    ['INVALID_TOPIC_EXCEPTION', false, 'permanent'],
    ['TOPIC_AUTHORIZATION_FAILED', false, 'rejected'],
    ['CLUSTER_AUTHORIZATION_FAILED', false, 'unavailable'],
    ['SASL_AUTHENTICATION_FAILED', false, 'unavailable'],
    ['LEADER_NOT_AVAILABLE', true, 'unavailable'],
    ['NOT_LEADER_FOR_PARTITION', true, 'unavailable'],
    ['REQUEST_TIMED_OUT', true, 'unavailable'],
    ['UNKNOWN_TOPIC_OR_PARTITION', true, 'unavailable'],
  ])('Should put %s on the %s side of the event/infrastructure line', (type, retriable, expected) => {
    const error = protocolError(type, retriable)
    expect(classifyPublishFailure(error)).toBe(expected)
    expect(
      classifyPublishFailure(
        new KafkaJSNumberOfRetriesExceeded(error, { retryCount: 5, retryTime: 100 } as never),
      ),
    ).toBe(expected)
  })

  it('Should count connection errors, exhausted retries and unknown errors as infrastructure', () => {
    const connection = new KafkaJSConnectionError('Connection error: ECONNREFUSED')
    expect(classifyPublishFailure(connection)).toBe('unavailable')
    expect(classifyPublishFailure(new Error('???'))).toBe('unavailable')
    expect(classifyPublishFailure(new RelayError('RELAY_PUBLISH_TIMEOUT', 'x'))).toBe('timeout')
    expect(classifyPublishFailure(new RelayError('RELAY_PUBLISH_NOT_SENT', 'x'))).toBe('not-sent')
    expect(classifyPublishFailure(new RelayError('RELAY_PUBLISH_REJECTED', 'x'))).toBe('rejected')
  })

  it('Should honour RelayError codes', () => {
    expect(classifyPublishError(new RelayError('RELAY_PUBLISH_PERMANENT', 'x'))).toBe('permanent')
    expect(classifyPublishError(new RelayError('RELAY_PUBLISH_RETRIABLE', 'x'))).toBe('retriable')
  })
})

/** A fake kafkajs client recording producer configs and sends. */
function fakeKafka(failFirstSend?: Error) {
  const configs: unknown[] = []
  const sends: unknown[] = []
  const created: unknown[] = []
  let producers = 0
  let fail = failFirstSend
  const kafka = {
    producer(config: unknown) {
      configs.push(config)
      producers++
      return {
        connect: async () => {},
        disconnect: async () => {},
        sendBatch: async (batch: unknown) => {
          if (fail) {
            const e = fail
            fail = undefined
            throw e
          }
          sends.push(batch)
          return []
        },
      }
    },
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
    },
  }
  return { kafka: kafka as unknown as Kafka, configs, sends, created, producers: () => producers }
}

describe('KafkaPublisher', () => {
  const m = (id: string, topic: string, key: string) => ({
    id,
    topic,
    key,
    value: `"${id}"`,
    headers: { id },
  })

  it('Should send one idempotent batch grouped by topic in order, creating missing topics once', async () => {
    const fake = fakeKafka()
    const publisher = new KafkaPublisher({ kafka: fake.kafka, numPartitions: 3 })
    await publisher.connect()
    await publisher.publish([m('1', 'new', 'a'), m('2', 'existing', 'b'), m('3', 'new', 'a')])
    await publisher.publish([m('4', 'new', 'a')])
    expect(fake.configs[0]).toMatchObject({
      idempotent: true,
      maxInFlightRequests: 1,
      createPartitioner: Partitioners.DefaultPartitioner,
    })
    expect(fake.created).toEqual([
      { waitForLeaders: true, topics: [{ topic: 'new', numPartitions: 3, replicationFactor: -1 }] },
    ])
    expect(fake.sends).toHaveLength(2)
    expect(fake.sends[0]).toMatchObject({
      acks: -1,
      topicMessages: [
        {
          topic: 'new',
          messages: [
            { key: 'a', value: '"1"', headers: { id: '1' } },
            { key: 'a', value: '"3"', headers: { id: '3' } },
          ],
        },
        { topic: 'existing', messages: [{ key: 'b', value: '"2"' }] },
      ],
    })
  })

  it('Should classify failures and start a fresh producer after one', async () => {
    const fake = fakeKafka(protocolError('MESSAGE_TOO_LARGE', false))
    const publisher = new KafkaPublisher({ kafka: fake.kafka })
    await publisher.connect()
    const error = await publisher.publish([m('1', 'existing', 'a')]).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(RelayError)
    expect((error as RelayError).code).toBe('RELAY_PUBLISH_PERMANENT')
    expect(fake.producers()).toBe(1)
    await publisher.publish([m('2', 'existing', 'a')])
    expect(fake.producers()).toBe(2)
    expect(fake.sends).toHaveLength(1)
  })
})

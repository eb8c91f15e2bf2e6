/**
 * The default publisher, on kafkajs.
 * @module
 */
import {
  type Admin,
  CompressionTypes,
  type Kafka,
  type Message,
  Partitioners,
  type Producer,
  type ProducerConfig,
  type RetryOptions,
  type TopicMessages,
} from 'kafkajs'
import { RelayError } from '../core/errors.js'
import type { OutboxMessage } from '../core/message.js'
import { type Publisher, type PublishOptions, toPublishError } from '../core/publisher.js'

/** Options of {@link KafkaPublisher}. */
export interface KafkaPublisherOptions {
  /** A kafkajs client, e.g. `new Kafka({ clientId: 'outbox-relay', brokers })`. */
  kafka: Kafka
  /** Create missing topics before the first send to them (default true). */
  createTopics?: boolean
  /** Partitions of created topics (default -1: the broker's `num.partitions`). */
  numPartitions?: number
  /** Replication factor of created topics (default -1: the broker's default). */
  replicationFactor?: number
  /** Broker-side timeout of a produce request, ms (default 10000). */
  timeoutMs?: number
  /**
   * Upper bound of one `publish` call, ms, however kafkajs retries (default 15000): after it the
   * call throws `RELAY_PUBLISH_TIMEOUT` and the producer is replaced, so the abandoned send stops.
   * Keep the engine's `leaseMs` well above it.
   */
  sendTimeoutMs?: number
  /** Producer retries before `publish` rejects (default `{ retries: 5, maxRetryTime: 5000 }`). */
  retry?: RetryOptions
  /** Compression (default none). */
  compression?: CompressionTypes
  /** Extra producer config; `idempotent`, `maxInFlightRequests` and the partitioner are fixed. */
  producer?: Omit<ProducerConfig, 'idempotent' | 'maxInFlightRequests' | 'createPartitioner' | 'retry'>
}

/**
 * The default publisher: a kafkajs idempotent producer (`idempotent: true`,
 * `maxInFlightRequests: 1`, acks = all) sending each batch with ONE awaited `sendBatch`, topics
 * grouped in first-seen order and messages kept in batch order, partitioned by the Java-compatible
 * murmur2 `DefaultPartitioner` (same key → same partition as Java clients). Missing topics are
 * created up front (`createTopics` with `waitForLeaders`), and known topics are cached.
 *
 * kafkajs' idempotent producer would retry forever by default; here retries are bounded so a
 * broker outage surfaces as a retriable failure the engine backs off from.
 *
 * @param options.kafka - the kafkajs client
 * @param [options.createTopics=true] - create missing topics before sending
 * @param [options.timeoutMs=10000] - produce request timeout (broker side)
 * @param [options.sendTimeoutMs=15000] - upper bound of one `publish` call
 * @example
 * const publisher = new KafkaPublisher({ kafka: new Kafka({ clientId: 'relay', brokers: ['127.0.0.1:9092'] }) })
 * await publisher.connect()
 */
export class KafkaPublisher implements Publisher {
  private producer: Producer
  private admin: Admin | undefined
  private readonly knownTopics = new Set<string>()
  private readonly options: KafkaPublisherOptions
  /** Set after a failed send: the producer's sequence state can no longer be trusted. */
  private stale = false
  /** Serialises `publish` calls: concurrent sends on an idempotent kafkajs producer can lose messages. */
  private queue: Promise<unknown> = Promise.resolve()

  constructor(options: KafkaPublisherOptions) {
    this.options = options
    this.producer = this.createProducer()
  }

  private createProducer(): Producer {
    return this.options.kafka.producer({
      ...this.options.producer,
      idempotent: true,
      maxInFlightRequests: 1,
      createPartitioner: Partitioners.DefaultPartitioner,
      retry: this.options.retry ?? { retries: 5, initialRetryTime: 200, maxRetryTime: 5_000 },
    })
  }

  async connect(): Promise<void> {
    await this.producer.connect()
    if (this.options.createTopics !== false && !this.admin) {
      this.admin = this.options.kafka.admin()
      await this.admin.connect()
    }
  }

  async disconnect(): Promise<void> {
    await Promise.allSettled([this.producer.disconnect(), this.admin?.disconnect()])
    this.admin = undefined
  }

  async ensureTopics(topics: string[]): Promise<void> {
    let missing = [...new Set(topics)].filter((t) => !this.knownTopics.has(t))
    if (missing.length === 0 || !this.admin) return
    try {
      // Ask first: creating an existing topic works but makes kafkajs log an error.
      const existing = new Set(await this.admin.listTopics())
      for (const topic of missing) if (existing.has(topic)) this.knownTopics.add(topic)
      missing = missing.filter((t) => !existing.has(t))
      if (missing.length === 0) return
      await this.admin.createTopics({
        waitForLeaders: true,
        topics: missing.map((topic) => ({
          topic,
          numPartitions: this.options.numPartitions ?? -1,
          replicationFactor: this.options.replicationFactor ?? -1,
        })),
      })
    } catch (error) {
      throw toPublishError(error, `creating topic(s) ${missing.join(', ')} failed`)
    }
    for (const topic of missing) this.knownTopics.add(topic)
  }

  publish(messages: OutboxMessage[], options: PublishOptions = {}): Promise<void> {
    const limit = Math.max(
      1,
      Math.min(options.timeoutMs ?? Number.POSITIVE_INFINITY, this.options.sendTimeoutMs ?? 15_000),
    )
    // The wait behind earlier calls counts: the deadline starts now.
    const deadline = performance.now() + limit
    const run = this.queue.then(() => {
      // Nothing sent yet: the rows can go back at once, and the broker is not to blame.
      if (performance.now() >= deadline)
        throw new RelayError('RELAY_PUBLISH_NOT_SENT', `not sent: no time left within ${limit} ms`)
      return this.publishBefore(messages, deadline, limit)
    })
    this.queue = run.catch(() => {})
    return run
  }

  private async publishBefore(messages: OutboxMessage[], deadline: number, limit: number): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined
    const expired = new Promise<'expired'>((resolve) => {
      timer = setTimeout(() => resolve('expired'), Math.max(0, deadline - performance.now()))
    })
    const sending = this.publishNow(messages)
    try {
      if ((await Promise.race([sending.then(() => 'sent' as const), expired])) === 'sent') return
    } finally {
      clearTimeout(timer)
    }
    sending.catch(() => {})
    // Stop the abandoned send: the next call starts over on a fresh producer.
    this.stale = true
    const old = this.producer
    this.producer = this.createProducer()
    void old.disconnect().catch(() => {})
    throw new RelayError('RELAY_PUBLISH_TIMEOUT', `no acknowledgement from the broker within ${limit} ms`)
  }

  /**
   * After a failed `sendBatch` kafkajs rolls back the sequence numbers of EVERY partition of the
   * failed request, including partitions the broker accepted. The next, different batch would
   * then reuse sequence numbers: the broker answers OUT_OF_ORDER_SEQUENCE_NUMBER or, worse, takes
   * it for a duplicate and acknowledges it WITHOUT writing it (silent loss). So after any failure
   * we start over with a fresh producer, which gets a new producer id and fresh sequences.
   */
  private async resetProducer(): Promise<void> {
    const old = this.producer
    this.producer = this.createProducer()
    await old.disconnect().catch(() => {})
    try {
      await this.producer.connect()
    } catch (error) {
      throw toPublishError(error, 'reconnecting the producer failed')
    }
    this.stale = false
  }

  private async publishNow(messages: OutboxMessage[]): Promise<void> {
    if (messages.length === 0) return
    if (this.stale) await this.resetProducer()
    const byTopic = new Map<string, Message[]>()
    for (const m of messages) {
      let list = byTopic.get(m.topic)
      if (!list) {
        list = []
        byTopic.set(m.topic, list)
      }
      list.push({ key: m.key, value: m.value, headers: m.headers })
    }
    await this.ensureTopics([...byTopic.keys()])
    const topicMessages: TopicMessages[] = [...byTopic].map(([topic, list]) => ({ topic, messages: list }))
    try {
      await this.producer.sendBatch({
        topicMessages,
        acks: -1,
        timeout: this.options.timeoutMs ?? 10_000,
        compression: this.options.compression ?? CompressionTypes.None,
      })
    } catch (error) {
      this.stale = true
      throw toPublishError(error)
    }
  }
}

export type { KafkaHealthCheck } from './kafka-health.js'
export { kafkaHealthCheck } from './kafka-health.js'
export { kafkaEntryLevel, kafkaLogCreator } from './kafka-log.js'

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
import type { OutboxMessage } from '../core/message.js'
import { type Publisher, type PublishOptions, toPublishError } from '../core/publisher.js'
import { groupByTopic, SerialSender, TopicCache } from './common.js'
import { quietKafkajsIdleLoop } from './kafkajs-idle.js'

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
 * broker outage surfaces as a retriable failure the engine backs off from. Creating one also
 * stops kafkajs 2.2.4 from waking the process every millisecond per broker connection (see
 * {@link quietKafkajsIdleLoop}).
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
  private readonly topics: TopicCache
  private readonly options: KafkaPublisherOptions
  /** Set after a failed send: the producer's sequence state can no longer be trusted. */
  private stale = false
  /** Serialises `publish` calls: concurrent sends on an idempotent kafkajs producer can lose messages. */
  private readonly sender: SerialSender

  constructor(options: KafkaPublisherOptions) {
    quietKafkajsIdleLoop()
    this.options = options
    this.topics = new TopicCache(options)
    this.producer = this.createProducer()
    this.sender = new SerialSender(options.sendTimeoutMs ?? 15_000, {
      send: (messages) => this.publishNow(messages),
      // Stop the abandoned send: the next call starts over on a fresh producer.
      abandon: () => {
        this.stale = true
        const old = this.producer
        this.producer = this.createProducer()
        void old.disconnect().catch(() => {})
      },
    })
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
    const admin = this.admin
    await this.topics.ensure(
      admin && {
        listTopics: () => admin.listTopics(),
        createTopics: async (list) => {
          await admin.createTopics({ waitForLeaders: true, topics: list })
        },
      },
      topics,
    )
  }

  publish(messages: OutboxMessage[], options: PublishOptions = {}): Promise<void> {
    return this.sender.publish(messages, options)
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
    const byTopic = groupByTopic<Message>(messages, (m) => ({
      key: m.key,
      value: m.value,
      headers: m.headers,
    }))
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
export { quietKafkajsIdleLoop } from './kafkajs-idle.js'

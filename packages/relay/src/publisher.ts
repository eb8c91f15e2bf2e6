/**
 * The publisher interface and its default implementation on kafkajs.
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
import { isRelayError, RelayError } from './errors.js'
import type { OutboxMessage } from './message.js'

export type { OutboxMessage } from './message.js'

/**
 * Where the relay sends messages. `publish` must deliver all messages or throw; on a throw the
 * engine counts every message of the call as unpublished. Throw
 * `RelayError('RELAY_PUBLISH_PERMANENT')` when a message can never be delivered (the engine then
 * bisects the batch to find it); anything else is treated as retriable unless
 * {@link classifyPublishError} recognises it as permanent.
 *
 * Messages of one topic + key must be delivered in the order given.
 */
export interface Publisher {
  connect(): Promise<void>
  disconnect(): Promise<void>
  publish(messages: OutboxMessage[]): Promise<void>
  /** Creates missing topics, if the implementation can. */
  ensureTopics?(topics: string[]): Promise<void>
}

/** Kafka protocol error types that are the message's fault: retrying cannot help. */
export const PERMANENT_KAFKA_ERRORS: ReadonlySet<string> = new Set([
  'MESSAGE_TOO_LARGE',
  'RECORD_LIST_TOO_LARGE',
  'INVALID_RECORD',
  'INVALID_TOPIC_EXCEPTION',
  'CORRUPT_MESSAGE',
  'INVALID_REQUIRED_ACKS',
  'UNSUPPORTED_FOR_MESSAGE_FORMAT',
])

/**
 * Idempotent-producer state errors: the producer's sequence numbers no longer match the broker's.
 * Not the message's fault; the publisher starts a fresh producer (new producer id) and the rows
 * are retried.
 */
const PRODUCER_STATE_KAFKA_ERRORS: ReadonlySet<string> = new Set([
  'OUT_OF_ORDER_SEQUENCE_NUMBER',
  'DUPLICATE_SEQUENCE_NUMBER',
  'UNKNOWN_PRODUCER_ID',
  'INVALID_PRODUCER_EPOCH',
  'INVALID_PRODUCER_ID_MAPPING',
])

/**
 * Non-retriable protocol errors that are the deployment's fault, not the message's: the rows must
 * not go dead for them (fix the ACLs/credentials and they flow), so they count as retriable.
 */
const CONFIGURATION_KAFKA_ERRORS: ReadonlySet<string> = new Set([
  'TOPIC_AUTHORIZATION_FAILED',
  'CLUSTER_AUTHORIZATION_FAILED',
  'TRANSACTIONAL_ID_AUTHORIZATION_FAILED',
  'SASL_AUTHENTICATION_FAILED',
  'ILLEGAL_SASL_STATE',
  'UNSUPPORTED_SASL_MECHANISM',
])

/**
 * Decides whether a publish failure is worth retrying. Walks the error and its `cause` chain
 * (kafkajs wraps protocol errors in `KafkaJSNonRetriableError` / `KafkaJSNumberOfRetriesExceeded`)
 * and aggregated `errors`:
 * - a `RelayError` decides by its code;
 * - a Kafka protocol error in {@link PERMANENT_KAFKA_ERRORS}, or any other NON-retriable protocol
 *   error except authorisation/authentication ones → `'permanent'`;
 * - everything else (connection errors, timeouts, retriable protocol errors, unknown errors) →
 *   `'retriable'`: when in doubt, retry; `maxAttempts` still bounds it.
 *
 * @example
 * classifyPublishError(new KafkaJSProtocolError({ type: 'MESSAGE_TOO_LARGE', retriable: false, ... })) // 'permanent'
 */
export function classifyPublishError(error: unknown): 'retriable' | 'permanent' {
  const queue: unknown[] = [error]
  const seen = new Set<unknown>()
  while (queue.length > 0) {
    const current = queue.shift()
    if (current === null || typeof current !== 'object' || seen.has(current)) continue
    seen.add(current)
    if (isRelayError(current)) {
      if (current.code === 'RELAY_PUBLISH_PERMANENT') return 'permanent'
      if (current.code === 'RELAY_PUBLISH_RETRIABLE') return 'retriable'
    }
    const e = current as {
      name?: unknown
      type?: unknown
      retriable?: unknown
      cause?: unknown
      errors?: unknown
    }
    if (
      typeof e.type === 'string' &&
      (e.name === 'KafkaJSProtocolError' || e.name === 'KafkaJSCreateTopicError')
    ) {
      if (PERMANENT_KAFKA_ERRORS.has(e.type)) return 'permanent'
      if (
        e.retriable === false &&
        !CONFIGURATION_KAFKA_ERRORS.has(e.type) &&
        !PRODUCER_STATE_KAFKA_ERRORS.has(e.type)
      )
        return 'permanent'
    }
    if (e.cause !== undefined) queue.push(e.cause)
    if (Array.isArray(e.errors)) queue.push(...e.errors)
  }
  return 'retriable'
}

/** Wraps a failure as a `RelayError` carrying its classification. @internal */
export function toPublishError(error: unknown, what = 'publish failed'): RelayError {
  if (
    isRelayError(error) &&
    (error.code === 'RELAY_PUBLISH_PERMANENT' || error.code === 'RELAY_PUBLISH_RETRIABLE')
  )
    return error
  const kind = classifyPublishError(error)
  const message = error instanceof Error ? error.message : String(error)
  return new RelayError(
    kind === 'permanent' ? 'RELAY_PUBLISH_PERMANENT' : 'RELAY_PUBLISH_RETRIABLE',
    `${what}: ${message}`,
    {
      cause: error,
    },
  )
}

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
  /** Broker-side timeout of a produce request, ms (default 30000). */
  timeoutMs?: number
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
 * @param [options.timeoutMs=30000] - produce request timeout
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

  publish(messages: OutboxMessage[]): Promise<void> {
    const run = this.queue.then(() => this.publishNow(messages))
    this.queue = run.catch(() => {})
    return run
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
        timeout: this.options.timeoutMs ?? 30_000,
        compression: this.options.compression ?? CompressionTypes.None,
      })
    } catch (error) {
      this.stale = true
      throw toPublishError(error)
    }
  }
}

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

/** Options of one {@link Publisher.publish} call. */
export interface PublishOptions {
  /**
   * Give up waiting after this many ms and throw `RelayError('RELAY_PUBLISH_TIMEOUT')`; the
   * engine passes what is left of the drain's budget (capped by its `publishTimeoutMs`).
   */
  timeoutMs?: number | undefined
}

/**
 * Where the relay sends messages. `publish` must deliver all messages or throw; on a throw the
 * engine counts every message of the call as unpublished. What the throw costs the rows depends
 * on {@link classifyPublishFailure}: throw `RelayError('RELAY_PUBLISH_PERMANENT')` when a message
 * can never be delivered (the engine then bisects the batch to find it),
 * `RelayError('RELAY_PUBLISH_REJECTED')` when the broker refused the event itself for a reason
 * that may pass, and anything else when the broker or the path to it failed (no attempt is
 * counted; the relay pauses).
 *
 * Messages of one topic + key must be delivered in the order given.
 */
export interface Publisher {
  connect(): Promise<void>
  disconnect(): Promise<void>
  publish(messages: OutboxMessage[], options?: PublishOptions): Promise<void>
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
 * not go dead for them (fix the ACLs/credentials and they flow), and they cost no attempt.
 */
const CONFIGURATION_KAFKA_ERRORS: ReadonlySet<string> = new Set([
  'CLUSTER_AUTHORIZATION_FAILED',
  'TRANSACTIONAL_ID_AUTHORIZATION_FAILED',
  'SASL_AUTHENTICATION_FAILED',
  'ILLEGAL_SASL_STATE',
  'UNSUPPORTED_SASL_MECHANISM',
])

/** Protocol errors that refuse the event's own topic: an attempt each, dead after `maxAttempts`. */
const REJECTED_KAFKA_ERRORS: ReadonlySet<string> = new Set(['TOPIC_AUTHORIZATION_FAILED'])

/**
 * Whose fault a publish failure is, and so what it costs:
 * - `'permanent'`: the event's, for good (too large, invalid topic or record): dead at once;
 * - `'rejected'`: the event's, but it may pass (its topic is not authorised): an attempt;
 * - `'unavailable'`: the infrastructure's (connection refused or closed, no leader, broker not
 *   available, kafkajs retries exhausted, request timeouts, credentials, anything unknown): no
 *   attempt, and the whole relay pauses with a backoff;
 * - `'timeout'`: no answer within the publish deadline, so the messages may still land: no
 *   attempt, the rows keep their lease until it expires, the relay pauses;
 * - `'not-sent'`: the call gave up before sending anything (its deadline passed while it waited
 *   its turn): the rows go back at once, nothing is counted, no pause.
 *
 * Walks the error, its `cause` chain (kafkajs wraps protocol errors in `KafkaJSNonRetriableError`
 * / `KafkaJSNumberOfRetriesExceeded`) and aggregated `errors`; the first verdict other than
 * `'unavailable'` wins.
 *
 * @example
 * classifyPublishFailure(new KafkaJSProtocolError({ type: 'MESSAGE_TOO_LARGE', retriable: false, ... })) // 'permanent'
 * classifyPublishFailure(new KafkaJSConnectionError('Connection error: connect ECONNREFUSED')) // 'unavailable'
 */
export function classifyPublishFailure(error: unknown): PublishFailureKind {
  const queue: unknown[] = [error]
  const seen = new Set<unknown>()
  while (queue.length > 0) {
    const current = queue.shift()
    if (current === null || typeof current !== 'object' || seen.has(current)) continue
    seen.add(current)
    if (isRelayError(current)) {
      if (current.code === 'RELAY_PUBLISH_PERMANENT') return 'permanent'
      if (current.code === 'RELAY_PUBLISH_REJECTED') return 'rejected'
      if (current.code === 'RELAY_PUBLISH_TIMEOUT') return 'timeout'
      if (current.code === 'RELAY_PUBLISH_NOT_SENT') return 'not-sent'
      if (current.code === 'RELAY_PUBLISH_RETRIABLE') return 'unavailable'
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
      if (REJECTED_KAFKA_ERRORS.has(e.type)) return 'rejected'
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
  return 'unavailable'
}

/** See {@link classifyPublishFailure}. */
export type PublishFailureKind = 'permanent' | 'rejected' | 'unavailable' | 'timeout' | 'not-sent'

/**
 * The two-way view of {@link classifyPublishFailure}: `'permanent'`, or `'retriable'` for
 * everything retrying may fix.
 */
export function classifyPublishError(error: unknown): 'retriable' | 'permanent' {
  return classifyPublishFailure(error) === 'permanent' ? 'permanent' : 'retriable'
}

const FAILURE_CODES = {
  permanent: 'RELAY_PUBLISH_PERMANENT',
  rejected: 'RELAY_PUBLISH_REJECTED',
  unavailable: 'RELAY_PUBLISH_RETRIABLE',
  timeout: 'RELAY_PUBLISH_TIMEOUT',
  'not-sent': 'RELAY_PUBLISH_NOT_SENT',
} as const

/** Wraps a failure as a `RelayError` carrying its classification. @internal */
export function toPublishError(error: unknown, what = 'publish failed'): RelayError {
  if (isRelayError(error) && error.code.startsWith('RELAY_PUBLISH_')) return error
  const kind = classifyPublishFailure(error)
  const message = error instanceof Error ? error.message : String(error)
  return new RelayError(FAILURE_CODES[kind], `${what}: ${message}`, { cause: error })
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

/**
 * A publisher on `@platformatic/kafka` (pure TypeScript, maintained): an optional peer
 * dependency, imported only here.
 * @module
 */
import {
  Admin,
  type BaseOptions,
  type CompressionAlgorithmValue,
  compatibilityPartitioner,
  type MessageToProduce,
  ProduceAcks,
  Producer,
  stringSerializers,
} from '@platformatic/kafka'
import type { OutboxMessage } from '../core/message.js'
import { type Publisher, type PublishOptions, toPublishError } from '../core/publisher.js'
import {
  connectWithin,
  groupByTopic,
  type KafkaClientOptions,
  type NewTopic,
  SerialSender,
  TopicCache,
} from './common.js'

type StringProducer = Producer<string, string, string, string>
type StringMessage = MessageToProduce<string, string, string, string>

/** Options of {@link PlatformaticPublisher}. */
export interface PlatformaticPublisherOptions extends KafkaClientOptions {
  /** Retries of a request before `publish` rejects (default 5, at least 2). */
  retries?: number
  /** Wait between retries, ms (default 200). */
  retryDelayMs?: number
  /** Compression (default `'none'`). */
  compression?: CompressionAlgorithmValue
  /** Connection options: `tls`, `sasl`, `connectTimeout`. */
  connection?: Pick<BaseOptions, 'tls' | 'sasl' | 'connectTimeout' | 'tlsServerName'>
}

/** How long {@link PlatformaticPublisher.ensureTopics} waits for new partitions to get a leader. */
const LEADER_WAIT_MS = 10_000

/**
 * A `@platformatic/kafka` idempotent producer (acks = all, one request in flight per broker)
 * sending each batch with ONE awaited `send`, messages in batch order, keys partitioned by the
 * Java-compatible murmur2 (`compatibilityPartitioner`: same key → same partition as kafkajs'
 * `DefaultPartitioner` and Java clients). Same messages, topic creation and failure handling as
 * `KafkaPublisher`: after any failed send the producer is replaced (new producer id, fresh
 * sequence numbers).
 *
 * @example
 * const publisher = new PlatformaticPublisher({ brokers: ['127.0.0.1:9092'] })
 * await publisher.connect()
 */
export class PlatformaticPublisher implements Publisher {
  private producer: StringProducer
  private admin: Admin | undefined
  private readonly topics: TopicCache
  private readonly options: PlatformaticPublisherOptions
  /** Set after a failed send: the producer's sequence state can no longer be trusted. */
  private stale = false
  private readonly sender: SerialSender

  constructor(options: PlatformaticPublisherOptions) {
    this.options = options
    this.topics = new TopicCache(options)
    this.producer = this.createProducer()
    this.sender = new SerialSender(options.sendTimeoutMs ?? 15_000, {
      send: (messages) => this.publishNow(messages),
      abandon: () => {
        this.stale = true
        void this.producer.close().catch(() => {})
        this.producer = this.createProducer()
      },
    })
  }

  private base(): BaseOptions {
    return {
      ...this.options.connection,
      clientId: this.options.clientId ?? 'outbox-relay',
      bootstrapBrokers: this.options.brokers,
      timeout: this.options.timeoutMs ?? 10_000,
      // Below 2 the library turns an idempotent producer's retries into "forever".
      retries: Math.max(2, this.options.retries ?? 5),
      retryDelay: this.options.retryDelayMs ?? 200,
      autocreateTopics: false,
    }
  }

  private createProducer(): StringProducer {
    return new Producer<string, string, string, string>({
      ...this.base(),
      idempotent: true,
      acks: ProduceAcks.ALL,
      partitioner: compatibilityPartitioner,
      serializers: stringSerializers,
      compression: this.options.compression ?? 'none',
    })
  }

  async connect(): Promise<void> {
    // Bounded like a publish: the library retries a silent broker for tens of seconds.
    const producer = this.producer
    const init = producer.initIdempotentProducer({}).catch((error: unknown) => {
      throw new Error(leafErrors(error), { cause: error })
    })
    await connectWithin(init, this.options.sendTimeoutMs ?? 15_000, () => {
      this.producer = this.createProducer()
      void producer.close().catch(() => {})
    })
    if (this.options.createTopics !== false && !this.admin) this.admin = new Admin(this.base())
  }

  async disconnect(): Promise<void> {
    // A closed producer cannot connect again: keep a fresh one for a later connect().
    const old = this.producer
    this.producer = this.createProducer()
    await Promise.allSettled([old.close(), this.admin?.close()])
    this.admin = undefined
  }

  async ensureTopics(topics: string[]): Promise<void> {
    const admin = this.admin
    await this.topics.ensure(
      admin && {
        listTopics: () => admin.listTopics(),
        createTopics: (list) => createTopics(admin, list),
      },
      topics,
    )
  }

  publish(messages: OutboxMessage[], options: PublishOptions = {}): Promise<void> {
    return this.sender.publish(messages, options)
  }

  private async publishNow(messages: OutboxMessage[]): Promise<void> {
    if (messages.length === 0) return
    if (this.stale) {
      void this.producer.close().catch(() => {})
      this.producer = this.createProducer()
      this.stale = false
    }
    const byTopic = groupByTopic<StringMessage>(messages, (m) => ({
      topic: m.topic,
      key: m.key,
      value: m.value,
      headers: m.headers,
    }))
    await this.ensureTopics([...byTopic.keys()])
    try {
      await this.producer.send({ messages: [...byTopic.values()].flat() })
    } catch (error) {
      this.stale = true
      throw toPublishError(error, `publish failed (${leafErrors(error)})`)
    }
  }
}

/**
 * Creates topics (one already there is no error: another relay created it in between) and polls
 * metadata until every partition has a leader, as kafkajs' `waitForLeaders` does.
 */
async function createTopics(admin: Admin, topics: NewTopic[]): Promise<void> {
  const names = topics.map((t) => t.topic)
  try {
    await admin.createTopics({
      topics: names,
      partitions: topics[0]?.numPartitions ?? -1,
      replicas: topics[0]?.replicationFactor ?? -1,
    })
  } catch (error) {
    if (!(error as { findBy?: (k: string, v: unknown) => unknown }).findBy?.('apiId', 'TOPIC_ALREADY_EXISTS'))
      throw new Error(leafErrors(error), { cause: error })
  }
  const deadline = performance.now() + LEADER_WAIT_MS
  for (;;) {
    const metadata = await admin.metadata({ topics: names, forceUpdate: true }).catch(() => undefined)
    const ready = names.every((t) => metadata?.topics.get(t)?.partitions.every((p) => p.leader >= 0) === true)
    if (ready) return
    if (performance.now() > deadline)
      throw new Error(`topic(s) ${names.join(', ')} have no leader after ${LEADER_WAIT_MS} ms`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

/**
 * The innermost errors of a `MultipleErrors` tree, as text (`apiId: message`): the library's
 * outer message ("Producing messages failed.") does not say what failed.
 */
function leafErrors(error: unknown): string {
  const found = new Set<string>()
  const walk = (e: unknown, depth: number) => {
    if (e === null || typeof e !== 'object' || depth > 5) return
    const { errors, apiId, message } = e as { errors?: unknown; apiId?: unknown; message?: unknown }
    if (Array.isArray(errors) && errors.length > 0) for (const inner of errors) walk(inner, depth + 1)
    else found.add(typeof apiId === 'string' ? `${apiId}: ${String(message)}` : String(message))
  }
  walk(error, 0)
  return [...found].join('; ')
}

/**
 * A publisher on `@confluentinc/kafka-javascript` (librdkafka, native): an optional peer
 * dependency that is never installed by default. It is loaded at `connect()`, from where this
 * package is installed or from the module given as `options.module`.
 * @module
 */
import type { OutboxMessage } from '../core/message.js'
import { type Publisher, type PublishOptions, toPublishError } from '../core/publisher.js'
import { connectWithin, groupByTopic, type KafkaClientOptions, SerialSender, TopicCache } from './common.js'

/** The package's name, as `import()` resolves it. */
export const CONFLUENT_MODULE = '@confluentinc/kafka-javascript'

/** A librdkafka configuration: properties of librdkafka's CONFIGURATION.md. */
export type RdKafkaConfig = Record<string, string | number | boolean>

interface RdMessage {
  key: string
  value: string
  headers: Record<string, string>
}

/** The part of the library's KafkaJS-compatible producer this publisher uses. */
export interface ConfluentProducer {
  connect(): Promise<void>
  disconnect(): Promise<void>
  sendBatch(batch: { topicMessages: Array<{ topic: string; messages: RdMessage[] }> }): Promise<unknown>
  /** Waits until every message handed to the producer is delivered or failed. */
  flush(args: { timeout: number }): Promise<void>
}

/** The part of the library's KafkaJS-compatible admin client this publisher uses. */
export interface ConfluentAdmin {
  connect(): Promise<void>
  disconnect(): Promise<void>
  listTopics(): Promise<string[]>
  createTopics(options: {
    topics: Array<{ topic: string; numPartitions: number; replicationFactor: number }>
    timeout?: number
  }): Promise<boolean>
}

/** A client configuration: librdkafka properties, and KafkaJS-style ones under `kafkaJS`. */
type ClientConfig = { [property: string]: unknown; kafkaJS?: Record<string, unknown> }

/** What this publisher needs of `@confluentinc/kafka-javascript` (its `KafkaJS` namespace). */
export interface ConfluentModule {
  KafkaJS: {
    Kafka: new (
      config: ClientConfig,
    ) => {
      producer(config: ClientConfig): ConfluentProducer
      admin(config?: ClientConfig): ConfluentAdmin
    }
  }
}

/**
 * Options of {@link ConfluentPublisher}. librdkafka's `message.timeout.ms` is set 1 s below
 * `sendTimeoutMs`, so a broker that stays away fails the messages (`unavailable`) before the
 * call times out.
 */
export interface ConfluentPublisherOptions extends KafkaClientOptions {
  /** librdkafka `linger.ms` (default 1): how long librdkafka waits to fill a request. */
  lingerMs?: number
  /**
   * Extra librdkafka properties for every client, e.g. `security.protocol`, `sasl.mechanisms`;
   * `enable.idempotence`, `acks` and `partitioner` are fixed.
   */
  config?: RdKafkaConfig
  /** Where library warnings and errors go, one line each (default: `console.error`). */
  log?: (line: string) => void
  /** The module itself, when `import('@confluentinc/kafka-javascript')` cannot find it from here. */
  module?: ConfluentModule
}

/**
 * Loads `@confluentinc/kafka-javascript`, or throws an error that says how to install it.
 * @throws Error when the module is missing or cannot load (its native part was not built)
 */
export async function loadConfluentModule(): Promise<ConfluentModule> {
  const name: string = CONFLUENT_MODULE
  try {
    const loaded = (await import(name)) as ConfluentModule & { default?: ConfluentModule }
    return loaded.KafkaJS ? loaded : (loaded.default as ConfluentModule)
  } catch (error) {
    throw new Error(
      `${CONFLUENT_MODULE} could not be loaded (${(error as Error).message}); install it beside ` +
        '@prisma-outbox/relay: `CKJS_LINKING=dynamic npm install @confluentinc/kafka-javascript` ' +
        'with librdkafka-dev installed, or without CKJS_LINKING to build the bundled librdkafka',
      { cause: error },
    )
  }
}

/** The library's KafkaJS-style logger, sending warnings and errors to `log`. */
function logger(log: (line: string) => void) {
  const write = (label: string) => (message: string, extra?: Record<string, unknown>) =>
    log(`confluent-kafka ${label} ${message}${extra?.fac ? ` [${String(extra.fac)}]` : ''}`)
  const self = {
    info() {},
    debug() {},
    warn: write('warn'),
    error: write('error'),
    setLogLevel() {},
    namespace: () => self,
  }
  return self
}

/**
 * A librdkafka idempotent producer (`enable.idempotence`, acks = all, librdkafka keeps per-partition
 * order across its in-flight requests) behind the library's KafkaJS-compatible API: each batch is
 * ONE awaited `sendBatch`, messages in batch order, keys partitioned by `murmur2_random` (the
 * Java-compatible murmur2: same key → same partition as kafkajs' `DefaultPartitioner`). Same
 * messages, topic creation and failure handling as `KafkaPublisher`: after any failed send the
 * producer is replaced.
 *
 * @example
 * const publisher = new ConfluentPublisher({ brokers: ['127.0.0.1:9092'] })
 * await publisher.connect()
 */
export class ConfluentPublisher implements Publisher {
  private kafka: InstanceType<ConfluentModule['KafkaJS']['Kafka']> | undefined
  private producer: ConfluentProducer | undefined
  private admin: ConfluentAdmin | undefined
  private readonly topics: TopicCache
  private readonly options: ConfluentPublisherOptions
  /** Set after a failed send: the producer is replaced before the next one. */
  private stale = false
  private readonly sender: SerialSender

  constructor(options: ConfluentPublisherOptions) {
    this.options = options
    this.topics = new TopicCache(options)
    this.sender = new SerialSender(this.sendTimeoutMs(), {
      send: (messages) => this.publishNow(messages),
      abandon: () => {
        this.stale = true
      },
    })
  }

  private sendTimeoutMs(): number {
    return this.options.sendTimeoutMs ?? 15_000
  }

  private createProducer(): ConfluentProducer {
    if (!this.kafka) throw new Error('ConfluentPublisher: connect() first')
    return this.kafka.producer({
      'linger.ms': this.options.lingerMs ?? 1,
      'message.timeout.ms': Math.max(1_000, this.sendTimeoutMs() - 1_000),
      'request.timeout.ms': this.options.timeoutMs ?? 10_000,
      ...this.options.config,
      'enable.idempotence': true,
      acks: -1,
      partitioner: 'murmur2_random',
    })
  }

  async connect(): Promise<void> {
    if (!this.kafka) {
      const module = this.options.module ?? (await loadConfluentModule())
      this.kafka = new module.KafkaJS.Kafka({
        ...this.options.config,
        kafkaJS: {
          brokers: this.options.brokers,
          clientId: this.options.clientId ?? 'outbox-relay',
          logger: logger(this.options.log ?? ((line) => console.error(line))),
        },
      })
    }
    if (!this.producer) this.producer = await this.connected(this.createProducer())
    if (this.options.createTopics !== false && !this.admin)
      this.admin = await this.connected(this.kafka.admin())
  }

  /** Connects a client within `sendTimeoutMs` (the library waits up to 30 s for a first answer). */
  private async connected<T extends { connect(): Promise<void>; disconnect(): Promise<void> }>(
    client: T,
  ): Promise<T> {
    await connectWithin(client.connect(), this.sendTimeoutMs(), () => {
      void client.disconnect().catch(() => {})
    })
    return client
  }

  async disconnect(): Promise<void> {
    await Promise.allSettled([this.producer?.disconnect(), this.admin?.disconnect()])
    this.producer = undefined
    this.admin = undefined
  }

  async ensureTopics(topics: string[]): Promise<void> {
    const admin = this.admin
    // librdkafka waits for the new partitions' leaders itself (within message.timeout.ms).
    const timeout = this.options.timeoutMs ?? 10_000
    await this.topics.ensure(
      admin && {
        listTopics: () => admin.listTopics(),
        createTopics: async (list) => {
          await admin.createTopics({ timeout, topics: list })
        },
      },
      topics,
    )
  }

  publish(messages: OutboxMessage[], options: PublishOptions = {}): Promise<void> {
    return this.sender.publish(messages, options)
  }

  /** A fresh producer (new producer id, fresh sequences) in place of one that failed. */
  private async resetProducer(): Promise<void> {
    const old = this.producer
    this.producer = undefined
    void old?.disconnect().catch(() => {})
    this.producer = await this.connected(this.createProducer())
    this.stale = false
  }

  private async publishNow(messages: OutboxMessage[]): Promise<void> {
    if (messages.length === 0) return
    if (this.stale || !this.producer) await this.resetProducer()
    const producer = this.producer as ConfluentProducer
    const byTopic = groupByTopic<RdMessage>(messages, (m) => ({
      key: m.key,
      value: m.value,
      headers: m.headers,
    }))
    await this.ensureTopics([...byTopic.keys()])
    try {
      await producer.sendBatch({
        topicMessages: [...byTopic].map(([topic, list]) => ({ topic, messages: list })),
      })
    } catch (error) {
      this.stale = true
      // `sendBatch` rejects at the first failed message while the batch's other messages are
      // still in flight. Left alone they could land after the retry of the same rows on the next
      // producer, out of order: wait until librdkafka has settled them all (a flush that outlasts
      // the publish deadline turns into RELAY_PUBLISH_TIMEOUT, and the rows keep their lease).
      await producer.flush({ timeout: this.sendTimeoutMs() }).catch(() => {})
      throw toPublishError(error)
    }
  }
}

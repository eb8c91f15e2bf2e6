/**
 * What every Kafka publisher shares: one send at a time, each bounded in time, topics created
 * once, and messages grouped by topic in first-seen order.
 * @module
 */
import { RelayError } from '../core/errors.js'
import type { OutboxMessage } from '../core/message.js'
import { type PublishOptions, toPublishError } from '../core/publisher.js'

/** Options every publisher that builds its own client takes. */
export interface KafkaClientOptions {
  /** Bootstrap brokers, `host:port`. */
  brokers: string[]
  /** Client id (default `'outbox-relay'`). */
  clientId?: string
  /** Create missing topics before the first send to them (default true). */
  createTopics?: boolean
  /** Partitions of created topics (default -1: the broker's `num.partitions`). */
  numPartitions?: number
  /** Replication factor of created topics (default -1: the broker's default). */
  replicationFactor?: number
  /** Request timeout, ms (default 10000). */
  timeoutMs?: number
  /**
   * Upper bound of one `publish` call, ms, however the client retries (default 15000): after it
   * the call throws `RELAY_PUBLISH_TIMEOUT` and the producer is replaced. Keep the engine's
   * `leaseMs` well above it.
   */
  sendTimeoutMs?: number
}

/** A topic as {@link TopicCache} asks a client to create it. */
export interface NewTopic {
  topic: string
  numPartitions: number
  replicationFactor: number
}

/** What {@link TopicCache} needs of a client's admin API. */
export interface TopicAdmin {
  listTopics(): Promise<string[]>
  /** Creates the topics (an existing one is no error) and waits for their leaders if it must. */
  createTopics(topics: NewTopic[]): Promise<void>
}

/**
 * Creates missing topics up front (auto-created topics can briefly fail under KRaft) and
 * remembers the ones known to exist. Asks first: creating an existing topic works but makes
 * some clients log an error.
 */
export class TopicCache {
  private readonly known = new Set<string>()

  constructor(private readonly options: { numPartitions?: number; replicationFactor?: number }) {}

  async ensure(admin: TopicAdmin | undefined, topics: string[]): Promise<void> {
    let missing = [...new Set(topics)].filter((t) => !this.known.has(t))
    if (missing.length === 0 || !admin) return
    try {
      const existing = new Set(await admin.listTopics())
      for (const topic of missing) if (existing.has(topic)) this.known.add(topic)
      missing = missing.filter((t) => !existing.has(t))
      if (missing.length === 0) return
      await admin.createTopics(
        missing.map((topic) => ({
          topic,
          numPartitions: this.options.numPartitions ?? -1,
          replicationFactor: this.options.replicationFactor ?? -1,
        })),
      )
    } catch (error) {
      throw toPublishError(error, `creating topic(s) ${missing.join(', ')} failed`)
    }
    for (const topic of missing) this.known.add(topic)
  }
}

/** How {@link SerialSender} sends and what it does with a send it abandons. */
export interface SerialSendOps {
  /** Sends the messages; rejects with a classified error. */
  send(messages: OutboxMessage[]): Promise<void>
  /** Called when a send ran past its deadline: stop it (replace the producer). */
  abandon(): void
}

/**
 * Runs publish calls one at a time (concurrent sends on one idempotent producer can lose or
 * reorder messages) and bounds each: its deadline starts when it is called, so the wait behind
 * earlier calls counts. A call with no time left when its turn comes throws
 * `RELAY_PUBLISH_NOT_SENT`; a send still unanswered at the deadline is abandoned and throws
 * `RELAY_PUBLISH_TIMEOUT`.
 */
export class SerialSender {
  private queue: Promise<unknown> = Promise.resolve()

  constructor(
    private readonly sendTimeoutMs: number,
    private readonly ops: SerialSendOps,
  ) {}

  publish(messages: OutboxMessage[], options: PublishOptions = {}): Promise<void> {
    const limit = Math.max(1, Math.min(options.timeoutMs ?? Number.POSITIVE_INFINITY, this.sendTimeoutMs))
    const deadline = performance.now() + limit
    const run = this.queue.then(() => {
      // Nothing sent yet: the rows can go back at once, and the broker is not to blame.
      if (performance.now() >= deadline)
        throw new RelayError('RELAY_PUBLISH_NOT_SENT', `not sent: no time left within ${limit} ms`)
      return this.sendBefore(messages, deadline, limit)
    })
    this.queue = run.catch(() => {})
    return run
  }

  private async sendBefore(messages: OutboxMessage[], deadline: number, limit: number): Promise<void> {
    if (await settlesWithin(this.ops.send(messages), deadline - performance.now())) return
    this.ops.abandon()
    throw new RelayError('RELAY_PUBLISH_TIMEOUT', `no acknowledgement from the broker within ${limit} ms`)
  }
}

/**
 * True when `work` resolves within `ms`, false when the time ran out first (a later rejection of
 * `work` is then ignored); rethrows when it rejects in time.
 */
export async function settlesWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const expired = new Promise<'expired'>((resolve) => {
    timer = setTimeout(() => resolve('expired'), Math.max(0, ms))
  })
  try {
    if ((await Promise.race([work.then(() => 'done' as const), expired])) === 'done') return true
  } finally {
    clearTimeout(timer)
  }
  work.catch(() => {})
  return false
}

/**
 * Runs `connect` within `limit` ms: a client library may wait far longer (30 s and more) on a
 * broker that accepts connections and never answers. On expiry `abandon` stops the attempt and
 * `RELAY_PUBLISH_RETRIABLE` is thrown; a failure is classified.
 */
export async function connectWithin(
  connect: Promise<unknown>,
  limit: number,
  abandon: () => void,
): Promise<void> {
  try {
    if (await settlesWithin(connect, limit)) return
  } catch (error) {
    throw toPublishError(error, 'connecting to the broker failed')
  }
  abandon()
  throw new RelayError(
    'RELAY_PUBLISH_RETRIABLE',
    `connecting to the broker failed: no answer within ${limit} ms`,
  )
}

/** Messages grouped by topic, topics in first-seen order, messages in batch order. */
export function groupByTopic<T>(
  messages: OutboxMessage[],
  map: (message: OutboxMessage) => T,
): Map<string, T[]> {
  const byTopic = new Map<string, T[]>()
  for (const m of messages) {
    let list = byTopic.get(m.topic)
    if (!list) {
      list = []
      byTopic.set(m.topic, list)
    }
    list.push(map(m))
  }
  return byTopic
}

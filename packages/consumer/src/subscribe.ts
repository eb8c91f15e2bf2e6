/**
 * Subscribing before the topic exists: kafkajs's `subscribe` fails with
 * `UNKNOWN_TOPIC_OR_PARTITION` when a consumer starts before the relay created its topic (or
 * while an auto-created topic has no leader yet). `subscribe` waits for the topics instead, so
 * consumers and relays can start in any order.
 * @module
 */
import type { Consumer } from 'kafkajs'
import { InboxError } from './errors.js'

/** Errors of a topic that does not exist yet, or exists without a leader yet. */
const NOT_YET = new Set(['UNKNOWN_TOPIC_OR_PARTITION', 'LEADER_NOT_AVAILABLE', 'NOT_LEADER_FOR_PARTITION'])

export interface SubscribeOptions {
  topics: (string | RegExp)[]
  fromBeginning?: boolean
  /** Gives up (rethrowing kafkajs's error) after this many ms of waiting. @default no limit */
  timeoutMs?: number
  /** Longest wait between two attempts, in ms; waits start at 100 ms and double. @default 5000 */
  maxDelayMs?: number
  /**
   * Called before each wait. The default logs the first wait and every tenth with `console.warn`.
   */
  onWaiting?(info: { topics: (string | RegExp)[]; attempt: number; delayMs: number; error: Error }): void
  /** Stops waiting (rejects with the signal's reason). */
  signal?: AbortSignal
}

const defaultOnWaiting: NonNullable<SubscribeOptions['onWaiting']> = ({
  topics,
  attempt,
  delayMs,
  error,
}) => {
  if (attempt !== 1 && attempt % 10 !== 0) return
  console.warn(
    `prisma-outbox consumer: topic ${topics.map(String).join(', ')} not available yet (${error.message}); ` +
      `retrying subscribe in ${delayMs} ms (attempt ${attempt})`,
  )
}

/**
 * `consumer.subscribe(...)` that waits while a topic does not exist yet, retrying with backoff.
 *
 * @param consumer - a connected kafkajs consumer
 * @param options.topics - topics (or patterns) to subscribe to
 * @param [options.timeoutMs] - give up after this long; by default waits until the topic appears
 * @example
 * await consumer.connect()
 * await subscribe(consumer, { topics: ['outbox.event.employee'], fromBeginning: true })
 * await consumer.run({ eachMessage: inbox.eachMessage(handler) })
 */
export async function subscribe(
  consumer: Pick<Consumer, 'subscribe'>,
  options: SubscribeOptions,
): Promise<void> {
  if (!options || !Array.isArray(options.topics) || options.topics.length === 0) {
    throw new InboxError('INBOX_INVALID_OPTIONS', 'subscribe: options.topics must list at least one topic')
  }
  const { topics, fromBeginning = false, timeoutMs = Number.POSITIVE_INFINITY, maxDelayMs = 5_000 } = options
  const onWaiting = options.onWaiting ?? defaultOnWaiting
  const started = Date.now()
  for (let attempt = 1; ; attempt++) {
    options.signal?.throwIfAborted()
    try {
      await consumer.subscribe({ topics, fromBeginning })
      return
    } catch (error) {
      const type = (error as { type?: unknown }).type
      if (typeof type !== 'string' || !NOT_YET.has(type)) throw error
      const delayMs = Math.min(maxDelayMs, 100 * 2 ** Math.min(attempt - 1, 16))
      if (Date.now() - started + delayMs > timeoutMs) throw error
      try {
        onWaiting({ topics, attempt, delayMs, error: error as Error })
      } catch {
        // a logging hook must not stop the wait
      }
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(resolve, delayMs)
        options.signal?.addEventListener(
          'abort',
          () => {
            clearTimeout(timer)
            reject(options.signal?.reason)
          },
          { once: true },
        )
      })
    }
  }
}

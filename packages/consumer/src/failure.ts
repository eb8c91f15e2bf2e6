/**
 * What the inbox does when a handler keeps failing: bounded retries with exponential backoff, then
 * the message goes to a dead-letter topic so the partition moves on.
 * @module
 */
import type { IHeaders, KafkaMessage } from 'kafkajs'
import { InboxError } from './errors.js'
import type { OutboxEvent } from './event.js'

/** What the inbox needs of a kafkajs producer to dead-letter a message. */
export interface DeadLetterProducer {
  send(record: {
    topic: string
    acks?: number
    messages: { key: Buffer | string | null; value: Buffer | string | null; headers: IHeaders }[]
  }): Promise<unknown>
}

export interface RetryOptions {
  /** Attempts of one message, the first included, before it is dead-lettered (or rethrown). @default 3 */
  maxAttempts?: number
  /** Delay before the second attempt, in ms; it doubles each time, with jitter. @default 100 */
  initialDelayMs?: number
  /** Longest delay between two attempts, in ms. @default 5000 */
  maxDelayMs?: number
}

export interface DeadLetterOptions {
  /** A connected kafkajs producer (or anything with its `send`). */
  producer: DeadLetterProducer
  /**
   * The dead-letter topic of a source topic.
   * @default (topic) => `${topic}.dlq`
   */
  topic?: string | ((sourceTopic: string) => string)
}

/** A message the inbox gave up on, as the `onDeadLetter` hook sees it. */
export interface DeadLetterInfo {
  topic: string
  partition: number
  offset: string
  /** The event, when the message could be read as one (absent for an invalid message). */
  event?: OutboxEvent
  error: unknown
  attempts: number
  /** Where it went; absent when no dead-letter topic is configured (the error is rethrown). */
  deadLetterTopic?: string
  /** True when it was recorded as failed in the inbox (`recordFailed`), not sent anywhere. */
  recordedFailed?: boolean
}

/** Callbacks for logs and metrics; an exception in a hook is ignored. */
export interface InboxHooks {
  /** An event the inbox had already recorded for this consumer, skipped. */
  onDuplicate?(event: OutboxEvent): void
  /** A failed attempt that will be retried after `delayMs`. */
  onRetry?(info: { event: OutboxEvent; error: unknown; attempt: number; delayMs: number }): void
  /** A message sent to the dead-letter topic, or given up on (rethrown) when none is configured. */
  onDeadLetter?(info: DeadLetterInfo): void
}

/** Counts since the inbox was created (e.g. for Prometheus counters). */
export interface InboxCounters {
  /** Events handled and recorded. */
  processed: number
  /** Events skipped because the inbox had already recorded them. */
  duplicates: number
  /** Failed attempts that were retried. */
  retries: number
  /** Messages sent to the dead-letter topic. */
  deadLettered: number
  /** Messages given up on with no dead-letter topic: the error was rethrown to kafkajs. */
  failed: number
  /** Events given up on and recorded as failed in the inbox (`recordFailed`). */
  recordedFailed: number
}

export interface FailurePolicy {
  maxAttempts: number
  /** Delay before attempt `attempt + 1`, in ms. */
  delayMs(attempt: number): number
  deadLetter?: { producer: DeadLetterProducer; topic: (source: string) => string }
}

const positiveInt = (value: unknown, name: string, min: number) => {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new InboxError(
      'INBOX_INVALID_OPTIONS',
      `${name} must be an integer >= ${min}, got ${String(value)}`,
    )
  }
  return value
}

/** Checks the retry and dead-letter options once, when the inbox is created. */
export function failurePolicy(
  retry: RetryOptions | undefined,
  deadLetter: DeadLetterOptions | undefined,
  random: () => number = Math.random,
): FailurePolicy {
  const maxAttempts = positiveInt(retry?.maxAttempts ?? 3, 'options.retry.maxAttempts', 1)
  const initial = positiveInt(retry?.initialDelayMs ?? 100, 'options.retry.initialDelayMs', 0)
  const max = positiveInt(retry?.maxDelayMs ?? 5_000, 'options.retry.maxDelayMs', 0)
  if (max < initial) {
    throw new InboxError(
      'INBOX_INVALID_OPTIONS',
      `options.retry.maxDelayMs (${max}) must be at least options.retry.initialDelayMs (${initial})`,
    )
  }
  const policy: FailurePolicy = {
    maxAttempts,
    // Full exponential step, then jitter down to half of it, so retries of many partitions spread.
    delayMs: (attempt) => {
      const step = Math.min(max, initial * 2 ** Math.min(attempt - 1, 30))
      return Math.round(step / 2 + (random() * step) / 2)
    },
  }
  if (deadLetter !== undefined) {
    if (typeof deadLetter?.producer?.send !== 'function') {
      throw new InboxError(
        'INBOX_INVALID_OPTIONS',
        'options.deadLetter.producer must be a kafkajs producer (an object with send())',
      )
    }
    const topic = deadLetter.topic ?? ((source: string) => `${source}.dlq`)
    if (typeof topic === 'string' && !/^[A-Za-z0-9._-]{1,249}$/.test(topic)) {
      throw new InboxError(
        'INBOX_INVALID_OPTIONS',
        `options.deadLetter.topic "${topic}" is not a valid Kafka topic name`,
      )
    }
    policy.deadLetter = {
      producer: deadLetter.producer,
      topic: typeof topic === 'string' ? () => topic : topic,
    }
  }
  return policy
}

/** The reason as text, for a header. */
function describe(error: unknown): string {
  const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error)
  return text.length > 1_000 ? `${text.slice(0, 1_000)}...` : text
}

/**
 * The dead-letter copy of a message: same key, value and headers, plus headers naming where it came
 * from and why it was given up on.
 */
export function deadLetterMessage(
  source: { topic: string; partition: number; message: KafkaMessage },
  consumer: string,
  error: unknown,
  attempts: number,
) {
  return {
    key: source.message.key,
    value: source.message.value,
    headers: {
      ...source.message.headers,
      'dlq.topic': source.topic,
      'dlq.partition': String(source.partition),
      'dlq.offset': source.message.offset,
      'dlq.consumer': consumer,
      'dlq.attempts': String(attempts),
      'dlq.error': describe(error),
    },
  }
}

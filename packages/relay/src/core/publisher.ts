/**
 * The publisher contract and the classifier of publish failures. The classifier inspects
 * errors structurally (their `name`, `type`, `retriable`, `cause`, `errors`), so it needs no
 * Kafka client: kafkajs errors, REST proxy errors and plain objects are judged alike.
 * @module
 */
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
 * / `KafkaJSNumberOfRetriesExceeded`) and aggregated `errors` (`@platformatic/kafka`'s
 * `MultipleErrors`); the first verdict other than `'unavailable'` wins. Protocol errors of
 * kafkajs, `@platformatic/kafka` and librdkafka are recognised by shape (see `protocolErrorOf`).
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
    const e = current as { cause?: unknown; errors?: unknown }
    const verdict = protocolVerdict(current)
    if (verdict !== undefined) return verdict
    if (e.cause !== undefined) queue.push(e.cause)
    if (Array.isArray(e.errors)) queue.push(...e.errors)
  }
  return 'unavailable'
}

/**
 * Kafka protocol error codes of the types judged above, for clients that report a number:
 * librdkafka's broker errors carry the protocol code (its local errors are negative).
 */
const KAFKA_ERROR_CODES: Readonly<Record<number, string>> = {
  2: 'CORRUPT_MESSAGE',
  10: 'MESSAGE_TOO_LARGE',
  17: 'INVALID_TOPIC_EXCEPTION',
  18: 'RECORD_LIST_TOO_LARGE',
  21: 'INVALID_REQUIRED_ACKS',
  29: 'TOPIC_AUTHORIZATION_FAILED',
  43: 'UNSUPPORTED_FOR_MESSAGE_FORMAT',
  87: 'INVALID_RECORD',
}

/**
 * The protocol error in `error`, as each client shapes it:
 * - kafkajs: `name` `KafkaJSProtocolError` / `KafkaJSCreateTopicError`, `type`, `retriable`;
 * - `@platformatic/kafka`: `apiId` (the protocol name) and `canRetry`;
 * - librdkafka (`@confluentinc/kafka-javascript`): a positive numeric `code` with `origin` (its
 *   `LibrdKafkaError`) or with a `type` of `ERR_…` (its KafkaJS-style errors, whose `retriable`
 *   speaks only of transactions and so is not read).
 * `retriable` is undefined when the client does not say.
 */
function protocolErrorOf(error: object): { type: string; retriable?: boolean } | undefined {
  const e = error as Record<string, unknown>
  if (typeof e.code === 'number' && (typeof e.origin === 'string' || String(e.type).startsWith('ERR_')))
    return e.code > 0 ? { type: KAFKA_ERROR_CODES[e.code] ?? `KAFKA_ERROR_${e.code}` } : undefined
  if (typeof e.apiId === 'string' && typeof e.canRetry === 'boolean')
    return { type: e.apiId, retriable: e.canRetry }
  if (
    typeof e.type === 'string' &&
    (e.name === 'KafkaJSProtocolError' || e.name === 'KafkaJSCreateTopicError')
  )
    return { type: e.type, retriable: typeof e.retriable === 'boolean' ? e.retriable : undefined }
  return undefined
}

/** What a protocol error in `error` costs, if it is one that is judged; else undefined. */
function protocolVerdict(error: object): PublishFailureKind | undefined {
  const protocol = protocolErrorOf(error)
  if (!protocol) return undefined
  const { type, retriable } = protocol
  if (PERMANENT_KAFKA_ERRORS.has(type)) return 'permanent'
  if (REJECTED_KAFKA_ERRORS.has(type)) return 'rejected'
  if (retriable === false && !CONFIGURATION_KAFKA_ERRORS.has(type) && !PRODUCER_STATE_KAFKA_ERRORS.has(type))
    return 'permanent'
  return undefined
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

import type { IHeaders, KafkaMessage } from 'kafkajs'
import { InboxError } from './errors.js'

/** An outbox event as a consumer receives it from the relay (or from Debezium's outbox router). */
export interface OutboxEvent<Payload = unknown> {
  /** The event id: the idempotency key. */
  id: string
  /** `eventType` header, e.g. `employee.created`. */
  type: string | undefined
  /** `aggregateType` header, e.g. `employee`. */
  aggregateType: string | undefined
  /** The message key: the aggregate id. */
  aggregateId: string | null
  payload: Payload
  headers: Record<string, string>
  topic: string
  partition: number
  offset: string
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

export function decodeHeaders(headers: IHeaders | undefined): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [name, value] of Object.entries(headers ?? {})) {
    const first = Array.isArray(value) ? value[0] : value
    if (first !== undefined) out[name] = first.toString()
  }
  return out
}

/**
 * Reads an outbox event out of a Kafka message.
 * @throws InboxError `INBOX_INVALID_EVENT` when the `id` header is missing or not a UUID, or the
 *   value is not JSON
 */
export function eventFromMessage(topic: string, partition: number, message: KafkaMessage): OutboxEvent {
  const headers = decodeHeaders(message.headers)
  const where = `${topic}[${partition}]@${message.offset}`
  const id = headers.id
  if (!id || !UUID.test(id)) {
    throw new InboxError(
      'INBOX_INVALID_EVENT',
      `message ${where} has no event id: header "id" must be a UUID`,
    )
  }
  let payload: unknown = null
  if (message.value !== null && message.value.length > 0) {
    try {
      payload = JSON.parse(message.value.toString('utf8'))
    } catch (error) {
      throw new InboxError(
        'INBOX_INVALID_EVENT',
        `message ${where} (event ${id}) has a value that is not JSON`,
        {
          cause: error,
        },
      )
    }
  }
  return {
    id,
    type: headers.eventType,
    aggregateType: headers.aggregateType,
    aggregateId: message.key?.toString('utf8') ?? null,
    payload,
    headers,
    topic,
    partition,
    offset: message.offset,
  }
}

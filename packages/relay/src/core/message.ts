/**
 * From an outbox row to the message a publisher sends.
 * @module
 */
import type { ClaimedRow } from './sql/claim-batch.js'

/** A Kafka-ready message; what {@link Publisher.publish} receives. */
export interface OutboxMessage {
  /** The outbox row id, also sent as header `id` (consumers deduplicate on it). */
  id: string
  topic: string
  /** Record key: the aggregate id, so one aggregate stays on one partition. */
  key: string
  /** Payload JSON text. */
  value: string
  /** `id`, `eventType`, `aggregateType` plus the row's own headers. */
  headers: Record<string, string>
}

/** Headers the relay sets itself; a row's own header of these names is dropped. */
const RESERVED = new Set(['id', 'eventType', 'aggregateType'])

/**
 * Builds the message of a row (Debezium outbox router conventions): key = `aggregateid`, value =
 * the payload's JSON text, headers = the row's headers (non-string values JSON-encoded, nulls
 * dropped) followed by `id`, `eventType` and `aggregateType`, which always win so a row can
 * never spoof the id consumers deduplicate on. A row's own header of a reserved name is dropped,
 * not overwritten in place, so the header order is the EventRouter's too.
 *
 * @example
 * toMessage(row) // { id, topic, key: row.aggregateid, value: '{"name": "Ada"}', headers: { id, eventType, aggregateType } }
 */
export function toMessage(row: ClaimedRow): OutboxMessage {
  const headers: Record<string, string> = {}
  for (const [name, value] of Object.entries(row.headers ?? {})) {
    if (value === null || value === undefined || RESERVED.has(name)) continue
    headers[name] = typeof value === 'string' ? value : JSON.stringify(value)
  }
  headers.id = row.id
  headers.eventType = row.type
  headers.aggregateType = row.aggregatetype
  return { id: row.id, topic: row.topic, key: row.aggregateid, value: row.payload, headers }
}

const encoder = new TextEncoder()

/** Bytes of a message's key, value and headers as Kafka stores them (record overhead not counted). */
export function messageBytes(message: OutboxMessage): number {
  let bytes = encoder.encode(message.key).length + encoder.encode(message.value).length
  for (const [name, value] of Object.entries(message.headers)) {
    bytes += encoder.encode(name).length + encoder.encode(value).length
  }
  return bytes
}

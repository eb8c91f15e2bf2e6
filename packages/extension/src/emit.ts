import { v7 as uuidv7 } from 'uuid'
import { z } from 'zod'
import { OutboxError } from './errors.js'
import type { OutboxRow } from './events.js'
import { toJsonSafe } from './json.js'
import { aggregateTypeSchema, defaultTopic, topicSchema } from './options.js'

/** A custom event, written with `$outbox.emit(...)`. */
export interface EmitInput {
  aggregateType: string
  aggregateId: string | number | bigint
  /** e.g. `payroll.recalculated` */
  type: string
  payload: unknown
  /** Default: `outbox.event.<aggregateType>`. */
  topic?: string
  /** Extra Kafka headers, string values only (e.g. `traceparent`). */
  headers?: Record<string, string>
}

const emitSchema = z.strictObject({
  aggregateType: aggregateTypeSchema,
  aggregateId: z.union([z.string().min(1), z.number().finite(), z.bigint()]),
  type: z.string().min(1).max(255),
  payload: z.unknown().refine((p) => p !== undefined, 'payload is required (use null for none)'),
  topic: topicSchema.optional(),
  headers: z.record(z.string(), z.string()).optional(),
})

/**
 * Validates a custom event and turns it into an outbox row.
 * @throws OutboxError `OUTBOX_INVALID_EVENT` naming the field, or
 *   `OUTBOX_UNSERIALISABLE_PAYLOAD`
 */
export function rowForEmit(input: EmitInput, extraHeaders: Record<string, string>): OutboxRow {
  const parsed = emitSchema.safeParse(input)
  if (!parsed.success) {
    throw new OutboxError(
      'OUTBOX_INVALID_EVENT',
      `invalid $outbox.emit() event: ${z.prettifyError(parsed.error)}`,
    )
  }
  const event = parsed.data
  return {
    id: uuidv7(),
    aggregatetype: event.aggregateType,
    aggregateid: String(event.aggregateId),
    type: event.type,
    payload: JSON.stringify(toJsonSafe(event.payload) ?? null),
    topic: event.topic ?? defaultTopic(event.aggregateType),
    headers: JSON.stringify({ ...extraHeaders, ...event.headers }),
  }
}

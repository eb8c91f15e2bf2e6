/**
 * Custom event types, declared in code with a zod schema per type: `$outbox.emit` then accepts
 * only declared types with payloads of their schemas (checked by TypeScript and at run time), and
 * consumers use the same declaration as their catalogue.
 * @module
 */
import { createHash } from 'node:crypto'
import { z } from 'zod'
import type { EmitInput } from './emit.js'
import { OutboxError } from './errors.js'
import { aggregateTypeSchema, defaultTopic, topicSchema } from './options.js'

/** One declared event type, as `defineEvents` returns it. */
export interface DeclaredEvent<S extends z.ZodType = z.ZodType> {
  aggregateType: string
  /** Default: `outbox.event.<aggregateType>`. */
  topic: string
  /** A hash of the payload's JSON Schema, sent as the `schemaVersion` header. */
  version: string
  schema: S
}

export type DeclaredEvents = Record<string, DeclaredEvent>

/** What `$outbox.emit` takes once custom events are declared: one of them, with its payload. */
export type DeclaredEmitInput<E extends DeclaredEvents> = {
  [T in keyof E & string]: {
    type: T
    aggregateId: string | number | bigint
    /** Parsed with the type's schema before it is written. */
    payload: z.input<E[T]['schema']>
    /** Extra Kafka headers, string values only. */
    headers?: Record<string, string>
  }
}[keyof E & string]

const declarationSchema = z.strictObject({
  aggregateType: aggregateTypeSchema,
  topic: topicSchema.optional(),
  schema: z.custom<z.ZodType>((s) => s instanceof z.ZodType, 'a zod schema'),
})

/**
 * Declares custom event types for `outbox({ events })` and for consumers.
 *
 * @param declarations - event type → `{ aggregateType, topic?, schema }` (a zod schema of the payload)
 * @throws OutboxError `OUTBOX_INVALID_OPTIONS` naming the event type and what is wrong
 * @example
 * export const customEvents = defineEvents({
 *   'payroll.recalculated': { aggregateType: 'payroll', schema: z.object({ total: z.string() }) },
 * })
 */
export function defineEvents<
  const T extends Record<string, { aggregateType: string; topic?: string; schema: z.ZodType }>,
>(declarations: T): { [K in keyof T]: DeclaredEvent<T[K]['schema']> } {
  if (typeof declarations !== 'object' || declarations === null) {
    throw new OutboxError(
      'OUTBOX_INVALID_OPTIONS',
      'defineEvents() takes an object: event type → declaration',
    )
  }
  const out: Record<string, DeclaredEvent> = {}
  for (const [type, declaration] of Object.entries(declarations)) {
    const parsed = declarationSchema.safeParse(declaration)
    if (!parsed.success || type.length === 0 || type.length > 255) {
      const why = parsed.success ? 'the type must be 1-255 characters' : z.prettifyError(parsed.error)
      throw new OutboxError('OUTBOX_INVALID_OPTIONS', `defineEvents(): event type "${type}": ${why}`)
    }
    const { aggregateType, topic, schema } = parsed.data
    let jsonSchema: unknown
    try {
      jsonSchema = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' })
    } catch (error) {
      throw new OutboxError(
        'OUTBOX_INVALID_OPTIONS',
        `defineEvents(): event type "${type}": its schema has no JSON Schema (${(error as Error).message})`,
      )
    }
    out[type] = {
      aggregateType,
      topic: topic ?? defaultTopic(aggregateType),
      version: createHash('sha256').update(JSON.stringify(jsonSchema)).digest('hex').slice(0, 12),
      schema,
    }
  }
  return out as { [K in keyof T]: DeclaredEvent<T[K]['schema']> }
}

/** A JSON Schema document. */
export type EventJsonSchema = Record<string, unknown>

/**
 * JSON Schema documents of declared events, one per topic, in the shape the generator writes to
 * `schemas/<topic>.schema.json` for models: `$defs` holds each event type's payload (the message
 * value as written: the schema's output), `oneOf` any of them, and `x-outbox-events` maps each
 * type to its payload and `schemaVersion`. Write them next to the generated ones, or register
 * them in a schema registry.
 *
 * @param events - what `defineEvents` returned
 * @returns topic → its JSON Schema document
 * @throws OutboxError `OUTBOX_INVALID_OPTIONS` naming an event type whose schema has no JSON Schema
 * @example
 * for (const [topic, schema] of Object.entries(eventJsonSchemas(customEvents)))
 *   writeFileSync(`schemas/${topic}.schema.json`, JSON.stringify(schema, null, 2))
 */
export function eventJsonSchemas(events: DeclaredEvents): Record<string, EventJsonSchema> {
  const out: Record<string, EventJsonSchema> = {}
  for (const [type, event] of Object.entries(events)) {
    let payload: EventJsonSchema
    try {
      const { $schema: _, ...rest } = z.toJSONSchema(event.schema, { io: 'output', unrepresentable: 'any' })
      payload = { title: `${type} payload`, ...rest }
    } catch (error) {
      throw new OutboxError(
        'OUTBOX_INVALID_OPTIONS',
        `eventJsonSchemas(): event type "${type}": its schema has no JSON Schema (${(error as Error).message})`,
      )
    }
    out[event.topic] ??= {
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      $id: `${event.topic}.schema.json`,
      title: `Payloads of the Kafka topic ${event.topic}`,
      description:
        'The message value of each event type; the eventType header names the type and schemaVersion its version.',
      $defs: {},
      oneOf: [],
      'x-outbox-events': {},
    }
    const doc = out[event.topic] as {
      $defs: EventJsonSchema
      oneOf: unknown[]
      'x-outbox-events': EventJsonSchema
    }
    const ref = `#/$defs/${type.replaceAll('~', '~0').replaceAll('/', '~1')}`
    doc.$defs[type] = payload
    doc.oneOf.push({ $ref: ref })
    doc['x-outbox-events'][type] = { payload: { $ref: ref }, schemaVersion: event.version }
  }
  return out
}

const declaredInputSchema = z.strictObject({
  type: z.string(),
  aggregateId: z.unknown(),
  payload: z.unknown(),
  headers: z.record(z.string(), z.string()).optional(),
})

/**
 * Turns a declared event into the plain `emit` input: the payload parsed by its schema, the
 * aggregate type and topic of the declaration, the version header.
 * @throws OutboxError `OUTBOX_INVALID_EVENT` for an undeclared type or a payload its schema rejects
 */
export function emitInputOf(events: DeclaredEvents, input: unknown): EmitInput {
  const shape = declaredInputSchema.safeParse(input)
  if (!shape.success) {
    throw new OutboxError(
      'OUTBOX_INVALID_EVENT',
      `invalid $outbox.emit() event: ${z.prettifyError(shape.error)} (with declared events, pass type, aggregateId, payload and headers only)`,
    )
  }
  const { type, aggregateId, payload, headers } = shape.data
  const declared = Object.hasOwn(events, type) ? events[type] : undefined
  if (!declared) {
    throw new OutboxError(
      'OUTBOX_INVALID_EVENT',
      `invalid $outbox.emit() event: type "${type}" is not declared in options.events (declared: ${Object.keys(events).join(', ')})`,
    )
  }
  const parsed = declared.schema.safeParse(payload)
  if (!parsed.success) {
    throw new OutboxError(
      'OUTBOX_INVALID_EVENT',
      `invalid $outbox.emit() payload of "${type}": ${z.prettifyError(parsed.error)}`,
    )
  }
  return {
    aggregateType: declared.aggregateType,
    aggregateId: aggregateId as EmitInput['aggregateId'],
    type,
    payload: parsed.data,
    topic: declared.topic,
    headers: { ...headers, schemaVersion: declared.version },
  }
}

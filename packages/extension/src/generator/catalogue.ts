/**
 * The event catalogue of a schema: for each captured model, the payload of its `created`,
 * `updated` and `deleted` events as the capture triggers encode it (see capture-sql.ts), as a
 * TypeScript type, a zod schema, a JSON Schema, and a version (a hash of that JSON Schema) that
 * each event carries in its `schemaVersion` header.
 * @module
 */
import { createHash } from 'node:crypto'
import type { OutboxDatamodel, OutboxFieldInfo, OutboxModelInfo } from '../datamodel.js'
import { resolveOptions } from '../options.js'

/** All values of each enum of the schema, by Prisma name. */
export type EnumValues = Record<string, readonly string[]>

type JsonSchema = Record<string, unknown>

/** One field's encoded value, three ways. */
interface FieldShape {
  ts: string
  zod: string
  json: JsonSchema
}

const NON_FINITE = ['NaN', 'Infinity', '-Infinity'] as const
// numeric::text: digits with the column's scale, or NaN/±Infinity; never an exponent.
const DECIMAL = '^(-?[0-9]+(\\.[0-9]+)?|NaN|-?Infinity)$'
const BIGINT = '^-?[0-9]+$'
// As toISOString() writes it: years outside 0-9999 with a sign and six digits; infinities as text.
const DATE_TIME =
  '^((?:[0-9]{4}|[+-][0-9]{6})-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z|-?infinity)$'
const BASE64 = '^[A-Za-z0-9+/]*={0,2}$'

const regex = (pattern: string) => `new RegExp(${JSON.stringify(pattern)})`

function scalarShape(field: OutboxFieldInfo, enums: EnumValues): FieldShape {
  if (field.kind === 'enum') {
    const values = enums[field.type] ?? []
    return {
      ts: values.map((v) => JSON.stringify(v)).join(' | ') || 'never',
      zod: `z.enum(${JSON.stringify(values)})`,
      json: { enum: [...values] },
    }
  }
  switch (field.type) {
    case 'String':
      return { ts: 'string', zod: 'z.string()', json: { type: 'string' } }
    case 'Boolean':
      return { ts: 'boolean', zod: 'z.boolean()', json: { type: 'boolean' } }
    case 'Int':
      return { ts: 'number', zod: 'z.number().int()', json: { type: 'integer' } }
    case 'BigInt':
      return {
        ts: 'string',
        zod: `z.string().regex(${regex(BIGINT)})`,
        json: { type: 'string', pattern: BIGINT },
      }
    case 'Float':
      return {
        ts: `number | ${NON_FINITE.map((v) => JSON.stringify(v)).join(' | ')}`,
        zod: `z.union([z.number(), z.enum(${JSON.stringify(NON_FINITE)})])`,
        json: { anyOf: [{ type: 'number' }, { enum: [...NON_FINITE] }] },
      }
    case 'Decimal':
      return {
        ts: 'string',
        zod: `z.string().regex(${regex(DECIMAL)})`,
        json: { type: 'string', pattern: DECIMAL },
      }
    case 'DateTime':
      return {
        ts: 'string',
        zod: `z.string().regex(${regex(DATE_TIME)})`,
        json: { type: 'string', format: 'date-time', pattern: DATE_TIME },
      }
    case 'Bytes':
      return {
        ts: 'string',
        zod: `z.string().regex(${regex(BASE64)})`,
        json: { type: 'string', contentEncoding: 'base64', pattern: BASE64 },
      }
    case 'Json':
      return { ts: 'JsonValue', zod: 'z.json()', json: {} }
    default:
      throw new Error(`prisma-outbox-generator: no payload encoding for the scalar type ${field.type}`)
  }
}

/** The field as the payload holds it, or undefined when it is left out (relations, Unsupported). */
function fieldShape(field: OutboxFieldInfo, enums: EnumValues): FieldShape | undefined {
  if (field.kind === 'object' || field.kind === 'unsupported') return undefined
  let shape = scalarShape(field, enums)
  if (field.isList) {
    shape = {
      ts: `(${shape.ts})[]`,
      zod: `z.array(${shape.zod})`,
      json: { type: 'array', items: shape.json },
    }
  }
  if (field.optional) {
    shape = {
      ts: `${shape.ts} | null`,
      zod: `${shape.zod}.nullable()`,
      json: { anyOf: [shape.json, { type: 'null' }] },
    }
  }
  return shape
}

function payloadShapes(info: OutboxModelInfo, enums: EnumValues): [string, FieldShape][] {
  const out: [string, FieldShape][] = []
  for (const [name, field] of Object.entries(info.fields)) {
    const shape = fieldShape(field, enums)
    if (shape) out.push([name, shape])
  }
  return out
}

/** The JSON Schema of a model's event payload. */
export function payloadJsonSchema(model: string, info: OutboxModelInfo, enums: EnumValues): JsonSchema {
  const shapes = payloadShapes(info, enums)
  return {
    title: `${model} payload`,
    type: 'object',
    properties: Object.fromEntries(shapes.map(([name, s]) => [name, s.json])),
    required: shapes.map(([name]) => name),
  }
}

/** A short hash of the payload's JSON Schema: it changes when the payload's shape changes. */
export function payloadVersion(model: string, info: OutboxModelInfo, enums: EnumValues): string {
  const schema = payloadJsonSchema(model, info, enums)
  return createHash('sha256').update(JSON.stringify(schema)).digest('hex').slice(0, 12)
}

/** One event type of the catalogue. */
export interface CatalogueEvent {
  type: string
  model: string
  aggregateType: string
  topic: string
  version: string
}

/** The event types of the annotated models (the settings `capture.sql` installs). */
export function catalogueEvents(datamodel: OutboxDatamodel, enums: EnumValues): CatalogueEvent[] {
  if (!datamodel.models.OutboxEvent) return []
  const { captured } = resolveOptions(datamodel, {})
  const out: CatalogueEvent[] = []
  for (const [model, { aggregateType, topic }] of captured) {
    const version = payloadVersion(model, datamodel.models[model] as OutboxModelInfo, enums)
    for (const kind of ['created', 'updated', 'deleted']) {
      out.push({ type: `${aggregateType}.${kind}`, model, aggregateType, topic, version })
    }
  }
  return out
}

/** One JSON Schema document per topic: the payloads of every event type published there. */
export function topicJsonSchemas(datamodel: OutboxDatamodel, enums: EnumValues): Map<string, JsonSchema> {
  const byTopic = new Map<string, CatalogueEvent[]>()
  for (const event of catalogueEvents(datamodel, enums)) {
    byTopic.set(event.topic, [...(byTopic.get(event.topic) ?? []), event])
  }
  const out = new Map<string, JsonSchema>()
  for (const [topic, events] of byTopic) {
    const models = [...new Set(events.map((e) => e.model))]
    out.set(topic, {
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      $id: `${topic}.schema.json`,
      title: `Payloads of the Kafka topic ${topic}`,
      description:
        'The message value of each event type; the eventType header names the type and schemaVersion its version.',
      $defs: Object.fromEntries(
        models.map((m) => [m, payloadJsonSchema(m, datamodel.models[m] as OutboxModelInfo, enums)]),
      ),
      oneOf: models.map((m) => ({ $ref: `#/$defs/${m}` })),
      'x-outbox-events': Object.fromEntries(
        events.map((e) => [e.type, { payload: { $ref: `#/$defs/${e.model}` }, schemaVersion: e.version }]),
      ),
    })
  }
  return out
}

/** The generated `events.ts`: payload types, zod schemas and the catalogue; it imports only zod. */
export function renderCatalogueModule(datamodel: OutboxDatamodel, enums: EnumValues): string {
  const events = catalogueEvents(datamodel, enums)
  const models = [...new Set(events.map((e) => e.model))]
  const parts: string[] = [
    `// Generated by prisma-outbox-generator during \`prisma generate\`. Do not edit.
import { z } from 'zod'

/** A JSON value, as a \`Json\` field is carried in a payload. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue }
`,
  ]
  for (const model of models) {
    const shapes = payloadShapes(datamodel.models[model] as OutboxModelInfo, enums)
    const key = (name: string) => (/^[A-Za-z_$][\w$]*$/.test(name) ? name : JSON.stringify(name))
    parts.push(`/** The payload of ${model} events, as encoded in the outbox row and the Kafka message. */
export interface ${model}Payload {
${shapes.map(([name, s]) => `  ${key(name)}: ${s.ts}`).join('\n')}
}

/** Parses a ${model} payload. */
export const ${model}Payload: z.ZodType<${model}Payload> = z.object({
${shapes.map(([name, s]) => `  ${key(name)}: ${s.zod},`).join('\n')}
})
`)
  }
  const entries = events.map(
    (e) =>
      `  ${JSON.stringify(e.type)}: { topic: ${JSON.stringify(e.topic)}, aggregateType: ${JSON.stringify(e.aggregateType)}, model: ${JSON.stringify(e.model)}, version: ${JSON.stringify(e.version)}, schema: ${e.model}Payload },`,
  )
  parts.push(`/**
 * Every event type of the schema: its topic, its payload schema and version (the \`schemaVersion\`
 * header of each event). Hand it to the consumer's \`typedHandler\`.
 */
export const events = {
${entries.join('\n')}
} as const

/** Event type → payload type. */
export type OutboxEvents = { [T in keyof typeof events]: z.output<(typeof events)[T]['schema']> }

export type OutboxEventType = keyof OutboxEvents
`)
  return parts.join('\n')
}

/** The file name of a topic's JSON Schema, next to the generated module. */
export const topicSchemaFile = (topic: string) => `schemas/${topic}.schema.json`

import { z } from 'zod'
import type { OutboxDatamodel } from './datamodel.js'
import { OutboxError } from './errors.js'

/** Kafka's own rule for topic names. */
const TOPIC = /^[a-zA-Z0-9._-]{1,249}$/
/** Aggregate types end up in type names (`<aggregate>.created`) and default topics. */
const AGGREGATE_TYPE = /^[a-zA-Z0-9_-][a-zA-Z0-9._-]{0,199}$/

export const topicSchema = z
  .string()
  .regex(TOPIC, 'a Kafka topic name: 1-249 characters of a-z, A-Z, 0-9, ".", "_" or "-"')
  .refine((t) => t !== '.' && t !== '..', 'a Kafka topic name cannot be "." or ".."')

export const aggregateTypeSchema = z
  .string()
  .regex(AGGREGATE_TYPE, 'letters, digits, ".", "_" or "-", not starting with "."')

const headersSchema = z.record(z.string(), z.string())

const modelOptionsSchema = z.union([
  z.literal(true),
  // Formats are checked by resolveOptions, whose messages name the model and the bad value.
  z.strictObject({ aggregateType: z.string().optional(), topic: z.string().optional() }),
])

const optionsSchema = z.strictObject({
  models: z.record(z.string(), modelOptionsSchema).optional(),
  outboxModel: z.string().optional(),
  schema: z.string().min(1).max(63).optional(),
  triggers: z.enum(['install', 'verify']).optional(),
  headers: z
    .function()
    .optional()
    .describe('called for each write; returns extra headers such as traceparent'),
})

/** Per-model settings given in code; they override the schema annotation. */
export interface ModelOutboxOptions {
  /** Default: the model name with a lower-case first letter (`PurchaseOrder` → `purchaseOrder`). */
  aggregateType?: string
  /** Default: `outbox.event.<aggregateType>`. */
  topic?: string
}

export interface OutboxOptions<ModelName extends string = string> {
  /**
   * Models to capture, in addition to those annotated with `/// @outbox` in schema.prisma.
   * `true` takes the defaults.
   */
  models?: { [M in ModelName]?: ModelOutboxOptions | true }
  /** The Prisma model of the outbox table. @default 'OutboxEvent' */
  outboxModel?: ModelName
  /**
   * Schema of the outbox table and of the captured tables. Default: the driver adapter's
   * (`new PrismaPg(url, { schema })`), else the connection's `search_path`.
   */
  schema?: string
  /**
   * `install` (default): before a client's first write, install or replace the capture triggers
   * that are missing or out of date. `verify`: only check them, and fail naming the model and
   * the SQL to apply.
   */
  triggers?: 'install' | 'verify'
  /** Headers added to every event written, e.g. `() => ({ traceparent })`; values must be strings. */
  headers?: () => Record<string, string> | undefined
}

export interface CapturedModel {
  aggregateType: string
  topic: string
}

export interface ResolvedOptions {
  captured: Map<string, CapturedModel>
  outboxTable: string
  schema?: string
  triggers: 'install' | 'verify'
  headers?: () => Record<string, string> | undefined
}

export function defaultAggregateType(model: string): string {
  return model.charAt(0).toLowerCase() + model.slice(1)
}

export function defaultTopic(aggregateType: string): string {
  return `outbox.event.${aggregateType}`
}

/** The columns the extension writes; the outbox model must have them. */
const OUTBOX_COLUMNS = ['id', 'aggregatetype', 'aggregateid', 'type', 'payload', 'topic', 'headers']

/**
 * Checks options against the schema once, when the extension is applied.
 * @throws OutboxError `OUTBOX_INVALID_OPTIONS` naming the option or model that is wrong
 */
export function resolveOptions(datamodel: OutboxDatamodel, input: unknown): ResolvedOptions {
  const parsed = optionsSchema.safeParse(input ?? {})
  if (!parsed.success) {
    throw new OutboxError(
      'OUTBOX_INVALID_OPTIONS',
      `invalid outbox options: ${z.prettifyError(parsed.error)}`,
    )
  }
  const options = parsed.data
  const outboxModel = options.outboxModel ?? 'OutboxEvent'
  const outboxInfo = checkOutboxModel(datamodel, outboxModel)
  return {
    captured: capturedModels(datamodel, options.models ?? {}, outboxModel),
    outboxTable: outboxInfo.dbName,
    ...(options.schema === undefined ? {} : { schema: options.schema }),
    triggers: options.triggers ?? 'install',
    headers: options.headers as ResolvedOptions['headers'],
  }
}

/** The outbox model, once it is known to be in the schema with the columns the extension writes. */
function checkOutboxModel(datamodel: OutboxDatamodel, outboxModel: string) {
  const outboxInfo = datamodel.models[outboxModel]
  if (!outboxInfo) {
    throw new OutboxError(
      'OUTBOX_INVALID_OPTIONS',
      `the outbox model "${outboxModel}" is not in the Prisma schema: add the OutboxEvent model from @prisma-outbox/extension/prisma/outbox.prisma (and its migration), then run prisma generate`,
    )
  }
  const missing = OUTBOX_COLUMNS.filter((c) => !(c in outboxInfo.fields))
  if (missing.length > 0) {
    throw new OutboxError(
      'OUTBOX_INVALID_OPTIONS',
      `the outbox model "${outboxModel}" lacks the field(s) ${missing.join(', ')}: copy it from @prisma-outbox/extension/prisma/outbox.prisma`,
    )
  }
  return outboxInfo
}

/**
 * The models to capture: those annotated `/// @outbox`, then those of `options.models`, whose
 * settings override the annotation's. Each must have a primary key (its events' aggregateid).
 */
function capturedModels(
  datamodel: OutboxDatamodel,
  models: Record<string, ModelOutboxOptions | true>,
  outboxModel: string,
): Map<string, CapturedModel> {
  const captured = new Map<string, CapturedModel>()
  for (const [model, info] of Object.entries(datamodel.models)) {
    if (info.outbox) captured.set(model, capturedModel(model, info.outbox, `/// @outbox on model ${model}`))
  }
  for (const [model, settings] of Object.entries(models)) {
    if (!datamodel.models[model]) {
      throw new OutboxError(
        'OUTBOX_INVALID_OPTIONS',
        `models.${model}: there is no model "${model}" in the Prisma schema (known: ${Object.keys(datamodel.models).join(', ')})`,
      )
    }
    if (model === outboxModel) {
      throw new OutboxError(
        'OUTBOX_INVALID_OPTIONS',
        `models.${model}: the outbox model itself cannot be captured`,
      )
    }
    const fromSchema = datamodel.models[model]?.outbox ?? {}
    const merged = settings === true ? fromSchema : { ...fromSchema, ...settings }
    captured.set(model, capturedModel(model, merged, `models.${model}`))
  }
  for (const model of captured.keys()) {
    if ((datamodel.models[model]?.primaryKey.length ?? 0) === 0) {
      throw new OutboxError(
        'OUTBOX_INVALID_OPTIONS',
        `model ${model} has no primary key, so its events have no aggregateid`,
      )
    }
  }
  return captured
}

/**
 * A model's aggregate type and topic, the defaults filled in and both checked.
 * @param source - where the settings come from, for the error message
 */
function capturedModel(model: string, settings: ModelOutboxOptions, source: string): CapturedModel {
  const aggregateType = settings.aggregateType ?? defaultAggregateType(model)
  const aggregateCheck = aggregateTypeSchema.safeParse(aggregateType)
  if (!aggregateCheck.success) {
    throw new OutboxError(
      'OUTBOX_INVALID_OPTIONS',
      `${source}: aggregateType "${aggregateType}" of model ${model} must be ${aggregateCheck.error.issues[0]?.message}`,
    )
  }
  const topic = settings.topic ?? defaultTopic(aggregateType)
  const topicCheck = topicSchema.safeParse(topic)
  if (!topicCheck.success) {
    throw new OutboxError(
      'OUTBOX_INVALID_OPTIONS',
      `${source}: topic "${topic}" of model ${model} must be ${topicCheck.error.issues[0]?.message}`,
    )
  }
  return { aggregateType, topic }
}

export function checkHeaders(headers: unknown, where: string): Record<string, string> {
  const parsed = headersSchema.safeParse(headers ?? {})
  if (!parsed.success) {
    const bad =
      typeof headers === 'object' && headers !== null && !Array.isArray(headers)
        ? Object.entries(headers)
            .filter(([, value]) => typeof value !== 'string')
            .map(([name, value]) => `"${name}" is ${value === null ? 'null' : typeof value}`)
        : []
    throw new OutboxError(
      'OUTBOX_INVALID_EVENT',
      `${where}: headers must map names to string values${bad.length > 0 ? ` (${bad.join(', ')})` : ` (got ${Array.isArray(headers) ? 'an array' : typeof headers})`}`,
    )
  }
  return parsed.data
}

/**
 * The headers of the `headers` option for one write, checked. A hook that throws fails the write
 * with an `OutboxError` naming it (the hook's error as `cause`), before anything is sent.
 * @throws OutboxError `OUTBOX_INVALID_EVENT`
 */
export function readHeaders(hook: ResolvedOptions['headers']): Record<string, string> {
  let headers: unknown
  try {
    headers = hook?.()
  } catch (error) {
    throw new OutboxError(
      'OUTBOX_INVALID_EVENT',
      `options.headers() threw: ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    )
  }
  return checkHeaders(headers, 'options.headers()')
}

/**
 * Request and response schemas of the relay's HTTP API. The same schemas validate requests and
 * generate the OpenAPI document (`z.toJSONSchema`), so the two cannot drift.
 * @module
 */
import { z } from 'zod'
import { pgText } from '../core/options.js'

/**
 * The named schemas of the API: the OpenAPI document's `components.schemas`. A registry of our
 * own (not zod's global one), so nothing else a process registers leaks into the document.
 */
export const apiSchemas = z.registry<{ id: string }>()

/** Kafka's own topic-name limit; PostgreSQL text cannot hold NUL. */
const topicName = pgText.min(1).max(249)

/** The largest PostgreSQL bigint, the upper bound of a `seq` cursor. */
const MAX_BIGINT = 9_223_372_036_854_775_807n

/**
 * Body of `POST /drain`, all optional. Mirrors the engine's `drainOptionsSchema` (which lives
 * in Node-only code) with upper bounds, so absurd numbers are a 400 instead of a surprise.
 * `budgetMs` above the app's `maxBudgetMs` is lowered to it, not rejected.
 */
export const drainBodySchema = z
  .strictObject({
    maxEvents: z.int().min(1).max(10_000_000).optional().describe('stop after claiming this many rows'),
    budgetMs: z
      .int()
      .min(1)
      .max(86_400_000)
      .optional()
      .describe('stop before this much time has passed; capped by the server'),
    topics: z.array(topicName).min(1).max(100).optional().describe('only rows of these topics'),
  })
  .register(apiSchemas, { id: 'DrainRequest' })
export type DrainBody = z.infer<typeof drainBodySchema>

/** Response of `POST /drain`. */
export const drainResultSchema = z
  .object({
    published: z.int().describe('rows published and marked (deleted, under publishedRows delete)'),
    retried: z.int().describe('rows that failed and will be retried after a backoff'),
    dead: z.int().describe('rows that went dead in this drain'),
    remaining: z.int().describe('pending rows still due when the drain stopped'),
    durationMs: z.int(),
  })
  .register(apiSchemas, { id: 'DrainResult' })

/** Query of `GET /dead`. */
export const deadQuerySchema = z.strictObject({
  limit: z.coerce.number().int().min(1).max(500).default(50).describe('page size in rows'),
  maxBytes: z.coerce
    .number()
    .int()
    .min(1_024)
    .max(16 * 1024 * 1024)
    .default(256 * 1024)
    .describe('page size in bytes (default 262144); a single larger row comes alone on its page'),
  payload: z
    .enum(['true', 'false'], { error: 'must be true or false' })
    .default('false')
    .transform((v) => v === 'true')
    .describe("include each row's payload (default false: only its size, payloadBytes)"),
  cursor: z
    .string()
    .regex(/^\d{1,19}$/, 'must be the nextCursor of a previous page')
    .refine((v) => !/^\d{1,19}$/.test(v) || BigInt(v) <= MAX_BIGINT, {
      message: `must be the nextCursor of a previous page (at most ${MAX_BIGINT})`,
    })
    .optional()
    .describe(`nextCursor of the previous page (a decimal integer, at most ${MAX_BIGINT})`),
  topic: topicName.optional().describe('only rows of this topic'),
})

/** Path parameter of `GET /dead/{id}`. */
export const deadIdSchema = z.uuid()

/** One dead row. */
export const deadEventSchema = z
  .object({
    id: z.string(),
    topic: z.string(),
    aggregateType: z.string(),
    aggregateId: z.string(),
    type: z.string(),
    payload: z
      .unknown()
      .optional()
      .describe('the event body: in GET /dead/{id}, and in GET /dead with ?payload=true'),
    payloadBytes: z.int().describe("size of the payload's JSON text"),
    headers: z.record(z.string(), z.unknown()),
    attempts: z.int(),
    lastError: z.string().nullable(),
    createdAt: z.string().describe('ISO 8601'),
    diedAt: z.string().describe('when the row went dead, ISO 8601'),
  })
  .register(apiSchemas, { id: 'DeadEvent' })

/** Response of `GET /dead`. */
export const deadPageSchema = z
  .object({
    items: z.array(deadEventSchema),
    nextCursor: z.string().nullable().describe('pass as ?cursor= for the next page; null on the last page'),
  })
  .register(apiSchemas, { id: 'DeadPage' })

/** Body of `POST /dead/retry` and `POST /dead/discard`: some ids, some topics, or `all: true`. */
export const deadSelectionSchema = z
  .strictObject({
    ids: z.array(z.uuid()).min(1).max(1_000).optional().describe('these dead rows'),
    topics: z.array(topicName).min(1).max(100).optional().describe('every dead row of these topics'),
    all: z.literal(true).optional().describe('every dead row'),
  })
  .refine((b) => [b.ids, b.topics, b.all].filter((v) => v !== undefined).length === 1, {
    message: 'give exactly one of "ids", "topics" or "all": true',
    path: ['ids'],
  })
  .register(apiSchemas, { id: 'DeadSelection' })
export type DeadSelectionBody = z.infer<typeof deadSelectionSchema>

/** Response of `POST /dead/retry`. */
export const retryResultSchema = z
  .object({ retried: z.int().describe('dead rows set back to pending') })
  .register(apiSchemas, { id: 'RetryResult' })

/** Response of `POST /dead/discard`. */
export const discardResultSchema = z
  .object({ discarded: z.int().describe('dead rows deleted') })
  .register(apiSchemas, { id: 'DiscardResult' })

/**
 * Body of `POST /purge`, all optional: the windows default to the app's retention policy
 * (published rows 7 days, dead rows kept).
 */
export const purgeBodySchema = z
  .strictObject({
    olderThanMs: z
      .int()
      .min(1)
      .max(3_153_600_000_000)
      .optional()
      .describe('delete published rows older than this'),
    deadOlderThanMs: z
      .int()
      .min(1)
      .max(3_153_600_000_000)
      .nullable()
      .optional()
      .describe('delete dead rows that died longer ago than this; null keeps them'),
    dryRun: z.boolean().optional().describe('count what would be deleted, delete nothing'),
    maxBatches: z.int().min(1).max(10_000).optional().describe('DELETE statements at most (default 100)'),
  })
  .register(apiSchemas, { id: 'PurgeRequest' })

/** Response of `POST /purge`. */
export const purgeResultSchema = z
  .object({
    published: z.int().describe('published rows deleted (or counted, on a dry run)'),
    dead: z.int().describe('dead rows deleted (or counted, on a dry run)'),
    batches: z.int().describe('DELETE statements run'),
    busy: z.boolean().describe('another relay was purging; nothing was done here'),
    more: z.boolean().describe('stopped by maxBatches or the time budget with rows left: call again'),
    dryRun: z.boolean(),
  })
  .register(apiSchemas, { id: 'PurgeResult' })

const topicStatsFields = {
  pending: z.int(),
  due: z.int().describe('pending and due now'),
  inFlight: z.int().describe('leased by a relay right now'),
  dead: z.int(),
  oldestPendingAgeMs: z.int().nullable().describe('age of the oldest pending row; null without pending rows'),
}

/** Response of `GET /stats`. */
export const statsSchema = z
  .object({
    ...topicStatsFields,
    topics: z.array(
      z.object({ topic: z.string(), ...topicStatsFields }).register(apiSchemas, { id: 'TopicStats' }),
    ),
  })
  .register(apiSchemas, { id: 'Stats' })

/** State of one dependency in `GET /health`. */
export const checkStateSchema = z.enum(['ok', 'down', 'unchecked'])

/** Response of `GET /health` (200 and 503). */
export const healthSchema = z
  .object({
    status: z.enum(['ok', 'down']),
    checks: z.object({ database: checkStateSchema, broker: checkStateSchema }),
    error: z.object({ code: z.string(), message: z.string() }).optional().describe('present when down'),
  })
  .register(apiSchemas, { id: 'Health' })

/** Every error response. */
export const errorSchema = z
  .object({ error: z.object({ code: z.string(), message: z.string() }) })
  .register(apiSchemas, { id: 'Error' })

/**
 * Turns zod issues into one line naming each field, e.g.
 * `maxEvents: Invalid input: expected int, received string; topics.0: Too small…`.
 * @internal
 */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => {
      const field = issue.path.length > 0 ? issue.path.join('.') : '(body)'
      if (issue.code === 'unrecognized_keys') return `${issue.keys.join(', ')}: unknown field`
      return `${field}: ${issue.message}`
    })
    .join('; ')
}

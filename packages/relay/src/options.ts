/**
 * Engine and drain options: zod schemas with defaults, checked once when things are built.
 * @module
 */
import { z } from 'zod'
import { RelayError } from './errors.js'
import { DEFAULT_TABLE, quoteTable } from './sql/table.js'

/**
 * `<hostname>-<pid>-<random>`: unique per process, readable in `locked_by`. Only web-standard
 * APIs are required (on edge runtimes without `process` it is `relay-<random>`).
 */
export function defaultRelayId(): string {
  const random = Array.from(crypto.getRandomValues(new Uint8Array(3)), (b) =>
    b.toString(16).padStart(2, '0'),
  ).join('')
  const proc = (globalThis as { process?: { pid?: number; env?: Record<string, string | undefined> } })
    .process
  const host = proc?.env?.HOSTNAME ?? proc?.env?.COMPUTERNAME
  return proc?.pid === undefined ? `relay-${random}` : `${host ?? 'relay'}-${proc.pid}-${random}`
}

const tableName = z
  .string()
  .min(1)
  .refine(
    (name) => {
      try {
        quoteTable(name)
        return true
      } catch {
        return false
      }
    },
    { message: 'must be "table" or "schema.table" with non-empty parts' },
  )

/**
 * What a dead row means for later rows of the same topic + key.
 * - `'block-key'` (default): they wait until the dead row is retried or deleted by an operator.
 *   Per-key order stays intact; the key stalls (visible in stats as pending rows that never go).
 * - `'continue'`: they are published; the consumer sees a gap where the dead event was.
 */
export const deadLetterPolicySchema = z.enum(['block-key', 'continue'])
export type DeadLetterPolicy = z.infer<typeof deadLetterPolicySchema>

/** Schema of {@link EngineOptions}; exported so the CLI/HTTP layer can reuse it. */
export const engineOptionsSchema = z
  .strictObject({
    relayId: z.string().min(1).max(200).default(defaultRelayId),
    batchSize: z.number().int().min(1).max(10_000).default(500),
    leaseMs: z.number().int().min(100).default(30_000),
    maxAttempts: z.number().int().min(1).default(10),
    backoff: z
      .strictObject({
        baseMs: z.number().int().min(0).default(1_000),
        maxMs: z.number().int().min(0).default(300_000),
      })
      .refine((b) => b.baseMs <= b.maxMs, { message: 'baseMs must not exceed maxMs', path: ['baseMs'] })
      .prefault({}),
    deadLetterPolicy: deadLetterPolicySchema.default('block-key'),
    /**
     * Rows whose message (key + value + headers, in bytes) is larger go dead without being sent:
     * sending one would fail the whole batch's request and make its other rows repeat. 0 turns
     * the check off. Keep it at or below the broker's `message.max.bytes` (default 1,048,588).
     */
    maxMessageBytes: z.number().int().min(0).default(1_000_000),
    table: tableName.default(DEFAULT_TABLE),
    retention: z
      .strictObject({
        publishedMaxAgeMs: z
          .number()
          .int()
          .min(0)
          .default(7 * 24 * 3_600_000),
        batchSize: z.number().int().min(1).max(100_000).default(1_000),
      })
      .prefault({}),
  })
  .prefault({})

/**
 * Options of {@link createEngine}, all optional.
 *
 * @param [relayId=`<hostname>-<pid>-<random>`] - written to `locked_by`; unique per relay
 * @param [batchSize=500] - rows per claim and per Kafka `sendBatch`
 * @param [leaseMs=30000] - how long a claim is ours; must exceed a batch's publish time
 * @param [maxAttempts=10] - failed publishes before a row goes dead
 * @param [backoff.baseMs=1000] - first retry delay; later ones double, with jitter
 * @param [backoff.maxMs=300000] - cap of the retry delay
 * @param [deadLetterPolicy='block-key'] - see {@link DeadLetterPolicy}
 * @param [table='outbox_event'] - `table` or `schema.table`
 * @param [retention.publishedMaxAgeMs=604800000] - published rows older than this are purged (7 days)
 * @param [retention.batchSize=1000] - rows deleted per statement
 */
export type EngineOptions = z.input<typeof engineOptionsSchema>
/** {@link EngineOptions} with defaults applied. */
export type ResolvedEngineOptions = z.output<typeof engineOptionsSchema>

/** Schema of a drain request (also the body of `POST /drain`). */
export const drainOptionsSchema = z.strictObject({
  maxEvents: z.number().int().min(1).optional(),
  budgetMs: z.number().int().min(1).optional(),
  topics: z.array(z.string().min(1)).optional(),
})

/** What a caller may pass to `drain()`. */
export type DrainOptions = z.input<typeof drainOptionsSchema> & {
  /** Stops the drain before the next batch (a batch in flight always finishes). */
  signal?: AbortSignal | undefined
}

/**
 * Parses with `schema` or throws `RelayError('RELAY_INVALID_OPTIONS')` whose message names each
 * bad option, e.g. `invalid relay options: batchSize: Too small: expected number to be >=1`.
 * @internal
 */
export function parseOptions<S extends z.ZodType>(schema: S, input: unknown, what: string): z.output<S> {
  const result = schema.safeParse(input)
  if (result.success) return result.data
  const details = result.error.issues
    .map((issue) => `${issue.path.length > 0 ? issue.path.join('.') : '(root)'}: ${issue.message}`)
    .join('; ')
  throw new RelayError('RELAY_INVALID_OPTIONS', `invalid ${what}: ${details}`, { cause: result.error })
}

/** Validates engine options and applies defaults. */
export function resolveEngineOptions(options: EngineOptions | undefined): ResolvedEngineOptions {
  return parseOptions(engineOptionsSchema, options ?? {}, 'relay options')
}

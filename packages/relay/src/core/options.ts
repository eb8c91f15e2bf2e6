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

/** `table` or `schema.table`, as `quoteTable` accepts it. */
export const tableName = z
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
    {
      message:
        'must be "table" or "schema.table" with non-empty parts, e.g. outbox_event or app.outbox_event',
    },
  )

/**
 * What a dead row means for later rows of the same topic + key.
 * - `'block-key'` (default): they wait until the dead row is retried or deleted by an operator.
 *   Per-key order stays intact; the key stalls (visible in stats as pending rows that never go).
 * - `'continue'`: they are published; the consumer sees a gap where the dead event was.
 */
export const deadLetterPolicySchema = z.enum(['block-key', 'continue'])
export type DeadLetterPolicy = z.infer<typeof deadLetterPolicySchema>

/**
 * What becomes of a row once Kafka acknowledged it.
 * - `'mark'` (default): `status = 'published'` and `published_at`; the row stays until retention
 *   purges it, a record of what was published and when.
 * - `'delete'`: the row is deleted at once. A delete writes no new row version and no index entry
 *   (a mark writes both, and retention later deletes the row anyway), so the table keeps only the
 *   rows not published yet and the dead ones; Kafka and the relay's counters are the record.
 */
export const publishedRowsSchema = z.enum(['mark', 'delete'])
export type PublishedRows = z.infer<typeof publishedRowsSchema>

/** Schema of {@link EngineOptions}; exported so the CLI/HTTP layer can reuse it. */
export const engineOptionsSchema = z
  .strictObject({
    relayId: z.string().min(1).max(200).default(defaultRelayId),
    batchSize: z.number().int().min(1).max(10_000).default(500),
    leaseMs: z.number().int().min(100).default(60_000),
    maxAttempts: z.number().int().min(1).default(10),
    /**
     * Upper bound of one publish call (also lowered to what is left of a drain's budget). A call
     * that times out keeps its rows leased, so keep `leaseMs` well above it.
     */
    publishTimeoutMs: z.number().int().min(1).max(3_600_000).default(15_000),
    /** Relay-wide pause after a broker/network failure: doubles from `baseMs` up to `maxMs`. */
    pause: z
      .strictObject({
        baseMs: z.number().int().min(0).default(1_000),
        maxMs: z.number().int().min(0).default(30_000),
      })
      .refine((b) => b.baseMs <= b.maxMs, { message: 'baseMs must not exceed maxMs', path: ['baseMs'] })
      .prefault({}),
    /**
     * How long one drain waits in total for the claim lock before it fails (a drain with a budget
     * stops at its budget instead). Relays take it shared, so only a session holding it
     * exclusively (see `CLAIM_LOCK_KEY`) makes them wait.
     */
    lockWaitMs: z.number().int().min(1).max(3_600_000).default(30_000),
    /**
     * The server ends a relay session idle inside the claim transaction for longer than this
     * (`idle_in_transaction_session_timeout`, set on each claim transaction): a frozen or
     * partitioned relay loses the claim lock and the row locks of its claim after this long.
     */
    idleInTransactionMs: z.number().int().min(100).max(3_600_000).default(5_000),
    backoff: z
      .strictObject({
        baseMs: z.number().int().min(0).default(1_000),
        maxMs: z.number().int().min(0).default(300_000),
      })
      .refine((b) => b.baseMs <= b.maxMs, { message: 'baseMs must not exceed maxMs', path: ['baseMs'] })
      .prefault({}),
    deadLetterPolicy: deadLetterPolicySchema.default('block-key'),
    /** Mark published rows (kept until retention) or delete them at once: see {@link PublishedRows}. */
    publishedRows: publishedRowsSchema.default('mark'),
    /**
     * Rows whose message (key + value + headers, in bytes) is larger go dead without being sent:
     * sending one would fail the whole batch's request and make its other rows repeat. 0 turns
     * the check off. Keep it at or below the broker's `message.max.bytes` (default 1,048,588).
     */
    maxMessageBytes: z.number().int().min(0).default(1_000_000),
    table: tableName.default(DEFAULT_TABLE),
    /**
     * Send the claim as a named prepared statement, planned once per connection instead of once
     * per claim. Unset: on when the pool is node-postgres's (`pg.Pool`). Turn it off behind a
     * pooler that cannot keep prepared statements across transactions (PgBouncer in transaction
     * mode before 1.21, or without `max_prepared_statements`).
     */
    preparedStatements: z.boolean().optional(),
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
 * @param [leaseMs=60000] - how long a claim is ours; keep it well above `publishTimeoutMs`
 * @param [maxAttempts=10] - publishes failed by the event's fault before a row goes dead
 * @param [publishTimeoutMs=15000] - upper bound of one publish call
 * @param [pause.baseMs=1000] - relay-wide pause after a broker failure; doubles, with jitter
 * @param [pause.maxMs=30000] - cap of that pause
 * @param [lockWaitMs=30000] - total wait for the claim lock of a drain without a budget
 * @param [idleInTransactionMs=5000] - a relay frozen inside a claim loses the lock after this
 * @param [backoff.baseMs=1000] - first retry delay; later ones double, with jitter
 * @param [backoff.maxMs=300000] - cap of the retry delay
 * @param [deadLetterPolicy='block-key'] - see {@link DeadLetterPolicy}
 * @param [publishedRows='mark'] - mark published rows or delete them, see {@link PublishedRows}
 * @param [table='outbox_event'] - `table` or `schema.table`
 * @param [preparedStatements] - prepare the claim once per connection; unset: on for `pg.Pool`
 * @param [retention.publishedMaxAgeMs=604800000] - published rows older than this are purged (7 days)
 * @param [retention.batchSize=1000] - rows deleted per statement
 */
export type EngineOptions = z.input<typeof engineOptionsSchema>
/** {@link EngineOptions} with defaults applied. */
export type ResolvedEngineOptions = z.output<typeof engineOptionsSchema>

/**
 * The part of a drain's budget kept back for marking the last batch and counting what remains:
 * 15 % of the budget, between 200 ms and 1 s (never more than half the budget). Lock waits,
 * claims and publishing stop this long before the budget ends.
 * @internal
 */
export function drainReserveMs(budgetMs: number): number {
  return Math.min(Math.round(budgetMs / 2), 1_000, Math.max(200, Math.round(budgetMs * 0.15)))
}

/**
 * How late a drain with a budget may answer, at most, in ms: every wait of a drain (claim lock,
 * publish) is cut at `budgetMs - reserve`; what may run past the budget is only the final mark
 * and count, which normally take milliseconds. Documented, and asserted by the tests.
 */
export const DRAIN_MARGIN_MS = 500

/** Text PostgreSQL can store: no NUL character. */
export const pgText = z.string().refine((s) => !s.includes('\u0000'), {
  message: 'must not contain a NUL character (\\u0000)',
})

/** Schema of a drain request (also the body of `POST /drain`). */
export const drainOptionsSchema = z.strictObject({
  maxEvents: z.number().int().min(1).optional(),
  budgetMs: z.number().int().min(1).optional(),
  topics: z.array(pgText.min(1)).optional(),
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

/**
 * The relay engine: claim → publish → mark, in a loop, with retries, dead letters, retention and
 * statistics. No HTTP here; the Hono app and the CLI drive it.
 * @module
 */
import { backoffDelay } from './backoff.js'
import { type PoolLike, run, withTransaction } from './db.js'
import { coerceError, RelayError } from './errors.js'
import { toMessage } from './message.js'
import {
  type DrainOptions,
  drainOptionsSchema,
  type EngineOptions,
  parseOptions,
  type ResolvedEngineOptions,
  resolveEngineOptions,
} from './options.js'
import type { Publisher } from './publisher.js'
import { settleBatch } from './settle.js'
import { type ClaimedRow, claimBatch } from './sql/claim-batch.js'
import { deletePublished } from './sql/delete-published.js'
import { lockClaims } from './sql/lock.js'
import { type FailedRow, markFailed } from './sql/mark-failed.js'
import { markPublished } from './sql/mark-published.js'
import { releaseRows } from './sql/release-rows.js'
import { countDue, stats as statsSql, type TopicStatsRow } from './sql/stats.js'

/** What one drain did; also the body of `POST /drain`. */
export interface DrainResult {
  /** Rows published and marked by this relay. */
  published: number
  /** Rows whose publish failed and that will be retried after a backoff. */
  retried: number
  /** Rows that went dead in this drain (permanent error or `maxAttempts`). */
  dead: number
  /** Pending rows still due (for the drain's topics) when it stopped. */
  remaining: number
  durationMs: number
}

/** One batch, as reported to {@link EngineHooks.onBatch}. */
export interface BatchInfo {
  relayId: string
  /** Rows claimed. */
  size: number
  claimMs: number
  publishMs: number
  markMs: number
  /** `publish` calls made (more than 1 when a permanent failure was bisected). */
  sends: number
  /** Rows published AND marked by us (see `lostLeases`). */
  published: number
  retried: number
  dead: number
  /** Rows released unsent behind a failed earlier row of their key. */
  held: number
  /** Published rows we could not mark because our lease had been taken over. */
  lostLeases: number
  outcome: 'published' | 'partial' | 'failed'
  /** The first publish error of the batch, coerced to text. */
  error?: string
}

/** Callbacks for observability. They must not throw (errors are swallowed). */
export interface EngineHooks {
  onBatch?(info: BatchInfo): void
  onDrain?(result: DrainResult): void
}

/** Cumulative counters since the engine was created (for `/metrics`). */
export interface EngineCounters {
  drains: number
  batches: number
  published: number
  retried: number
  dead: number
  held: number
  lostLeases: number
  publishFailures: number
  claimMsTotal: number
  publishMsTotal: number
  lastBatchAt: Date | null
}

/** Backlog statistics of one topic. */
export interface TopicStats {
  topic: string
  pending: number
  /** Pending and due now (not waiting for a retry). */
  due: number
  /** Leased by a relay right now. */
  inFlight: number
  dead: number
  /** Age of the oldest pending row in ms, `null` without pending rows. */
  oldestPendingAgeMs: number | null
}

/** Totals plus per-topic rows. */
export interface OutboxStats extends Omit<TopicStats, 'topic'> {
  topics: TopicStats[]
}

/** What {@link createEngine} returns. */
export interface Engine {
  readonly options: ResolvedEngineOptions
  /**
   * Publishes due rows until none is claimable, `maxEvents` rows were claimed, the next batch
   * might not finish within `budgetMs` (elapsed + slowest batch so far > budget), the signal is
   * aborted, or a publish failed with a retriable error (the broker is likely unavailable: rows
   * back off instead of burning attempts). A batch once started always finishes.
   * @throws RelayError `RELAY_INVALID_OPTIONS` for bad options, `RELAY_DATABASE` when a statement fails
   */
  drain(options?: DrainOptions): Promise<DrainResult>
  /** Deletes published rows older than `retention.publishedMaxAgeMs`, in bounded batches. */
  purgePublished(options?: {
    signal?: AbortSignal
    maxBatches?: number
  }): Promise<{ deleted: number; batches: number }>
  /** Backlog statistics. */
  stats(): Promise<OutboxStats>
  /** A copy of the cumulative counters. */
  counters(): EngineCounters
}

/** Arguments of {@link createEngine}. */
export interface CreateEngineArgs {
  /** A `pg.Pool` (or anything with `query` and `connect`). */
  pool: PoolLike
  /** Where messages go; connect it before draining. */
  publisher: Publisher
  options?: EngineOptions
  hooks?: EngineHooks
  /** Source of jitter (tests). @internal */
  random?: () => number
}

/**
 * Creates a relay engine. Options are validated here, once; a bad option throws a `RelayError`
 * with code `RELAY_INVALID_OPTIONS` naming it.
 *
 * @param args.pool - database pool
 * @param args.publisher - e.g. a connected {@link KafkaPublisher}
 * @param [args.options] - see {@link EngineOptions} for each default
 * @param [args.hooks] - observability callbacks
 * @example
 * const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL })
 * const publisher = new KafkaPublisher({ kafka: new Kafka({ clientId: 'relay', brokers: ['127.0.0.1:9092'] }) })
 * await publisher.connect()
 * const engine = createEngine({ pool, publisher, options: { batchSize: 200 } })
 * const { published, remaining } = await engine.drain({ budgetMs: 10_000 })
 */
export function createEngine(args: CreateEngineArgs): Engine {
  const options = resolveEngineOptions(args.options)
  const { pool, publisher, hooks = {} } = args
  const random = args.random ?? Math.random
  const { table, relayId } = options
  const blockOnDead = options.deadLetterPolicy === 'block-key'
  const counters: EngineCounters = {
    drains: 0,
    batches: 0,
    published: 0,
    retried: 0,
    dead: 0,
    held: 0,
    lostLeases: 0,
    publishFailures: 0,
    claimMsTotal: 0,
    publishMsTotal: 0,
    lastBatchAt: null,
  }

  const db = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn()
    } catch (error) {
      throw new RelayError(
        'RELAY_DATABASE',
        `${what} failed: ${(error as Error)?.message ?? String(error)}`,
        {
          cause: error,
        },
      )
    }
  }

  const safely = (fn: () => void) => {
    try {
      fn()
    } catch {
      // hooks are for observability; they must not break the relay
    }
  }

  async function claim(limit: number, topics: string[] | undefined): Promise<ClaimedRow[]> {
    const rows = await db('claim', () =>
      withTransaction(pool, async (client) => {
        await run(client, lockClaims())
        const result = await run(
          client,
          claimBatch({ table, relayId, limit, leaseMs: options.leaseMs, blockOnDead, topics }),
        )
        return result.rows as ClaimedRow[]
      }),
    )
    // UPDATE … RETURNING does not keep the subquery's order.
    return rows.sort((a, b) => {
      const d = BigInt(a.seq) - BigInt(b.seq)
      return d < 0n ? -1 : d > 0n ? 1 : 0
    })
  }

  /** Runs one batch; returns undefined when nothing was claimable. */
  async function runBatch(
    limit: number,
    topics: string[] | undefined,
  ): Promise<(BatchInfo & { stop: boolean }) | undefined> {
    const t0 = performance.now()
    const rows = await claim(limit, topics)
    const t1 = performance.now()
    if (rows.length === 0) return undefined

    const messages = rows.map(toMessage)
    const settled = await settleBatch(messages, (batch) => publisher.publish(batch), {
      blockOnDead,
      maxMessageBytes: options.maxMessageBytes,
    })
    const t2 = performance.now()

    const publishedIds: string[] = []
    const failed: FailedRow[] = []
    const heldIds: string[] = []
    let firstError: unknown
    let dead = 0
    for (const row of rows) {
      const outcome = settled.outcomes.get(row.id) ?? { kind: 'held' as const }
      if (outcome.kind === 'published') publishedIds.push(row.id)
      else if (outcome.kind === 'held') heldIds.push(row.id)
      else {
        firstError ??= outcome.error
        const attempts = row.attempts + 1
        const isDead = outcome.permanent || attempts >= options.maxAttempts
        if (isDead) dead++
        const error = coerceError(outcome.error)
        failed.push({
          id: row.id,
          status: isDead ? 'dead' : 'pending',
          delayMs: isDead ? 0 : backoffDelay(attempts, options.backoff, random),
          error: isDead && !outcome.permanent ? `gave up after ${attempts} attempts: ${error}` : error,
        })
      }
    }

    let marked = 0
    if (failed.length === 0 && heldIds.length === 0) {
      // Fast path: publishing rows makes nothing claimable that was not, so no claim lock needed.
      marked =
        (await db('mark published', () => run(pool, markPublished({ table, relayId, ids: publishedIds }))))
          .rowCount ?? 0
    } else {
      // Failure marks and releases make rows claimable again: take the claim lock (see lock.ts).
      marked = await db('mark failed', () =>
        withTransaction(pool, async (client) => {
          await run(client, lockClaims())
          let n = 0
          if (publishedIds.length > 0)
            n = (await run(client, markPublished({ table, relayId, ids: publishedIds }))).rowCount ?? 0
          if (failed.length > 0) await run(client, markFailed({ table, relayId, rows: failed }))
          if (heldIds.length > 0) await run(client, releaseRows({ table, relayId, ids: heldIds }))
          return n
        }),
      )
    }
    const t3 = performance.now()

    const info: BatchInfo & { stop: boolean } = {
      relayId,
      size: rows.length,
      claimMs: t1 - t0,
      publishMs: t2 - t1,
      markMs: t3 - t2,
      sends: settled.sends,
      // Rows we published but whose lease another relay took over are counted by that relay.
      published: marked,
      retried: failed.length - dead,
      dead,
      held: heldIds.length,
      lostLeases: publishedIds.length - marked,
      outcome:
        failed.length === 0 && heldIds.length === 0
          ? 'published'
          : publishedIds.length > 0
            ? 'partial'
            : 'failed',
      stop: settled.retriableFailure,
    }
    if (firstError !== undefined) info.error = coerceError(firstError, 1024)
    counters.batches++
    counters.published += info.published
    counters.retried += info.retried
    counters.dead += info.dead
    counters.held += info.held
    counters.lostLeases += info.lostLeases
    if (failed.length > 0) counters.publishFailures++
    counters.claimMsTotal += info.claimMs
    counters.publishMsTotal += info.publishMs
    counters.lastBatchAt = new Date()
    const { stop: _stop, ...reported } = info
    safely(() => hooks.onBatch?.(reported))
    return info
  }

  return {
    options,

    async drain(input = {}) {
      const { signal, ...rest } = input
      const request = parseOptions(drainOptionsSchema, rest, 'drain options')
      const started = performance.now()
      const result = { published: 0, retried: 0, dead: 0 }
      let claimed = 0
      let slowest = 0
      counters.drains++
      for (;;) {
        if (signal?.aborted) break
        if (request.maxEvents !== undefined && claimed >= request.maxEvents) break
        if (request.budgetMs !== undefined && performance.now() - started + slowest > request.budgetMs) break
        const limit = Math.min(options.batchSize, (request.maxEvents ?? Number.POSITIVE_INFINITY) - claimed)
        const batchStarted = performance.now()
        const batch = await runBatch(limit, request.topics)
        if (!batch) break
        slowest = Math.max(slowest, performance.now() - batchStarted)
        claimed += batch.size
        result.published += batch.published
        result.retried += batch.retried
        result.dead += batch.dead
        if (batch.stop) break
      }
      const due = await db('count remaining', () => run(pool, countDue({ table, topics: request.topics })))
      const done: DrainResult = {
        ...result,
        remaining: Number(due.rows[0]?.n ?? 0),
        durationMs: Math.round(performance.now() - started),
      }
      safely(() => hooks.onDrain?.(done))
      return done
    },

    async purgePublished(purge = {}) {
      const { publishedMaxAgeMs, batchSize } = options.retention
      let deleted = 0
      let batches = 0
      for (;;) {
        if (purge.signal?.aborted) break
        if (purge.maxBatches !== undefined && batches >= purge.maxBatches) break
        const result = await db('purge published', () =>
          run(pool, deletePublished({ table, maxAgeMs: publishedMaxAgeMs, limit: batchSize })),
        )
        batches++
        const n = result.rowCount ?? 0
        deleted += n
        if (n < batchSize) break
      }
      return { deleted, batches }
    },

    async stats() {
      const result = await db('stats', () => run(pool, statsSql({ table })))
      const topics: TopicStats[] = (result.rows as TopicStatsRow[]).map((r) => ({
        topic: r.topic,
        pending: Number(r.pending),
        due: Number(r.due),
        inFlight: Number(r.in_flight),
        dead: Number(r.dead),
        oldestPendingAgeMs:
          r.oldest_pending_age_ms === null ? null : Math.round(Number(r.oldest_pending_age_ms)),
      }))
      const sum = (f: (t: TopicStats) => number) => topics.reduce((acc, t) => acc + f(t), 0)
      const ages = topics.map((t) => t.oldestPendingAgeMs).filter((a): a is number => a !== null)
      return {
        pending: sum((t) => t.pending),
        due: sum((t) => t.due),
        inFlight: sum((t) => t.inFlight),
        dead: sum((t) => t.dead),
        oldestPendingAgeMs: ages.length > 0 ? Math.max(...ages) : null,
        topics,
      }
    },

    counters() {
      return { ...counters }
    },
  }
}

/**
 * The relay engine: claim → publish → mark, in a loop, with retries, dead letters, retention and
 * statistics. No HTTP here; the Hono app and the CLI drive it.
 * @module
 */

import { backoffDelay } from './backoff.js'
import { createClaimer } from './claimer.js'
import {
  databaseCall,
  databaseError,
  LOCK_NOT_AVAILABLE,
  type PoolLike,
  run,
  sqlState,
  withTransaction,
} from './db.js'
import { coerceError, RelayError } from './errors.js'
import { combineHooks } from './hooks.js'
import { engineLogHooks, type Logger } from './log.js'
import { toMessage } from './message.js'
import {
  type DrainOptions,
  drainOptionsSchema,
  drainReserveMs,
  type EngineOptions,
  parseOptions,
  type ResolvedEngineOptions,
  resolveEngineOptions,
} from './options.js'
import { type BatchOutcome, sortOutcomes } from './outcome.js'
import type { Publisher } from './publisher.js'
import { type SettleResult, settleBatch } from './settle.js'
import type { ClaimedRow } from './sql/claim-batch.js'
import { deletePublished } from './sql/delete-published.js'
import { lockClaimsBounded } from './sql/lock.js'
import { markFailed } from './sql/mark-failed.js'
import { markPublished } from './sql/mark-published.js'
import { deferRows, releaseRows } from './sql/release-rows.js'
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
  /** Rows released unsent behind a failed earlier row of their key, or when the drain stopped. */
  held: number
  /** Rows whose send failed because of the broker or the network: retried later, no attempt. */
  deferred: number
  /** Rows whose send timed out: they keep their lease until it expires, no attempt. */
  unsettled: number
  /** Published rows we could not mark because our lease had been taken over. */
  lostLeases: number
  /** The most failed attempts any claimed row had before this batch (0: every row's first try). */
  maxAttempts: number
  outcome: 'published' | 'partial' | 'failed'
  /** The first publish error of the batch, coerced to text. */
  error?: string
}

/** Callbacks for observability. They must not throw (errors are swallowed). */
export interface EngineHooks {
  onBatch?(info: BatchInfo): void
  onDrain?(result: DrainResult): void
  /**
   * Runs each batch attempt (claim, publish, mark; `onBatch` included) inside `run`, e.g. in a
   * tracing context. Must call `run` once and settle as it does: its errors are not swallowed.
   */
  wrapBatch?<T>(run: () => Promise<T>): Promise<T>
}

/** Cumulative counters since the engine was created (for `/metrics`). */
export interface EngineCounters {
  drains: number
  batches: number
  published: number
  retried: number
  dead: number
  held: number
  deferred: number
  unsettled: number
  lostLeases: number
  publishFailures: number
  /** Times the relay paused after a broker/network failure. */
  pauses: number
  claimMsTotal: number
  publishMsTotal: number
  lastBatchAt: Date | null
}

/** The shortest time a batch is assumed to take (claim + publish + mark), ms. */
const MIN_BATCH_MS = 50
/** Longest single wait for the claim lock; a drain re-checks its budget and signal in between. */
const LOCK_WAIT_SLICE_MS = 1_000

function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new RelayError('RELAY_PUBLISH_TIMEOUT', `the publisher did not answer within ${ms} ms`)),
      ms,
    )
  })
  promise.catch(() => {})
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer))
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

/** Totals and per-topic rows of the stats statement's rows. */
function toOutboxStats(rows: TopicStatsRow[]): OutboxStats {
  const topics: TopicStats[] = rows.map((r) => ({
    topic: r.topic,
    pending: Number(r.pending),
    due: Number(r.due),
    inFlight: Number(r.in_flight),
    dead: Number(r.dead),
    oldestPendingAgeMs: r.oldest_pending_age_ms === null ? null : Math.round(Number(r.oldest_pending_age_ms)),
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
}

/** What {@link createEngine} returns. */
export interface Engine {
  readonly options: ResolvedEngineOptions
  /**
   * Publishes due rows until none is claimable, `maxEvents` rows were claimed, the next batch
   * might not finish within `budgetMs`, the signal is aborted, or a publish failed with a
   * retriable error. Budget: lock waits and every batch count against it; waits are cut
   * `drainReserveMs(budgetMs)` before it ends, so the drain answers by `budgetMs` +
   * {@link DRAIN_MARGIN_MS} at worst. A broker or network failure costs the rows no attempt and
   * pauses the whole engine (`pause`): drains return at once until the pause ends. When the
   * signal is aborted the batch in flight finishes and rows it had not sent are released.
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
  /** Where failed batches (warn) and each batch and drain (debug) are logged; pino-compatible. */
  logger?: Logger | undefined
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
 * @param [args.logger] - a pino-compatible logger (see {@link engineLogHooks}); none by default
 * @example
 * const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL })
 * const publisher = new KafkaPublisher({ kafka: new Kafka({ clientId: 'relay', brokers: ['127.0.0.1:9092'] }) })
 * await publisher.connect()
 * const engine = createEngine({ pool, publisher, options: { batchSize: 200 } })
 * const { published, remaining } = await engine.drain({ budgetMs: 10_000 })
 */
export function createEngine(args: CreateEngineArgs): Engine {
  const options = resolveEngineOptions(args.options)
  const { pool, publisher } = args
  const hooks = args.logger ? combineHooks(args.hooks, engineLogHooks(args.logger)) : (args.hooks ?? {})
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
    deferred: 0,
    unsettled: 0,
    lostLeases: 0,
    publishFailures: 0,
    pauses: 0,
    claimMsTotal: 0,
    publishMsTotal: 0,
    lastBatchAt: null,
  }

  const safely = (fn: () => void) => {
    try {
      fn()
    } catch {
      // hooks are for observability; they must not break the relay
    }
  }

  /** Relay-wide pause after a broker/network failure (see `pause`). */
  let pausedUntil = 0
  let pauseStreak = 0
  /** Typical duration of a batch (moving average), the estimate for a drain's first batch. */
  let typicalBatchMs = 0

  function pauseRelay(): number {
    const delay = backoffDelay(pauseStreak + 1, options.pause, random)
    pauseStreak = Math.min(pauseStreak + 1, 30)
    pausedUntil = Math.max(pausedUntil, performance.now() + delay)
    counters.pauses++
    return delay
  }

  const claimer = createClaimer({ pool, options, random })

  /**
   * Runs one batch; undefined when nothing was claimable, `'busy'` when the claim lock did not
   * come within `lockWaitMs`. Sends stop at `publishDeadline` (a `performance.now()` time) or
   * when `stop()` says so; rows not sent by then are released.
   */
  async function runBatch(
    limit: number,
    topics: string[] | undefined,
    bounds: { lockWaitMs: number; markLockWaitMs: number; publishDeadline: number; stop: () => boolean },
  ): Promise<(BatchInfo & { stop: boolean }) | 'busy' | undefined> {
    const t0 = performance.now()
    // The claim statement may use the time left before the publish deadline, minus a minimal send.
    const claimTimeoutMs = Number.isFinite(bounds.publishDeadline)
      ? Math.max(1, bounds.publishDeadline - performance.now() - MIN_BATCH_MS / 2)
      : undefined
    const rows = await claimer.claim(limit, topics, bounds.lockWaitMs, claimTimeoutMs)
    const t1 = performance.now()
    if (rows === 'busy') return 'busy'
    if (rows.length === 0) return undefined

    const settled = await publishRows(rows, bounds)
    const t2 = performance.now()
    const outcome = sortOutcomes(rows, settled, options, random)
    const pauseMs = settled.infrastructureFailure ? pauseRelay() : 0
    if (outcome.publishedIds.length > 0 && !settled.infrastructureFailure) pauseStreak = 0
    const marked = await markBatch(outcome, pauseMs, bounds.markLockWaitMs)
    const t3 = performance.now()
    return reportBatch(rows, settled, outcome, marked, {
      claimMs: t1 - t0,
      publishMs: t2 - t1,
      markMs: t3 - t2,
    })
  }

  /** Publishes a batch's rows (see `settleBatch`), each send bounded by the publish deadline. */
  function publishRows(
    rows: ClaimedRow[],
    bounds: { publishDeadline: number; stop: () => boolean },
  ): Promise<SettleResult> {
    return settleBatch(
      rows.map(toMessage),
      (batch) => {
        const timeoutMs = Math.max(
          1,
          Math.min(options.publishTimeoutMs, bounds.publishDeadline - performance.now()),
        )
        return withDeadline(publisher.publish(batch, { timeoutMs }), timeoutMs + 100)
      },
      {
        blockOnDead,
        maxMessageBytes: options.maxMessageBytes,
        stopBefore: () => bounds.stop() || performance.now() >= bounds.publishDeadline,
      },
    )
  }

  /** Marks rows published (needs no lock). */
  async function markPublishedRows(ids: string[]): Promise<number> {
    if (ids.length === 0) return 0
    const result = await databaseCall('mark published', () =>
      run(pool, markPublished({ table, relayId, ids })),
    )
    return result.rowCount ?? 0
  }

  /**
   * Writes a batch's outcome; returns how many published rows we marked (fewer than published
   * when a lease was taken over). Rows deferred by a broker failure wait `pauseMs`.
   */
  async function markBatch(outcome: BatchOutcome, pauseMs: number, markLockWaitMs: number): Promise<number> {
    const { publishedIds, failed, heldIds, deferredIds, firstError } = outcome
    // Fast path: publishing rows makes nothing claimable that was not, so no claim lock needed.
    if (failed.length === 0 && heldIds.length === 0 && deferredIds.length === 0)
      return markPublishedRows(publishedIds)
    // Failure marks and releases make rows claimable again: under the shared claim lock (lock.ts).
    try {
      return await withTransaction(pool, async (client) => {
        await run(
          client,
          lockClaimsBounded({
            lockTimeoutMs: markLockWaitMs,
            idleInTransactionMs: options.idleInTransactionMs,
          }),
        )
        let n = 0
        if (publishedIds.length > 0)
          n = (await run(client, markPublished({ table, relayId, ids: publishedIds }))).rowCount ?? 0
        if (failed.length > 0) await run(client, markFailed({ table, relayId, rows: failed }))
        if (deferredIds.length > 0)
          await run(
            client,
            deferRows({
              table,
              relayId,
              ids: deferredIds,
              delayMs: pauseMs,
              error: `not published, the broker is unavailable (no attempt counted): ${coerceError(firstError, 1000)}`,
            }),
          )
        if (heldIds.length > 0) await run(client, releaseRows({ table, relayId, ids: heldIds }))
        return n
      })
    } catch (error) {
      if (sqlState(error) !== LOCK_NOT_AVAILABLE) throw databaseError('mark failed', error)
      // No claim lock in time: mark what went out (that needs no lock); the other rows keep
      // their lease and come back when it expires, at no attempt.
      return markPublishedRows(publishedIds)
    }
  }

  /** Counts a finished batch, tells the hooks, and returns what the drain needs of it. */
  function reportBatch(
    rows: ClaimedRow[],
    settled: SettleResult,
    outcome: BatchOutcome,
    marked: number,
    times: Pick<BatchInfo, 'claimMs' | 'publishMs' | 'markMs'>,
  ): BatchInfo & { stop: boolean } {
    const { publishedIds, failed, heldIds, deferredIds, unsettled, dead, firstError } = outcome
    const info: BatchInfo & { stop: boolean } = {
      relayId,
      size: rows.length,
      ...times,
      sends: settled.sends,
      // Rows we published but whose lease another relay took over are counted by that relay.
      published: marked,
      retried: failed.length - dead,
      dead,
      held: heldIds.length,
      deferred: deferredIds.length,
      unsettled,
      lostLeases: publishedIds.length - marked,
      maxAttempts: rows.reduce((most, row) => Math.max(most, row.attempts), 0),
      outcome:
        publishedIds.length === rows.length ? 'published' : publishedIds.length > 0 ? 'partial' : 'failed',
      stop: settled.retriableFailure,
    }
    if (firstError !== undefined) info.error = coerceError(firstError, 1024)
    counters.batches++
    counters.published += info.published
    counters.retried += info.retried
    counters.dead += info.dead
    counters.held += info.held
    counters.deferred += info.deferred
    counters.unsettled += info.unsettled
    counters.lostLeases += info.lostLeases
    if (failed.length + deferredIds.length + unsettled > 0) counters.publishFailures++
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
      const budget = request.budgetMs
      // The time kept back for marking the last batch and counting what remains.
      const reserve = budget === undefined ? 0 : drainReserveMs(budget)
      const deadline = budget === undefined ? Number.POSITIVE_INFINITY : started + budget - reserve
      const result = { published: 0, retried: 0, dead: 0 }
      let claimed = 0
      let slowest = 0
      const markLockWaitMs = budget === undefined ? options.lockWaitMs : Math.max(50, reserve / 2)
      // Time spent waiting for the claim lock in vain: a drain without a budget fails past
      // `lockWaitMs` of it (however long it has been publishing).
      let lockWaited = 0
      counters.drains++
      for (;;) {
        if (signal?.aborted) break
        if (request.maxEvents !== undefined && claimed >= request.maxEvents) break
        const now = performance.now()
        if (now < pausedUntil) break
        // A batch starts only if one as slow as the slowest so far (or, first, a typical one)
        // still fits; lock waits and the first batch count against the budget.
        const estimate = Math.max(MIN_BATCH_MS, slowest || Math.min(typicalBatchMs, (budget ?? 0) / 2))
        if (deadline - now < estimate) break
        const lockWaitMs = Math.min(
          LOCK_WAIT_SLICE_MS,
          deadline - now - MIN_BATCH_MS,
          budget === undefined ? options.lockWaitMs - lockWaited : Number.POSITIVE_INFINITY,
        )
        if (lockWaitMs < 1) {
          if (budget !== undefined) break
          throw new RelayError(
            'RELAY_DATABASE',
            `claim failed: the claim lock stayed taken for ${options.lockWaitMs} ms (lockWaitMs); another session holds it exclusively`,
          )
        }
        const limit = Math.min(options.batchSize, (request.maxEvents ?? Number.POSITIVE_INFINITY) - claimed)
        const batchStarted = performance.now()
        const step = () =>
          runBatch(limit, request.topics, {
            lockWaitMs,
            // The final mark may use the reserve, not more.
            markLockWaitMs,
            publishDeadline: deadline,
            stop: () => signal?.aborted === true,
          })
        // The caller's wrapper as given (wrapping is not a callback that merging may drop).
        const wrap = args.hooks?.wrapBatch
        const batch = await (wrap ? wrap(step) : step())
        if (batch === 'busy') {
          lockWaited += performance.now() - batchStarted
          continue
        }
        if (!batch) break
        const took = performance.now() - batchStarted
        slowest = Math.max(slowest, took)
        typicalBatchMs = typicalBatchMs === 0 ? took : typicalBatchMs * 0.7 + took * 0.3
        claimed += batch.size
        result.published += batch.published
        result.retried += batch.retried + batch.deferred + batch.unsettled
        result.dead += batch.dead
        if (batch.stop) break
      }
      const due = await databaseCall('count remaining', () =>
        run(pool, countDue({ table, topics: request.topics })),
      )
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
        const result = await databaseCall('purge published', () =>
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
      const result = await databaseCall('stats', () => run(pool, statsSql({ table })))
      return toOutboxStats(result.rows)
    },

    counters() {
      return { ...counters }
    },
  }
}

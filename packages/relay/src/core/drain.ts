/**
 * One drain: batches until nothing is claimable, the budget or `maxEvents` is used up, the
 * signal is aborted, or a publish failed.
 * @module
 */
import {
  type BatchBounds,
  type BatchDone,
  type EngineContext,
  MIN_BATCH_MS,
  runBatch,
  safely,
} from './batch.js'
import { databaseCall, run } from './db.js'
import { RelayError } from './errors.js'
import { type DrainOptions, drainOptionsSchema, drainReserveMs, parseOptions } from './options.js'
import type { DrainResult } from './reports.js'
import { countDue } from './sql/stats.js'

/** Longest single wait for the claim lock; a drain re-checks its budget and signal in between. */
const LOCK_WAIT_SLICE_MS = 1_000

/** The state of one drain. */
interface DrainRun {
  signal: AbortSignal | undefined
  maxEvents: number | undefined
  topics: string[] | undefined
  budget: number | undefined
  started: number
  /** `performance.now()` time after which no batch starts and no wait goes on. */
  deadline: number
  markLockWaitMs: number
  /** Time spent waiting for the claim lock in vain (a drain without a budget fails past `lockWaitMs` of it). */
  lockWaited: number
  /** The slowest batch so far, ms. */
  slowest: number
  claimed: number
  result: { published: number; retried: number; dead: number }
}

/**
 * Runs one drain of the engine `ctx` (see `Engine.drain`).
 * @throws RelayError `RELAY_INVALID_OPTIONS` for bad options, `RELAY_DATABASE` when a statement
 * fails or, without a budget, the claim lock stayed taken for `lockWaitMs`
 * @internal
 */
export async function drain(ctx: EngineContext, input: DrainOptions = {}): Promise<DrainResult> {
  const d = startDrain(ctx, input)
  ctx.counters.drains++
  for (;;) {
    const lockWaitMs = nextLockWait(ctx, d)
    if (lockWaitMs === undefined) break
    const batchStarted = performance.now()
    const batch = await nextBatch(ctx, d, lockWaitMs)
    if (batch === 'busy') {
      d.lockWaited += performance.now() - batchStarted
      continue
    }
    if (!batch) break
    countIn(ctx, d, batch, performance.now() - batchStarted)
    if (batch.stop) break
  }
  const due = await databaseCall('count remaining', () =>
    run(ctx.pool, countDue({ table: ctx.options.table, topics: d.topics })),
  )
  const done: DrainResult = {
    ...d.result,
    remaining: Number(due.rows[0]?.n ?? 0),
    durationMs: Math.round(performance.now() - d.started),
  }
  safely(() => ctx.hooks.onDrain?.(done))
  return done
}

/** Checks the request and sets the drain's deadline: the budget minus the reserve for the last mark. */
function startDrain(ctx: EngineContext, input: DrainOptions): DrainRun {
  const { signal, ...rest } = input
  const request = parseOptions(drainOptionsSchema, rest, 'drain options')
  const started = performance.now()
  const budget = request.budgetMs
  // The time kept back for marking the last batch and counting what remains.
  const reserve = budget === undefined ? 0 : drainReserveMs(budget)
  return {
    signal,
    maxEvents: request.maxEvents,
    topics: request.topics,
    budget,
    started,
    deadline: budget === undefined ? Number.POSITIVE_INFINITY : started + budget - reserve,
    markLockWaitMs: budget === undefined ? ctx.options.lockWaitMs : Math.max(50, reserve / 2),
    lockWaited: 0,
    slowest: 0,
    claimed: 0,
    result: { published: 0, retried: 0, dead: 0 },
  }
}

/**
 * How long the next batch may wait for the claim lock; undefined when the drain stops here.
 * @throws RelayError `RELAY_DATABASE` when a drain without a budget waited `lockWaitMs` in vain
 */
function nextLockWait(ctx: EngineContext, d: DrainRun): number | undefined {
  if (d.signal?.aborted) return undefined
  if (d.maxEvents !== undefined && d.claimed >= d.maxEvents) return undefined
  const now = performance.now()
  if (ctx.pause.isActive(now)) return undefined
  // A batch starts only if one as slow as the slowest so far (or, first, a typical one)
  // still fits; lock waits and the first batch count against the budget.
  const estimate = Math.max(MIN_BATCH_MS, d.slowest || Math.min(ctx.typicalBatchMs, (d.budget ?? 0) / 2))
  if (d.deadline - now < estimate) return undefined
  const lockWaitMs = Math.min(
    LOCK_WAIT_SLICE_MS,
    d.deadline - now - MIN_BATCH_MS,
    d.budget === undefined ? ctx.options.lockWaitMs - d.lockWaited : Number.POSITIVE_INFINITY,
  )
  if (lockWaitMs >= 1) return lockWaitMs
  if (d.budget !== undefined) return undefined
  throw new RelayError(
    'RELAY_DATABASE',
    `claim failed: the claim lock stayed taken for ${ctx.options.lockWaitMs} ms (lockWaitMs); another session holds it exclusively`,
  )
}

/** Runs the next batch inside the caller's `wrapBatch`, if any. */
function nextBatch(
  ctx: EngineContext,
  d: DrainRun,
  lockWaitMs: number,
): Promise<BatchDone | 'busy' | undefined> {
  const limit = Math.min(ctx.options.batchSize, (d.maxEvents ?? Number.POSITIVE_INFINITY) - d.claimed)
  const bounds: BatchBounds = {
    lockWaitMs,
    // The final mark may use the reserve, not more.
    markLockWaitMs: d.markLockWaitMs,
    publishDeadline: d.deadline,
    stop: () => d.signal?.aborted === true,
  }
  const step = () => runBatch(ctx, limit, d.topics, bounds)
  const wrap = ctx.callerHooks?.wrapBatch
  return wrap ? wrap(step) : step()
}

/** Adds a finished batch to the drain's result and the engine's batch-time estimate. */
function countIn(ctx: EngineContext, d: DrainRun, batch: BatchDone, took: number): void {
  d.slowest = Math.max(d.slowest, took)
  ctx.typicalBatchMs = ctx.typicalBatchMs === 0 ? took : ctx.typicalBatchMs * 0.7 + took * 0.3
  d.claimed += batch.size
  d.result.published += batch.published
  d.result.retried += batch.retried + batch.deferred + batch.unsettled
  d.result.dead += batch.dead
}

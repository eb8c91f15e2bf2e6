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
  const inFlight = new Set<RunningBatch>()
  try {
    await runBatches(ctx, d, inFlight)
  } catch (error) {
    // No batch is left behind: each still running publishes or releases its rows and marks them.
    await Promise.allSettled([...inFlight].map((batch) => batch.done))
    throw error
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

/** A batch started by the drain: when its claim returned, and when it is done. */
interface RunningBatch {
  /** Rows claimed (0 also when the batch failed), or `'busy'`. */
  claimed: Promise<number | 'busy'>
  done: Promise<BatchDone | 'busy' | undefined>
}

/**
 * The drain's batches, two at a time at most: when a claim returns a full batch, the next claim
 * runs while that batch publishes and is marked, and the next batch publishes once it is done
 * (or releases its rows when it asked the drain to stop). Per-key order holds as between any
 * two relays: the rows of the batch in flight are leased, so they hold back the later rows of
 * their keys from the next claim (`claimBatch`, 2).
 */
async function runBatches(ctx: EngineContext, d: DrainRun, inFlight: Set<RunningBatch>): Promise<void> {
  let publishing: RunningBatch | undefined
  let stop = false
  for (;;) {
    const lockWaitMs = stop ? undefined : nextLockWait(ctx, d)
    if (lockWaitMs === undefined) break
    const claimStarted = performance.now()
    const speculative = publishing !== undefined
    const limit = nextLimit(ctx, d)
    const current = startBatch(ctx, d, limit, lockWaitMs, publishing && wentOn(ctx, publishing), inFlight)
    const claimed = await current.claimed
    if (claimed === 'busy') d.lockWaited += performance.now() - claimStarted
    else if (claimed > 0) d.claimed += claimed
    if (publishing) {
      stop = countIn(ctx, d, await publishing.done)
      publishing = undefined
    }
    // A full batch suggests more behind it: claim the next one while this one publishes.
    if (claimed === limit && !stop) {
      publishing = current
      continue
    }
    const batch = await current.done
    // Nothing claimable beside a batch in flight: claim again now that it is done.
    if (batch === undefined && claimed !== 'busy' && !speculative) break
    stop = countIn(ctx, d, batch) || stop
  }
  if (publishing) countIn(ctx, d, await publishing.done)
}

/** Starts the next batch (inside the caller's `wrapBatch`, if any); it publishes once `after` resolves. */
function startBatch(
  ctx: EngineContext,
  d: DrainRun,
  limit: number,
  lockWaitMs: number,
  after: Promise<boolean> | undefined,
  inFlight: Set<RunningBatch>,
): RunningBatch {
  let onClaimed: (claimed: number | 'busy') => void = () => {}
  const claimed = new Promise<number | 'busy'>((resolve) => {
    onClaimed = resolve
  })
  const bounds: BatchBounds = {
    lockWaitMs,
    // The final mark may use the reserve, not more.
    markLockWaitMs: d.markLockWaitMs,
    publishDeadline: d.deadline,
    stop: () => d.signal?.aborted === true,
    after,
    speculative: after !== undefined,
    onClaimed,
  }
  const step = () => runBatch(ctx, limit, d.topics, bounds)
  const wrap = ctx.callerHooks?.wrapBatch
  const done = wrap ? wrap(step) : step()
  const batch: RunningBatch = { claimed, done }
  inFlight.add(batch)
  // A batch that ends without its claim returning (a failed claim, a wrapper that threw) says so.
  done.then(
    (result) => onClaimed(result === 'busy' ? 'busy' : (result?.size ?? 0)),
    () => onClaimed(0),
  )
  done.finally(() => inFlight.delete(batch)).catch(() => {})
  return batch
}

/** Whether the batch after `batch` may publish: `batch` finished and did not stop the drain. */
function wentOn(ctx: EngineContext, batch: RunningBatch): Promise<boolean> {
  return batch.done.then(
    (done) => done !== 'busy' && done !== undefined && !done.stop && !ctx.pause.isActive(performance.now()),
    () => false,
  )
}

/** Rows the next claim may take. */
function nextLimit(ctx: EngineContext, d: DrainRun): number {
  return Math.min(ctx.options.batchSize, (d.maxEvents ?? Number.POSITIVE_INFINITY) - d.claimed)
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

/**
 * Adds a finished batch to the drain's result and the engine's batch-time estimate; true when
 * the drain must stop after it (a retriable publish failure).
 */
function countIn(ctx: EngineContext, d: DrainRun, batch: BatchDone | 'busy' | undefined): boolean {
  if (batch === 'busy' || batch === undefined) return false
  const took = batch.claimMs + batch.publishMs + batch.markMs
  d.slowest = Math.max(d.slowest, took)
  ctx.typicalBatchMs = ctx.typicalBatchMs === 0 ? took : ctx.typicalBatchMs * 0.7 + took * 0.3
  d.result.published += batch.published
  d.result.retried += batch.retried + batch.deferred + batch.unsettled
  d.result.dead += batch.dead
  return batch.stop
}

/**
 * One batch of a drain: claim, publish, write the outcome, report it.
 * @module
 */
import type { Claimer } from './claimer.js'
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
import { toMessage } from './message.js'
import type { ResolvedEngineOptions } from './options.js'
import { type BatchOutcome, sortOutcomes } from './outcome.js'
import type { RelayPause } from './pause.js'
import type { Publisher } from './publisher.js'
import { type BatchInfo, countBatch, type EngineCounters, type EngineHooks } from './reports.js'
import { type SettleResult, settleBatch } from './settle.js'
import type { ClaimedRow } from './sql/claim-batch.js'
import { lockClaimsBounded } from './sql/lock.js'
import { markFailed } from './sql/mark-failed.js'
import { markPublished } from './sql/mark-published.js'
import { deferRows, releaseRows } from './sql/release-rows.js'

/** The shortest time a batch is assumed to take (claim + publish + mark), ms. */
export const MIN_BATCH_MS = 50

/** What the batches and drains of one engine share. @internal */
export interface EngineContext {
  pool: PoolLike
  publisher: Publisher
  options: ResolvedEngineOptions
  /** The caller's hooks with the logger's. */
  hooks: EngineHooks
  /** The caller's hooks as given: their `wrapBatch`, read at each batch (wrapping is not a callback that merging may drop). */
  callerHooks: EngineHooks | undefined
  random: () => number
  counters: EngineCounters
  pause: RelayPause
  claimer: Claimer
  /** Typical duration of a batch (moving average), the estimate for a drain's first batch. */
  typicalBatchMs: number
}

/** The limits one batch runs within. */
export interface BatchBounds {
  lockWaitMs: number
  markLockWaitMs: number
  /** A `performance.now()` time: no send starts after it. */
  publishDeadline: number
  stop: () => boolean
  /**
   * Resolves when the batch before this one (claimed earlier by the same drain, still
   * publishing when this one claimed) has finished; false: send nothing, release the rows.
   */
  after?: Promise<boolean> | undefined
  /** Claim speculatively (see `Claimer.claim`): set when `after` is. */
  speculative?: boolean | undefined
  /** Told as soon as the claim returned: how many rows it claimed, or `'busy'`. */
  onClaimed?: ((claimed: number | 'busy') => void) | undefined
}

/** A finished batch and whether the drain must stop after it (a retriable publish failure). */
export type BatchDone = BatchInfo & { stop: boolean }

/** Calls an observability hook; what it throws must not break the relay. @internal */
export function safely(fn: () => void): void {
  try {
    fn()
  } catch {
    // hooks are for observability; they must not break the relay
  }
}

/**
 * Runs one batch; undefined when nothing was claimable, `'busy'` when the claim lock did not
 * come within `lockWaitMs`. Sends stop at `publishDeadline` (a `performance.now()` time) or
 * when `stop()` says so; rows not sent by then are released.
 * @internal
 */
export async function runBatch(
  ctx: EngineContext,
  limit: number,
  topics: string[] | undefined,
  bounds: BatchBounds,
): Promise<BatchDone | 'busy' | undefined> {
  const t0 = performance.now()
  // The claim statement may use the time left before the publish deadline, minus a minimal send.
  const claimTimeoutMs = Number.isFinite(bounds.publishDeadline)
    ? Math.max(1, bounds.publishDeadline - performance.now() - MIN_BATCH_MS / 2)
    : undefined
  const rows = await ctx.claimer.claim(limit, topics, bounds.lockWaitMs, claimTimeoutMs, bounds.speculative)
  bounds.onClaimed?.(rows === 'busy' ? 'busy' : rows.length)
  if (rows === 'busy') return 'busy'
  if (rows.length === 0) return undefined
  const t1 = performance.now()
  const goOn = bounds.after === undefined || (await bounds.after)
  // The wait for the batch before is no part of this one's times.
  const waited = performance.now() - t1

  const settled = await publishRows(ctx, rows, goOn ? bounds : { ...bounds, stop: () => true })
  const t2 = performance.now()
  const outcome = sortOutcomes(rows, settled, ctx.options, ctx.random)
  const pauseMs = settled.infrastructureFailure ? pauseRelay(ctx) : 0
  if (outcome.publishedIds.length > 0 && !settled.infrastructureFailure) ctx.pause.reset()
  const marked = await markBatch(ctx, outcome, pauseMs, bounds.markLockWaitMs)
  const t3 = performance.now()
  return reportBatch(ctx, rows, settled, outcome, marked, {
    claimMs: t1 - t0,
    publishMs: t2 - t1 - waited,
    markMs: t3 - t2,
  })
}

/** Pauses the whole engine after a broker or network failure; returns the pause in ms. */
function pauseRelay(ctx: EngineContext): number {
  ctx.counters.pauses++
  return ctx.pause.start()
}

/** Rejects with `RELAY_PUBLISH_TIMEOUT` when `promise` has not settled within `ms`. */
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

/** Publishes a batch's rows (see `settleBatch`), each send bounded by the publish deadline. */
function publishRows(
  ctx: EngineContext,
  rows: ClaimedRow[],
  bounds: Pick<BatchBounds, 'publishDeadline' | 'stop'>,
): Promise<SettleResult> {
  const { options, publisher } = ctx
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
      blockOnDead: options.deadLetterPolicy === 'block-key',
      maxMessageBytes: options.maxMessageBytes,
      stopBefore: () => bounds.stop() || performance.now() >= bounds.publishDeadline,
    },
  )
}

/** Marks rows published (needs no lock). */
async function markPublishedRows(ctx: EngineContext, ids: string[]): Promise<number> {
  if (ids.length === 0) return 0
  const { table, relayId, publishedRows } = ctx.options
  const result = await databaseCall('mark published', () =>
    run(ctx.pool, markPublished({ table, relayId, ids, publishedRows })),
  )
  return result.rowCount ?? 0
}

/**
 * Writes a batch's outcome; returns how many published rows we marked (fewer than published
 * when a lease was taken over). Rows deferred by a broker failure wait `pauseMs`.
 */
async function markBatch(
  ctx: EngineContext,
  outcome: BatchOutcome,
  pauseMs: number,
  markLockWaitMs: number,
): Promise<number> {
  const { publishedIds, failed, heldIds, deferredIds } = outcome
  // Fast path: publishing rows makes nothing claimable that was not, so no claim lock needed.
  if (failed.length === 0 && heldIds.length === 0 && deferredIds.length === 0)
    return markPublishedRows(ctx, publishedIds)
  // Failure marks and releases make rows claimable again: under the shared claim lock (lock.ts).
  try {
    return await withTransaction(ctx.pool, async (client) => {
      await run(
        client,
        lockClaimsBounded({
          lockTimeoutMs: markLockWaitMs,
          idleInTransactionMs: ctx.options.idleInTransactionMs,
        }),
      )
      return writeOutcome(client, ctx.options, outcome, pauseMs)
    })
  } catch (error) {
    if (sqlState(error) !== LOCK_NOT_AVAILABLE) throw databaseError('mark failed', error)
    // No claim lock in time: mark what went out (that needs no lock); the other rows keep
    // their lease and come back when it expires, at no attempt.
    return markPublishedRows(ctx, publishedIds)
  }
}

/** The statements of a batch's outcome, in the caller's transaction; returns the rows marked published. */
async function writeOutcome(
  client: Parameters<typeof run>[0],
  options: ResolvedEngineOptions,
  outcome: BatchOutcome,
  pauseMs: number,
): Promise<number> {
  const { table, relayId, publishedRows } = options
  const { publishedIds, failed, heldIds, deferredIds, firstError } = outcome
  let n = 0
  if (publishedIds.length > 0)
    n = (await run(client, markPublished({ table, relayId, ids: publishedIds, publishedRows }))).rowCount ?? 0
  if (failed.length > 0) await run(client, markFailed({ table, relayId, rows: failed }))
  if (deferredIds.length > 0) {
    const error = `not published, the broker is unavailable (no attempt counted): ${coerceError(firstError, 1000)}`
    await run(client, deferRows({ table, relayId, ids: deferredIds, delayMs: pauseMs, error }))
  }
  if (heldIds.length > 0) await run(client, releaseRows({ table, relayId, ids: heldIds }))
  return n
}

/** Counts a finished batch, tells the hooks, and returns what the drain needs of it. */
function reportBatch(
  ctx: EngineContext,
  rows: ClaimedRow[],
  settled: SettleResult,
  outcome: BatchOutcome,
  marked: number,
  times: Pick<BatchInfo, 'claimMs' | 'publishMs' | 'markMs'>,
): BatchDone {
  const { publishedIds, failed, heldIds, deferredIds, unsettled, dead, firstError } = outcome
  const info: BatchInfo = {
    relayId: ctx.options.relayId,
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
  }
  if (firstError !== undefined) info.error = coerceError(firstError, 1024)
  countBatch(ctx.counters, info, failed.length + deferredIds.length + unsettled > 0)
  // The drain reads its own copy: what a hook does to its argument changes nothing here.
  const done: BatchDone = { ...info, stop: settled.retriableFailure }
  safely(() => ctx.hooks.onBatch?.(info))
  return done
}

/**
 * Claiming batches: one claim of an engine at a time, each claim statement in a transaction of
 * its own after the shared claim lock, moving past windows held back entirely and waiting a few
 * milliseconds when concurrent claims took every candidate (see `sql/claim-batch.ts`).
 * @module
 */

import {
  databaseError,
  isNodePostgresPool,
  LOCK_NOT_AVAILABLE,
  type PoolLike,
  QUERY_CANCELED,
  run,
  sqlState,
  withTransaction,
} from './db.js'
import type { ResolvedEngineOptions } from './options.js'
import { type ClaimedRow, type ClaimResultRow, claimBatch } from './sql/claim-batch.js'
import { lockClaimsBounded } from './sql/lock.js'

/** Claims in a row that found every candidate taken by concurrent claims before a batch gives up. */
const MAX_CONTENDED_CLAIMS = 10

/** What {@link createClaimer} returns. */
export interface Claimer {
  /**
   * Claims up to `limit` rows (in `seq` order), waiting at most `lockWaitMs` for this engine's
   * turn and the shared claim lock; `'busy'` when they did not come in time. Each claim statement
   * may run for at most `claimTimeoutMs` (none when undefined); past it nothing is claimed.
   * @throws RelayError `RELAY_DATABASE` when a statement fails
   */
  claim(
    limit: number,
    topics: string[] | undefined,
    lockWaitMs: number,
    claimTimeoutMs: number | undefined,
  ): Promise<ClaimedRow[] | 'busy'>
}

/**
 * The claimer of one engine.
 * @example
 * const claimer = createClaimer({ pool, options: resolveEngineOptions({}) })
 * const rows = await claimer.claim(500, undefined, 1000, undefined)
 */
export function createClaimer(args: {
  pool: PoolLike
  options: ResolvedEngineOptions
  random?: () => number
}): Claimer {
  const { pool, options } = args
  const random = args.random ?? Math.random
  const { table, relayId } = options
  const blockOnDead = options.deadLetterPolicy === 'block-key'
  const prepare = options.preparedStatements ?? isNodePostgresPool(pool)

  /** The end of the queue of this engine's claims (see {@link claimTurn}). */
  let claimQueue: Promise<void> = Promise.resolve()

  /**
   * Claims of one engine wait their turn in process: claims of one process running at once would
   * only find each other's rows locked (claims of different relays run in parallel), and a drain
   * queued here holds no pooled connection (which marks and counts of other drains need) and can
   * give up at its deadline. Resolves to a release function, or
   * undefined when the turn did not come within `waitMs`.
   */
  async function claimTurn(waitMs: number): Promise<(() => void) | undefined> {
    const previous = claimQueue
    let release!: () => void
    const mine = new Promise<void>((resolve) => {
      release = resolve
    })
    claimQueue = previous.then(() => mine)
    let timer: ReturnType<typeof setTimeout> | undefined
    const turn = await Promise.race([
      previous.then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), Math.max(0, waitMs))
      }),
    ])
    clearTimeout(timer)
    if (turn) return release
    release()
    return undefined
  }

  /**
   * Claims up to `limit` rows, waiting at most `lockWaitMs` for this engine's turn and the shared
   * claim lock; `'busy'` when they did not come in time (the caller decides whether to try again).
   */
  async function claim(
    limit: number,
    topics: string[] | undefined,
    lockWaitMs: number,
    claimTimeoutMs: number | undefined,
  ): Promise<ClaimedRow[] | 'busy'> {
    const queuedAt = performance.now()
    const release = await claimTurn(lockWaitMs)
    if (!release) return 'busy'
    try {
      const left = lockWaitMs - (performance.now() - queuedAt)
      if (left < 1) return 'busy'
      const rows = await claimInTurn(
        limit,
        topics,
        left,
        claimTimeoutMs === undefined ? undefined : claimTimeoutMs - (performance.now() - queuedAt),
      )
      return rows
    } finally {
      release()
    }
  }

  async function claimInTurn(
    limit: number,
    topics: string[] | undefined,
    lockWaitMs: number,
    claimTimeoutMs: number | undefined,
  ): Promise<ClaimedRow[] | 'busy'> {
    const started = performance.now()
    // A window held back entirely says where it ended: look again after it (see claimBatch, 6).
    let after: string | undefined
    let contended = 0
    for (;;) {
      const timeLeft =
        claimTimeoutMs === undefined ? undefined : claimTimeoutMs - (performance.now() - started)
      if (timeLeft !== undefined && timeLeft < 1) return []
      const result = await claimOnce(limit, topics, after, lockWaitMs, timeLeft)
      if (result === 'busy' || Array.isArray(result)) return result
      if (result.after !== undefined) after = result.after
      else if (++contended > MAX_CONTENDED_CLAIMS) return []
      // Every candidate was taken by a concurrent claim: let it commit, then look again.
      else await new Promise((resolve) => setTimeout(resolve, 1 + Math.floor(random() * 5)))
    }
  }

  /**
   * One claim statement in a transaction of its own (so rows it locked and passed over are free
   * again when it ends). Rows, `'busy'`, or where to look next: `after` a window held back
   * entirely, or `{}` when concurrent claims took every candidate.
   */
  async function claimOnce(
    limit: number,
    topics: string[] | undefined,
    after: string | undefined,
    lockWaitMs: number,
    claimTimeoutMs: number | undefined,
  ): Promise<ClaimedRow[] | 'busy' | { after?: string }> {
    let rows: ClaimResultRow[]
    try {
      rows = await withTransaction(pool, async (client) => {
        await run(
          client,
          lockClaimsBounded({
            lockTimeoutMs: lockWaitMs,
            idleInTransactionMs: options.idleInTransactionMs,
            statementTimeoutMs: claimTimeoutMs,
          }),
        )
        const claim = claimBatch({
          table,
          relayId,
          limit,
          leaseMs: options.leaseMs,
          blockOnDead,
          topics,
          after,
        })
        return (await run(client, claim, prepare)).rows
      })
    } catch (error) {
      if (sqlState(error) === LOCK_NOT_AVAILABLE) return 'busy'
      // The claim ran into the drain's budget (statement_timeout set above): nothing claimed.
      if (claimTimeoutMs !== undefined && sqlState(error) === QUERY_CANCELED) return []
      throw databaseError('claim', error)
    }
    const [first] = rows
    if (first?.id === null) return first.window_end === null ? {} : { after: first.window_end }
    // UPDATE … RETURNING does not keep the subquery's order.
    return rows
      .filter((row): row is ClaimedRow & { window_end: null; contended: false } => row.id !== null)
      .sort((a, b) => {
        const d = BigInt(a.seq) - BigInt(b.seq)
        return d < 0n ? -1 : d > 0n ? 1 : 0
      })
  }

  return { claim }
}

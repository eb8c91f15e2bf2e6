/**
 * Claiming batches: one claim of an engine at a time, each claim statement in a transaction of
 * its own after the shared claim lock, moving past windows held back entirely and waiting a few
 * milliseconds when concurrent claims took every candidate (see `sql/claim-batch.ts`).
 * @module
 */

import {
  databaseError,
  isNodePostgresPool,
  isStalePreparedStatement,
  LOCK_NOT_AVAILABLE,
  type PoolLike,
  QUERY_CANCELED,
  run,
  sqlState,
  withTransaction,
} from './db.js'
import type { ResolvedEngineOptions } from './options.js'
import { type ClaimedRow, type ClaimResultRow, claimBatch, MAX_WINDOW_SCALE } from './sql/claim-batch.js'
import { type GateIndexes, gateIndexLookup } from './sql/gate-indexes.js'
import { lockClaimsBounded } from './sql/lock.js'
import { TurnQueue } from './turns.js'

/** Claims in a row that found every candidate taken by concurrent claims before a batch gives up. */
const MAX_CONTENDED_CLAIMS = 10

/** What {@link createClaimer} returns. */
export interface Claimer {
  /**
   * Claims up to `limit` rows (in `seq` order), waiting at most `lockWaitMs` for this engine's
   * turn and the shared claim lock; `'busy'` when they did not come in time. Each claim statement
   * may run for at most `claimTimeoutMs` (none when undefined); past it nothing is claimed.
   * A `speculative` claim (one made while a batch of the same drain is still in flight) gives
   * up, claiming nothing, where another would look past a window held back entirely or wait for
   * concurrent claims: its empty answer means "try again later", not "nothing is claimable".
   * @throws RelayError `RELAY_DATABASE` when a statement fails
   */
  claim(
    limit: number,
    topics: string[] | undefined,
    lockWaitMs: number,
    claimTimeoutMs: number | undefined,
    speculative?: boolean,
  ): Promise<ClaimedRow[] | 'busy'>
}

/** What the claims of one engine share. */
interface ClaimContext {
  pool: PoolLike
  options: ResolvedEngineOptions
  random: () => number
  blockOnDead: boolean
  /** Send the claim as a named prepared statement (see `preparedStatements`). */
  prepare: boolean
  turns: TurnQueue
  /** Whether the table has the index the claim's dead-row gate needs (looked up once). */
  indexes: () => Promise<GateIndexes>
}

/** Where one claim statement left off: look `after` a window held back entirely, or `{}` (contended). */
type ClaimNext = { after?: string }

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
  const ctx: ClaimContext = {
    pool: args.pool,
    options: args.options,
    random: args.random ?? Math.random,
    blockOnDead: args.options.deadLetterPolicy === 'block-key',
    prepare: args.options.preparedStatements ?? isNodePostgresPool(args.pool),
    turns: new TurnQueue(),
    indexes: gateIndexLookup(args.pool, args.options.table),
  }
  return {
    claim: (limit, topics, lockWaitMs, claimTimeoutMs, speculative = false) =>
      claim(ctx, limit, topics, lockWaitMs, claimTimeoutMs, speculative),
  }
}

/**
 * Claims up to `limit` rows, waiting at most `lockWaitMs` for this engine's turn and the shared
 * claim lock; `'busy'` when they did not come in time (the caller decides whether to try again).
 */
async function claim(
  ctx: ClaimContext,
  limit: number,
  topics: string[] | undefined,
  lockWaitMs: number,
  claimTimeoutMs: number | undefined,
  speculative: boolean,
): Promise<ClaimedRow[] | 'busy'> {
  const queuedAt = performance.now()
  const release = await ctx.turns.take(lockWaitMs)
  if (!release) return 'busy'
  try {
    const left = lockWaitMs - (performance.now() - queuedAt)
    if (left < 1) return 'busy'
    const timeLeft =
      claimTimeoutMs === undefined ? undefined : claimTimeoutMs - (performance.now() - queuedAt)
    return await claimInTurn(ctx, limit, topics, left, timeLeft, speculative)
  } finally {
    release()
  }
}

/** Claim statements until one claims rows, finds nothing, or the time is up. */
async function claimInTurn(
  ctx: ClaimContext,
  limit: number,
  topics: string[] | undefined,
  lockWaitMs: number,
  claimTimeoutMs: number | undefined,
  speculative: boolean,
): Promise<ClaimedRow[] | 'busy'> {
  const started = performance.now()
  // A window held back entirely says where it ended: look again after it (see claimBatch, 6).
  let after: string | undefined
  // Each window held back entirely doubles the next one (see claimBatch, 6).
  let windowScale = 1
  let contended = 0
  for (;;) {
    const timeLeft = claimTimeoutMs === undefined ? undefined : claimTimeoutMs - (performance.now() - started)
    if (timeLeft !== undefined && timeLeft < 1) return []
    const result = await claimOnce(ctx, { limit, topics, after, windowScale }, lockWaitMs, timeLeft)
    if (result === 'busy' || Array.isArray(result)) return result
    // A speculative claim's window is mostly held by the batch in flight: no point looking further.
    if (speculative) return []
    if (result.after !== undefined) {
      after = result.after
      windowScale = Math.min(windowScale * 2, MAX_WINDOW_SCALE)
    } else if (++contended > MAX_CONTENDED_CLAIMS) return []
    // Every candidate was taken by a concurrent claim: let it commit, then look again.
    else await new Promise((resolve) => setTimeout(resolve, 1 + Math.floor(ctx.random() * 5)))
  }
}

/**
 * One claim statement in a transaction of its own (so rows it locked and passed over are free
 * again when it ends). Rows, `'busy'`, or where to look next.
 */
async function claimOnce(
  ctx: ClaimContext,
  what: { limit: number; topics: string[] | undefined; after: string | undefined; windowScale: number },
  lockWaitMs: number,
  claimTimeoutMs: number | undefined,
): Promise<ClaimedRow[] | 'busy' | ClaimNext> {
  const { options } = ctx
  const statement = claimBatch({
    table: options.table,
    relayId: options.relayId,
    leaseMs: options.leaseMs,
    blockOnDead: ctx.blockOnDead,
    deadIndex: ctx.blockOnDead && (await ctx.indexes()).dead,
    ...what,
  })
  const bounds = lockClaimsBounded({
    lockTimeoutMs: lockWaitMs,
    idleInTransactionMs: options.idleInTransactionMs,
    statementTimeoutMs: claimTimeoutMs,
  })
  const inTransaction = (prepare: boolean) =>
    withTransaction(
      ctx.pool,
      async (client) => {
        await run(client, bounds)
        return (await run(client, statement, prepare)).rows
      },
      // A connection whose prepared claim the server refuses is not handed out again.
      prepare ? isStalePreparedStatement : undefined,
    )
  let rows: ClaimResultRow[]
  try {
    rows = await inTransaction(ctx.prepare).catch((error: unknown) => {
      if (!ctx.prepare || !isStalePreparedStatement(error)) throw error
      return inTransaction(false)
    })
  } catch (error) {
    if (sqlState(error) === LOCK_NOT_AVAILABLE) return 'busy'
    // The claim ran into the drain's budget (statement_timeout set above): nothing claimed.
    if (claimTimeoutMs !== undefined && sqlState(error) === QUERY_CANCELED) return []
    throw databaseError('claim', error)
  }
  return claimedOrNext(rows)
}

/** The claimed rows in `seq` order, or the sentinel row's answer (see claimBatch, 6). */
function claimedOrNext(rows: ClaimResultRow[]): ClaimedRow[] | ClaimNext {
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

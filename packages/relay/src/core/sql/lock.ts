/**
 * The claim lock: relays take it SHARED around claims and failure marks, so they run in parallel;
 * a session holding it exclusively pauses them all.
 * @module
 */
import type { SqlStatement } from '../db.js'

/**
 * The key of the transaction-scoped advisory lock every relay takes, shared, before claiming and
 * before a failure mark. Claims need no exclusion from each other (see `claimBatch`). Holding it
 * EXCLUSIVELY (`SELECT pg_advisory_lock(122511226139000)`) pauses every relay's claims and failure
 * marks (each waits up to its `lockWaitMs`); relays of earlier versions took it exclusively around
 * claims, which assumed no concurrent claimer, so during a rolling upgrade they and the new relays
 * exclude each other instead of breaking that assumption.
 * 0x6f7574626f78 is "outbox" in ASCII; any constant works as long as all relays share it. It is a
 * string because it is a bigint.
 */
export const CLAIM_LOCK_KEY = '122511226139000'

/**
 * `SELECT pg_advisory_xact_lock_shared(key)`: run it as its OWN statement, before the claim, inside
 * the claim's transaction, so the claim's snapshot is taken after any exclusive holder let go.
 * The lock is released at COMMIT/ROLLBACK, so a crashed relay cannot hold it.
 */
export function lockClaims(key: string = CLAIM_LOCK_KEY): SqlStatement<unknown> {
  return { text: 'SELECT pg_advisory_xact_lock_shared($1::bigint)', values: [key] }
}

/** Bounds of a claim-lock holder and waiter (see {@link lockClaimsBounded}). */
export interface ClaimLockBounds {
  /** Longest wait for the lock (`lock_timeout`); the statement then fails with SQLSTATE 55P03. */
  lockTimeoutMs: number
  /** The server ends the session if it sits idle in this transaction longer (`idle_in_transaction_session_timeout`). */
  idleInTransactionMs: number
  /** Upper bound of each LATER statement of the transaction (`statement_timeout`), e.g. the claim. */
  statementTimeoutMs?: number | undefined
}

/**
 * {@link lockClaims} with both ends bounded, for the first statement of a claim transaction:
 * `set_config(…, true)` (transaction-local) sets `lock_timeout` and
 * `idle_in_transaction_session_timeout`, then the shared lock is taken, in one statement (the target
 * list is evaluated left to right, and both settings are read when the wait or the idleness
 * begins). So a waiter never queues behind an exclusive holder for longer than `lockTimeoutMs`,
 * and a relay that stops talking inside its claim transaction (frozen process, paused VM, network
 * partition) is cut off by the server after `idleInTransactionMs`, which frees the rows it had
 * row-locked and the lock. Works on any pool, whatever its own settings.
 *
 * It also turns `enable_seqscan` off for the transaction. A prepared claim keeps the generic plan
 * it was given on its connection until the table is next analyzed; made while the table was
 * empty or small (a fresh deploy, the first claims of a relay), that plan looked the claimed ids
 * up with a sequential scan of the whole table, whose cost then grew with every row written
 * until autovacuum's next ANALYZE (613 buffers per claim of 10 rows at 25k rows). Every scan of
 * the claim has an index; with sequential scans priced out, none is planned as one. Bitmap scans
 * are turned off too: such a plan read the window (the first eligible rows in `seq` order) with a
 * bitmap scan of the index of pending rows, which returns rows in no order, so it fetched and
 * sorted every pending row (300 ms per claim on a backlog of 300k rows), where an index scan
 * stops after the window.
 *
 * @example
 * lockClaimsBounded({ lockTimeoutMs: 1000, idleInTransactionMs: 5000 })
 */
export function lockClaimsBounded(
  bounds: ClaimLockBounds,
  key: string = CLAIM_LOCK_KEY,
): SqlStatement<unknown> {
  const ms = (n: number) => `${Math.max(1, Math.round(n))}ms`
  const statement =
    bounds.statementTimeoutMs === undefined ? '' : `, set_config('statement_timeout', $4, true)`
  return {
    text: `SELECT set_config('lock_timeout', $2, true), set_config('idle_in_transaction_session_timeout', $3, true)${statement},
  set_config('enable_seqscan', 'off', true), set_config('enable_bitmapscan', 'off', true),
  pg_advisory_xact_lock_shared($1::bigint)`,
    values: [
      key,
      ms(bounds.lockTimeoutMs),
      ms(bounds.idleInTransactionMs),
      ...(bounds.statementTimeoutMs === undefined ? [] : [ms(bounds.statementTimeoutMs)]),
    ],
  }
}

/**
 * The key of the advisory lock a purge batch takes, so that only one relay purges at a time
 * ("outbox" + 1; distinct from {@link CLAIM_LOCK_KEY}, so purges never delay claims).
 */
export const PURGE_LOCK_KEY = '122511226139001'

/**
 * `SELECT pg_try_advisory_xact_lock(key) AS locked`: the first statement of a purge batch's
 * transaction. It never waits: `locked` is false while another relay's batch holds it, and that
 * relay's purge goes on alone. Released at COMMIT/ROLLBACK.
 */
export function tryLockPurge(key: string = PURGE_LOCK_KEY): SqlStatement<{ locked: boolean }> {
  return { text: 'SELECT pg_try_advisory_xact_lock($1::bigint) AS locked', values: [key] }
}

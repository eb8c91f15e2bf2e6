/**
 * The advisory lock that serialises claims (and failure marks) across relays.
 * @module
 */
import type { SqlStatement } from '../db.js'

/**
 * The key of the transaction-scoped advisory lock every relay takes before claiming.
 * 0x6f7574626f78 is "outbox" in ASCII; any constant works as long as all relays share it. It is a
 * string because it is a bigint.
 */
export const CLAIM_LOCK_KEY = '122511226139000'

/**
 * `SELECT pg_advisory_xact_lock(key)`: must run as its OWN statement, before the claim, inside the
 * claim's transaction. In READ COMMITTED each statement takes a fresh snapshot, so the claim that
 * follows sees every claim and every failure mark committed before it got the lock. (Inside one
 * statement the snapshot would predate the wait and the serialisation would be useless.)
 * The lock is released at COMMIT/ROLLBACK, so a crashed relay cannot hold it.
 */
export function lockClaims(key: string = CLAIM_LOCK_KEY): SqlStatement<unknown> {
  return { text: 'SELECT pg_advisory_xact_lock($1::bigint)', values: [key] }
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
 * `idle_in_transaction_session_timeout`, then the lock is taken, in one statement (the target
 * list is evaluated left to right, and both settings are read when the wait or the idleness
 * begins). So a waiter never queues behind a holder for longer than `lockTimeoutMs`, and a holder
 * that stops talking (frozen process, paused VM, network partition) is cut off by the server after
 * `idleInTransactionMs`, which releases the lock. Works on any pool, whatever its own settings.
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
  pg_advisory_xact_lock($1::bigint)`,
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

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
export function lockClaims(key: string = CLAIM_LOCK_KEY): SqlStatement {
  return { text: 'SELECT pg_advisory_xact_lock($1::bigint)', values: [key] }
}

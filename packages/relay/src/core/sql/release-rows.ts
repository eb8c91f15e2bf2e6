/**
 * Gives rows back without counting an attempt.
 * @module
 */
import type { SqlStatement } from '../db.js'
import { stillPending } from './pending.js'
import { quoteTable } from './table.js'

/**
 * Clears the lease of rows we claimed but deliberately did not publish: later rows of a key whose
 * earlier row just failed in the same batch (publishing them would overtake it). They become
 * claimable again, and the claim's head-of-line check keeps them behind the failed row. Run it
 * under the (shared) claim lock, like `markFailed`.
 *
 * @example
 * releaseRows({ table: 'outbox_event', relayId: 'r1', ids })
 */
export function releaseRows(params: { table: string; relayId: string; ids: string[] }): SqlStatement<never> {
  const t = quoteTable(params.table)
  return {
    text: `UPDATE ${t} AS o SET locked_by = NULL, locked_until = NULL
WHERE o.id = ANY($1::uuid[]) AND o.locked_by = $2 AND ${stillPending('o')}`,
    values: [params.ids, params.relayId],
  }
}

/**
 * Puts rows back for a later retry WITHOUT counting an attempt: their send failed because of the
 * broker or the network, not because of them. `available_at = now + delayMs` (the relay's pause),
 * `last_error` records why; the lease is cleared. Run it under the (shared) claim lock, like `markFailed`.
 *
 * @example
 * deferRows({ table: 'outbox_event', relayId: 'r1', ids, delayMs: 2000, error: 'broker unreachable' })
 */
export function deferRows(params: {
  table: string
  relayId: string
  ids: string[]
  delayMs: number
  error: string
}): SqlStatement<never> {
  const t = quoteTable(params.table)
  return {
    text: `UPDATE ${t} AS o
SET locked_by = NULL, locked_until = NULL, last_error = $3,
  available_at = statement_timestamp() + $4::integer * interval '1 millisecond'
WHERE o.id = ANY($1::uuid[]) AND o.locked_by = $2 AND ${stillPending('o')}`,
    values: [params.ids, params.relayId, params.error, Math.max(0, Math.round(params.delayMs))],
  }
}

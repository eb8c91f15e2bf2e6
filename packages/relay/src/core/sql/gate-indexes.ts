/**
 * Whether the outbox table has the small partial indexes that let a claim or a stream check skip
 * its per-key probes of dead and held rows when the table has none (see `claimBatch`, `dead`,
 * and `inspectStreamBatch`).
 * @module
 */
import type { PoolLike } from '../db.js'
import { run, type SqlStatement } from '../db.js'
import { quoteTable } from './table.js'

/** Which of the gate indexes exist (valid and ready). */
export interface GateIndexes {
  /** `WHERE status = 'dead'` (migration `…_outbox_dead_key_idx`). */
  dead: boolean
  /** `WHERE status = 'pending' AND last_error IS NOT NULL` (migration `…_outbox_held_key_idx`). */
  held: boolean
}

/** The predicates of the two indexes as PostgreSQL prints them back (`pg_get_expr`). */
const DEAD_PREDICATE = "(status = 'dead'::text)"
const HELD_PREDICATE = "((status = 'pending'::text) AND (last_error IS NOT NULL))"

/**
 * `SELECT dead, held`: whether `table` has a valid partial index with each predicate, whatever
 * its columns or name. One look at such an index answers "is there any dead (held) row?"; without
 * it that question walks every unfinished row, so the gates are used only where it exists.
 * @example
 * gateIndexes('outbox_event')
 */
export function gateIndexes(table: string): SqlStatement<GateIndexes> {
  return {
    text: `SELECT coalesce(bool_or(pg_get_expr(i.indpred, i.indrelid) = $2), false) AS dead,
  coalesce(bool_or(pg_get_expr(i.indpred, i.indrelid) = $3), false) AS held
FROM pg_index AS i
WHERE i.indrelid = to_regclass($1) AND i.indisvalid AND i.indisready`,
    values: [quoteTable(table), DEAD_PREDICATE, HELD_PREDICATE],
  }
}

/**
 * Looks up the gate indexes of `table` once and remembers the answer; `{ dead: false, held: false }`
 * (no gates, every probe runs: correct, only slower) while the lookup fails, which is tried again
 * next time. An index created later is seen by the next process (or engine, or streamer).
 * @example
 * const indexes = gateIndexLookup(pool, 'outbox_event')
 * const { dead } = await indexes()
 */
export function gateIndexLookup(pool: PoolLike, table: string): () => Promise<GateIndexes> {
  let known: GateIndexes | undefined
  return async () => {
    if (known) return known
    try {
      const { rows } = await run(pool, gateIndexes(table))
      known = { dead: rows[0]?.dead === true, held: rows[0]?.held === true }
      return known
    } catch {
      return { dead: false, held: false }
    }
  }
}

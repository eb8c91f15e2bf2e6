/**
 * Records failed publishes: retry later, or dead.
 * @module
 */
import type { SqlStatement } from '../db.js'
import { stillPending } from './pending.js'
import { quoteTable } from './table.js'

export interface FailedRow {
  id: string
  /** 'pending' to retry after `delayMs`, 'dead' to give up. */
  status: 'pending' | 'dead'
  delayMs: number
  error: string
}

/**
 * One UPDATE for all failed rows of a batch, via `unnest` of parallel arrays (graphile-worker's
 * `failJobs` style): `attempts + 1`, `last_error`, the lease cleared, and either
 * `available_at = now + delay` (retry) or `status = 'dead'` with `available_at = now` (a dead row's
 * `available_at` is the time it died: retention of dead rows counts from it). The backoff (with jitter) and the
 * dead decision are computed by the engine, which knows `attempts` from the claim and owns the
 * rows. `locked_by = relayId` keeps a relay whose lease was taken over from touching the new
 * owner's rows. It makes rows claimable again, so run it under the claim lock (shared, see
 * `lock.ts`): a session holding that lock exclusively keeps such statements out.
 *
 * @example
 * markFailed({ table: 'outbox_event', relayId: 'r1', rows: [{ id, status: 'pending', delayMs: 1000, error: 'timeout' }] })
 */
export function markFailed(params: {
  table: string
  relayId: string
  rows: FailedRow[]
}): SqlStatement<never> {
  const t = quoteTable(params.table)
  const { rows } = params
  return {
    text: `UPDATE ${t} AS o
SET attempts = o.attempts + 1,
    status = f.status,
    available_at = CASE WHEN f.status = 'pending'
      THEN statement_timestamp() + f.delay_ms * interval '1 millisecond' ELSE statement_timestamp() END,
    last_error = f.error,
    locked_by = NULL,
    locked_until = NULL
FROM unnest($1::uuid[], $2::text[], $3::integer[], $4::text[]) AS f(id, status, delay_ms, error)
WHERE o.id = f.id AND o.locked_by = $5 AND ${stillPending('o')}`,
    values: [
      rows.map((r) => r.id),
      rows.map((r) => r.status),
      rows.map((r) => Math.max(0, Math.round(r.delayMs))),
      rows.map((r) => r.error),
      params.relayId,
    ],
  }
}

/**
 * Retention: deletes old published rows.
 * @module
 */
import type { SqlStatement } from '../db.js'
import { quoteTable } from './table.js'

/**
 * Deletes at most `limit` published rows older than `maxAgeMs`, oldest first, through the partial
 * index on `published_at WHERE status = 'published'`. Bounded so each call is a short transaction
 * (no long locks, WAL bursts or replication lag); the engine loops until a call deletes fewer than
 * `limit`. Only `published` rows go: pending and dead rows are never deleted, and the claim's
 * head-of-line check ignores published rows, so deleting them cannot unblock anything wrongly.
 * `SKIP LOCKED` keeps two purges from waiting on each other.
 *
 * @example
 * deletePublished({ table: 'outbox_event', maxAgeMs: 7 * 86_400_000, limit: 1000 })
 */
export function deletePublished(params: {
  table: string
  maxAgeMs: number
  limit: number
}): SqlStatement<never> {
  const t = quoteTable(params.table)
  return {
    text: `DELETE FROM ${t} WHERE id IN (
  SELECT id FROM ${t}
  WHERE status = 'published' AND published_at < statement_timestamp() - $1::bigint * interval '1 millisecond'
  ORDER BY published_at
  LIMIT $2
  FOR UPDATE SKIP LOCKED
)`,
    values: [params.maxAgeMs, params.limit],
  }
}

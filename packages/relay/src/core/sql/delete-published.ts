/**
 * Retention: deletes old published rows, and (when asked) old dead rows.
 * @module
 */
import type { SqlStatement } from '../db.js'
import { quoteTable } from './table.js'

/** The one shape of both deletes; `status`, `since` and `order` are constants of this file. */
function deleteOld(
  params: { table: string; maxAgeMs: number; limit: number },
  status: 'published' | 'dead',
  since: 'published_at' | 'available_at',
  order: 'published_at' | 'seq',
): SqlStatement<never> {
  const t = quoteTable(params.table)
  return {
    text: `WITH old AS MATERIALIZED (
  SELECT id FROM ${t}
  WHERE status = '${status}' AND ${since} < statement_timestamp() - $1::bigint * interval '1 millisecond'
  ORDER BY ${order}
  LIMIT $2
  FOR UPDATE SKIP LOCKED
)
DELETE FROM ${t} AS o USING old
WHERE o.id = old.id AND o.status = '${status}'`,
    values: [params.maxAgeMs, params.limit],
  }
}

/**
 * Deletes at most `limit` published rows older than `maxAgeMs`, oldest first, through the partial
 * index on `published_at WHERE status = 'published'`. Bounded so each call is a short transaction
 * (no long locks, WAL bursts or replication lag); callers loop until a call deletes fewer than
 * `limit`. Only `published` rows go: pending and dead rows are never deleted, and the claim's
 * head-of-line check ignores published rows, so deleting them cannot unblock anything wrongly.
 * `SKIP LOCKED` keeps a purge from waiting on any row another session holds; the status test is
 * repeated on the row the DELETE finally touches (read committed re-checks it on the newest
 * version), so a row that changed meanwhile is left alone. The candidates are a MATERIALIZED CTE,
 * run once: as a subquery joined to the DELETE, the planner may rescan it, and each rescan skips
 * the rows the statement already deleted and locks the next ones, so one statement could delete
 * far more than `limit` rows (seen: 35 rows by a statement bounded to 10).
 *
 * @example
 * deletePublished({ table: 'outbox_event', maxAgeMs: 7 * 86_400_000, limit: 1000 })
 */
export function deletePublished(params: {
  table: string
  maxAgeMs: number
  limit: number
}): SqlStatement<never> {
  return deleteOld(params, 'published', 'published_at', 'published_at')
}

/**
 * Deletes at most `limit` dead rows that died more than `maxAgeMs` ago. A dead row's
 * `available_at` is the time it died (`markFailed` sets it), so a row revived by an operator and
 * dead again starts a new window. The partial index on unfinished rows holds every dead row; dead
 * rows are few, so scanning it is cheap. A row revived meanwhile (status back to `pending`) is
 * skipped by the re-check, as in {@link deletePublished}.
 *
 * @example
 * deleteDead({ table: 'outbox_event', maxAgeMs: 90 * 86_400_000, limit: 1000 })
 */
export function deleteDead(params: { table: string; maxAgeMs: number; limit: number }): SqlStatement<never> {
  return deleteOld(params, 'dead', 'available_at', 'seq')
}

/** What {@link countPurgeable} returns (bigint counts as text). */
export interface PurgeableRow {
  published: string
  dead: string
}

/**
 * Counts what a purge with these windows would delete (`purge --dry-run`). `deadMaxAgeMs` null
 * counts no dead row.
 *
 * @example
 * countPurgeable({ table: 'outbox_event', publishedMaxAgeMs: 604_800_000, deadMaxAgeMs: null })
 */
export function countPurgeable(params: {
  table: string
  publishedMaxAgeMs: number | null
  deadMaxAgeMs: number | null
}): SqlStatement<PurgeableRow> {
  const t = quoteTable(params.table)
  return {
    text: `SELECT
  (SELECT count(*) FROM ${t} WHERE $1::bigint IS NOT NULL AND status = 'published'
     AND published_at < statement_timestamp() - $1::bigint * interval '1 millisecond')::text AS published,
  (SELECT count(*) FROM ${t} WHERE $2::bigint IS NOT NULL AND status = 'dead'
     AND available_at < statement_timestamp() - $2::bigint * interval '1 millisecond')::text AS dead`,
    values: [params.publishedMaxAgeMs, params.deadMaxAgeMs],
  }
}

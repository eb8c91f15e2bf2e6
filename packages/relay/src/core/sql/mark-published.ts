/**
 * Marks a published batch.
 * @module
 */
import type { SqlStatement } from '../db.js'
import type { PublishedRows } from '../options.js'
import { stillPending } from './pending.js'
import { quoteTable } from './table.js'

/**
 * One statement for the whole batch: an UPDATE, or under `publishedRows: 'delete'` a DELETE with
 * the same guard (a deleted row reads as finished to every claim, as a published one does). `locked_by = relayId` makes it a no-op for rows whose lease
 * expired and that another relay reclaimed meanwhile: that relay owns them now and will mark
 * them itself (we do not know whether its publish succeeded). `locked_by` is kept on published
 * rows as a record of who published them; `locked_until` is cleared.
 *
 * @param params.ids - row ids of the batch
 * @param params.publishedRows - 'mark' (default) or 'delete'
 * @example
 * markPublished({ table: 'outbox_event', relayId: 'r1', ids })
 */
export function markPublished(params: {
  table: string
  relayId: string
  ids: string[]
  publishedRows?: PublishedRows | undefined
}): SqlStatement<never> {
  const t = quoteTable(params.table)
  if (params.publishedRows === 'delete')
    return {
      text: `DELETE FROM ${t} AS o
WHERE o.id = ANY($1::uuid[]) AND o.locked_by = $2 AND ${stillPending('o')}`,
      values: [params.ids, params.relayId],
    }
  return {
    text: `UPDATE ${t} AS o
SET status = 'published', published_at = statement_timestamp(), locked_until = NULL
WHERE o.id = ANY($1::uuid[]) AND o.locked_by = $2 AND ${stillPending('o')}`,
    values: [params.ids, params.relayId],
  }
}

/**
 * Marks a published batch.
 * @module
 */
import type { SqlStatement } from '../db.js'
import { stillPending } from './pending.js'
import { quoteTable } from './table.js'

/**
 * One UPDATE for the whole batch. `locked_by = relayId` makes it a no-op for rows whose lease
 * expired and that another relay reclaimed meanwhile: that relay owns them now and will mark
 * them itself (we do not know whether its publish succeeded). `locked_by` is kept on published
 * rows as a record of who published them; `locked_until` is cleared.
 *
 * @param params.ids - row ids of the batch
 * @example
 * markPublished({ table: 'outbox_event', relayId: 'r1', ids })
 */
export function markPublished(params: {
  table: string
  relayId: string
  ids: string[]
}): SqlStatement<never> {
  const t = quoteTable(params.table)
  return {
    text: `UPDATE ${t} AS o
SET status = 'published', published_at = statement_timestamp(), locked_until = NULL
WHERE o.id = ANY($1::uuid[]) AND o.locked_by = $2 AND ${stillPending('o')}`,
    values: [params.ids, params.relayId],
  }
}

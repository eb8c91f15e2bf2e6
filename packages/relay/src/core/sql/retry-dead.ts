/**
 * Operator action: give dead rows another chance.
 * @module
 */
import type { SqlStatement } from '../db.js'
import type { DeadRowsWhere } from './list-dead.js'
import { quoteTable } from './table.js'

/**
 * Sets dead rows back to `pending` with `attempts = 0`, due now and without a lease: the given
 * ids, the rows of the given topics, or every dead row when both are undefined. `last_error` is kept as a record of why the row
 * died until it is published. Only `dead` rows change, so retrying an id twice (or an id that is
 * pending or published) is a no-op; `rowCount` is the number of rows revived.
 *
 * This makes rows claimable again, so run it under the (shared) claim lock (see `lock.ts`), like the
 * engine's failure marks. Under `deadLetterPolicy: 'block-key'` the revived row still comes
 * first in its key; under `'continue'` later rows of its key may already be published, so the
 * consumer receives it late.
 *
 * @param [params.ids] - rows to retry
 * @param [params.topics] - dead rows of these topics
 * @example
 * retryDead({ table: 'outbox_event', ids: ['0190…'] })
 */
export function retryDead(params: DeadRowsWhere): SqlStatement<never> {
  const t = quoteTable(params.table)
  return {
    text: `UPDATE ${t}
SET status = 'pending', attempts = 0, available_at = statement_timestamp(), locked_by = NULL, locked_until = NULL
WHERE status = 'dead' AND ($1::uuid[] IS NULL OR id = ANY($1::uuid[])) AND ($2::text[] IS NULL OR topic = ANY($2::text[]))`,
    values: [params.ids ?? null, params.topics ?? null],
  }
}

/**
 * The dead-letter list.
 * @module
 */
import type { SqlStatement } from '../db.js'
import { quoteTable } from './table.js'

/** One dead row as `listDead` returns it. */
export interface DeadRow {
  id: string
  topic: string
  aggregatetype: string
  aggregateid: string
  type: string
  /** Payload JSON text (kept as text so big numbers survive). */
  payload: string
  headers: Record<string, unknown> | null
  attempts: number
  last_error: string | null
  created_at: Date
  /** `seq` as text (a bigint): the page cursor. */
  seq: string
}

/**
 * A page of dead rows in `seq` order (oldest first), after the cursor `afterSeq` (keyset
 * pagination: stable while rows are retried or added, unlike OFFSET). Dead rows are few by
 * nature, and the partial index on unfinished rows `(topic, aggregateid, seq) WHERE status <>
 * 'published'` keeps the scan off the published bulk of the table.
 *
 * @param params.afterSeq - cursor: the `seq` of the last row of the previous page, or undefined
 * @param params.limit - page size
 * @param [params.topics] - only these topics
 * @example
 * listDead({ table: 'outbox_event', limit: 50 })
 */
export function listDead(params: {
  table: string
  limit: number
  afterSeq?: string | undefined
  topics?: string[] | undefined
}): SqlStatement<DeadRow> {
  const t = quoteTable(params.table)
  const topics = params.topics && params.topics.length > 0 ? params.topics : null
  return {
    text: `SELECT id, topic, aggregatetype, aggregateid, type, payload::text AS payload, headers, attempts, last_error,
  created_at, seq::text AS seq
FROM ${t}
WHERE status = 'dead' AND ($1::bigint IS NULL OR seq > $1::bigint) AND ($2::text[] IS NULL OR topic = ANY($2::text[]))
ORDER BY seq
LIMIT $3`,
    values: [params.afterSeq ?? null, topics, params.limit],
  }
}

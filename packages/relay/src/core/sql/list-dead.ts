/**
 * The dead-letter list, one row, and the operator's actions on dead rows.
 * @module
 */
import type { SqlStatement } from '../db.js'
import { quoteTable, topicFilter } from './table.js'

/** One dead row as `listDead` and `getDead` return it. */
export interface DeadRow {
  id: string
  topic: string
  aggregatetype: string
  aggregateid: string
  type: string
  /** Payload JSON text (kept as text so big numbers survive); null when not asked for. */
  payload: string | null
  /** Size of the payload's JSON text in bytes. */
  payload_bytes: number
  headers: Record<string, unknown> | null
  attempts: number
  last_error: string | null
  created_at: Date
  /** When it died (`available_at` of a dead row). */
  died_at: Date
  /** `seq` as text (a bigint): the page cursor. */
  seq: string
}

/** A page row: {@link DeadRow} plus how many rows the page query read before the byte budget. */
export interface DeadPageRow extends DeadRow {
  /** Rows read (at most `limit`); more than the rows returned when the byte budget cut the page. */
  fetched: string
}

/**
 * Bytes a row is counted for against a page's budget: what it adds to the JSON answer, roughly
 * (payload when asked for, headers, last_error, plus 256 for the fixed fields).
 */
const ROW_BYTES = `(CASE WHEN $4::boolean THEN octet_length(payload::text) ELSE 0 END
    + octet_length(headers::text) + coalesce(octet_length(last_error), 0) + 256)`

/**
 * A page of dead rows in `seq` order (oldest first), after the cursor `afterSeq` (keyset
 * pagination: stable while rows are retried or added, unlike OFFSET), at most `limit` rows and
 * at most `maxBytes` (the first row always comes, however large, so paging always advances:
 * `running = row_bytes` only on the first row).
 * Payloads only with `withPayload`. Dead rows are few by nature, and the partial index on
 * unfinished rows `(topic, aggregateid, seq) WHERE status <> 'published'` keeps the scan off the
 * published bulk of the table.
 *
 * @param params.afterSeq - cursor: the `seq` of the last row of the previous page, or undefined
 * @param params.limit - page size in rows
 * @param params.maxBytes - page size in bytes (see `ROW_BYTES`)
 * @param [params.topics] - only these topics
 * @example
 * listDead({ table: 'outbox_event', limit: 50, maxBytes: 262_144, withPayload: false })
 */
export function listDead(params: {
  table: string
  limit: number
  maxBytes: number
  withPayload: boolean
  afterSeq?: string | undefined
  topics?: string[] | undefined
}): SqlStatement<DeadPageRow> {
  const t = quoteTable(params.table)
  const topics = topicFilter(params.topics)
  return {
    text: `SELECT id, topic, aggregatetype, aggregateid, type, CASE WHEN $4::boolean THEN payload::text END AS payload,
  payload_bytes, headers, attempts, last_error, created_at, died_at, seq::text AS seq, fetched::text AS fetched
FROM (
  SELECT page.*, sum(row_bytes) OVER (ORDER BY seq) AS running, count(*) OVER () AS fetched
  FROM (
    SELECT id, topic, aggregatetype, aggregateid, type, payload, octet_length(payload::text) AS payload_bytes, headers,
      attempts, last_error, created_at, available_at AS died_at, seq, ${ROW_BYTES} AS row_bytes
    FROM ${t}
    WHERE status = 'dead' AND ($1::bigint IS NULL OR seq > $1::bigint) AND ($2::text[] IS NULL OR topic = ANY($2::text[]))
    ORDER BY seq
    LIMIT $3
  ) AS page
) AS sized
WHERE running <= $5 OR running = row_bytes
ORDER BY sized.seq`,
    values: [params.afterSeq ?? null, topics, params.limit, params.withPayload, params.maxBytes],
  }
}

/**
 * One dead row by id, with its payload; no row when the id is not a dead row.
 * @example
 * getDead({ table: 'outbox_event', id: '0190…' })
 */
export function getDead(params: { table: string; id: string }): SqlStatement<DeadRow> {
  const t = quoteTable(params.table)
  return {
    text: `SELECT id, topic, aggregatetype, aggregateid, type, payload::text AS payload, octet_length(payload::text) AS payload_bytes,
  headers, attempts, last_error, created_at, available_at AS died_at, seq::text AS seq
FROM ${t}
WHERE id = $1::uuid AND status = 'dead'`,
    values: [params.id],
  }
}

/** Which dead rows an operator action touches: ids, topics, or (both undefined) all. */
export interface DeadRowsWhere {
  table: string
  ids?: string[] | undefined
  topics?: string[] | undefined
}

/**
 * Operator action: deletes dead rows for good, the given ids, the given topics, or (both
 * undefined) every dead row. Only `dead` rows go. Deleting a dead row lets the later rows of its
 * key through under `deadLetterPolicy: 'block-key'`, so run it under the (shared) claim lock, like
 * `retryDead`. `rowCount` is the number of rows deleted.
 *
 * @example
 * discardDead({ table: 'outbox_event', ids: ['0190…'] })
 */
export function discardDead(params: DeadRowsWhere): SqlStatement<never> {
  const t = quoteTable(params.table)
  return {
    text: `DELETE FROM ${t}
WHERE status = 'dead' AND ($1::uuid[] IS NULL OR id = ANY($1::uuid[])) AND ($2::text[] IS NULL OR topic = ANY($2::text[]))`,
    values: [params.ids ?? null, params.topics ?? null],
  }
}

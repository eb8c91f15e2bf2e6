/**
 * Backlog statistics and the `remaining` count of a drain.
 * @module
 */
import type { SqlStatement } from '../db.js'
import { quoteTable, topicFilter } from './table.js'

/** One row per topic that has unfinished (pending or dead) rows. */
export interface TopicStatsRow {
  topic: string
  /** bigint counts come back as strings from pg. */
  pending: string
  due: string
  in_flight: string
  dead: string
  oldest_pending_age_ms: number | null
}

/**
 * Per-topic counts over unfinished rows only (`status <> 'published'`, a partial index), so the
 * cost follows the backlog, not the table size. `due` = pending and `available_at <= now`;
 * `in_flight` = leased right now; oldest pending age is measured from `created_at`.
 *
 * @example
 * stats({ table: 'outbox_event' })
 */
export function stats(params: { table: string }): SqlStatement<TopicStatsRow> {
  const t = quoteTable(params.table)
  return {
    text: `SELECT topic,
  count(*) FILTER (WHERE status = 'pending') AS pending,
  count(*) FILTER (WHERE status = 'pending' AND available_at <= statement_timestamp()) AS due,
  count(*) FILTER (WHERE status = 'pending' AND locked_until >= statement_timestamp()) AS in_flight,
  count(*) FILTER (WHERE status = 'dead') AS dead,
  (extract(epoch FROM statement_timestamp() - min(created_at) FILTER (WHERE status = 'pending')) * 1000)::float8
    AS oldest_pending_age_ms
FROM ${t}
WHERE status <> 'published'
GROUP BY topic
ORDER BY topic`,
    values: [],
  }
}

/**
 * How many pending rows are due now (optionally for some topics): the `remaining` of a drain.
 * Leased rows count too: they are not finished.
 *
 * @example
 * countDue({ table: 'outbox_event', topics: ['outbox.event.employee'] })
 */
export function countDue(params: { table: string; topics?: string[] | undefined }): SqlStatement<{
  /** bigint, as text */
  n: string
}> {
  const t = quoteTable(params.table)
  const topics = topicFilter(params.topics)
  return {
    text: `SELECT count(*)::bigint AS n FROM ${t}
WHERE status = 'pending' AND available_at <= statement_timestamp() AND ($1::text[] IS NULL OR topic = ANY($1::text[]))`,
    values: [topics],
  }
}

/** The first row waiting for a relay (see {@link firstWaiting}). */
export interface FirstWaitingRow {
  /** bigint, as text */
  seq: string
  /** How long it has been due, ms. */
  waited_ms: number
}

/**
 * The first pending row in `seq` order that is due, not leased and first of its topic + key among
 * the unfinished rows (optionally of some topics): the row a relay that keeps up claims next. A
 * row behind an earlier unfinished row of its key is left out: that row is claimed first, or it
 * holds the key (leased, waiting for a retry, dead under 'block-key'), and a held row would stay
 * first in line however well the relays keep up. A standby watcher that finds the same row here at
 * two polls in a row knows no relay claimed it in between. It reads the index of pending rows in
 * `seq` order and stops at the first such row, probing each row's key in the index of unfinished
 * rows; it passes only the rows leased, not due or held before it.
 *
 * @example
 * firstWaiting({ table: 'outbox_event' })
 */
export function firstWaiting(params: {
  table: string
  topics?: string[] | undefined
}): SqlStatement<FirstWaitingRow> {
  const t = quoteTable(params.table)
  const topics = topicFilter(params.topics)
  return {
    // ORDER BY o.seq, the bigint: a bare `seq` would name the text column of the result.
    text: `SELECT o.seq::text AS seq, (extract(epoch FROM statement_timestamp() - o.available_at) * 1000)::float8 AS waited_ms
FROM ${t} AS o
WHERE o.status = 'pending' AND o.available_at <= statement_timestamp()
  AND (o.locked_until IS NULL OR o.locked_until < statement_timestamp())
  AND ($1::text[] IS NULL OR o.topic = ANY($1::text[]))
  AND NOT EXISTS (
    SELECT 1 FROM ${t} AS e
    WHERE e.topic = o.topic AND e.aggregateid = o.aggregateid AND e.seq < o.seq AND e.status <> 'published'
  )
ORDER BY o.seq
LIMIT 1`,
    values: [topics],
  }
}

/**
 * Backlog statistics and the `remaining` count of a drain.
 * @module
 */
import type { SqlStatement } from '../db.js'
import { quoteTable } from './table.js'

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
  const topics = params.topics && params.topics.length > 0 ? params.topics : null
  return {
    text: `SELECT count(*)::bigint AS n FROM ${t}
WHERE status = 'pending' AND available_at <= statement_timestamp() AND ($1::text[] IS NULL OR topic = ANY($1::text[]))`,
    values: [topics],
  }
}

/**
 * The backlog statistics an engine reports (`/stats`), from the stats statement's rows.
 * @module
 */
import type { TopicStatsRow } from './sql/stats.js'

/** Backlog statistics of one topic. */
export interface TopicStats {
  topic: string
  pending: number
  /** Pending and due now (not waiting for a retry). */
  due: number
  /** Leased by a relay right now. */
  inFlight: number
  dead: number
  /** Age of the oldest pending row in ms, `null` without pending rows. */
  oldestPendingAgeMs: number | null
}

/** Totals plus per-topic rows. */
export interface OutboxStats extends Omit<TopicStats, 'topic'> {
  topics: TopicStats[]
}

/** Totals and per-topic rows of the stats statement's rows. @internal */
export function toOutboxStats(rows: TopicStatsRow[]): OutboxStats {
  const topics: TopicStats[] = rows.map((r) => ({
    topic: r.topic,
    pending: Number(r.pending),
    due: Number(r.due),
    inFlight: Number(r.in_flight),
    dead: Number(r.dead),
    oldestPendingAgeMs: r.oldest_pending_age_ms === null ? null : Math.round(Number(r.oldest_pending_age_ms)),
  }))
  const sum = (f: (t: TopicStats) => number) => topics.reduce((acc, t) => acc + f(t), 0)
  const ages = topics.map((t) => t.oldestPendingAgeMs).filter((a): a is number => a !== null)
  return {
    pending: sum((t) => t.pending),
    due: sum((t) => t.due),
    inFlight: sum((t) => t.inFlight),
    dead: sum((t) => t.dead),
    oldestPendingAgeMs: ages.length > 0 ? Math.max(...ages) : null,
    topics,
  }
}

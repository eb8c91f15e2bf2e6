/**
 * Prometheus metrics of the relay, rendered as text exposition format 0.0.4. No client library:
 * a handful of counters and gauges come from the engine (`counters()`, `stats()`) and one
 * histogram is fed by drains. Backlog gauges carry a `topic` label only (no unlabelled total
 * that a `sum()` would double count): alert on `sum(outbox_backlog_pending)` or
 * `max(outbox_oldest_pending_age_seconds)`.
 * @module
 */
import type { DrainResult, EngineCounters, EngineHooks, OutboxStats } from '../core/engine.js'

/** Upper bounds of the drain duration histogram, in seconds. */
export const DRAIN_DURATION_BUCKETS = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
] as const

/**
 * Metrics state shared by an engine (through {@link RelayMetrics.hooks}) and the app that
 * renders it. Each drain result is counted once, whether it arrives through the hook, through
 * the app, or both.
 */
export interface RelayMetrics {
  /** Pass to `createEngine({ hooks })` so drains run outside the app (CLI, watch) are measured too. */
  readonly hooks: EngineHooks
  /** Records a drain (idempotent per result object). */
  observeDrain(result: DrainResult): void
  /** Renders the exposition text. `stats` undefined means the database could not be read. */
  render(input: { counters: EngineCounters; stats: OutboxStats | undefined }): string
}

/**
 * Creates the metrics state.
 *
 * @param [options.prefix='outbox'] - metric name prefix
 * @example
 * const metrics = createRelayMetrics()
 * const engine = createEngine({ pool, publisher, hooks: metrics.hooks })
 * const app = createRelayApp({ engine, pool, metrics, auth: { token } })
 */
export function createRelayMetrics(options: { prefix?: string } = {}): RelayMetrics {
  const prefix = options.prefix ?? 'outbox'
  if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(prefix)) throw new Error(`invalid metric prefix "${prefix}"`)
  const seen = new WeakSet<DrainResult>()
  const buckets = DRAIN_DURATION_BUCKETS.map(() => 0)
  let count = 0
  let sum = 0

  const observeDrain = (result: DrainResult) => {
    if (seen.has(result)) return
    seen.add(result)
    const seconds = result.durationMs / 1000
    count++
    sum += seconds
    DRAIN_DURATION_BUCKETS.forEach((le, i) => {
      if (seconds <= le) buckets[i] = (buckets[i] as number) + 1
    })
  }

  return {
    hooks: { onDrain: observeDrain },
    observeDrain,
    render({ counters, stats }) {
      const out: string[] = []
      const metric = (name: string, type: string, help: string, samples: Array<[string, number]>) => {
        out.push(`# HELP ${prefix}_${name} ${help}`, `# TYPE ${prefix}_${name} ${type}`)
        for (const [labels, value] of samples) out.push(`${prefix}_${name}${labels} ${formatValue(value)}`)
      }
      metric('stats_up', 'gauge', '1 when the backlog statistics could be read from the database.', [
        ['', stats ? 1 : 0],
      ])
      if (stats) {
        const perTopic = (f: (t: OutboxStats['topics'][number]) => number | null) =>
          stats.topics
            .map((t) => [`{topic="${escapeLabel(t.topic)}"}`, f(t)] as [string, number | null])
            .filter((s): s is [string, number] => s[1] !== null)
        metric(
          'backlog_pending',
          'gauge',
          'Pending outbox rows (not yet published), by topic.',
          perTopic((t) => t.pending),
        )
        metric(
          'backlog_due',
          'gauge',
          'Pending rows due now (not waiting for a retry), by topic.',
          perTopic((t) => t.due),
        )
        metric(
          'backlog_in_flight',
          'gauge',
          'Rows leased by a relay right now, by topic.',
          perTopic((t) => t.inFlight),
        )
        metric(
          'dead',
          'gauge',
          'Dead rows waiting for an operator, by topic.',
          perTopic((t) => t.dead),
        )
        metric(
          'oldest_pending_age_seconds',
          'gauge',
          'Age of the oldest pending row, by topic (absent without pending rows).',
          perTopic((t) => (t.oldestPendingAgeMs === null ? null : t.oldestPendingAgeMs / 1000)),
        )
      }
      metric('relay_published_total', 'counter', 'Rows published by this relay process.', [
        ['', counters.published],
      ])
      metric('relay_retried_total', 'counter', 'Failed publishes scheduled for a retry.', [
        ['', counters.retried],
      ])
      metric('relay_dead_total', 'counter', 'Rows this relay marked dead.', [['', counters.dead]])
      metric('relay_publish_failures_total', 'counter', 'Batches with at least one failed publish.', [
        ['', counters.publishFailures],
      ])
      metric(
        'relay_lost_leases_total',
        'counter',
        'Published rows whose lease had been taken over before marking.',
        [['', counters.lostLeases]],
      )
      metric(
        'relay_deferred_total',
        'counter',
        'Rows sent back unpublished after a broker or network failure (no attempt counted).',
        [['', counters.deferred]],
      )
      metric(
        'relay_unsettled_total',
        'counter',
        'Rows whose send timed out; they keep their lease until it expires (no attempt counted).',
        [['', counters.unsettled]],
      )
      metric('relay_pauses_total', 'counter', 'Relay-wide pauses after a broker or network failure.', [
        ['', counters.pauses],
      ])
      metric('relay_drains_total', 'counter', 'Drains started.', [['', counters.drains]])
      metric('relay_batches_total', 'counter', 'Batches claimed.', [['', counters.batches]])
      const name = `${prefix}_relay_drain_duration_seconds`
      out.push(`# HELP ${name} Duration of drains.`, `# TYPE ${name} histogram`)
      DRAIN_DURATION_BUCKETS.forEach((le, i) => {
        out.push(`${name}_bucket{le="${le}"} ${buckets[i]}`)
      })
      out.push(
        `${name}_bucket{le="+Inf"} ${count}`,
        `${name}_sum ${formatValue(sum)}`,
        `${name}_count ${count}`,
      )
      return `${out.join('\n')}\n`
    },
  }
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN'
  if (value === Number.POSITIVE_INFINITY) return '+Inf'
  if (value === Number.NEGATIVE_INFINITY) return '-Inf'
  return Number.isInteger(value) ? String(value) : String(Math.round(value * 1e6) / 1e6)
}

/** Escapes a label value: backslash, double quote and newline. */
export function escapeLabel(value: string): string {
  return value.replaceAll('\\', '\\\\').replaceAll('"', '\\"').replaceAll('\n', '\\n')
}

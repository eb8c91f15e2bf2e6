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
  /** The metric families, for another registry (see `registerRelayMetrics`). */
  collect(input: MetricsInput): MetricFamily[]
  /** Renders the exposition text. `stats` undefined means the database could not be read. */
  render(input: MetricsInput): string
}

/** What the metrics are computed from. `stats` undefined means the database could not be read. */
export interface MetricsInput {
  counters: EngineCounters
  stats: OutboxStats | undefined
}

/** One sample: `name + suffix{labels} value`. */
export interface MetricSample {
  /** `_bucket`, `_sum` or `_count` of a histogram. */
  suffix?: string
  labels: Record<string, string>
  value: number
}

/** One metric with its samples. */
export interface MetricFamily {
  name: string
  type: 'counter' | 'gauge' | 'histogram'
  help: string
  samples: MetricSample[]
}

/**
 * The drain duration histogram (cumulative buckets, sum, count). A drain result is counted once
 * however often it is observed: the engine's hook and the app may both report it.
 */
class DrainHistogram {
  private readonly seen = new WeakSet<DrainResult>()
  private readonly buckets = DRAIN_DURATION_BUCKETS.map(() => 0)
  private count = 0
  private sum = 0

  observe(result: DrainResult): void {
    if (this.seen.has(result)) return
    this.seen.add(result)
    const seconds = result.durationMs / 1000
    this.count++
    this.sum += seconds
    DRAIN_DURATION_BUCKETS.forEach((le, i) => {
      if (seconds <= le) this.buckets[i] = (this.buckets[i] as number) + 1
    })
  }

  samples(): MetricSample[] {
    return [
      ...DRAIN_DURATION_BUCKETS.map((le, i) => ({
        suffix: '_bucket',
        labels: { le: String(le) },
        value: this.buckets[i] as number,
      })),
      { suffix: '_bucket', labels: { le: '+Inf' }, value: this.count },
      { suffix: '_sum', labels: {}, value: this.sum },
      { suffix: '_count', labels: {}, value: this.count },
    ]
  }
}

type TopicStats = OutboxStats['topics'][number]

/** The backlog gauges, one sample per topic: name (after the prefix), help, value (null: no sample). */
const BACKLOG_GAUGES: ReadonlyArray<readonly [string, string, (t: TopicStats) => number | null]> = [
  ['backlog_pending', 'Pending outbox rows (not yet published), by topic.', (t) => t.pending],
  ['backlog_due', 'Pending rows due now (not waiting for a retry), by topic.', (t) => t.due],
  ['backlog_in_flight', 'Rows leased by a relay right now, by topic.', (t) => t.inFlight],
  ['dead', 'Dead rows waiting for an operator, by topic.', (t) => t.dead],
  [
    'oldest_pending_age_seconds',
    'Age of the oldest pending row, by topic (absent without pending rows).',
    (t) => (t.oldestPendingAgeMs === null ? null : t.oldestPendingAgeMs / 1000),
  ],
]

const one = (value: number): MetricSample[] => [{ labels: {}, value }]

/** The families of one scrape, names without the prefix: stats_up, backlog gauges, counters. */
function engineFamilies({ counters, stats }: MetricsInput): MetricFamily[] {
  const out: MetricFamily[] = [
    {
      name: 'stats_up',
      type: 'gauge',
      help: '1 when the backlog statistics could be read from the database.',
      samples: one(stats ? 1 : 0),
    },
  ]
  if (stats)
    for (const [name, help, value] of BACKLOG_GAUGES) {
      const samples = stats.topics.flatMap((t) => {
        const v = value(t)
        return v === null ? [] : [{ labels: { topic: t.topic }, value: v }]
      })
      out.push({ name, type: 'gauge', help, samples })
    }
  for (const [name, key, help] of COUNTERS)
    out.push({ name, type: 'counter', help, samples: one(counters[key]) })
  return out
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
  const histogram = new DrainHistogram()
  const observeDrain = (result: DrainResult) => histogram.observe(result)
  const collect = (input: MetricsInput): MetricFamily[] => [
    ...engineFamilies(input).map((f) => ({ ...f, name: `${prefix}_${f.name}` })),
    {
      name: `${prefix}_relay_drain_duration_seconds`,
      type: 'histogram',
      help: 'Duration of drains.',
      samples: histogram.samples(),
    },
  ]
  return {
    hooks: { onDrain: observeDrain },
    observeDrain,
    collect,
    render: (input) => renderFamilies(collect(input)),
  }
}

/** The engine's counters as exposed: metric name (after the prefix), counter key, help. */
const COUNTERS: ReadonlyArray<readonly [string, Exclude<keyof EngineCounters, 'lastBatchAt'>, string]> = [
  ['relay_published_total', 'published', 'Rows published by this relay process.'],
  ['relay_retried_total', 'retried', 'Failed publishes scheduled for a retry.'],
  ['relay_dead_total', 'dead', 'Rows this relay marked dead.'],
  ['relay_publish_failures_total', 'publishFailures', 'Batches with at least one failed publish.'],
  ['relay_lost_leases_total', 'lostLeases', 'Published rows whose lease had been taken over before marking.'],
  [
    'relay_deferred_total',
    'deferred',
    'Rows sent back unpublished after a broker or network failure (no attempt counted).',
  ],
  [
    'relay_unsettled_total',
    'unsettled',
    'Rows whose send timed out; they keep their lease until it expires (no attempt counted).',
  ],
  ['relay_pauses_total', 'pauses', 'Relay-wide pauses after a broker or network failure.'],
  ['relay_drains_total', 'drains', 'Drains started.'],
  ['relay_batches_total', 'batches', 'Batches claimed.'],
]

/** Text exposition format 0.0.4 of `families`. */
export function renderFamilies(families: MetricFamily[]): string {
  const out: string[] = []
  for (const f of families) {
    out.push(`# HELP ${f.name} ${f.help}`, `# TYPE ${f.name} ${f.type}`)
    for (const s of f.samples) {
      const labels = Object.entries(s.labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`)
      const text = labels.length > 0 ? `{${labels.join(',')}}` : ''
      out.push(`${f.name}${s.suffix ?? ''}${text} ${formatValue(s.value)}`)
    }
  }
  return `${out.join('\n')}\n`
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

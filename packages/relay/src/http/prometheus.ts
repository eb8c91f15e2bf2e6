/**
 * The relay's metrics in an app's own prom-client `Registry`, with the names, types and labels of
 * `GET /metrics`. prom-client is not imported: the collectors are the plain objects its registry
 * reads (`name`, `help`, `type`, `get()`), so it stays an optional peer dependency.
 * @module
 */
import type { Engine } from '../core/engine.js'
import { newCounters } from '../core/reports.js'
import { createRelayMetrics, type MetricFamily, type RelayMetrics } from './metrics.js'

/** One sample as prom-client's registry reads it. */
export interface PromSample {
  value: number
  labels: Record<string, string>
  metricName?: string
}

/** What `registry.registerMetric` receives: a collector read at each scrape. */
export interface PromCollector {
  name: string
  help: string
  type: MetricFamily['type']
  aggregator: 'sum'
  get(): Promise<{
    name: string
    help: string
    type: MetricFamily['type']
    aggregator: 'sum'
    values: PromSample[]
  }>
  reset(): void
}

/**
 * A prom-client `Registry` (or anything with `registerMetric`). The parameter is `never` so that
 * prom-client's generic signature fits; it receives {@link PromCollector}s.
 */
export interface PromRegistryLike {
  registerMetric(metric: never): void
}

/** Options of {@link registerRelayMetrics}. */
export interface RegisterRelayMetricsOptions {
  /** Its counters and backlog statistics are read at each scrape. */
  engine: Pick<Engine, 'counters' | 'stats'>
  /**
   * The metrics state whose `hooks` the engine got (`createEngine({ hooks: metrics.hooks })`),
   * for the drain duration histogram; without it the histogram stays empty.
   */
  metrics?: RelayMetrics | undefined
  /** Statistics read at most this often, ms (default 1000): one scrape reads the database once. */
  statsMaxAgeMs?: number | undefined
}

/**
 * Registers the relay's metrics (`outbox_backlog_pending{topic}`, `outbox_relay_published_total`,
 * … as on `GET /metrics`) on a prom-client registry; returns their names. The backlog gauges
 * query the database when scraped (once per `statsMaxAgeMs`); when that fails `outbox_stats_up`
 * is 0 and the backlog gauges have no samples.
 *
 * @example
 * import { Registry } from 'prom-client'
 * const registry = new Registry()
 * const metrics = createRelayMetrics()
 * const engine = createEngine({ pool, publisher, hooks: metrics.hooks })
 * registerRelayMetrics(registry, { engine, metrics })
 */
export function registerRelayMetrics(
  registry: PromRegistryLike,
  options: RegisterRelayMetricsOptions,
): string[] {
  const metrics = options.metrics ?? createRelayMetrics()
  const maxAge = options.statsMaxAgeMs ?? 1_000
  let last: { at: number; families: Promise<MetricFamily[]> } | undefined
  const families = (): Promise<MetricFamily[]> => {
    if (!last || Date.now() - last.at > maxAge) {
      const read = options.engine.stats().then(
        (stats) => stats,
        () => undefined,
      )
      last = {
        at: Date.now(),
        families: read.then((stats) => metrics.collect({ counters: options.engine.counters(), stats })),
      }
    }
    return last.families
  }
  // Every family that can appear: the backlog ones only exist when the statistics could be read.
  const shapes = metrics.collect({ counters: newCounters(), stats: { ...emptyStats(), topics: [] } })
  for (const shape of shapes) {
    const { name, help, type } = shape
    const collector: PromCollector = {
      name,
      help,
      type,
      aggregator: 'sum',
      async get() {
        const family = (await families()).find((f) => f.name === name)
        const values = (family?.samples ?? []).map((s) => ({
          value: s.value,
          labels: s.labels,
          ...(s.suffix ? { metricName: `${name}${s.suffix}` } : {}),
        }))
        return { name, help, type, aggregator: 'sum', values }
      },
      reset() {},
    }
    registry.registerMetric(collector as never)
  }
  return shapes.map((s) => s.name)
}

function emptyStats() {
  return { pending: 0, due: 0, inFlight: 0, dead: 0, oldestPendingAgeMs: null }
}

/**
 * The inbox's counters in an app's own prom-client `Registry`. prom-client is not imported: the
 * collectors are the plain objects its registry reads (`name`, `help`, `type`, `get()`), so it
 * stays an optional peer dependency.
 * @module
 */
import { InboxError } from './errors.js'
import type { InboxCounters } from './failure.js'

/** A prom-client `Registry` (or anything with `registerMetric`); `never` lets prom-client's generic signature fit. */
export interface PromRegistryLike {
  registerMetric(metric: never): void
}

/** The counters as exposed: metric name (after the prefix), counter key, help. */
const COUNTERS: ReadonlyArray<readonly [string, keyof InboxCounters, string]> = [
  ['processed_total', 'processed', 'Events handled and recorded in the inbox.'],
  ['duplicates_total', 'duplicates', 'Events skipped because the inbox had already recorded them.'],
  ['retries_total', 'retries', 'Failed handler attempts that were retried.'],
  ['dead_lettered_total', 'deadLettered', 'Messages sent to the dead-letter topic.'],
  ['failed_total', 'failed', 'Messages given up on with no dead-letter topic (the error was rethrown).'],
  ['recorded_failed_total', 'recordedFailed', 'Events given up on and recorded as failed in the inbox.'],
]

/**
 * Registers counters of one or more inboxes, labelled by `consumer`
 * (`outbox_inbox_processed_total{consumer="billing"}`, …); returns the registered names.
 *
 * @param [options.prefix='outbox_inbox'] - metric name prefix
 * @example
 * const registry = new Registry()
 * registerInboxMetrics(registry, { inboxes: { billing: inbox } })
 */
export function registerInboxMetrics(
  registry: PromRegistryLike,
  options: { inboxes: Record<string, { counters(): InboxCounters }>; prefix?: string },
): string[] {
  const prefix = options.prefix ?? 'outbox_inbox'
  if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(prefix))
    throw new InboxError(
      'INBOX_INVALID_OPTIONS',
      `options.prefix "${prefix}" is not a valid metric name prefix`,
    )
  return COUNTERS.map(([suffix, key, help]) => {
    const name = `${prefix}_${suffix}`
    const collector = {
      name,
      help,
      type: 'counter' as const,
      aggregator: 'sum' as const,
      async get() {
        const values = Object.entries(options.inboxes).map(([consumer, inbox]) => ({
          value: inbox.counters()[key],
          labels: { consumer },
        }))
        return { name, help, type: 'counter' as const, aggregator: 'sum' as const, values }
      },
      reset() {},
    }
    registry.registerMetric(collector as never)
    return name
  })
}

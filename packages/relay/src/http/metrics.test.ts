import { describe, expect, it } from 'vitest'
import type { DrainResult, EngineCounters, OutboxStats } from '../core/engine.js'
import { createRelayMetrics, DRAIN_DURATION_BUCKETS } from './metrics.js'

/** Only the gauges and the histogram are looked at here. */
const counters = { published: 3 } as EngineCounters

const stats: OutboxStats = {
  pending: 1,
  due: 1,
  inFlight: 0,
  dead: 0,
  oldestPendingAgeMs: 250,
  topics: [{ topic: 't', pending: 1, due: 1, inFlight: 0, dead: 0, oldestPendingAgeMs: 250 }],
}

const drain = (durationMs: number): DrainResult => ({
  published: 0,
  retried: 0,
  dead: 0,
  remaining: 0,
  durationMs,
})

describe('createRelayMetrics', () => {
  it('Should list stats_up, the backlog gauges, the counters and the histogram, all prefixed', () => {
    const names = createRelayMetrics({ prefix: 'app' })
      .collect({ counters, stats })
      .map((f) => f.name)
    expect(names.slice(0, 6)).toEqual([
      'app_stats_up',
      'app_backlog_pending',
      'app_backlog_due',
      'app_backlog_in_flight',
      'app_dead',
      'app_oldest_pending_age_seconds',
    ])
    expect(names.at(-1)).toBe('app_relay_drain_duration_seconds')
    expect(names.every((n) => n.startsWith('app_'))).toBe(true)
  })

  it('Should fill the histogram cumulatively, with +Inf and _count equal to the drains seen', () => {
    const metrics = createRelayMetrics()
    for (const ms of [3, 300, 120_000]) metrics.observeDrain(drain(ms))
    const histogram = metrics.collect({ counters, stats: undefined }).at(-1)
    const bucket = (le: string) => histogram?.samples.find((s) => s.labels.le === le)?.value
    expect(bucket('0.005')).toBe(1)
    expect(bucket('0.5')).toBe(2)
    expect(bucket(String(DRAIN_DURATION_BUCKETS.at(-1)))).toBe(2)
    expect(bucket('+Inf')).toBe(3)
    expect(histogram?.samples.filter((s) => s.suffix !== '_bucket')).toEqual([
      { suffix: '_sum', labels: {}, value: 120.303 },
      { suffix: '_count', labels: {}, value: 3 },
    ])
  })
})

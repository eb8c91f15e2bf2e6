/**
 * The relay's metrics in an app's own prom-client registry, after a real drain to Kafka: the same
 * names, types, labels and values as the relay's `GET /metrics`.
 */
import { type TestDatabase, testKafka, uniqueTopic } from '@prisma-outbox/devkit'
import { Counter, Registry } from 'prom-client'
import { describe, expect, it } from 'vitest'
import {
  createEngine,
  createRelayApp,
  createRelayMetrics,
  type KafkaPublisher,
  registerRelayMetrics,
} from '../src/index.js'
import { drainAll, insertRows, useRelayServices } from './helpers.js'

const kafka = testKafka('relay-prometheus-test')
let publisher: KafkaPublisher
let db: TestDatabase
useRelayServices(kafka, { publisher: (p) => (publisher = p), db: (d) => (db = d) })

/** The sample lines (no comments), sorted; the values that move with the clock left out. */
const samples = (text: string) =>
  text
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => (/_sum |_age_seconds/.test(l) ? l.replace(/ \S+$/, ' <time>') : l))
    .sort()

describe('registerRelayMetrics', () => {
  it('Should put the relay metrics in a prom-client registry beside the app metrics, as /metrics has them', async () => {
    const [published, waiting] = [uniqueTopic('relay-prom'), uniqueTopic('relay-prom')]
    await insertRows(db.pool, [
      { topic: published, key: 'a' },
      { topic: published, key: 'b' },
    ])
    const metrics = createRelayMetrics()
    const engine = createEngine({ pool: db.pool, publisher, hooks: metrics.hooks })
    await drainAll([engine])
    await insertRows(db.pool, [{ topic: waiting, key: 'c' }])

    const registry = new Registry()
    const own = new Counter({ name: 'app_requests_total', help: 'Requests.', registers: [registry] })
    own.inc()
    const names = registerRelayMetrics(registry, { engine, metrics })
    expect(names).toContain('outbox_backlog_pending')

    const text = await registry.metrics()
    expect(text).toMatch(/^app_requests_total 1$/m)
    expect(text).toMatch(/^outbox_relay_published_total 2$/m)
    expect(text).toMatch(
      new RegExp(`^outbox_backlog_pending\\{topic="${waiting.replace('.', '\\.')}"\\} 1$`, 'm'),
    )
    expect(text).toMatch(/^# TYPE outbox_relay_drain_duration_seconds histogram$/m)

    const app = createRelayApp({ engine, pool: db.pool, metrics, auth: 'none', logger: { error: () => {} } })
    const own_ = await (await app.request('/metrics')).text()
    expect(samples(text).filter((l) => !l.startsWith('app_'))).toEqual(samples(own_))
  })

  it('Should report stats_up 0 and no backlog samples when the database cannot be read', async () => {
    const registry = new Registry()
    const metrics = createRelayMetrics()
    registerRelayMetrics(registry, {
      engine: {
        counters: createEngine({ pool: db.pool, publisher }).counters,
        stats: () => Promise.reject(new Error('database down')),
      },
      metrics,
    })
    const text = await registry.metrics()
    expect(text).toMatch(/^outbox_stats_up 0$/m)
    expect(text).not.toMatch(/^outbox_backlog_pending/m)
    expect(text).toMatch(/^outbox_relay_published_total 0$/m)
  })
})

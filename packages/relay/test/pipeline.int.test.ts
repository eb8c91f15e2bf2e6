/**
 * Pipelining: a drain claims its next batch while the current one publishes. The rows claimed
 * ahead go back when the drain stops before their turn, a hot key still drains in one call, and
 * order holds. Real PostgreSQL and Kafka.
 */
import {
  collectMessages,
  createTopics,
  type TestDatabase,
  testKafka,
  uniqueTopic,
} from '@prisma-outbox/devkit'
import { describe, expect, it } from 'vitest'
import { type BatchInfo, createEngine, type KafkaPublisher, RelayError } from '../src/index.js'
import {
  expectInsertOrderPerKey,
  insertRows,
  useRelayServices,
  waitClaimable,
  wrapPublisher,
} from './helpers.js'

const kafka = testKafka('relay-pipeline-test')
let publisher: KafkaPublisher
let db: TestDatabase
useRelayServices(kafka, { publisher: (p) => (publisher = p), db: (d) => (db = d) })

/** Pending rows that are leased (claimed and not yet marked or released). */
async function leased(): Promise<number> {
  const { rows } = await db.pool.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM outbox_event WHERE status = 'pending' AND locked_by IS NOT NULL",
  )
  return rows[0]?.n ?? -1
}

describe('pipelined drain', () => {
  it('Should claim the next batch during a publish, and publish every row once in key order', async () => {
    const topic = uniqueTopic('relay')
    await createTopics(kafka, [topic], 3)
    const rows = Array.from({ length: 100 }, (_, i) => ({ topic, key: `k${i % 25}`, payload: { i } }))
    await insertRows(db.pool, rows)
    await waitClaimable(db.pool)
    let leasedDuringPublish = 0
    const engine = createEngine({
      pool: db.pool,
      publisher: wrapPublisher(publisher, {
        // While this batch publishes, the next one is (being) claimed: more rows leased than sent.
        before: async (m) => {
          await new Promise((resolve) => setTimeout(resolve, 30))
          leasedDuringPublish = Math.max(leasedDuringPublish, (await leased()) - m.length)
        },
      }),
      options: { batchSize: 10 },
    })
    const result = await engine.drain()
    expect(result).toMatchObject({ published: 100, remaining: 0 })
    expect(leasedDuringPublish).toBeGreaterThan(0)
    expect(await leased()).toBe(0)
    const messages = await collectMessages(kafka, [topic], { count: 100, settleMs: 1_000 })
    expect(messages).toHaveLength(100)
    expectInsertOrderPerKey(messages, rows)
  })

  it('Should give back the rows claimed ahead when the drain is stopped, at no attempt', async () => {
    const topic = uniqueTopic('relay')
    await insertRows(
      db.pool,
      Array.from({ length: 60 }, (_, i) => ({ topic, key: `k${i}` })),
    )
    await waitClaimable(db.pool)
    const stop = new AbortController()
    const engine = createEngine({
      pool: db.pool,
      publisher: wrapPublisher(publisher, {
        before: async () => {
          // Let the claim ahead of time land, then stop the drain.
          await new Promise((resolve) => setTimeout(resolve, 200))
          stop.abort()
        },
      }),
      options: { batchSize: 10 },
    })
    const result = await engine.drain({ signal: stop.signal })
    expect(result.published).toBe(10)
    expect(await leased()).toBe(0)
    const { rows } = await db.pool.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM outbox_event WHERE status = 'pending' AND attempts = 0",
    )
    expect(rows[0]?.n).toBe(50)
  })

  it('Should give back the rows claimed ahead when the broker fails, and pause at no attempt', async () => {
    const topic = uniqueTopic('relay')
    await insertRows(
      db.pool,
      Array.from({ length: 40 }, (_, i) => ({ topic, key: `k${i}` })),
    )
    await waitClaimable(db.pool)
    const batches: BatchInfo[] = []
    const engine = createEngine({
      pool: db.pool,
      publisher: wrapPublisher(publisher, {
        before: async () => {
          await new Promise((resolve) => setTimeout(resolve, 200))
          throw new RelayError('RELAY_PUBLISH_RETRIABLE', 'the broker is unavailable')
        },
      }),
      options: { batchSize: 10 },
      hooks: { onBatch: (b) => batches.push(b) },
    })
    const result = await engine.drain()
    expect(result.published).toBe(0)
    expect(batches).toHaveLength(1)
    expect(batches[0]).toMatchObject({ deferred: 10 })
    expect(await leased()).toBe(0)
    const { rows } = await db.pool.query<{ attempts: number; n: number }>(
      'SELECT attempts, count(*)::int AS n FROM outbox_event GROUP BY attempts',
    )
    expect(rows).toEqual([{ attempts: 0, n: 40 }])
  })

  it('Should drain a hot key in one call, although nothing of it can be claimed ahead', async () => {
    const topic = uniqueTopic('relay')
    await insertRows(
      db.pool,
      Array.from({ length: 50 }, () => ({ topic, key: 'hot' })),
    )
    await waitClaimable(db.pool)
    const engine = createEngine({ pool: db.pool, publisher, options: { batchSize: 10 } })
    expect(await engine.drain()).toMatchObject({ published: 50, remaining: 0 })
  })
})

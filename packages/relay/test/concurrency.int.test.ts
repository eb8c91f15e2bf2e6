import {
  collectMessages,
  createTopics,
  type TestDatabase,
  testKafka,
  uniqueTopic,
} from '@prisma-outbox/devkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type BatchInfo, createEngine, type KafkaPublisher } from '../src/index.js'
import { drainAll, insertRows, kafkaPublisher, statuses, testDatabase } from './helpers.js'

const kafka = testKafka('relay-concurrency-test')
const publishers: KafkaPublisher[] = []
let db: TestDatabase

beforeAll(async () => {
  db = await testDatabase()
  // One producer per relay, as in production (separate processes).
  for (let i = 0; i < 4; i++) publishers.push(await kafkaPublisher(kafka))
})
afterAll(async () => {
  await Promise.all(publishers.map((p) => p.disconnect()))
  await db.drop()
})

describe.each(['mark', 'delete'] as const)('concurrent relays, publishedRows %s', (publishedRows) => {
  it('Should publish every row exactly once and keep per-key order with 4 relays draining at once', async () => {
    await db.pool.query('DELETE FROM outbox_event') // the other case's rows
    const topic = uniqueTopic('relay')
    await createTopics(kafka, [topic], 6)
    const keys = 200
    const perKey = 25
    const total = keys * perKey
    // Shuffle (seeded) so every batch mixes many keys and each key spans many batches.
    const order = Array.from({ length: total }, (_, i) => i % keys)
    let seed = 42
    const random = () => {
      seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0
      return seed / 2 ** 32
    }
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1))
      ;[order[i], order[j]] = [order[j]!, order[i]!]
    }
    const next = new Array<number>(keys).fill(0)
    const rows = order.map((k) => {
      const n = next[k]!
      next[k] = n + 1
      return { topic, key: `key-${k}`, payload: { k, n } }
    })
    await insertRows(db.pool, rows)

    const batches: BatchInfo[] = []
    const engines = publishers.map((publisher, i) =>
      createEngine({
        pool: db.pool,
        publisher,
        options: { relayId: `relay-${i}`, batchSize: 100, publishedRows },
        hooks: { onBatch: (b) => batches.push(b) },
      }),
    )
    const started = Date.now()
    const results = await drainAll(engines, 60_000)
    const elapsed = Date.now() - started
    const published = results.reduce((n, r) => n + r.published, 0)
    expect(published).toBe(total)
    console.info(
      `4 relays (${publishedRows}): ${total} rows in ${elapsed} ms = ${Math.round((total / elapsed) * 1000)} rows/s, ${batches.length} batches, ` +
        `per relay ${engines.map((e) => e.counters().published).join('/')}`,
    )
    // Every relay did real work (otherwise this would not test concurrency).
    for (const e of engines) expect(e.counters().published).toBeGreaterThan(0)
    expect(await statuses(db.pool)).toEqual(publishedRows === 'mark' ? { published: total } : {})

    const messages = await collectMessages(kafka, [topic], {
      count: total,
      timeoutMs: 60_000,
      settleMs: 2_000,
    })
    const ids = messages.map((m) => m.headers.id)
    expect(messages.length, 'messages received (duplicates would make it larger)').toBe(total)
    expect(new Set(ids).size, 'distinct ids').toBe(total)

    const seen = new Map<string, number[]>()
    for (const m of messages) {
      const { n } = JSON.parse(m.value!) as { n: number }
      const list = seen.get(m.key!) ?? []
      list.push(n)
      seen.set(m.key!, list)
    }
    const outOfOrder = [...seen].filter(([, ns]) => ns.some((n, i) => n !== i))
    expect(outOfOrder.map(([k, ns]) => `${k}: ${ns.join(',')}`).slice(0, 3)).toEqual([])
    expect(seen.size).toBe(keys)
  })
})

import {
  collectMessages,
  createTopics,
  type TestDatabase,
  testKafka,
  uniqueTopic,
} from '@prisma-outbox/devkit'
import { describe, expect, it } from 'vitest'
import {
  type BatchInfo,
  createEngine,
  type EngineOptions,
  type KafkaPublisher,
  type OutboxMessage,
} from '../src/index.js'
import { gate, insertRows, sleep, statuses, useRelayServices, wrapPublisher } from './helpers.js'

const kafka = testKafka('relay-crash-test')
let publisher: KafkaPublisher
let db: TestDatabase
useRelayServices(kafka, { publisher: (p) => (publisher = p), db: (d) => (db = d) })

/**
 * A relay whose drain stops after its first publish until `held` opens (before it marks);
 * `published` opens when that publish returned.
 */
function heldAfterPublish(options: EngineOptions) {
  const held = gate()
  const published = gate()
  const engine = createEngine({
    pool: db.pool,
    options,
    publisher: wrapPublisher(publisher, {
      async after() {
        published.open()
        await held.promise
      },
    }),
  })
  return { drain: engine.drain(), published, held }
}

/** 20 rows over 3 keys on a fresh 3-partition topic. */
async function twentyRows() {
  const topic = uniqueTopic('relay')
  await createTopics(kafka, [topic], 3)
  const ids = await insertRows(
    db.pool,
    Array.from({ length: 20 }, (_, i) => ({ topic, key: `k${i % 3}`, payload: { n: i } })),
  )
  return { topic, ids }
}

describe('crash between publish and mark', () => {
  it('Should republish only the crashed batch, with the same ids, and never let the crashed relay clobber', async () => {
    const { topic, ids } = await twentyRows()

    // Relay A publishes its first batch, then freezes (a crash as far as the database can tell).
    const frozen = gate()
    const aPublished = gate()
    let crashed: OutboxMessage[] = []
    const a = createEngine({
      pool: db.pool,
      options: { relayId: 'relay-a', batchSize: 8, leaseMs: 1_000 },
      publisher: wrapPublisher(publisher, {
        async after(messages) {
          crashed = messages
          aPublished.open()
          await frozen.promise
          throw new Error('crash: relay A lost its process')
        },
      }),
    })
    const aDrain = a.drain()
    await aPublished.promise
    expect(crashed).toHaveLength(8)
    await sleep(1_100) // A's lease expires

    // Relay B reclaims; it too is held after publishing, while A wakes up and reports its failure.
    const b = heldAfterPublish({ relayId: 'relay-b', batchSize: 100 })
    await b.published.promise
    frozen.open()
    const aResult = await aDrain
    // A's failure mark must not touch rows B owns now (locked_by check).
    expect(aResult).toMatchObject({ published: 0 })
    b.held.open()
    expect(await b.drain).toMatchObject({ published: 20, remaining: 0 })
    expect(await statuses(db.pool)).toEqual({ published: 20 })
    const { rows } = await db.pool.query(
      "SELECT count(*)::int AS n FROM outbox_event WHERE attempts <> 0 OR locked_by <> 'relay-b'",
    )
    expect(rows[0].n).toBe(0)

    const messages = await collectMessages(kafka, [topic], { count: 28, settleMs: 2_000 })
    expect(messages).toHaveLength(28)
    const copies = new Map<string, number>()
    for (const m of messages) copies.set(m.headers.id!, (copies.get(m.headers.id!) ?? 0) + 1)
    const crashedIds = new Set(crashed.map((m) => m.id))
    for (const id of ids) expect(copies.get(id), id).toBe(crashedIds.has(id) ? 2 : 1)
    // The crashed batch is the first 8 rows (seq order).
    expect([...crashedIds].sort()).toEqual(ids.slice(0, 8).sort())
    // Deduplicated by id, each key's events arrive in order.
    const firstSeen = new Map<string, number[]>()
    const dedup = new Set<string>()
    for (const m of messages) {
      if (dedup.has(m.headers.id!)) continue
      dedup.add(m.headers.id!)
      const list = firstSeen.get(m.key!) ?? []
      list.push(JSON.parse(m.value!).n)
      firstSeen.set(m.key!, list)
    }
    for (const ns of firstSeen.values()) expect(ns).toEqual([...ns].sort((x, y) => x - y))
  })

  it.each(['mark', 'delete'] as const)(
    'Should let the new owner %s rows when a frozen relay wakes up after losing its lease',
    async (publishedRows) => {
      await twentyRows()
      const frozen = gate()
      const aPublished = gate()
      const aBatches: BatchInfo[] = []
      const a = createEngine({
        pool: db.pool,
        options: { relayId: 'relay-a', batchSize: 8, leaseMs: 1_000, publishedRows },
        hooks: { onBatch: (b) => aBatches.push(b) },
        publisher: wrapPublisher(publisher, {
          async after() {
            aPublished.open()
            await frozen.promise // then returns normally: a late success
          },
        }),
      })
      const aDrain = a.drain({ maxEvents: 8 })
      await aPublished.promise
      await sleep(1_100)
      const b = heldAfterPublish({ relayId: 'relay-b', publishedRows })
      await b.published.promise
      frozen.open()
      // A's mark (or delete) must not touch rows B owns now: B counts and marks them.
      expect(await aDrain).toMatchObject({ published: 0 })
      expect(aBatches[0]).toMatchObject({ size: 8, published: 0, lostLeases: 8 })
      expect(await statuses(db.pool)).toEqual({ pending: 20 })
      b.held.open()
      expect(await b.drain).toMatchObject({ published: 20, remaining: 0 })
      const { rows } = await db.pool.query(
        "SELECT count(*)::int AS n FROM outbox_event WHERE status = 'published' AND locked_by = 'relay-b'",
      )
      expect(rows[0].n).toBe(publishedRows === 'mark' ? 20 : 0)
      expect(await statuses(db.pool)).toEqual(publishedRows === 'mark' ? { published: 20 } : {})
    },
  )
})

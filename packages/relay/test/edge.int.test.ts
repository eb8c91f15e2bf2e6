/**
 * A real drain on an edge runtime: the engine and the HTTP app, bundled from the edge entry points,
 * run inside workerd (Miniflare) against the real PostgreSQL (`pg` over `cloudflare:sockets`) and
 * publish through `FetchPublisher` to a Kafka REST v3 stub that produces to the real broker.
 * The same guarantees as on Node: every row claimed, published and marked; per-key order; no
 * duplicates while nothing crashes, with several invocations draining at once.
 */

import type { TestDatabase } from '@prisma-outbox/devkit'
import {
  type CollectedMessage,
  collectMessages,
  createTopics,
  testKafka,
  uniqueTopic,
} from '@prisma-outbox/devkit'
import type { Miniflare } from 'miniflare'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { bundleWorker, startWorker } from './edge/workerd.js'
import { insertRows, statuses, testDatabase, waitClaimable } from './helpers.js'
import { type KafkaRestStub, startKafkaRestStub } from './kafka-rest.js'

const TOKEN = 'edge-drain-token-'.padEnd(40, 'e')
const kafka = testKafka('outbox-relay-edge-test')
let script: string
let rest: KafkaRestStub
let db: TestDatabase
let worker: Miniflare

beforeAll(async () => {
  script = await bundleWorker()
  rest = await startKafkaRestStub(kafka)
}, 60_000)
afterAll(async () => {
  await rest?.close()
})
beforeEach(async () => {
  db = await testDatabase()
  worker = startWorker(script, {
    DATABASE_URL: db.url,
    KAFKA_REST_URL: rest.url,
    KAFKA_CLUSTER_ID: 'local',
    RELAY_TOKEN: TOKEN,
  })
}, 60_000)
afterEach(async () => {
  await worker?.dispose()
  await db?.drop()
})

interface DrainBody {
  published: number
  remaining: number
  dead: number
}

/** The Worker's `scheduled` handler, as a Cron Trigger fires it. */
async function cron(): Promise<{ outcome: string }> {
  const fetcher = (await worker.getWorker()) as unknown as {
    scheduled(options: { cron: string }): Promise<{ outcome: string }>
  }
  return fetcher.scheduled({ cron: '*/1 * * * *' })
}

async function drainOnce(): Promise<DrainBody> {
  const res = await worker.dispatchFetch('http://relay/drain', {
    method: 'POST',
    headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ budgetMs: 20_000 }),
  })
  const text = await res.text()
  if (res.status !== 200) throw new Error(`POST /drain answered ${res.status}: ${text}`)
  return JSON.parse(text) as DrainBody
}

/** Rows on two topics, `keys` keys each, payload `{ n }` numbered in insertion (= seq) order. */
async function seed(count: number, keys: number): Promise<{ topics: string[]; ids: string[] }> {
  const topics = [uniqueTopic('edge-a'), uniqueTopic('edge-b')]
  await createTopics(kafka, topics, 3)
  const ids = await insertRows(
    db.pool,
    Array.from({ length: count }, (_, n) => ({
      topic: topics[n % 2] as string,
      key: `k${n % keys}`,
      payload: { n },
    })),
  )
  await waitClaimable(db.pool)
  return { topics, ids }
}

function expectDeliveredOnceInOrder(messages: CollectedMessage[], ids: string[]): void {
  const delivered = messages.map((m) => m.headers.id)
  expect(new Set(delivered).size).toBe(delivered.length)
  expect([...delivered].sort()).toEqual([...ids].sort())
  const byKey = new Map<string, number[]>()
  for (const m of messages) {
    const id = `${m.topic}/${m.key}`
    byKey.set(id, [...(byKey.get(id) ?? []), (JSON.parse(m.value ?? '{}') as { n: number }).n])
  }
  for (const order of byKey.values()) expect(order).toEqual([...order].sort((a, b) => a - b))
}

describe('the relay inside workerd', () => {
  it('Should answer /health with the database reached over cloudflare:sockets and the REST endpoint', async () => {
    const res = await worker.dispatchFetch('http://relay/health')
    expect(res.status).toBe(200)
    expect(await res.json()).toMatchObject({ status: 'ok', checks: { database: 'ok', broker: 'ok' } })
  })

  it('Should claim, publish and mark real rows through POST /drain, in per-key order', async () => {
    const { topics, ids } = await seed(120, 8)
    let published = 0
    for (let i = 0; i < 20 && published < ids.length; i++) published += (await drainOnce()).published
    expect(published).toBe(ids.length)
    expect(await statuses(db.pool)).toEqual({ published: ids.length })
    const messages = await collectMessages(kafka, topics, { count: ids.length, settleMs: 500 })
    expectDeliveredOnceInOrder(messages, ids)
    expect(messages[0]?.headers).toMatchObject({ eventType: 'thing.updated', aggregateType: 'thing' })
  })

  it('Should publish each row once when invocations drain at once (three requests and a Cron Trigger)', async () => {
    const { topics, ids } = await seed(300, 12)
    let published = 0
    for (let round = 0; round < 20 && published < ids.length; round++) {
      const before = await statuses(db.pool)
      await Promise.all([drainOnce(), drainOnce(), drainOnce(), cron()])
      published = (await statuses(db.pool)).published ?? 0
      expect(published).toBeGreaterThanOrEqual(before.published ?? 0)
    }
    expect(await statuses(db.pool)).toEqual({ published: ids.length })
    const messages = await collectMessages(kafka, topics, { count: ids.length, settleMs: 1_000 })
    expectDeliveredOnceInOrder(messages, ids)
  })

  it('Should drain on a Cron Trigger alone', async () => {
    const { topics, ids } = await seed(40, 4)
    const result = await cron()
    expect(result.outcome).toBe('ok')
    expect(await statuses(db.pool)).toEqual({ published: ids.length })
    expectDeliveredOnceInOrder(
      await collectMessages(kafka, topics, { count: ids.length, settleMs: 500 }),
      ids,
    )
  })
})

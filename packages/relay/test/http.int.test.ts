/**
 * The HTTP app against real PostgreSQL and Kafka: cron-style (Bearer) and webhook (signed)
 * drains, concurrent drains without duplicates, the budget cap, health, stats, metrics and the
 * dead-letter endpoints.
 */
import {
  collectMessages,
  createTopics,
  type TestDatabase,
  testKafka,
  uniqueTopic,
} from '@prisma-outbox/devkit'
import { Kafka, logLevel } from 'kafkajs'
import { describe, expect, it } from 'vitest'
import {
  createEngine,
  createRelayApp,
  createRelayMetrics,
  type DrainResult,
  type KafkaPublisher,
  kafkaHealthCheck,
  SIGNATURE_HEADER,
  signWebhook,
} from '../src/index.js'
import { insertRows, sleep, statuses, useRelayServices, waitClaimable, wrapPublisher } from './helpers.js'

const kafka = testKafka('relay-http-test')
const TOKEN = 'cron-token-'.padEnd(48, 'x')
const SECRET = 'webhook-secret-'.padEnd(48, 'y')
const bearer = { Authorization: `Bearer ${TOKEN}` }
let publisher: KafkaPublisher
let db: TestDatabase
useRelayServices(kafka, { publisher: (p) => (publisher = p), db: (d) => (db = d) })

function relay(
  options: { batchSize?: number; maxBudgetMs?: number; publisherOverride?: typeof publisher } = {},
) {
  const metrics = createRelayMetrics()
  const engine = createEngine({
    pool: db.pool,
    publisher: options.publisherOverride ?? publisher,
    options: { batchSize: options.batchSize ?? 500 },
    hooks: metrics.hooks,
  })
  const app = createRelayApp({
    engine,
    pool: db.pool,
    metrics,
    auth: { token: TOKEN, webhookSecret: SECRET },
    maxBudgetMs: options.maxBudgetMs,
  })
  return { app, engine }
}

async function json<T = Record<string, unknown>>(res: Response): Promise<T> {
  return (await res.json()) as T
}

/**
 * Sends drain requests until nothing due remains and sums what they did. A single request
 * normally suffices; more are needed only when a transaction elsewhere on the cluster (another
 * test suite) holds back fresh rows for a moment (the claim never overtakes open transactions).
 */
async function drainUntilDone(
  send: () => Response | Promise<Response>,
): Promise<DrainResult & { requests: number }> {
  const total = { published: 0, retried: 0, dead: 0, remaining: 0, durationMs: 0, requests: 0 }
  for (let i = 0; i < 40; i++) {
    const res = await send()
    expect(res.status).toBe(200)
    const r = await json<DrainResult>(res)
    total.published += r.published
    total.retried += r.retried
    total.dead += r.dead
    total.remaining = r.remaining
    total.durationMs += r.durationMs
    total.requests++
    if (r.remaining === 0) break
    await sleep(250)
  }
  return total
}

describe('POST /drain with real Postgres and Kafka', () => {
  it('Should drain real rows to Kafka for a cron-style Bearer request', async () => {
    const topic = uniqueTopic('relay-http')
    await createTopics(kafka, [topic], 3)
    const ids = await insertRows(
      db.pool,
      Array.from({ length: 40 }, (_, i) => ({ topic, key: `k${i % 4}`, payload: { i } })),
    )
    const { app } = relay()
    const result = await drainUntilDone(() => app.request('/drain', { method: 'POST', headers: bearer }))
    expect(result).toMatchObject({ published: 40, retried: 0, dead: 0, remaining: 0 })
    const messages = await collectMessages(kafka, [topic], { count: 40, settleMs: 500 })
    expect(messages.map((m) => m.headers.id).sort()).toEqual([...ids].sort())
    expect(await statuses(db.pool)).toEqual({ published: 40 })
  })

  it('Should drain for a signed webhook and reject its replay without draining again', async () => {
    const topic = uniqueTopic('relay-http')
    const other = uniqueTopic('relay-http')
    await createTopics(kafka, [topic, other], 1)
    await insertRows(db.pool, [
      ...Array.from({ length: 5 }, (_, i) => ({ topic, key: `k${i}` })),
      { topic: other, key: 'x' },
    ])
    const { app } = relay()
    const body = JSON.stringify({ topics: [topic], maxEvents: 100 })
    let headers: Record<string, string> = {}
    const result = await drainUntilDone(async () => {
      // a fresh signature per request: each is single-use
      headers = { [SIGNATURE_HEADER]: await signWebhook(SECRET, body), 'Content-Type': 'application/json' }
      return app.request('/drain', { method: 'POST', headers, body })
    })
    expect(result).toMatchObject({ published: 5, remaining: 0 })
    const messages = await collectMessages(kafka, [topic], { count: 5, settleMs: 300 })
    expect(messages).toHaveLength(5)
    expect(await statuses(db.pool)).toEqual({ published: 5, pending: 1 })

    const replay = await app.request('/drain', { method: 'POST', headers, body })
    expect(replay.status).toBe(401)
    expect(await json(replay)).toEqual({
      error: { code: 'UNAUTHORIZED', message: 'signature already used (replay)' },
    })
    const tampered = await app.request('/drain', {
      method: 'POST',
      headers,
      body: JSON.stringify({ topics: [other] }),
    })
    expect(tampered.status).toBe(401)
    expect(await statuses(db.pool)).toEqual({ published: 5, pending: 1 })
  })

  it('Should publish 2,000 rows exactly once with 4 concurrent POST /drain calls', async () => {
    const topic = uniqueTopic('relay-http')
    await createTopics(kafka, [topic], 4)
    const total = 2_000
    const ids = await insertRows(
      db.pool,
      Array.from({ length: total }, (_, i) => ({ topic, key: `k${i % 50}`, payload: { i } })),
    )
    // Four app instances (four relays), each with its own engine, sharing the database and broker.
    // A batch covers 10 of the 50 keys, so batches of different relays can be in flight at once.
    const apps = Array.from({ length: 4 }, () => relay({ batchSize: 10 }).app)
    const results: DrainResult[] = []
    for (let round = 0; round < 40; round++) {
      const responses = await Promise.all(
        apps.map((a) => a.request('/drain', { method: 'POST', headers: bearer })),
      )
      for (const r of responses) {
        expect(r.status).toBe(200)
        results.push(await json<DrainResult>(r))
      }
      if (results.slice(-4).every((r) => r.remaining === 0)) break
      await sleep(100)
    }
    expect(results.reduce((n, r) => n + r.published, 0)).toBe(total)
    // the work was shared: more than one relay published
    const publishingRelays = new Set(results.flatMap((r, i) => (r.published > 0 ? [i % 4] : [])))
    expect(publishingRelays.size).toBeGreaterThan(1)
    const messages = await collectMessages(kafka, [topic], {
      count: total,
      settleMs: 1_500,
      timeoutMs: 60_000,
    })
    const received = messages.map((m) => m.headers.id)
    expect(received).toHaveLength(total)
    expect(new Set(received).size).toBe(total)
    expect(new Set(received)).toEqual(new Set(ids))
    // per-key order
    for (let k = 0; k < 50; k++) {
      const seen = messages
        .filter((m) => m.key === `k${k}`)
        .map((m) => JSON.parse(m.value as string).i as number)
      expect(seen).toEqual([...seen].sort((a, b) => a - b))
    }
  })

  it('Should stop before the budget, capped by maxBudgetMs, without cutting a batch', async () => {
    const topic = uniqueTopic('relay-http')
    await createTopics(kafka, [topic], 1)
    await insertRows(
      db.pool,
      Array.from({ length: 300 }, (_, i) => ({ topic, key: `k${i}` })),
    )
    const slow = wrapPublisher(publisher, { before: () => sleep(100) }) as KafkaPublisher
    const { app } = relay({ batchSize: 10, maxBudgetMs: 700, publisherOverride: slow })
    await waitClaimable(db.pool)
    const started = Date.now()
    const res = await app.request('/drain', {
      method: 'POST',
      headers: bearer,
      body: JSON.stringify({ budgetMs: 600_000 }),
    })
    const result = await json<DrainResult>(res)
    expect(Date.now() - started).toBeLessThan(5_000)
    expect(result.durationMs).toBeLessThanOrEqual(900)
    expect(result.published).toBeGreaterThan(0)
    expect(result.published % 10).toBe(0) // whole batches only
    expect(result.remaining).toBe(300 - result.published)
    const { rows } = await db.pool.query(
      "SELECT count(*)::int AS n FROM outbox_event WHERE locked_until IS NOT NULL AND status = 'pending'",
    )
    expect(rows[0].n).toBe(0)
  })
})

describe('health, stats, metrics and dead letters with real Postgres and Kafka', () => {
  it('Should report health of the real database and broker, and 503 naming a down broker', async () => {
    const broker = kafkaHealthCheck(kafka)
    const down = kafkaHealthCheck(
      new Kafka({ clientId: 'down', brokers: ['127.0.0.1:1'], logLevel: logLevel.NOTHING }),
      {
        timeoutMs: 1_000,
      },
    )
    try {
      const engine = createEngine({ pool: db.pool, publisher })
      const ok = createRelayApp({ engine, pool: db.pool, auth: 'none', checkBroker: broker.check })
      const res = await ok.request('/health')
      expect(res.status).toBe(200)
      expect(await json(res)).toEqual({ status: 'ok', checks: { database: 'ok', broker: 'ok' } })
      const bad = createRelayApp({
        engine,
        pool: db.pool,
        auth: 'none',
        checkBroker: down.check,
        logger: { error() {}, warn() {} },
      })
      const res2 = await bad.request('/health')
      expect(res2.status).toBe(503)
      expect(await json(res2)).toMatchObject({
        checks: { database: 'ok', broker: 'down' },
        error: { message: 'unreachable: broker' },
      })
    } finally {
      await broker.close()
      await down.close()
    }
  })

  it('Should serve stats and metrics from the real backlog', async () => {
    const topic = uniqueTopic('relay-http')
    await createTopics(kafka, [topic], 1)
    await insertRows(
      db.pool,
      Array.from({ length: 3 }, (_, i) => ({ topic, key: `k${i}` })),
    )
    const { app } = relay()
    const stats = await json(await app.request('/stats', { headers: bearer }))
    expect(stats).toMatchObject({ pending: 3, due: 3, dead: 0, topics: [{ topic, pending: 3 }] })
    const { requests } = await drainUntilDone(() =>
      app.request('/drain', { method: 'POST', headers: bearer }),
    )
    const text = await (await app.request('/metrics', { headers: bearer })).text()
    expect(text).toContain('outbox_relay_published_total 3')
    expect(text).toContain(`outbox_relay_drain_duration_seconds_count ${requests}`)
    expect(text).toContain('outbox_stats_up 1')
  })

  it('Should list dead rows page by page with last_error, retry them, and publish them', async () => {
    const topic = uniqueTopic('relay-http')
    await createTopics(kafka, [topic], 1)
    const ids = await insertRows(
      db.pool,
      Array.from({ length: 5 }, (_, i) => ({ topic, key: `k${i}`, payload: { i } })),
    )
    await db.pool.query(
      "UPDATE outbox_event SET status = 'dead', attempts = 10, last_error = 'gave up after 10 attempts: boom' WHERE id = ANY($1)",
      [ids],
    )
    const { app } = relay()
    const page1 = await json<{
      items: Array<{ id: string; lastError: string; payload: unknown }>
      nextCursor: string
    }>(await app.request('/dead?limit=2&payload=true', { headers: bearer }))
    expect(page1.items.map((i) => i.id)).toEqual(ids.slice(0, 2))
    expect(page1.items[0]).toMatchObject({
      lastError: 'gave up after 10 attempts: boom',
      payload: { i: 0 },
      attempts: 10,
    })
    const page2 = await json<{ items: Array<{ id: string }>; nextCursor: string }>(
      await app.request(`/dead?limit=2&cursor=${page1.nextCursor}`, { headers: bearer }),
    )
    const page3 = await json<{ items: Array<{ id: string }>; nextCursor: string | null }>(
      await app.request(`/dead?limit=2&cursor=${page2.nextCursor}`, { headers: bearer }),
    )
    expect([...page2.items, ...page3.items].map((i) => i.id)).toEqual(ids.slice(2))
    expect(page3.nextCursor).toBeNull()

    const retry = (body: unknown) =>
      app.request('/dead/retry', { method: 'POST', headers: bearer, body: JSON.stringify(body) })
    expect(await json(await retry({ ids: [ids[0], ids[1]] }))).toEqual({ retried: 2 })
    expect(await json(await retry({ ids: [ids[0]] }))).toEqual({ retried: 0 })
    const { rows } = await db.pool.query(
      'SELECT status, attempts, locked_by, available_at <= now() AS due FROM outbox_event WHERE id = $1',
      [ids[0]],
    )
    expect(rows[0]).toEqual({ status: 'pending', attempts: 0, locked_by: null, due: true })
    expect(await json(await retry({ all: true }))).toEqual({ retried: 3 })

    const drained = await drainUntilDone(() => app.request('/drain', { method: 'POST', headers: bearer }))
    expect(drained).toMatchObject({ published: 5, dead: 0, remaining: 0 })
    expect(await collectMessages(kafka, [topic], { count: 5 })).toHaveLength(5)
    expect(await json(await app.request('/dead', { headers: bearer }))).toEqual({
      items: [],
      nextCursor: null,
    })
  })

  it('Should page dead rows in seq order where seq gains a digit (99,999 -> 100,000)', async () => {
    // seq is a bigint; its text ordering would put 100000 before 99998.
    await db.pool.query("SELECT setval(pg_get_serial_sequence('outbox_event', 'seq'), 99996)")
    const ids = await insertRows(
      db.pool,
      Array.from({ length: 6 }, (_, i) => ({ topic: 'dead-digits', key: `k${i}` })),
    )
    await db.pool.query("UPDATE outbox_event SET status = 'dead', last_error = 'boom' WHERE id = ANY($1)", [
      ids,
    ])
    const { app } = relay()
    const seen: string[] = []
    let cursor = ''
    for (let pages = 0; pages < 6; pages++) {
      const page = await json<{ items: Array<{ id: string; seq: string }>; nextCursor: string | null }>(
        await app.request(`/dead?limit=4&cursor=${cursor}`, { headers: bearer }),
      )
      seen.push(...page.items.map((item) => item.id))
      if (!page.nextCursor) break
      cursor = page.nextCursor
    }
    expect(seen).toEqual(ids)
  })

  it('Should page dead rows by bytes: a 1 MB row alone on its page, payloads only on request', async () => {
    const big = { blob: 'x'.repeat(1024 * 1024) }
    const ids = await insertRows(db.pool, [
      { topic: 'dead-bytes', key: 'a', payload: { i: 0 } },
      { topic: 'dead-bytes', key: 'b', payload: big },
      { topic: 'dead-bytes', key: 'c', payload: { i: 2 } },
      { topic: 'dead-bytes', key: 'd', payload: { i: 3 } },
    ])
    await db.pool.query("UPDATE outbox_event SET status = 'dead', last_error = 'boom' WHERE id = ANY($1)", [
      ids,
    ])
    const { app } = relay()
    type Page = {
      items: Array<{ id: string; payload?: unknown; payloadBytes: number }>
      nextCursor: string | null
    }
    const get = async (query: string) => {
      const res = await app.request(`/dead?${query}`, { headers: bearer })
      return { page: await json<Page>(res.clone()), bytes: (await res.arrayBuffer()).byteLength }
    }
    // Without payloads every row fits one small page; sizes are reported.
    const light = await get('')
    expect(light.page.items.map((i) => i.id)).toEqual(ids)
    expect(light.page.items.every((i) => i.payload === undefined)).toBe(true)
    expect(light.page.items[1]?.payloadBytes).toBeGreaterThan(1024 * 1024)
    expect(light.bytes).toBeLessThan(4096)
    // With payloads and a 64 KiB budget: pages of [0], [1 MB row alone], [2, 3].
    const seen: string[][] = []
    let cursor = ''
    for (let i = 0; i < 10; i++) {
      const { page, bytes } = await get(`payload=true&maxBytes=65536&cursor=${cursor}`)
      seen.push(page.items.map((item) => item.id))
      if (!page.items.some((item) => item.payloadBytes > 65536)) expect(bytes).toBeLessThanOrEqual(65536)
      if (!page.nextCursor) break
      cursor = page.nextCursor
    }
    expect(seen).toEqual([[ids[0]], [ids[1]], [ids[2], ids[3]]])
    const one = await json<{ payload: typeof big }>(await app.request(`/dead/${ids[1]}`, { headers: bearer }))
    expect(one.payload.blob).toHaveLength(1024 * 1024)
    const discard = await app.request('/dead/discard', {
      method: 'POST',
      headers: bearer,
      body: JSON.stringify({ topics: ['dead-bytes'] }),
    })
    expect(await json(discard)).toEqual({ discarded: 4 })
    expect(await statuses(db.pool)).toEqual({})
  })
})

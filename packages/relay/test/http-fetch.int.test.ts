/**
 * The whole app on the edge-friendly stack: FetchPublisher (against a fake Kafka REST Proxy)
 * + real PostgreSQL, driven through `app.request`.
 */
import type { TestDatabase } from '@prisma-outbox/devkit'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createEngine, createRelayApp, FetchPublisher } from '../src/index.js'
import { insertRows, statuses, testDatabase, waitClaimable } from './helpers.js'

const TOKEN = 'edge-token-'.padEnd(40, 'z')
const bearer = { Authorization: `Bearer ${TOKEN}` }
let db: TestDatabase

beforeEach(async () => {
  db = await testDatabase()
})
afterEach(async () => {
  await db.drop()
})

interface Produced {
  topic: string
  key: string
  value: string
  headers: Record<string, string>
}

const decode = (b64: string) => new TextDecoder().decode(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)))

/** A fake REST Proxy v3: records produced records; `reject` decides per record. */
function fakeRestProxy(reject: (r: Produced) => number | undefined = () => undefined) {
  const produced: Produced[] = []
  const fetch = (async (input: string | URL | Request, init?: RequestInit) => {
    const url = new URL(String(input))
    const match = /^\/v3\/clusters\/([^/]+)\/topics\/([^/]+)\/records$/.exec(url.pathname)
    if (!match || init?.method !== 'POST')
      return Response.json({ error_code: 404, message: 'not found' }, { status: 404 })
    const body = JSON.parse(String(init.body))
    const record: Produced = {
      topic: decodeURIComponent(match[2] as string),
      key: body.key.data,
      value: decode(body.value.data),
      headers: Object.fromEntries(
        body.headers.map((h: { name: string; value: string }) => [h.name, decode(h.value)]),
      ),
    }
    const status = reject(record)
    if (status) return Response.json({ error_code: status, message: `rejected with ${status}` }, { status })
    produced.push(record)
    return Response.json({
      error_code: 200,
      cluster_id: match[1],
      topic_name: record.topic,
      partition_id: 0,
      offset: produced.length - 1,
    })
  }) as typeof globalThis.fetch
  return { fetch, produced }
}

describe('createRelayApp with FetchPublisher and real Postgres', () => {
  it('Should drain rows through the REST API and mark them published', async () => {
    const proxy = fakeRestProxy()
    const publisher = new FetchPublisher({
      baseUrl: 'https://rest.example.com',
      clusterId: 'lkc-1',
      fetch: proxy.fetch,
    })
    const engine = createEngine({ pool: db.pool, publisher, options: { batchSize: 25 } })
    const app = createRelayApp({
      engine,
      pool: db.pool,
      auth: { token: TOKEN },
      checkBroker: () => publisher.health().catch(() => {}),
    })
    const ids = await insertRows(
      db.pool,
      Array.from({ length: 60 }, (_, i) => ({
        topic: 'outbox.event.order',
        key: `order-${i % 6}`,
        type: 'order.created',
        aggregateType: 'order',
        payload: { i, big: '12345678901234567890' },
        headers: { traceparent: `00-${i}` },
      })),
    )
    let published = 0
    for (let i = 0; i < 20 && published < 60; i++) {
      const res = await app.request('/drain', { method: 'POST', headers: bearer })
      expect(res.status).toBe(200)
      published += ((await res.json()) as { published: number }).published
    }
    expect(published).toBe(60)
    expect(proxy.produced.map((p) => p.headers.id).sort()).toEqual([...ids].sort())
    const first = proxy.produced.find((p) => p.headers.id === ids[0])
    expect(first).toEqual({
      topic: 'outbox.event.order',
      key: 'order-0',
      value: expect.any(String),
      headers: { id: ids[0], eventType: 'order.created', aggregateType: 'order', traceparent: '00-0' },
    })
    expect(JSON.parse(first?.value as string)).toEqual({ i: 0, big: '12345678901234567890' })
    for (let k = 0; k < 6; k++) {
      const order = proxy.produced
        .filter((p) => p.key === `order-${k}`)
        .map((p) => JSON.parse(p.value).i as number)
      expect(order).toEqual([...order].sort((a, b) => a - b))
    }
    expect(await statuses(db.pool)).toEqual({ published: 60 })
  })

  it('Should dead-letter only the record the proxy rejects as too large, list it, and retry it', async () => {
    let tooLarge = true
    const proxy = fakeRestProxy((r) => (tooLarge && JSON.parse(r.value).huge ? 413 : undefined))
    const publisher = new FetchPublisher({
      baseUrl: 'https://rest.example.com',
      clusterId: 'lkc-1',
      fetch: proxy.fetch,
    })
    const engine = createEngine({ pool: db.pool, publisher, options: { deadLetterPolicy: 'continue' } })
    const app = createRelayApp({ engine, pool: db.pool, auth: { token: TOKEN } })
    const ids = await insertRows(db.pool, [
      { topic: 't', key: 'a', payload: { n: 1 } },
      { topic: 't', key: 'b', payload: { n: 2, huge: true } },
      { topic: 't', key: 'c', payload: { n: 3 } },
    ])
    let dead = 0
    let published = 0
    for (let i = 0; i < 20 && published + dead < 3; i++) {
      const r = (await (await app.request('/drain', { method: 'POST', headers: bearer })).json()) as {
        published: number
        dead: number
      }
      published += r.published
      dead += r.dead
    }
    expect({ published, dead }).toEqual({ published: 2, dead: 1 })
    const page = (await (await app.request('/dead', { headers: bearer })).json()) as {
      items: Array<{ id: string; lastError: string }>
    }
    expect(page.items).toHaveLength(1)
    expect(page.items[0]?.id).toBe(ids[1])
    expect(page.items[0]?.lastError).toMatch(/RELAY_PUBLISH_PERMANENT|failed with 413/)

    tooLarge = false
    const retry = await app.request('/dead/retry', {
      method: 'POST',
      headers: bearer,
      body: JSON.stringify({ ids: [ids[1]] }),
    })
    expect(await retry.json()).toEqual({ retried: 1 })
    await waitClaimable(db.pool)
    const again = (await (await app.request('/drain', { method: 'POST', headers: bearer })).json()) as {
      published: number
    }
    expect(again.published).toBe(1)
    expect(await statuses(db.pool)).toEqual({ published: 3 })
  })
})

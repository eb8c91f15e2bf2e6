import {
  collectMessages,
  createTopics,
  type TestDatabase,
  testKafka,
  uniqueTopic,
} from '@prisma-outbox/devkit'
import { describe, expect, it } from 'vitest'
import { type BatchInfo, createEngine, type KafkaPublisher, RelayError } from '../src/index.js'
import { insertRows, sleep, statuses, useRelayServices, waitClaimable, wrapPublisher } from './helpers.js'

const kafka = testKafka('relay-failures-test')
let publisher: KafkaPublisher
let db: TestDatabase
useRelayServices(kafka, { publisher: (p) => (publisher = p), db: (d) => (db = d) })

const outage = () => new RelayError('RELAY_PUBLISH_RETRIABLE', 'broker unavailable (simulated)')
const refused = () => new RelayError('RELAY_PUBLISH_REJECTED', 'topic not authorised (simulated)')

describe('retries', () => {
  it('Should pause after a broker failure and publish later, at no attempt', async () => {
    const topic = uniqueTopic('relay')
    await createTopics(kafka, [topic], 1)
    await insertRows(db.pool, [
      { topic, key: 'a', payload: { n: 1 } },
      { topic, key: 'a', payload: { n: 2 } },
      { topic, key: 'b', payload: { n: 3 } },
    ])
    let failures = 1
    const engine = createEngine({
      pool: db.pool,
      options: { pause: { baseMs: 500, maxMs: 1_000 } },
      publisher: wrapPublisher(publisher, {
        before() {
          if (failures-- > 0) throw outage()
        },
      }),
    })
    expect(await engine.drain()).toMatchObject({ published: 0, retried: 3, dead: 0, remaining: 0 })
    const { rows } = await db.pool.query(
      "SELECT attempts, status, last_error, locked_by, available_at > now() + interval '300 ms' AS later FROM outbox_event",
    )
    for (const r of rows) {
      expect(r).toMatchObject({ attempts: 0, status: 'pending', locked_by: null, later: true })
      expect(r.last_error).toContain('broker unavailable')
    }
    expect(await engine.drain()).toMatchObject({ published: 0 }) // paused, and not due yet
    expect(engine.counters().pauses).toBe(1)
    await sleep(1_100)
    expect(await engine.drain()).toMatchObject({ published: 3, remaining: 0 })
    const messages = await collectMessages(kafka, [topic], { count: 3, settleMs: 500 })
    expect(messages.map((m) => JSON.parse(m.value!).n)).toEqual([1, 2, 3])
  })

  it("Should mark a row dead with last_error after maxAttempts of the event's own failures", async () => {
    const topic = uniqueTopic('relay')
    await insertRows(db.pool, [{ topic, key: 'a' }])
    const engine = createEngine({
      pool: db.pool,
      options: { maxAttempts: 3, backoff: { baseMs: 50, maxMs: 100 } },
      publisher: wrapPublisher(publisher, {
        before() {
          throw refused()
        },
      }),
    })
    const results = []
    for (let i = 0; i < 3; i++) {
      results.push(await engine.drain())
      await sleep(150)
    }
    expect(results.map((r) => [r.retried, r.dead])).toEqual([
      [1, 0],
      [1, 0],
      [0, 1],
    ])
    const { rows } = await db.pool.query('SELECT status, attempts, last_error FROM outbox_event')
    expect(rows[0]).toMatchObject({ status: 'dead', attempts: 3 })
    expect(rows[0].last_error).toMatch(/gave up after 3 attempts: .*topic not authorised/)
    expect(await engine.stats()).toMatchObject({ dead: 1, pending: 0 })
  })
})

describe('poison events', () => {
  const huge = { blob: 'x'.repeat(1_200_000) } // above the broker's message.max.bytes (~1 MB)

  async function poisonScenario(policy: 'block-key' | 'continue', publishedRows: 'mark' | 'delete' = 'mark') {
    const topic = uniqueTopic('relay')
    await createTopics(kafka, [topic], 3)
    const rows = [
      { topic, key: 'P', payload: { n: 1 } },
      ...Array.from({ length: 10 }, (_, i) => ({ topic, key: `ok-${i}`, payload: { n: 100 + i } })),
      { topic, key: 'P', payload: huge },
      ...Array.from({ length: 10 }, (_, i) => ({ topic, key: `ok-${i}`, payload: { n: 200 + i } })),
      { topic, key: 'P', payload: { n: 3 } },
    ]
    const ids = await insertRows(db.pool, rows)
    const poisonId = ids[11]!
    const laterId = ids[22]!
    const engine = createEngine({
      pool: db.pool,
      publisher,
      options: { deadLetterPolicy: policy, publishedRows },
    })
    await waitClaimable(db.pool)
    const result = await engine.drain()
    const { rows: poison } = await db.pool.query(
      'SELECT status, attempts, last_error FROM outbox_event WHERE id = $1',
      [poisonId],
    )
    expect(poison[0]).toMatchObject({ status: 'dead', attempts: 1 })
    expect(poison[0].last_error).toMatch(/MESSAGE_TOO_LARGE|RECORD_LIST_TOO_LARGE|too large/i)
    return { topic, ids, poisonId, laterId, result }
  }

  it("Should send a poison event dead, keep other keys flowing, and hold its key with 'block-key'", async () => {
    const { topic, ids, poisonId, laterId, result } = await poisonScenario('block-key')
    expect(result).toMatchObject({ published: 21, dead: 1, remaining: 1 })
    expect(await statuses(db.pool)).toEqual({ published: 21, dead: 1, pending: 1 })
    const messages = await collectMessages(kafka, [topic], { count: 21, settleMs: 1_500 })
    const received = new Set(messages.map((m) => m.headers.id))
    for (const id of ids) expect(received.has(id), id).toBe(id !== poisonId && id !== laterId)
  })

  it("Should keep the dead and held rows, and delete only the published ones, with publishedRows 'delete'", async () => {
    const { topic, ids, poisonId, laterId, result } = await poisonScenario('block-key', 'delete')
    expect(result).toMatchObject({ published: 21, dead: 1, remaining: 1 })
    expect(await statuses(db.pool)).toEqual({ dead: 1, pending: 1 })
    const { rows: left } = await db.pool.query<{ id: string }>(
      'SELECT id::text AS id FROM outbox_event ORDER BY seq',
    )
    expect(left.map((r) => r.id)).toEqual([poisonId, laterId])
    const messages = await collectMessages(kafka, [topic], { count: 21, settleMs: 1_500 })
    const received = new Set(messages.map((m) => m.headers.id))
    for (const id of ids) expect(received.has(id), id).toBe(id !== poisonId && id !== laterId)
  })

  it("Should let later events of the poison key flow with 'continue'", async () => {
    const { topic, ids, poisonId, result } = await poisonScenario('continue')
    expect(result).toMatchObject({ published: 22, dead: 1, remaining: 0 })
    const messages = await collectMessages(kafka, [topic], { count: 22, settleMs: 1_500 })
    const received = new Set(messages.map((m) => m.headers.id))
    for (const id of ids) expect(received.has(id), id).toBe(id !== poisonId)
    const p = messages.filter((m) => m.key === 'P').map((m) => JSON.parse(m.value!).n)
    expect([...new Set(p)]).toEqual([1, 3])
  })
})

describe('batch info', () => {
  it('Should report the most earlier attempts of a batch, and publish the retried row', async () => {
    const topic = uniqueTopic('relay')
    await createTopics(kafka, [topic], 1)
    const [retriedId, freshId] = await insertRows(db.pool, [
      { topic, key: 'a' },
      { topic, key: 'b' },
    ])
    // A row that failed twice before, due again now.
    await db.pool.query(
      "UPDATE outbox_event SET attempts = 2, last_error = 'NOT_LEADER_FOR_PARTITION' WHERE id = $1",
      [retriedId],
    )
    const batches: BatchInfo[] = []
    const engine = createEngine({ pool: db.pool, publisher, hooks: { onBatch: (b) => batches.push(b) } })
    await waitClaimable(db.pool)
    expect(await engine.drain()).toMatchObject({ published: 2, remaining: 0 })
    expect(batches).toHaveLength(1)
    expect(batches[0]).toMatchObject({ size: 2, published: 2, maxAttempts: 2 })
    const messages = await collectMessages(kafka, [topic], { count: 2 })
    expect(messages.map((m) => m.headers.id).sort()).toEqual([retriedId, freshId].sort())
  })
})

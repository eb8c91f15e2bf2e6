/**
 * A drain claims its next batch while the one before publishes (drain.ts, `runBatches`): these
 * tests hold a publish at a barrier until the next batch is leased, then let it go on, fail, or
 * stop the drain, and check what every row comes to.
 */
import {
  collectMessages,
  createTopics,
  type TestDatabase,
  testKafka,
  uniqueTopic,
} from '@prisma-outbox/devkit'
import { describe, expect, it } from 'vitest'
import {
  createEngine,
  type KafkaPublisher,
  type OutboxMessage,
  type Publisher,
  RelayError,
} from '../src/index.js'
import {
  expectInsertOrderPerKey,
  insertRows,
  type NewRow,
  sleep,
  useRelayServices,
  waitClaimable,
  wrapPublisher,
} from './helpers.js'

const kafka = testKafka('relay-pipeline-test')
let publisher: KafkaPublisher
let db: TestDatabase
useRelayServices(kafka, { publisher: (p) => (publisher = p), db: (d) => (db = d) })

const BATCH = 50

/** Rows of `topic`: `count` rows on `keys` keys, round robin, payload `{ i }`. */
async function rowsOn(topic: string, count: number, keys: number): Promise<NewRow[]> {
  const rows = Array.from({ length: count }, (_, i) => ({ topic, key: `k${i % keys}`, payload: { i } }))
  await insertRows(db.pool, rows)
  await waitClaimable(db.pool)
  return rows
}

/** Pending rows of `topic` that hold a lease, and those that went out with an attempt counted. */
async function leases(topic: string): Promise<{ leased: number; attempted: number; published: number }> {
  const { rows } = await db.pool.query<{ leased: number; attempted: number; published: number }>(
    `SELECT count(*) FILTER (WHERE status = 'pending' AND locked_until > now())::int AS leased,
       count(*) FILTER (WHERE attempts > 0)::int AS attempted,
       count(*) FILTER (WHERE status = 'published')::int AS published
     FROM outbox_event WHERE topic = $1`,
    [topic],
  )
  return rows[0] ?? { leased: 0, attempted: 0, published: 0 }
}

/** Resolves once `n` rows of `topic` are leased (the next batch was claimed beside the first). */
async function untilLeased(topic: string, n: number): Promise<void> {
  const deadline = Date.now() + 10_000
  while ((await leases(topic)).leased < n) {
    if (Date.now() > deadline) throw new Error(`fewer than ${n} rows of ${topic} were ever leased at once`)
    await sleep(10)
  }
}

/**
 * The real publisher, whose first send waits until `2 × BATCH` rows of `topic` are leased (the
 * next batch was claimed beside it); `onSend` runs before every send and may throw in its place.
 */
function holdingFirstSend(
  topic: string,
  onSend: (messages: OutboxMessage[], first: boolean) => void = () => {},
): Publisher {
  let first = true
  return wrapPublisher(publisher, {
    async before(messages) {
      const isFirst = first
      first = false
      if (isFirst) await untilLeased(topic, 2 * BATCH)
      onSend(messages, isFirst)
    },
  })
}

describe('a drain claims its next batch while one publishes', () => {
  it('Should lease the next batch during the first publish and keep every key in order', async () => {
    const topic = uniqueTopic('relay')
    await createTopics(kafka, [topic], 3)
    // Many keys, so that the rows after a batch belong to keys it does not hold.
    const rows = await rowsOn(topic, 6 * BATCH, 4 * BATCH)
    const engine = createEngine({
      pool: db.pool,
      options: { batchSize: BATCH },
      publisher: holdingFirstSend(topic),
    })
    expect(await engine.drain()).toMatchObject({ published: rows.length, retried: 0, remaining: 0 })
    expect(await leases(topic)).toEqual({ leased: 0, attempted: 0, published: rows.length })
    const messages = await collectMessages(kafka, [topic], { count: rows.length, settleMs: 500 })
    expect(messages).toHaveLength(rows.length)
    expectInsertOrderPerKey(messages, rows)
  })

  it('Should keep per-key order with a hot key, many keys and two drains at once', async () => {
    const topic = uniqueTopic('relay')
    await createTopics(kafka, [topic], 3)
    // Every third row on one key, the rest spread over 150 keys.
    const rows = Array.from({ length: 900 }, (_, i) => ({
      topic,
      key: i % 3 === 0 ? 'hot' : `k${i % 150}`,
      payload: { i },
    }))
    await insertRows(db.pool, rows)
    await waitClaimable(db.pool)
    const engines = [0, 1].map(() =>
      createEngine({
        pool: db.pool,
        options: { batchSize: 40 },
        // A little jitter in every send, so that claims, publishes and marks interleave.
        publisher: wrapPublisher(publisher, { before: () => sleep(Math.floor(Math.random() * 8)) }),
      }),
    )
    let published = 0
    for (let round = 0; round < 20 && published < rows.length; round++)
      for (const r of await Promise.all(engines.map((e) => e.drain()))) published += r.published
    expect(published).toBe(rows.length)
    const messages = await collectMessages(kafka, [topic], { count: rows.length, settleMs: 500 })
    expect(messages).toHaveLength(rows.length)
    expectInsertOrderPerKey(messages, rows)
  })

  it('Should release the batch claimed beside one whose broker failed, at no attempt', async () => {
    const topic = uniqueTopic('relay')
    await createTopics(kafka, [topic], 3)
    await rowsOn(topic, 4 * BATCH, 4 * BATCH)
    let sends = 0
    const engine = createEngine({
      pool: db.pool,
      options: { batchSize: BATCH, pause: { baseMs: 200, maxMs: 200 } },
      publisher: holdingFirstSend(topic, () => {
        sends++
        throw new RelayError('RELAY_PUBLISH_RETRIABLE', 'broker unavailable (simulated)')
      }),
    })
    expect(await engine.drain()).toMatchObject({ published: 0, retried: BATCH, dead: 0 })
    // The second batch was never sent: released at once, not deferred, and no row was attempted.
    expect(sends).toBe(1)
    const { rows } = await db.pool.query<{ deferred: number; free: number; leased: number }>(
      `SELECT count(*) FILTER (WHERE last_error LIKE '%broker unavailable%')::int AS deferred,
         count(*) FILTER (WHERE last_error IS NULL AND locked_by IS NULL AND available_at <= now())::int AS free,
         count(*) FILTER (WHERE locked_by IS NOT NULL)::int AS leased
       FROM outbox_event WHERE topic = $1`,
      [topic],
    )
    expect(rows[0]).toEqual({ deferred: BATCH, free: 3 * BATCH, leased: 0 })
    expect((await leases(topic)).attempted).toBe(0)
  })

  it('Should release the batch beside a failed mark before the drain fails', async () => {
    const topic = uniqueTopic('relay')
    await createTopics(kafka, [topic], 3)
    await rowsOn(topic, 4 * BATCH, 4 * BATCH)
    // Marking rows of this topic published fails (a constraint of the database, say).
    await db.pool.query(`
      CREATE FUNCTION pipeline_refuse_mark() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.status = 'published' AND NEW.topic = '${topic}' THEN RAISE EXCEPTION 'mark refused (test)'; END IF;
        RETURN NEW;
      END $$;
      CREATE TRIGGER pipeline_refuse_mark BEFORE UPDATE ON outbox_event
        FOR EACH ROW EXECUTE FUNCTION pipeline_refuse_mark();`)
    try {
      const sent: string[] = []
      const engine = createEngine({
        pool: db.pool,
        options: { batchSize: BATCH },
        publisher: holdingFirstSend(topic, (messages) => sent.push(...messages.map((m) => m.key))),
      })
      await expect(engine.drain()).rejects.toMatchObject({ code: 'RELAY_DATABASE' })
      // Only the first batch went out; it keeps its lease (its mark failed), the second is free.
      expect(sent).toHaveLength(BATCH)
      expect(await leases(topic)).toEqual({ leased: BATCH, attempted: 0, published: 0 })
    } finally {
      await db.pool.query(
        'DROP TRIGGER pipeline_refuse_mark ON outbox_event; DROP FUNCTION pipeline_refuse_mark()',
      )
    }
  })

  it('Should publish the batch in flight and release the next when the drain is aborted', async () => {
    const topic = uniqueTopic('relay')
    await createTopics(kafka, [topic], 3)
    await rowsOn(topic, 4 * BATCH, 4 * BATCH)
    const abort = new AbortController()
    const engine = createEngine({
      pool: db.pool,
      options: { batchSize: BATCH },
      publisher: holdingFirstSend(topic, (_, first) => first && abort.abort()),
    })
    expect(await engine.drain({ signal: abort.signal })).toMatchObject({
      published: BATCH,
      remaining: 3 * BATCH,
    })
    expect(await leases(topic)).toEqual({ leased: 0, attempted: 0, published: BATCH })
  })

  it('Should claim no more than maxEvents with batches in flight', async () => {
    const topic = uniqueTopic('relay')
    await createTopics(kafka, [topic], 3)
    await rowsOn(topic, 6 * BATCH, 6 * BATCH)
    const engine = createEngine({ pool: db.pool, publisher, options: { batchSize: BATCH } })
    const maxEvents = 2 * BATCH + 7
    expect(await engine.drain({ maxEvents })).toMatchObject({ published: maxEvents })
    expect(await leases(topic)).toEqual({ leased: 0, attempted: 0, published: maxEvents })
  })
})

/**
 * The stream relay with `publishedRows: 'delete'` against a real PostgreSQL (private cluster,
 * wal_level = logical) and the real broker: published rows leave the table, dead and held rows
 * stay with their reasons, and WAL decoded again after a crash publishes nothing twice.
 */
import { collectMessages, testKafka, uniqueTopic } from '@prisma-outbox/devkit'
import { describe, expect, it } from 'vitest'
import { createEngine, createStreamer, type Streamer } from '../src/index.js'
import { insertRows, type NewRow, statuses, waitClaimable } from './helpers.js'
import { orderByKey, useStreamDatabase, useStreamPublisher, waitFor } from './stream-helpers.js'

const kafka = testKafka('outbox-stream-delete-test')
const ctx = useStreamDatabase()
const publisher = useStreamPublisher(kafka)

function streamer(overrides: Partial<Parameters<typeof createStreamer>[0]> = {}): Streamer {
  return createStreamer({
    connectionString: ctx.db.url,
    pool: ctx.db.pool,
    publisher: publisher.get(),
    slot: ctx.slot,
    batchSize: 20,
    retry: { baseMs: 50, maxMs: 200 },
    standbyRetryMs: 100,
    statusIntervalMs: 200,
    publishedRows: 'delete',
    ...overrides,
  })
}

const rowsFor = (topic: string, keys: number, perKey: number, from = 0): NewRow[] =>
  Array.from({ length: perKey * keys }, (_, i) => ({
    topic,
    key: `k${i % keys}`,
    payload: { n: from + Math.floor(i / keys) },
  }))

const remaining = async () =>
  Number((await ctx.db.pool.query('SELECT count(*) AS n FROM outbox_event')).rows[0].n)

describe("stream relay with publishedRows: 'delete'", () => {
  it('deletes every row it published, in commit order per key, and leaves the table empty', async () => {
    const topic = uniqueTopic('stream-delete')
    const s = streamer()
    await s.start()
    try {
      await insertRows(ctx.db.pool, rowsFor(topic, 4, 15))
      await insertRows(ctx.db.pool, rowsFor(topic, 4, 15, 15))
      await waitFor(async () => (await s.stats()).published === 120, '120 published events')
      await waitFor(async () => (await remaining()) === 0, 'every published row deleted')
      const messages = await collectMessages(kafka, [topic], { count: 120, settleMs: 1_000 })
      expect(messages).toHaveLength(120)
      const expected = Array.from({ length: 30 }, (_, i) => i)
      for (const [key, order] of orderByKey(messages)) expect(order, key).toEqual(expected)
    } finally {
      await s.stop()
    }
  })

  it('keeps dead and held rows, with their reasons, for the polling relay to finish', async () => {
    const topic = uniqueTopic('stream-delete')
    const s = streamer()
    await s.start()
    let poisonId: string | undefined
    try {
      const ids = await insertRows(ctx.db.pool, [
        { topic, key: 'a', payload: { n: 0 } },
        { topic: 'not a valid topic!', key: 'p', payload: { n: 0 } },
        { topic: 'not a valid topic!', key: 'p', payload: { n: 1 } },
        { topic, key: 'a', payload: { n: 1 } },
      ])
      poisonId = ids[1]
      await waitFor(async () => (await s.stats()).published === 2, 'the two healthy rows')
      await waitFor(async () => (await remaining()) === 2, 'the healthy rows deleted')
      const { rows } = await ctx.db.pool.query<{ id: string; status: string; last_error: string | null }>(
        'SELECT id::text, status, last_error FROM outbox_event ORDER BY seq',
      )
      expect(rows.map((r) => [r.id, r.status])).toEqual([
        [ids[1], 'dead'],
        [ids[2], 'pending'],
      ])
      expect(rows[0]?.last_error).toMatch(/topic/i)
      expect(rows[1]?.last_error).toMatch(/held back/)
      expect(await s.stats()).toMatchObject({ published: 2, dead: 1, held: 1 })
    } finally {
      await s.stop()
    }
    // The polling relay sees the deleted rows as finished: once the dead row is retired by hand,
    // it publishes the held one and nothing else.
    await ctx.db.pool.query("UPDATE outbox_event SET status = 'published' WHERE id = $1", [poisonId])
    await ctx.db.pool.query("UPDATE outbox_event SET topic = $1 WHERE status = 'pending'", [topic])
    await waitClaimable(ctx.db.pool)
    const result = await createEngine({ pool: ctx.db.pool, publisher: publisher.get() }).drain()
    expect(result.published).toBe(1)
    expect(await statuses(ctx.db.pool)).toEqual({ published: 2 })
  })

  it('publishes nothing twice when WAL it already handled is decoded again (a slot behind its rows)', async () => {
    const topic = uniqueTopic('stream-delete')
    // A second slot on the same publication, made before the rows: it decodes them later, as a
    // streamer does after a crash that left the slot behind rows it had already published.
    const behind = streamer({ slot: `${ctx.slot}_behind`, publication: ctx.slot })
    const first = streamer()
    await first.start()
    await behind.start()
    await behind.stop()
    try {
      await insertRows(ctx.db.pool, rowsFor(topic, 3, 10))
      await waitFor(async () => (await remaining()) === 0, 'the 30 rows published and deleted')
    } finally {
      await first.stop()
    }
    const again = streamer({ slot: `${ctx.slot}_behind`, publication: ctx.slot })
    await again.start()
    try {
      await waitFor(async () => (await again.stats()).skipped === 30, 'the 30 decoded rows skipped')
      expect(await again.stats()).toMatchObject({ published: 0, skipped: 30 })
      const messages = await collectMessages(kafka, [topic], { count: 30, settleMs: 1_500 })
      expect(messages).toHaveLength(30)
    } finally {
      await again.stop()
    }
  })
})

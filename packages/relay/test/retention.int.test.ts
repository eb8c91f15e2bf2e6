/**
 * Retention against real PostgreSQL (and Kafka for the race with draining relays): only old
 * published rows (and, when asked, old dead rows) are deleted, in bounded batches, one relay at
 * a time, never a pending row, whatever the relays are doing meanwhile.
 */
import { collectMessages, type TestDatabase, testKafka } from '@prisma-outbox/devkit'
import { describe, expect, it } from 'vitest'
import { markFailed } from '../src/core/sql/mark-failed.js'
import { createEngine, type KafkaPublisher, purgeOutbox, type RetentionPolicy } from '../src/index.js'
import { backlog, insertRows, statuses, useRelayServices } from './helpers.js'

const kafka = testKafka('relay-retention-test')
let publisher: KafkaPublisher
let db: TestDatabase
useRelayServices(kafka, { publisher: (p) => (publisher = p), db: (d) => (db = d) })

const DAY = 86_400_000
const policy = (p: Partial<RetentionPolicy> = {}): RetentionPolicy => ({
  publishedMaxAgeMs: 7 * DAY,
  deadMaxAgeMs: null,
  batchSize: 10,
  ...p,
})

/** Inserts `n` rows and sets them to `status`, `published_at`/`available_at` `ageDays` ago. */
async function rows(n: number, status: 'pending' | 'published' | 'dead', ageDays: number): Promise<string[]> {
  const ids = await insertRows(
    db.pool,
    Array.from({ length: n }, (_, i) => ({ topic: 'retention', key: `k${i}` })),
  )
  await db.pool.query(
    `UPDATE outbox_event SET status = $2,
       created_at = now() - $3 * interval '1 day' - interval '1 hour',
       published_at = CASE WHEN $2 = 'published' THEN now() - $3 * interval '1 day' END,
       available_at = now() - $3 * interval '1 day'
     WHERE id = ANY($1::uuid[])`,
    [ids, status, ageDays],
  )
  return ids
}

describe('purgeOutbox', () => {
  it('Should delete old published rows only, in batches of batchSize, keeping pending, dead and recent rows', async () => {
    await rows(35, 'published', 8)
    await rows(5, 'published', 6)
    await rows(4, 'pending', 30)
    await rows(3, 'dead', 300)
    const result = await purgeOutbox(db.pool, { table: 'outbox_event', policy: policy() })
    expect(result).toEqual({ published: 35, dead: 0, batches: 4, busy: false, more: false, dryRun: false })
    expect(await statuses(db.pool)).toEqual({ published: 5, pending: 4, dead: 3 })
  })

  it('Should stop after maxBatches with more: true, and count without deleting on a dry run', async () => {
    await rows(35, 'published', 8)
    await rows(2, 'dead', 100)
    const dry = await purgeOutbox(db.pool, {
      table: 'outbox_event',
      policy: policy({ deadMaxAgeMs: 90 * DAY }),
      dryRun: true,
    })
    expect(dry).toMatchObject({ published: 35, dead: 2, batches: 0, dryRun: true })
    expect(await statuses(db.pool)).toEqual({ published: 35, dead: 2 })
    const some = await purgeOutbox(db.pool, { table: 'outbox_event', policy: policy(), maxBatches: 2 })
    expect(some).toMatchObject({ published: 20, batches: 2, more: true })
    expect(await statuses(db.pool)).toEqual({ published: 15, dead: 2 })
  })

  it('Should delete dead rows only past their own window, counted from when they died', async () => {
    await rows(3, 'dead', 100)
    // Created long ago, died just now: its window starts now.
    const [recent] = await rows(1, 'dead', 0)
    await db.pool.query(`UPDATE outbox_event SET created_at = now() - interval '400 days' WHERE id = $1`, [
      recent,
    ])
    const kept = await purgeOutbox(db.pool, { table: 'outbox_event', policy: policy() })
    expect(kept.dead).toBe(0)
    const result = await purgeOutbox(db.pool, {
      table: 'outbox_event',
      policy: policy({ deadMaxAgeMs: 90 * DAY }),
    })
    expect(result).toMatchObject({ published: 0, dead: 3 })
    const left = await db.pool.query('SELECT id FROM outbox_event')
    expect(left.rows.map((r) => r.id)).toEqual([recent])
  })

  it('Should record the time a row died in available_at, so retention counts from it', async () => {
    const [id] = await rows(1, 'pending', 50)
    await db.pool.query(`UPDATE outbox_event SET locked_by = 'r1' WHERE id = $1`, [id])
    const mark = markFailed({
      table: 'outbox_event',
      relayId: 'r1',
      rows: [{ id: id as string, status: 'dead', delayMs: 0, error: 'x' }],
    })
    await db.pool.query(mark.text, mark.values)
    const { rows: r } = await db.pool.query(
      `SELECT status, extract(epoch FROM now() - available_at) < 60 AS recent FROM outbox_event WHERE id = $1`,
      [id],
    )
    expect(r[0]).toEqual({ status: 'dead', recent: true })
  })

  it('Should return busy without deleting while another relay holds the purge lock', async () => {
    await rows(5, 'published', 8)
    const holder = await db.pool.connect()
    try {
      await holder.query('BEGIN')
      await holder.query('SELECT pg_advisory_xact_lock(122511226139001)')
      const result = await purgeOutbox(db.pool, { table: 'outbox_event', policy: policy() })
      expect(result).toMatchObject({ published: 0, batches: 0, busy: true })
      await holder.query('COMMIT')
    } finally {
      holder.release()
    }
    expect(await statuses(db.pool)).toEqual({ published: 5 })
  })

  it('Should delete every old published row exactly once with four relays purging at once', async () => {
    await rows(600, 'published', 8)
    await rows(50, 'pending', 30)
    let deleted = 0
    let busy = 0
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        for (let i = 0; i < 200; i++) {
          const r = await purgeOutbox(db.pool, { table: 'outbox_event', policy: policy({ batchSize: 25 }) })
          deleted += r.published
          if (r.busy) busy++
          else if (!r.more) return
        }
      }),
    )
    expect(deleted).toBe(600)
    expect(await statuses(db.pool)).toEqual({ pending: 50 })
    // The lock was contended at least once: the relays really ran at the same time.
    expect(busy).toBeGreaterThan(0)
  })

  it('Should never delete a row before it reached Kafka, with relays draining while purges run (age 0)', async () => {
    const topic = await backlog(kafka, db.pool, { prefix: 'retention-race', count: 400, keys: 20 })
    const ids = (await db.pool.query<{ id: string }>('SELECT id FROM outbox_event')).rows.map((r) => r.id)
    const engines = Array.from({ length: 3 }, () =>
      createEngine({ pool: db.pool, publisher, options: { batchSize: 20 } }),
    )
    let draining = true
    const purger = (async () => {
      let purged = 0
      while (draining) {
        const r = await purgeOutbox(db.pool, {
          table: 'outbox_event',
          policy: policy({ publishedMaxAgeMs: 0, deadMaxAgeMs: 0, batchSize: 7 }),
        })
        purged += r.published + r.dead
      }
      return purged
    })()
    try {
      for (let round = 0; round < 200; round++) {
        const results = await Promise.all(engines.map((e) => e.drain()))
        if (results.every((r) => r.remaining === 0)) break
      }
    } finally {
      draining = false
    }
    const purged = await purger
    const final = await purgeOutbox(db.pool, {
      table: 'outbox_event',
      policy: policy({ publishedMaxAgeMs: 0 }),
    })
    expect(purged + final.published).toBe(400)
    expect(await statuses(db.pool)).toEqual({})
    const messages = await collectMessages(kafka, [topic], { count: 400 })
    expect(new Set(messages.map((m) => m.headers.id))).toEqual(new Set(ids))
  })
})

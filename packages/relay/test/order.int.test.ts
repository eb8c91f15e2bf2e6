import {
  collectMessages,
  createTopics,
  type TestDatabase,
  testKafka,
  uniqueTopic,
} from '@prisma-outbox/devkit'
import { describe, expect, it } from 'vitest'
import { createEngine, type KafkaPublisher } from '../src/index.js'
import { insertRows, testDatabase, useRelayServices } from './helpers.js'

const kafka = testKafka('relay-order-test')
let publisher: KafkaPublisher
let db: TestDatabase
useRelayServices(kafka, { publisher: (p) => (publisher = p), db: (d) => (db = d) })

describe('per-key order across open transactions', () => {
  it('Should never publish a row ahead of an earlier row whose transaction is still open', async () => {
    const topic = uniqueTopic('relay')
    await createTopics(kafka, [topic], 3)
    const engine = createEngine({ pool: db.pool, publisher })
    const [before] = await insertRows(db.pool, [{ topic, key: 'early', payload: { step: 'before' } }])

    // A slow writer: inserts K1 and keeps its transaction open.
    const slow = await db.pool.connect()
    try {
      await slow.query('BEGIN')
      const [k1] = await insertRows(slow, [{ topic, key: 'K', payload: { step: 'K1' } }])
      // A fast writer commits a later row of the same key (and of another key).
      const [k2] = await insertRows(db.pool, [
        { topic, key: 'K', payload: { step: 'K2' } },
        { topic, key: 'other', payload: { step: 'other' } },
      ])

      const first = await engine.drain()
      // Only the row written before the open transaction goes; K2 must wait for K1.
      expect(first.published).toBe(1)
      const { rows } = await db.pool.query('SELECT status FROM outbox_event WHERE id = $1', [k2])
      expect(rows[0].status).toBe('pending')

      await slow.query('COMMIT')
      const second = await engine.drain()
      expect(second).toMatchObject({ published: 3, remaining: 0 })

      const messages = await collectMessages(kafka, [topic], { count: 4, settleMs: 500 })
      expect(messages.filter((m) => m.key === 'K').map((m) => m.headers.id)).toEqual([k1, k2])
      expect(messages.map((m) => m.headers.id)).toContain(before)
    } finally {
      slow.release()
    }
  })

  it('Should keep a key behind a rolled-back neighbour without losing anything', async () => {
    const topic = uniqueTopic('relay')
    await createTopics(kafka, [topic], 1)
    const engine = createEngine({ pool: db.pool, publisher })
    const slow = await db.pool.connect()
    try {
      await slow.query('BEGIN')
      await insertRows(slow, [{ topic, key: 'K', payload: { step: 'rolled back' } }])
      const [k2] = await insertRows(db.pool, [{ topic, key: 'K', payload: { step: 'K2' } }])
      expect((await engine.drain()).published).toBe(0)
      await slow.query('ROLLBACK')
      expect(await engine.drain()).toMatchObject({ published: 1, remaining: 0 })
      const messages = await collectMessages(kafka, [topic], { count: 1, settleMs: 500 })
      expect(messages.map((m) => m.headers.id)).toEqual([k2])
    } finally {
      slow.release()
    }
  })

  it('Should not be stalled by an open write transaction in another database', async () => {
    const topic = uniqueTopic('relay')
    await createTopics(kafka, [topic], 1)
    const engine = createEngine({ pool: db.pool, publisher })
    const elsewhere = await testDatabase()
    const other = await elsewhere.pool.connect()
    try {
      await other.query('BEGIN')
      await insertRows(other, [{ topic, key: 'K', payload: { step: 'other database' } }])
      const [mine] = await insertRows(db.pool, [{ topic, key: 'K', payload: { step: 'mine' } }])
      expect(await engine.drain()).toMatchObject({ published: 1, remaining: 0 })
      const messages = await collectMessages(kafka, [topic], { count: 1, settleMs: 500 })
      expect(messages.map((m) => m.headers.id)).toEqual([mine])
    } finally {
      await other.query('ROLLBACK')
      other.release()
      await elsewhere.drop()
    }
  })
})

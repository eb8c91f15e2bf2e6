import { randomUUID } from 'node:crypto'
import { createTopics, testKafka, uniqueTopic } from '@prisma-outbox/devkit'
import { describe, expect, it } from 'vitest'
import { createInbox, type OutboxEvent } from '../src/index.js'
import { bump, useTestDatabase } from './helpers.js'

const t = useTestDatabase('outbox_inbox')

function event(id: string, aggregateId: string): OutboxEvent {
  return {
    id,
    type: 'thing.updated',
    aggregateType: 'thing',
    aggregateId,
    payload: {},
    headers: { id },
    topic: 't',
    partition: 0,
    offset: '0',
  }
}

describe('inbox.handle', () => {
  it('applies an event once, however often it is delivered, per consumer', async () => {
    const inbox = createInbox(t.prisma, { consumer: 'tally' })
    const other = createInbox(t.prisma, { consumer: 'audit' })
    const e = event(randomUUID(), 'a-1')
    expect(await inbox.handle(e, bump)).toBe('processed')
    expect(await inbox.handle(e, bump)).toBe('duplicate')
    expect(await inbox.handle(e, bump)).toBe('duplicate')
    expect(await other.handle(e, async () => {})).toBe('processed')
    expect(await t.prisma.tally.findUnique({ where: { aggregateId: 'a-1' } })).toMatchObject({ applied: 1 })
  })

  it('records nothing when the handler fails, so the redelivery is applied', async () => {
    const inbox = createInbox(t.prisma, { consumer: 'tally' })
    const e = event(randomUUID(), 'a-2')
    await expect(
      inbox.handle(e, async (ev, tx) => {
        await bump(ev, tx)
        throw new Error('handler failed')
      }),
    ).rejects.toThrow('handler failed')
    expect(await t.prisma.tally.findUnique({ where: { aggregateId: 'a-2' } })).toBeNull()
    expect(await inbox.handle(e, bump)).toBe('processed')
    expect(await t.prisma.tally.findUnique({ where: { aggregateId: 'a-2' } })).toMatchObject({ applied: 1 })
  })

  it('lets only one of two concurrent deliveries through', async () => {
    const inbox = createInbox(t.prisma, { consumer: 'tally' })
    const e = event(randomUUID(), 'a-3')
    const results = await Promise.all([inbox.handle(e, bump), inbox.handle(e, bump)])
    expect(results.sort()).toEqual(['duplicate', 'processed'])
    expect(await t.prisma.tally.findUnique({ where: { aggregateId: 'a-3' } })).toMatchObject({ applied: 1 })
  })

  it('rejects bad options with a message naming the option', () => {
    expect(() => createInbox(t.prisma, { consumer: '' })).toThrow(/options.consumer/)
    expect(() => createInbox(t.prisma, { consumer: 'x', table: 'a; drop' })).toThrow(/options.table/)
  })
})

describe('inbox.eachMessage with a real Kafka consumer', () => {
  it('changes the projection once when the same event arrives three times', async () => {
    const kafka = testKafka()
    const topic = uniqueTopic('inbox')
    await createTopics(kafka, [topic], 1)
    const id = randomUUID()
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 })
    await producer.connect()
    const message = { key: 'k-1', value: '{"n":1}', headers: { id, eventType: 'thing.updated' } }
    await producer.send({ topic, acks: -1, messages: [message, message, message] })
    await producer.disconnect()

    const skipped: string[] = []
    const inbox = createInbox(t.prisma, {
      consumer: 'tally-kafka',
      hooks: { onDuplicate: (event) => skipped.push(event.offset) },
    })
    const consumer = kafka.consumer({ groupId: `tally-${randomUUID()}` })
    await consumer.connect()
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    let seen = 0
    const handler = inbox.eachMessage(bump)
    await new Promise<void>((resolve, reject) => {
      consumer
        .run({
          eachMessage: async (payload) => {
            await handler(payload)
            if (++seen === 3) resolve()
          },
        })
        .catch(reject)
    })
    await consumer.disconnect()
    expect(await t.prisma.tally.findUnique({ where: { aggregateId: 'k-1' } })).toMatchObject({ applied: 1 })
    const inboxRows = await t.db.pool.query(
      'SELECT event_id, event_type, topic FROM outbox_inbox WHERE consumer = $1',
      ['tally-kafka'],
    )
    expect(inboxRows.rows).toEqual([{ event_id: id, event_type: 'thing.updated', topic }])
    // The skipped redeliveries are visible: a hook per duplicate, and the counters.
    expect(skipped).toEqual(['1', '2'])
    expect(inbox.counters()).toMatchObject({ processed: 1, duplicates: 2, retries: 0, deadLettered: 0 })
  })
})

describe('inbox.purge', () => {
  it("deletes this consumer's records older than the cut-off, in bounded batches", async () => {
    const consumer = `purge-${randomUUID()}`
    const other = `purge-other-${randomUUID()}`
    const insert = (name: string, ageMs: number, n: number) =>
      t.db.pool.query(
        `INSERT INTO outbox_inbox (consumer, event_id, processed_at)
         SELECT $1, gen_random_uuid(), now() - make_interval(secs => $2::double precision / 1000)
         FROM generate_series(1, $3)`,
        [name, ageMs, n],
      )
    await insert(consumer, 3_600_000, 25) // an hour old
    await insert(consumer, 0, 4) // fresh
    await insert(other, 3_600_000, 3) // old, another consumer's
    const inbox = createInbox(t.prisma, { consumer })
    const count = async (name: string) =>
      (
        await t.db.pool.query<{ n: number }>(
          'SELECT count(*)::int AS n FROM outbox_inbox WHERE consumer = $1',
          [name],
        )
      ).rows[0]?.n

    // At most batchSize * maxBatches rows per call.
    expect(await inbox.purge({ olderThanMs: 60_000, batchSize: 10, maxBatches: 2 })).toBe(20)
    expect(await count(consumer)).toBe(9)
    expect(await inbox.purge({ olderThanMs: 60_000, batchSize: 10 })).toBe(5)
    expect(await inbox.purge({ olderThanMs: 60_000 })).toBe(0)
    expect(await count(consumer)).toBe(4)
    expect(await count(other)).toBe(3)
  })

  it('deletes every old record exactly once with three instances of the consumer purging at once', async () => {
    const consumer = `purge-many-${randomUUID()}`
    await t.db.pool.query(
      `INSERT INTO outbox_inbox (consumer, event_id, processed_at)
       SELECT $1, gen_random_uuid(), now() - interval '2 hours' FROM generate_series(1, 500)`,
      [consumer],
    )
    const inboxes = Array.from({ length: 3 }, () => createInbox(t.prisma, { consumer }))
    let deleted = 0
    for (let round = 0; round < 50; round++) {
      const n = await Promise.all(
        inboxes.map((i) => i.purge({ olderThanMs: 60_000, batchSize: 20, maxBatches: 3 })),
      )
      deleted += n.reduce((a, b) => a + b, 0)
      const left = await t.db.pool.query('SELECT count(*)::int AS n FROM outbox_inbox WHERE consumer = $1', [
        consumer,
      ])
      if (left.rows[0]?.n === 0) break
    }
    expect(deleted).toBe(500)
  })

  it('deletes nothing while another instance holds the purge lock of this consumer', async () => {
    const consumer = `purge-locked-${randomUUID()}`
    await t.db.pool.query(
      `INSERT INTO outbox_inbox (consumer, event_id, processed_at)
       SELECT $1, gen_random_uuid(), now() - interval '2 hours' FROM generate_series(1, 25)`,
      [consumer],
    )
    const inbox = createInbox(t.prisma, { consumer })
    const holder = await t.db.pool.connect()
    try {
      await holder.query('BEGIN')
      await holder.query(
        `SELECT pg_advisory_xact_lock(hashtext('prisma-outbox inbox purge "outbox_inbox" ' || $1))`,
        [consumer],
      )
      expect(await inbox.purge({ olderThanMs: 60_000 })).toBe(0)
      await holder.query('COMMIT')
    } finally {
      holder.release()
    }
    expect(await inbox.purge({ olderThanMs: 60_000 })).toBe(25)
  })

  it('purges on an interval with startPurging, until stopped', async () => {
    const consumer = `purge-interval-${randomUUID()}`
    const insertOld = (n: number) =>
      t.db.pool.query(
        `INSERT INTO outbox_inbox (consumer, event_id, processed_at)
         SELECT $1, gen_random_uuid(), now() - interval '2 hours' FROM generate_series(1, $2)`,
        [consumer, n],
      )
    const count = async () =>
      (await t.db.pool.query('SELECT count(*)::int AS n FROM outbox_inbox WHERE consumer = $1', [consumer]))
        .rows[0]?.n
    await insertOld(30)
    const inbox = createInbox(t.prisma, { consumer })
    const purged: number[] = []
    const purging = inbox.startPurging({
      olderThanMs: 60_000,
      intervalMs: 100,
      batchSize: 7,
      onPurge: (n) => purged.push(n),
    })
    const deadline = Date.now() + 10_000
    while ((await count()) !== 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
    expect(await count()).toBe(0)
    await purging.stop()
    expect(purged.reduce((a, b) => a + b, 0)).toBe(30)
    await insertOld(5)
    await new Promise((r) => setTimeout(r, 400))
    expect(await count()).toBe(5)
    expect(() => inbox.startPurging({ olderThanMs: 60_000, intervalMs: 0 })).toThrow(/intervalMs/)
  })

  it('rejects bad purge options with a message naming the option', async () => {
    const inbox = createInbox(t.prisma, { consumer: 'tally' })
    await expect(inbox.purge({ olderThanMs: -1 })).rejects.toThrow(/olderThanMs/)
    await expect(inbox.purge({ olderThanMs: 1, batchSize: 0 })).rejects.toThrow(/batchSize/)
    await expect(inbox.purge({ olderThanMs: 1, maxBatches: 1.5 })).rejects.toThrow(/maxBatches/)
  })
})

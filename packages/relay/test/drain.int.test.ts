import {
  collectMessages,
  createTopics,
  type TestDatabase,
  testKafka,
  uniqueTopic,
} from '@prisma-outbox/devkit'
import pg from 'pg'
import { describe, expect, it } from 'vitest'
import { claimBatch } from '../src/core/sql/claim-batch.js'
import { type BatchInfo, createEngine, type KafkaPublisher } from '../src/index.js'
import { insertRows, sleep, statuses, useRelayServices, waitClaimable, wrapPublisher } from './helpers.js'

const kafka = testKafka('relay-drain-test')
let publisher: KafkaPublisher
let db: TestDatabase
useRelayServices(kafka, { publisher: (p) => (publisher = p), db: (d) => (db = d) })

describe('drain', () => {
  it('Should keep draining past lockWaitMs when it never had to wait for the claim lock', async () => {
    const topic = uniqueTopic('relay')
    await insertRows(
      db.pool,
      Array.from({ length: 40 }, (_, i) => ({ topic, key: `k${i}` })),
    )
    await waitClaimable(db.pool)
    // 8 batches of 30 ms each: the drain publishes for longer than lockWaitMs in all.
    const slow = wrapPublisher(publisher, { before: () => sleep(30) })
    const engine = createEngine({
      pool: db.pool,
      publisher: slow,
      options: { batchSize: 5, lockWaitMs: 150 },
    })
    const result = await engine.drain()
    expect(result).toMatchObject({ published: 40, remaining: 0 })
    expect(result.durationMs).toBeGreaterThan(150)
  })

  it.each([
    [undefined, true],
    [false, false],
  ])(
    'Should prepare the claim once per connection on a pg.Pool (preparedStatements: %s)',
    async (prepared, expected) => {
      const topic = uniqueTopic('relay')
      await insertRows(
        db.pool,
        Array.from({ length: 12 }, (_, i) => ({ topic, key: `k${i % 3}` })),
      )
      await waitClaimable(db.pool)
      // One connection, so the claims and the check below share a session.
      const pool = new pg.Pool({ connectionString: db.url, max: 1 })
      try {
        const options = { batchSize: 2, ...(prepared === undefined ? {} : { preparedStatements: prepared }) }
        const result = await createEngine({ pool, publisher, options }).drain()
        expect(result).toMatchObject({ published: 12, remaining: 0 })
        const { rows } = await pool.query<{ name: string }>(
          "SELECT name FROM pg_prepared_statements WHERE name LIKE 'outbox_claim_%'",
        )
        expect(rows.length > 0).toBe(expected)
      } finally {
        await pool.end()
      }
    },
  )

  it('Should keep the prepared claim on indexes when it was planned on an empty table', async () => {
    const topic = uniqueTopic('relay')
    // One connection: its claims are planned while the table is empty, then the table grows.
    const pool = new pg.Pool({ connectionString: db.url, max: 1 })
    try {
      const engine = createEngine({ pool, publisher, options: { batchSize: 10 } })
      for (let i = 0; i < 8; i++) {
        await insertRows(db.pool, [{ topic, key: `k${i}` }])
        await waitClaimable(db.pool)
        await engine.drain()
      }
      for (let i = 0; i < 5; i++)
        await insertRows(
          db.pool,
          Array.from({ length: 2_000 }, (_, j) => ({ topic, key: `k${j % 50}` })),
        )
      await waitClaimable(db.pool)
      const claim = claimBatch({
        table: 'outbox_event',
        relayId: 'x',
        limit: 10,
        leaseMs: 60_000,
        blockOnDead: true,
        // The engine's claim on a table with the index of dead rows (see gateIndexes).
        deadIndex: true,
      })
      const { rows: prepared } = await pool.query<{ name: string }>(
        'SELECT name FROM pg_prepared_statements WHERE name = $1',
        [claim.name],
      )
      expect(prepared).toHaveLength(1)
      // The plan the connection keeps for the claim (EXPLAIN of EXECUTE shows the cached plan).
      const literal = (v: unknown) => (v === null || v === undefined ? 'NULL' : `'${String(v)}'`)
      const { rows } = await pool.query(
        `EXPLAIN (FORMAT JSON) EXECUTE ${claim.name}(${claim.values.map(literal).join(', ')})`,
      )
      const scans: string[] = []
      // biome-ignore lint/suspicious/noExplicitAny: EXPLAIN's JSON
      const walk = (node: any) => {
        if (node['Relation Name'] === 'outbox_event') scans.push(node['Node Type'])
        for (const child of node.Plans ?? []) walk(child)
      }
      walk(rows[0]['QUERY PLAN'][0].Plan)
      expect(scans.length).toBeGreaterThan(0)
      expect(scans).not.toContain('Seq Scan')
      // A bitmap scan returns rows in no order: the window (the first rows in `seq` order) then
      // read every pending row and sorted them, 300 ms per claim on a backlog of 300k rows.
      expect(scans).not.toContain('Bitmap Heap Scan')
    } finally {
      await pool.end()
    }
  })

  it('Should keep claiming when a migration changes a column the prepared claim returns', async () => {
    const topic = uniqueTopic('relay')
    const rows = (n: number) => Array.from({ length: n }, (_, i) => ({ topic, key: `k${i % 3}` }))
    // Two connections, each with the claim prepared before the migration.
    const pool = new pg.Pool({ connectionString: db.url, max: 2 })
    try {
      const engine = createEngine({ pool, publisher, options: { batchSize: 2 } })
      await insertRows(db.pool, rows(6))
      await waitClaimable(db.pool)
      await Promise.all([engine.drain(), engine.drain()])
      // "cached plan must not change result type" (0A000) for a statement prepared before this.
      await db.pool.query('ALTER TABLE outbox_event ALTER COLUMN attempts TYPE bigint')
      await insertRows(db.pool, rows(9))
      await waitClaimable(db.pool)
      const result = await engine.drain()
      expect(result).toMatchObject({ published: 9, remaining: 0 })
      expect(await statuses(db.pool)).toEqual({ published: 15 })
      // The refused connections were dropped: the claim is prepared again on fresh ones.
      const { rows: prepared } = await pool.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM pg_prepared_statements WHERE name LIKE 'outbox_claim_%'",
      )
      expect(prepared[0]?.n).toBeGreaterThan(0)
    } finally {
      await pool.end()
    }
  })

  it('Should publish every row with key, value and headers intact and mark them published', async () => {
    const topic = uniqueTopic('relay')
    await createTopics(kafka, [topic], 3)
    const rows = Array.from({ length: 50 }, (_, i) => ({
      topic,
      key: `emp-${i % 7}`,
      type: i % 2 ? 'employee.updated' : 'employee.created',
      aggregateType: 'employee',
      payload: { n: i, name: `Ada ${i}`, big: '12345678901234567890', nested: { ok: true } },
      headers: { traceparent: `00-${i}`, id: 'spoofed', count: 3 },
    }))
    const ids = await insertRows(db.pool, rows)
    const engine = createEngine({ pool: db.pool, publisher })
    const result = await engine.drain()
    expect(result).toMatchObject({ published: 50, retried: 0, dead: 0, remaining: 0 })

    const messages = await collectMessages(kafka, [topic], { count: 50, settleMs: 1_000 })
    expect(messages).toHaveLength(50)
    const byId = new Map(messages.map((m) => [m.headers.id, m]))
    for (const [i, id] of ids.entries()) {
      const m = byId.get(id)
      const row = rows[i]!
      expect(m, `message of row ${i}`).toBeDefined()
      expect(m!.key).toBe(row.key)
      expect(JSON.parse(m!.value!)).toEqual(row.payload)
      expect(m!.headers).toEqual({
        id,
        eventType: row.type,
        aggregateType: 'employee',
        traceparent: `00-${i}`,
        count: '3',
      })
    }
    expect(await statuses(db.pool)).toEqual({ published: 50 })
    const { rows: marked } = await db.pool.query(
      'SELECT count(*)::int AS n FROM outbox_event WHERE published_at IS NULL OR locked_until IS NOT NULL OR attempts <> 0',
    )
    expect(marked[0].n).toBe(0)
  })

  it('Should publish a large backlog quickly (single drain throughput)', async () => {
    const topic = uniqueTopic('relay')
    await createTopics(kafka, [topic], 3)
    const total = 10_000
    await insertRows(
      db.pool,
      Array.from({ length: total }, (_, i) => ({
        topic,
        key: `k${i % 500}`,
        payload: { i, pad: 'x'.repeat(200) },
      })),
    )
    const batches: BatchInfo[] = []
    const engine = createEngine({
      pool: db.pool,
      publisher,
      options: { batchSize: 500 },
      hooks: { onBatch: (b) => batches.push(b) },
    })
    const result = await engine.drain()
    expect(result.published).toBe(total)
    const rate = Math.round((total / result.durationMs) * 1000)
    const avg = (f: (b: BatchInfo) => number) =>
      Math.round(batches.reduce((n, b) => n + f(b), 0) / batches.length)
    console.info(
      `single drain: ${total} rows in ${result.durationMs} ms = ${rate} rows/s; per 500-row batch: ` +
        `claim ${avg((b) => b.claimMs)} ms, publish ${avg((b) => b.publishMs)} ms, mark ${avg((b) => b.markMs)} ms`,
    )
    const messages = await collectMessages(kafka, [topic], { count: total, timeoutMs: 60_000 })
    expect(new Set(messages.map((m) => m.headers.id)).size).toBe(total)
  })

  it('Should stop at maxEvents and before a batch that would not fit the budget', async () => {
    const topic = uniqueTopic('relay')
    await createTopics(kafka, [topic], 3)
    await insertRows(
      db.pool,
      Array.from({ length: 30 }, (_, i) => ({ topic, key: `k${i}` })),
    )
    const engine = createEngine({ pool: db.pool, publisher, options: { batchSize: 4 } })
    const first = await engine.drain({ maxEvents: 10 })
    expect(first).toMatchObject({ published: 10, remaining: 20 })

    const slow = createEngine({
      pool: db.pool,
      publisher: {
        ...publisher,
        publish: async (m) => {
          await sleep(300)
          await publisher.publish(m)
        },
        connect: async () => {},
        disconnect: async () => {},
      },
      options: { batchSize: 4 },
    })
    const budgeted = await slow.drain({ budgetMs: 1_000 })
    // batches take ~300 ms: after 2-3 of them elapsed + slowest exceeds 1 s
    expect(budgeted.published).toBeGreaterThanOrEqual(4)
    expect(budgeted.published).toBeLessThanOrEqual(12)
    expect(budgeted.durationMs).toBeLessThan(1_000)
    expect(budgeted.remaining).toBe(20 - budgeted.published)
  })

  it('Should only drain the requested topics', async () => {
    const [a, b] = [uniqueTopic('relay'), uniqueTopic('relay')]
    await createTopics(kafka, [a, b], 1)
    await insertRows(db.pool, [
      { topic: a, key: 'x' },
      { topic: b, key: 'x' },
      { topic: a, key: 'y' },
    ])
    const engine = createEngine({ pool: db.pool, publisher })
    expect(await engine.drain({ topics: [a] })).toMatchObject({ published: 2, remaining: 0 })
    expect(await engine.stats()).toMatchObject({
      pending: 1,
      due: 1,
      dead: 0,
      topics: [{ topic: b, pending: 1 }],
    })
    expect(await engine.drain()).toMatchObject({ published: 1, remaining: 0 })
  })

  it('Should name the first row waiting for a relay: due, not leased, not held by its key, lowest seq (past a digit boundary)', async () => {
    await db.pool.query("SELECT setval(pg_get_serial_sequence('outbox_event', 'seq'), 99996)")
    // seq 99997 … 100002; seq is a bigint, so 99999 comes before 100000. The last row is key k0's
    // second, behind its leased first.
    const keys = ['k0', 'k1', 'k2', 'k3', 'k4', 'k0']
    const ids = await insertRows(
      db.pool,
      keys.map((key, i) => ({ topic: i === 3 ? 'other' : 'first-waiting', key })),
    )
    const engine = createEngine({ pool: db.pool, publisher })
    await db.pool.query(
      "UPDATE outbox_event SET locked_by = 'elsewhere', locked_until = now() + interval '1 minute' WHERE id = $1",
      [ids[0]],
    )
    await db.pool.query("UPDATE outbox_event SET available_at = now() + interval '1 minute' WHERE id = $1", [
      ids[1],
    ])
    expect(await engine.firstWaiting()).toMatchObject({ seq: '99999' })
    await db.pool.query("UPDATE outbox_event SET status = 'published', published_at = now() WHERE id = $1", [
      ids[2],
    ])
    expect(await engine.firstWaiting()).toMatchObject({ seq: '100000' })
    expect(await engine.firstWaiting({ topics: ['first-waiting'] })).toMatchObject({ seq: '100001' })
    const first = await engine.firstWaiting()
    expect(first?.waitedMs).toBeGreaterThanOrEqual(0)
    await db.pool.query(
      "UPDATE outbox_event SET status = 'published', published_at = now() WHERE id = ANY($1)",
      [ids.slice(3, 5)],
    )
    // Left: k0's second row, held behind its leased first; k1's row, not due yet.
    expect(await engine.firstWaiting()).toBeUndefined()
    await db.pool.query("UPDATE outbox_event SET status = 'dead' WHERE id = $1", [ids[0]])
    expect(await engine.firstWaiting()).toBeUndefined() // held behind a dead row
    await db.pool.query('DELETE FROM outbox_event WHERE id = $1', [ids[0]])
    expect(await engine.firstWaiting()).toMatchObject({ seq: '100002' })
  })

  it('Should reclaim expired leases, holding later rows of the key until then', async () => {
    const topic = uniqueTopic('relay')
    await createTopics(kafka, [topic], 1)
    const ids = await insertRows(db.pool, [
      { topic, key: 'k', payload: { n: 1 } },
      { topic, key: 'k', payload: { n: 2 } },
      { topic, key: 'other', payload: { n: 3 } },
    ])
    // A relay that died right after claiming the first row.
    await db.pool.query(
      "UPDATE outbox_event SET locked_by = 'ghost', locked_until = now() + interval '1500 milliseconds' WHERE id = $1",
      [ids[0]],
    )
    const engine = createEngine({ pool: db.pool, publisher })
    expect(await engine.drain()).toMatchObject({ published: 1 }) // only 'other'
    expect((await engine.stats()).inFlight).toBe(1)
    await sleep(1_600)
    expect(await engine.drain()).toMatchObject({ published: 2, remaining: 0 })
    const messages = await collectMessages(kafka, [topic], { count: 3 })
    expect(messages.filter((m) => m.key === 'k').map((m) => JSON.parse(m.value!).n)).toEqual([1, 2])
    const { rows } = await db.pool.query('SELECT locked_by FROM outbox_event WHERE id = $1', [ids[0]])
    expect(rows[0].locked_by).toBe(engine.options.relayId)
  })

  it('Should delete only old published rows, in bounded batches', async () => {
    const topic = uniqueTopic('relay')
    const old = await insertRows(
      db.pool,
      Array.from({ length: 25 }, (_, i) => ({ topic, key: `o${i}` })),
    )
    const recent = await insertRows(
      db.pool,
      Array.from({ length: 5 }, (_, i) => ({ topic, key: `r${i}` })),
    )
    const dead = await insertRows(
      db.pool,
      Array.from({ length: 3 }, (_, i) => ({ topic, key: `d${i}` })),
    )
    await insertRows(
      db.pool,
      Array.from({ length: 4 }, (_, i) => ({ topic, key: `p${i}` })),
    )
    await db.pool.query(
      "UPDATE outbox_event SET status = 'published', published_at = now() - interval '10 days' WHERE id = ANY($1)",
      [old],
    )
    await db.pool.query(
      "UPDATE outbox_event SET status = 'published', published_at = now() WHERE id = ANY($1)",
      [recent],
    )
    await db.pool.query(
      "UPDATE outbox_event SET status = 'dead', created_at = now() - interval '30 days' WHERE id = ANY($1)",
      [dead],
    )
    const engine = createEngine({
      pool: db.pool,
      publisher,
      options: { retention: { publishedMaxAgeMs: 7 * 86_400_000, batchSize: 10 } },
    })
    expect(await engine.purgePublished({ maxBatches: 2 })).toEqual({ deleted: 20, batches: 2 })
    expect(await engine.purgePublished()).toEqual({ deleted: 5, batches: 1 })
    expect(await statuses(db.pool)).toEqual({ published: 5, dead: 3, pending: 4 })
    expect(await engine.purgePublished()).toEqual({ deleted: 0, batches: 1 })
  })
})

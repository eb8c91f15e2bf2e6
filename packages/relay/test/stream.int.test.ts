/**
 * The stream relay against a real PostgreSQL (private cluster, wal_level = logical) and the real
 * broker: delivery, order, rollbacks, restarts, poison events, broker outages, standbys.
 */
import { collectMessages, freePort, kafkaBrokers, testKafka, uniqueTopic } from '@prisma-outbox/devkit'
import { Kafka, logLevel } from 'kafkajs'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { main } from '../src/cli/main.js'
import {
  createStreamer,
  dropStreamSetup,
  type KafkaPublisher,
  type Publisher,
  type Streamer,
  type StreamerRole,
  serveStreamStats,
} from '../src/index.js'
import { insertRows, kafkaPublisher, type NewRow, statuses, testDatabase } from './helpers.js'
import { orderByKey, useStreamDatabase, waitFor } from './stream-helpers.js'

const kafka = testKafka('outbox-stream-test')
const ctx = useStreamDatabase()
let publisher: KafkaPublisher

beforeAll(async () => {
  publisher = await kafkaPublisher(kafka)
})
afterAll(async () => {
  await publisher?.disconnect()
})

function streamer(overrides: Partial<Parameters<typeof createStreamer>[0]> = {}): Streamer {
  return createStreamer({
    connectionString: ctx.db.url,
    pool: ctx.db.pool,
    publisher,
    slot: ctx.slot,
    batchSize: 50,
    retry: { baseMs: 50, maxMs: 200 },
    standbyRetryMs: 100,
    statusIntervalMs: 200,
    ...overrides,
  })
}

const published = async () => (await statuses(ctx.db.pool)).published ?? 0

function rowsFor(topic: string, keys: number, perKey: number): NewRow[] {
  const rows: NewRow[] = []
  for (let i = 0; i < perKey; i++)
    for (let k = 0; k < keys; k++)
      rows.push({ topic, key: `k${k}`, payload: { n: i }, headers: { trace: `t${i}` } })
  return rows
}

describe('stream relay', () => {
  it('publishes every committed row once, in commit order per key, with the polling relay’s message format', async () => {
    const topic = uniqueTopic('stream')
    const s = streamer()
    await s.start()
    try {
      // Many transactions, interleaving keys; one transaction rolls back.
      for (let tx = 0; tx < 10; tx++)
        await insertRows(
          ctx.db.pool,
          rowsFor(topic, 4, 1).map((r) => ({ ...r, payload: { n: tx } })),
        )
      const client = await ctx.db.pool.connect()
      try {
        await client.query('BEGIN')
        await insertRows(client, [{ topic, key: 'k0', payload: { n: -1 } }])
        await client.query('ROLLBACK')
      } finally {
        client.release()
      }
      for (let tx = 10; tx < 20; tx++)
        await insertRows(
          ctx.db.pool,
          rowsFor(topic, 4, 1).map((r) => ({ ...r, payload: { n: tx } })),
        )
      await waitFor(async () => (await published()) === 80, '80 published rows')
      const messages = await collectMessages(kafka, [topic], { count: 80, settleMs: 1_000 })
      expect(messages).toHaveLength(80)
      expect(new Set(messages.map((m) => m.headers.id)).size).toBe(80)
      const expected = Array.from({ length: 20 }, (_, i) => i)
      for (const [key, order] of orderByKey(messages)) expect(order, key).toEqual(expected)
      const { rows } = await ctx.db.pool.query<{ id: string; type: string; aggregatetype: string }>(
        'SELECT id::text, type, aggregatetype FROM outbox_event WHERE aggregateid = $1 ORDER BY seq LIMIT 1',
        ['k0'],
      )
      const first = messages.find((m) => m.headers.id === rows[0]?.id)
      expect(first?.headers).toEqual({
        id: rows[0]?.id,
        eventType: rows[0]?.type,
        aggregateType: rows[0]?.aggregatetype,
        trace: 't0',
      })
      expect(first?.key).toBe('k0')
      expect(first?.value).toBe('{"n": 0}')
      expect(await statuses(ctx.db.pool)).toEqual({ published: 80 })
      const stats = await s.stats()
      expect(stats).toMatchObject({
        role: 'active',
        slotExists: true,
        slotActive: true,
        published: 80,
        dead: 0,
      })
      expect(stats.lastAckAt).not.toBeNull()
      expect(stats.lagBytes).toBeGreaterThanOrEqual(0)
      const http = await serveStreamStats(() => s.stats(), { port: 0, host: '127.0.0.1' })
      try {
        const metrics = await (await fetch(`${http.url}/metrics`)).text()
        expect(metrics).toMatch(/^outbox_stream_active 1$/m)
        expect(metrics).toMatch(/^outbox_stream_slot_lag_bytes \d+$/m)
        expect(metrics).toMatch(/^outbox_stream_published_total 80$/m)
        expect(await (await fetch(`${http.url}/stats`)).json()).toMatchObject({
          role: 'active',
          published: 80,
        })
        expect((await fetch(`${http.url}/dead`)).status).toBe(404)
      } finally {
        await http.close()
      }
    } finally {
      await s.stop()
    }
  })

  it('publishes rows whose commit is decoded before it is visible to other sessions', async () => {
    // The walsender can send a commit before the committing backend's snapshot change is
    // visible: many small concurrent transactions make that window likely.
    const topic = uniqueTopic('stream')
    const s = streamer({ batchSize: 500, lingerMs: 5 })
    await s.start()
    try {
      const writers = 4
      const perWriter = 300
      await Promise.all(
        Array.from({ length: writers }, async (_, w) => {
          for (let i = 0; i < perWriter; i++)
            await insertRows(ctx.db.pool, [{ topic, key: `w${w}`, payload: { n: i } }])
        }),
      )
      await waitFor(async () => (await published()) === writers * perWriter, 'every row published')
      expect((await s.stats()).skipped).toBe(0)
    } finally {
      await s.stop()
    }
  })

  it('prepares its check and mark once per connection when asked, and keeps going when a migration changes a column they read', async () => {
    const topic = uniqueTopic('stream')
    // One connection: the statements prepared on it are the ones this test reads back.
    const pool = new pg.Pool({ connectionString: ctx.db.url, max: 1 })
    const s = streamer({ pool, preparedStatements: true })
    await s.start()
    try {
      await insertRows(ctx.db.pool, rowsFor(topic, 3, 5))
      await waitFor(async () => (await published()) === 15, 'the first 15 rows')
      const prepared = await pool.query<{ name: string }>(
        'SELECT name FROM pg_prepared_statements ORDER BY name',
      )
      expect(prepared.rows.map((r) => r.name.replace(/_[0-9a-f]{16}$/, ''))).toEqual([
        'outbox_stream_check',
        'outbox_stream_mark',
      ])
      // The check returns `status`: its prepared plan on these connections no longer fits ("cached
      // plan must not change result type", 0A000) after this.
      await ctx.db.pool.query('ALTER TABLE outbox_event ALTER COLUMN status TYPE varchar(16)')
      await insertRows(
        ctx.db.pool,
        rowsFor(topic, 3, 5).map((r) => ({ ...r, payload: { n: (r.payload as { n: number }).n + 5 } })),
      )
      await waitFor(async () => (await published()) === 30, 'all 30 rows')
      const messages = await collectMessages(kafka, [topic], { count: 30, settleMs: 1_000 })
      expect(messages).toHaveLength(30)
      const expected = Array.from({ length: 10 }, (_, i) => i)
      for (const [key, order] of orderByKey(messages)) expect(order, key).toEqual(expected)
      expect((await s.stats()).lastError).toBeNull()
    } finally {
      await s.stop()
      await pool.end()
    }
  })

  it('prepares only its check by default, and nothing with preparedStatements: false', async () => {
    const topic = uniqueTopic('stream')
    for (const [preparedStatements, expected] of [
      [undefined, ['outbox_stream_check']],
      [false, []],
    ] as const) {
      // One connection: the statements prepared on it are the ones this test reads back.
      const pool = new pg.Pool({ connectionString: ctx.db.url, max: 1 })
      const s = streamer({ pool, preparedStatements })
      await s.start()
      try {
        const before = await published()
        await insertRows(ctx.db.pool, rowsFor(topic, 2, 2))
        await waitFor(async () => (await published()) === before + 4, 'the 4 rows')
        const prepared = await pool.query<{ name: string }>('SELECT name FROM pg_prepared_statements')
        expect(prepared.rows.map((r) => r.name.replace(/_[0-9a-f]{16}$/, ''))).toEqual(expected)
      } finally {
        await s.stop()
        await pool.end()
      }
    }
  })

  it('resumes from the confirmed position after a restart: nothing lost, nothing published twice', async () => {
    const topic = uniqueTopic('stream')
    const first = streamer()
    await first.start()
    await insertRows(ctx.db.pool, rowsFor(topic, 3, 10))
    await waitFor(async () => (await published()) === 30, 'the first 30 rows')
    await first.stop()
    // Written while no streamer runs: the slot keeps them.
    await insertRows(
      ctx.db.pool,
      rowsFor(topic, 3, 10).map((r) => ({ ...r, payload: { n: (r.payload as { n: number }).n + 10 } })),
    )
    expect((await first.stats()).lagBytes).toBeGreaterThan(0)
    const second = streamer()
    await second.start()
    try {
      await waitFor(async () => (await published()) === 60, 'all 60 rows')
      const messages = await collectMessages(kafka, [topic], { count: 60, settleMs: 1_000 })
      expect(messages).toHaveLength(60)
      const expected = Array.from({ length: 20 }, (_, i) => i)
      for (const [key, order] of orderByKey(messages)) expect(order, key).toEqual(expected)
    } finally {
      await second.stop()
    }
  })

  it('sends a poison event dead and keeps the others flowing; later events of its key are held back', async () => {
    const topic = uniqueTopic('stream')
    const s = streamer()
    await s.start()
    try {
      const [, poison, after] = await insertRows(ctx.db.pool, [
        { topic, key: 'a', payload: { n: 0 } },
        { topic: 'not a valid topic!', key: 'p', payload: { n: 0 } },
        { topic: 'not a valid topic!', key: 'p', payload: { n: 1 } },
        { topic, key: 'a', payload: { n: 1 } },
      ])
      await insertRows(ctx.db.pool, [{ topic, key: 'b', payload: { n: 0 } }])
      await waitFor(async () => (await published()) === 3, 'the three healthy rows')
      const { rows } = await ctx.db.pool.query<{
        id: string
        status: string
        attempts: number
        last_error: string
      }>(
        'SELECT id::text, status, attempts, last_error FROM outbox_event WHERE aggregateid = $1 ORDER BY seq',
        ['p'],
      )
      expect(rows[0]).toMatchObject({ id: poison, status: 'dead', attempts: 1 })
      expect(rows[0]?.last_error).toMatch(/topic/i)
      expect(rows[1]).toMatchObject({ id: after, status: 'pending', attempts: 0 })
      expect(rows[1]?.last_error).toMatch(/held back/)
      const messages = await collectMessages(kafka, [topic], { count: 3, settleMs: 500 })
      expect(messages.map((m) => m.key).sort()).toEqual(['a', 'a', 'b'])
      expect(await s.stats()).toMatchObject({ dead: 1, held: 1, published: 3 })
    } finally {
      await s.stop()
    }
  })

  it('waits out a broker outage without losing events, counting attempts or moving the slot', async () => {
    const topic = uniqueTopic('stream')
    const closedPort = await freePort()
    const down = new Kafka({
      clientId: 'outbox-stream-down',
      brokers: [`127.0.0.1:${closedPort}`],
      logLevel: logLevel.NOTHING,
      retry: { retries: 0 },
      connectionTimeout: 200,
    })
    const { KafkaPublisher: Real } = await import('../src/index.js')
    const dead = new Real({ kafka: down, retry: { retries: 1, initialRetryTime: 50, maxRetryTime: 100 } })
    let brokerUp = false
    let failures = 0
    const switching: Publisher = {
      connect: async () => {},
      disconnect: () => dead.disconnect(),
      async publish(messages) {
        if (brokerUp) return publisher.publish(messages)
        await dead.connect()
        return dead.publish(messages)
      },
    }
    const s = streamer({ publisher: switching, onError: () => failures++ })
    await s.start()
    try {
      const writer = await ctx.db.pool.connect()
      let beforeCommit: string
      try {
        await writer.query('BEGIN')
        await insertRows(writer, rowsFor(topic, 2, 5))
        // A position before the commit record: the slot must not reach it while Kafka is down.
        beforeCommit = (
          await writer.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn()::text AS lsn')
        ).rows[0]?.lsn as string
        await writer.query('COMMIT')
      } finally {
        writer.release()
      }
      await waitFor(() => failures >= 3, 'three failed publishes')
      // Let the streamer see the server's keepalives after the commit and report back several times.
      const since = (await ctx.db.pool.query<{ t: Date }>('SELECT clock_timestamp() AS t')).rows[0]?.t
      await waitFor(async () => {
        const { rows } = await ctx.db.pool.query<{ replied: boolean }>(
          `SELECT r.reply_time > $2::timestamptz + interval '1 second' AS replied
           FROM pg_stat_replication AS r JOIN pg_replication_slots AS s ON s.active_pid = r.pid
           WHERE s.slot_name = $1`,
          [ctx.slot, since],
        )
        return rows[0]?.replied === true
      }, 'status updates sent a second after the failures began')
      const held = await ctx.db.pool.query<{ ok: boolean }>(
        'SELECT confirmed_flush_lsn <= $2::pg_lsn AS ok FROM pg_replication_slots WHERE slot_name = $1',
        [ctx.slot, beforeCommit],
      )
      expect(held.rows[0]?.ok).toBe(true)
      const during = await s.stats()
      expect(during.lastError).toMatch(/^publish:/)
      expect(during.lagBytes).toBeGreaterThan(0)
      const before = await ctx.db.pool.query<{ lsn: string }>(
        'SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = $1',
        [ctx.slot],
      )
      const { rows: pendingRows } = await ctx.db.pool.query<{ n: string }>(
        "SELECT count(*) AS n FROM outbox_event WHERE status = 'pending' AND attempts = 0",
      )
      expect(Number(pendingRows[0]?.n)).toBe(10)
      brokerUp = true
      await waitFor(async () => (await published()) === 10, 'all 10 rows after the broker came back')
      const messages = await collectMessages(kafka, [topic], { count: 10, settleMs: 1_000 })
      expect(messages).toHaveLength(10)
      for (const [key, order] of orderByKey(messages)) expect(order, key).toEqual([0, 1, 2, 3, 4])
      const { rows } = await ctx.db.pool.query<{ attempts: number }>(
        'SELECT DISTINCT attempts FROM outbox_event',
      )
      expect(rows).toEqual([{ attempts: 0 }])
      await waitFor(async () => {
        const after = await ctx.db.pool.query<{ moved: boolean }>(
          'SELECT confirmed_flush_lsn > $2::pg_lsn AS moved FROM pg_replication_slots WHERE slot_name = $1',
          [ctx.slot, before.rows[0]?.lsn],
        )
        return after.rows[0]?.moved === true
      }, 'the slot to move once the events were acknowledged')
    } finally {
      await s.stop()
      await dead.disconnect()
    }
  })

  it('keeps one active streamer per slot; a standby takes over when the active one goes away', async () => {
    const topic = uniqueTopic('stream')
    const roles: StreamerRole[] = []
    const a = streamer()
    const b = streamer({ onRoleChange: (role) => roles.push(role) })
    await a.start()
    await waitFor(() => a.role === 'active', 'the first streamer to be active')
    await b.start()
    await waitFor(() => b.role === 'standby', 'the second streamer to stand by')
    await insertRows(ctx.db.pool, rowsFor(topic, 2, 3))
    await waitFor(async () => (await published()) === 6, 'the first rows')
    expect(b.role).toBe('standby')
    await a.stop()
    try {
      await waitFor(() => b.role === 'active', 'the standby to take over')
      await insertRows(
        ctx.db.pool,
        rowsFor(topic, 2, 3).map((r) => ({ ...r, payload: { n: (r.payload as { n: number }).n + 3 } })),
      )
      await waitFor(async () => (await published()) === 12, 'all 12 rows')
      const messages = await collectMessages(kafka, [topic], { count: 12, settleMs: 1_000 })
      expect(messages).toHaveLength(12)
      for (const [key, order] of orderByKey(messages)) expect(order, key).toEqual([0, 1, 2, 3, 4, 5])
      expect(roles).toContain('standby')
    } finally {
      await b.stop()
    }
  })

  it('drops the slot and publication on uninstall, and refuses while a streamer holds the slot', async () => {
    const s = streamer()
    await s.start()
    await waitFor(() => s.role === 'active', 'an active streamer')
    await expect(dropStreamSetup(ctx.db.pool, { slot: ctx.slot })).rejects.toThrow(/stop every streamer/)
    await s.stop()
    expect(await dropStreamSetup(ctx.db.pool, { slot: ctx.slot })).toEqual({ slotDropped: true })
    const { rows } = await ctx.db.pool.query(
      'SELECT (SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1)::int AS slots, (SELECT count(*) FROM pg_publication WHERE pubname = $1)::int AS pubs',
      [ctx.slot],
    )
    expect(rows[0]).toEqual({ slots: 0, pubs: 0 })
  })

  it('outbox-relay stream --drop-slot uninstalls what the streamer set up', async () => {
    const s = streamer()
    await s.start()
    await s.stop()
    const out: string[] = []
    const err: string[] = []
    const code = await main(['stream', '--drop-slot'], {
      env: { DATABASE_URL: ctx.db.url, KAFKA_BROKERS: kafkaBrokers().join(','), STREAM_SLOT: ctx.slot },
      stdout: { write: (t: string) => out.push(t) },
      stderr: { write: (t: string) => err.push(t) },
    })
    expect(err.join('')).toBe('')
    expect(code).toBe(0)
    expect(JSON.parse(out.join(''))).toEqual({ slot: ctx.slot, publication: ctx.slot, slotDropped: true })
    const { rows } = await ctx.db.pool.query(
      'SELECT count(*)::int AS n FROM pg_replication_slots WHERE slot_name = $1',
      [ctx.slot],
    )
    expect(rows[0]).toEqual({ n: 0 })
  })
})

describe('stream relay on a server without logical WAL', () => {
  it('refuses to start and names the setting', async () => {
    const db = await testDatabase()
    try {
      const { rows } = await db.pool.query<{ wal_level: string }>('SHOW wal_level')
      expect(rows[0]?.wal_level).not.toBe('logical')
      const s = createStreamer({ connectionString: db.url, pool: db.pool, publisher, slot: 'never_created' })
      await expect(s.start()).rejects.toThrow(/needs wal_level = logical, but the server has wal_level = /)
    } finally {
      await db.drop()
    }
  })
})

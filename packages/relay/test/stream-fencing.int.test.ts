/**
 * The stream relay's safety around its slot: a streamer that lost the slot between checking a
 * batch and publishing it publishes nothing (the new owner does, once), and the max-lag limit
 * turns the health to degraded (stats, metrics, callback) and back.
 */
import { collectMessages, kafkaBrokers, testKafka, uniqueTopic } from '@prisma-outbox/devkit'
import { describe, expect, it } from 'vitest'
import { main } from '../src/cli/main.js'
import type { PoolLike } from '../src/core/db.js'
import { createStreamer, ensureStreamSetup, type StreamStats, streamMetricsText } from '../src/index.js'
import { gate, insertRows, statuses, wrapPublisher } from './helpers.js'
import { useStreamDatabase, useStreamPublisher, waitFor } from './stream-helpers.js'

const kafka = testKafka('outbox-stream-fencing-test')
const ctx = useStreamDatabase()
const kafkaPublisher = useStreamPublisher(kafka)

const published = async () => (await statuses(ctx.db.pool)).published ?? 0

/**
 * The test pool, except that the result of the batch check is held while `held` is set: the check
 * runs at once, its answer arrives late (a process frozen between its check and its publish).
 */
function holdingPool(): {
  pool: PoolLike
  hold(): { released: Promise<void>; release(): void }
  waiting(): number
} {
  let held: ReturnType<typeof gate> | undefined
  let waiting = 0
  const pool: PoolLike = {
    connect: () => ctx.db.pool.connect(),
    async query(text, values) {
      const result = await ctx.db.pool.query(text, values)
      const wait = held
      if (wait && text.includes('pg_visible_in_snapshot')) {
        waiting++
        await wait.promise
      }
      return result
    },
  }
  return {
    pool,
    waiting: () => waiting,
    hold() {
      const g = gate()
      held = g
      return {
        released: g.promise,
        release() {
          held = undefined
          g.open()
        },
      }
    },
  }
}

describe('stream relay fencing', () => {
  it('publishes nothing it checked before it lost the slot, and stands by behind the new owner', async () => {
    const topic = uniqueTopic('stream-fence')
    const holding = holdingPool()
    const errors: string[] = []
    let publishedByA = 0
    const a = createStreamer({
      connectionString: ctx.db.url,
      pool: holding.pool,
      publisher: wrapPublisher(kafkaPublisher.get(), {
        before: (m) => {
          publishedByA += m.length
        },
      }),
      slot: ctx.slot,
      retry: { baseMs: 50, maxMs: 200 },
      standbyRetryMs: 100,
      onError: (error) => errors.push(String(error)),
    })
    const b = createStreamer({
      connectionString: ctx.db.url,
      pool: ctx.db.pool,
      publisher: kafkaPublisher.get(),
      slot: ctx.slot,
      standbyRetryMs: 100,
    })
    await a.start()
    try {
      await waitFor(() => a.role === 'active', 'the first streamer to be active')
      const held = holding.hold()
      await insertRows(
        ctx.db.pool,
        [0, 1, 2].map((n) => ({ topic, key: 'k', payload: { n } })),
      )
      await waitFor(() => holding.waiting() > 0, 'the first streamer to check the batch')
      // The server ends its walsender (as wal_sender_timeout does to a frozen process); another
      // streamer takes the slot and publishes the batch.
      await ctx.db.pool.query(
        'SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1',
        [ctx.slot],
      )
      await b.start()
      await waitFor(() => b.role === 'active', 'the second streamer to take over')
      await waitFor(async () => (await published()) === 3, 'the new owner to publish the batch')
      held.release()
      await waitFor(() => a.role === 'standby', 'the first streamer to stand by')
      const messages = await collectMessages(kafka, [topic], { count: 3, settleMs: 2_000 })
      expect(messages.map((m) => JSON.parse(m.value ?? '{}').n)).toEqual([0, 1, 2])
      expect(publishedByA).toBe(0)
      expect((await a.stats()).published).toBe(0)
    } finally {
      await a.stop()
      await b.stop()
    }
  })

  it('turns degraded when the slot lag passes the limit, and healthy again once it caught up', async () => {
    const topic = uniqueTopic('stream-lag')
    const broker = gate()
    const changes: StreamStats[] = []
    const s = createStreamer({
      connectionString: ctx.db.url,
      pool: ctx.db.pool,
      publisher: wrapPublisher(kafkaPublisher.get(), { before: () => broker.promise }),
      slot: ctx.slot,
      lagAlertBytes: 64 * 1024,
      healthCheckMs: 100,
      statusIntervalMs: 200,
      onHealthChange: (stats) => changes.push(stats),
    })
    await s.start()
    try {
      await waitFor(() => s.role === 'active', 'an active streamer')
      expect((await s.stats()).health).toBe('ok')
      // The broker hangs: nothing is acknowledged, the slot cannot move while rows are written.
      for (let i = 0; i < 4; i++)
        await insertRows(
          ctx.db.pool,
          Array.from({ length: 250 }, (_, n) => ({
            topic,
            key: `k${n % 10}`,
            payload: { pad: 'x'.repeat(200) },
          })),
        )
      await waitFor(() => changes.length === 1, 'a health change')
      const degraded = changes[0] as StreamStats
      expect(degraded.health).toBe('degraded')
      expect(degraded.lagAlert).toBe(true)
      expect(degraded.problems.join(' ')).toMatch(/slot lag \d+ bytes is above the limit of 65536/)
      const metrics = streamMetricsText(await s.stats())
      expect(metrics).toMatch(/^outbox_stream_healthy 0$/m)
      expect(metrics).toMatch(/^outbox_stream_slot_lag_alert 1$/m)
      broker.open()
      await waitFor(async () => (await published()) === 1_000, 'the backlog to be published')
      await waitFor(() => changes.length === 2, 'the health to recover')
      expect(changes[1]?.health).toBe('ok')
      expect(streamMetricsText(await s.stats())).toMatch(/^outbox_stream_healthy 1$/m)
    } finally {
      broker.open()
      await s.stop()
    }
  })

  it('outbox-relay stream logs when the slot lag is above STREAM_LAG_ALERT_BYTES, and when it is back under', async () => {
    const topic = uniqueTopic('stream-lag-cli')
    // The slot exists and falls behind while no streamer runs.
    await ensureStreamSetup(ctx.db.pool, { slot: ctx.slot })
    for (let i = 0; i < 4; i++)
      await insertRows(
        ctx.db.pool,
        Array.from({ length: 500 }, (_, n) => ({
          topic,
          key: `k${n % 10}`,
          payload: { pad: 'x'.repeat(200) },
        })),
      )
    const err: string[] = []
    const stop = new AbortController()
    const exited = main(['stream'], {
      env: {
        DATABASE_URL: ctx.db.url,
        KAFKA_BROKERS: kafkaBrokers().join(','),
        STREAM_SLOT: ctx.slot,
        STREAM_LAG_ALERT_BYTES: String(64 * 1024),
        STREAM_HEALTH_CHECK_MS: '100',
      },
      stdout: { write: () => true },
      stderr: { write: (t: string) => err.push(t) },
      signal: stop.signal,
    })
    try {
      await waitFor(() => err.join('').includes('stream degraded'), 'the degraded line')
      expect(err.join('')).toMatch(
        new RegExp(
          `stream degraded \\(slot ${ctx.slot}\\): slot lag \\d+ bytes is above the limit of 65536 bytes`,
        ),
      )
      await waitFor(async () => (await published()) === 2_000, 'the backlog to be published')
      await waitFor(() => err.join('').includes('stream healthy again'), 'the healthy line')
    } finally {
      stop.abort()
      expect(await exited).toBe(0)
    }
  })
})

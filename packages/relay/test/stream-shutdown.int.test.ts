/**
 * PostgreSQL shut down (fast, as `pg_ctl restart` does) while the stream relay's mark cannot
 * reach it: the streamer must give its replication connection up, or the walsender, which stops
 * only once its client confirmed everything sent, holds the shutdown for as long as the streamer
 * lives. Own cluster: the test stops it.
 */
import {
  createTestDatabase,
  type LogicalPostgres,
  startLogicalPostgres,
  testKafka,
  uniqueTopic,
} from '@prisma-outbox/devkit'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createStreamer, type Streamer } from '../src/index.js'
import { insertRows, MIGRATIONS } from './helpers.js'
import { useStreamPublisher, waitFor } from './stream-helpers.js'

const kafka = testKafka('outbox-stream-shutdown-test')
const publisher = useStreamPublisher(kafka)
let cluster: LogicalPostgres | undefined
let stopped = false
beforeAll(async () => {
  cluster = await startLogicalPostgres()
}, 120_000)
afterAll(async () => {
  if (!stopped) await cluster?.stop()
})

describe('stream relay during a PostgreSQL shutdown', () => {
  it('gives its replication connection up when its marks find the server shutting down', async () => {
    const db = await createTestDatabase({ migrations: [MIGRATIONS], baseUrl: cluster?.url, prefix: 'stream' })
    // Every settle statement waits for advisory lock 42 while the test holds it: the batch is
    // published and cannot be marked when the shutdown comes.
    await db.pool.query(`CREATE FUNCTION hold_settle() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN PERFORM pg_advisory_xact_lock(42); RETURN NULL; END $$;
      CREATE TRIGGER hold_settle BEFORE UPDATE OR DELETE ON outbox_event
      FOR EACH STATEMENT EXECUTE FUNCTION hold_settle()`)
    const holder = new pg.Client({ connectionString: db.url })
    await holder.connect()
    holder.on('error', () => {})
    await holder.query('SELECT pg_advisory_lock(42)')
    const errors: string[] = []
    const streamer: Streamer = createStreamer({
      connectionString: db.url,
      pool: db.pool,
      publisher: publisher.get(),
      slot: 'shutdown',
      retry: { baseMs: 50, maxMs: 500 },
      statusIntervalMs: 200,
      onError: (error) => errors.push(String(error)),
    })
    db.pool.on('error', () => {})
    await streamer.start()
    try {
      const topic = uniqueTopic('stream-shutdown')
      await insertRows(db.pool, [
        { topic, key: 'a' },
        { topic, key: 'b' },
      ])
      await waitFor(async () => {
        const waiting = await db.pool.query<{ n: number }>(
          "SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted",
        )
        return waiting.rows[0]?.n === 1
      }, 'the mark waiting for the lock')
      expect((await streamer.stats()).lastPublishAt).not.toBeNull()
      // Fast shutdown: every session is terminated, new ones are refused, the walsender waits.
      const stop = cluster?.stop().then(() => 'stopped' as const)
      stopped = true
      const outcome = await Promise.race([
        stop,
        new Promise((resolve) => setTimeout(resolve, 30_000, 'held')),
      ])
      expect(outcome, 'PostgreSQL finished its shutdown while the streamer was still running').toBe('stopped')
      expect(
        errors.some((e) => /shutting down/.test(e)),
        `errors seen: ${errors.join(' | ')}`,
      ).toBe(true)
    } finally {
      await holder.end().catch(() => {})
      await streamer.stop()
      await db.pool.end().catch(() => {})
    }
  }, 90_000)
})

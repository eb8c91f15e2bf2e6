/**
 * Watch mode against real PostgreSQL and Kafka: a committed row reaches Kafka through
 * LISTEN/NOTIFY long before the (deliberately huge) polling interval, also after the LISTEN
 * connection was killed.
 */
import {
  collectMessages,
  createTopics,
  type TestDatabase,
  testKafka,
  uniqueTopic,
} from '@prisma-outbox/devkit'
import pg from 'pg'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest'
import {
  createEngine,
  createWatcher,
  type KafkaPublisher,
  type ListenClient,
  WATCH_LEAD_LOCK_KEY,
  type WakeReason,
  type Watcher,
} from '../src/index.js'
import { insertRows, kafkaPublisher, sleep, statuses, testDatabase, wrapPublisher } from './helpers.js'

const kafka = testKafka('relay-watch-test')
/** Far above anything the tests wait for: a message that arrives came from a notification. */
const POLL_MS = 60_000
/** Generous, for slow CI machines, yet far below POLL_MS. */
const ARRIVAL_TIMEOUT_MS = 15_000
const APP_NAME = 'outbox-watch-test'

let publisher: KafkaPublisher
let db: TestDatabase
let watcher: Watcher | undefined

beforeAll(async () => {
  publisher = await kafkaPublisher(kafka)
})
afterAll(async () => {
  await publisher.disconnect()
})
beforeEach(async () => {
  db = await testDatabase()
})
afterEach(async () => {
  await watcher?.stop()
  watcher = undefined
  await db.drop()
})

async function startWatcher(errors: unknown[] = []): Promise<Watcher> {
  const engine = createEngine({ pool: db.pool, publisher })
  watcher = createWatcher({
    engine,
    createClient: () => new pg.Client({ connectionString: db.url, application_name: APP_NAME }),
    pollMs: POLL_MS,
    reconnectMinMs: 100,
    onError: (error) => errors.push(error),
  })
  await watcher.start()
  await watcher.idle()
  return watcher
}

describe('watch mode', () => {
  it('Should publish a new row soon after commit, without polling', async () => {
    const topic = uniqueTopic('relay-watch')
    await createTopics(kafka, [topic], 1)
    await startWatcher()
    const started = Date.now()
    const [id] = await insertRows(db.pool, [{ topic, key: 'k1', payload: { hello: 'watch' } }])
    const messages = await collectMessages(kafka, [topic], { count: 1, timeoutMs: ARRIVAL_TIMEOUT_MS })
    const elapsed = Date.now() - started
    expect(messages.map((m) => m.headers.id)).toEqual([id])
    expect(elapsed).toBeLessThan(POLL_MS)
    console.info(`watch: commit → consumer in ${elapsed} ms (includes the test consumer joining its group)`)
    await vi.waitFor(async () => expect(await statuses(db.pool)).toEqual({ published: 1 }), {
      timeout: 5_000,
    })
  })

  it('Should publish rows written in a transaction, once, after commit', async () => {
    const topic = uniqueTopic('relay-watch')
    await createTopics(kafka, [topic], 1)
    await startWatcher()
    const client = await db.pool.connect()
    try {
      await client.query('BEGIN')
      await insertRows(client, [{ topic, key: 'a' }])
      await insertRows(client, [
        { topic, key: 'a' },
        { topic, key: 'b' },
      ])
      await client.query('COMMIT')
    } finally {
      client.release()
    }
    const messages = await collectMessages(kafka, [topic], {
      count: 3,
      timeoutMs: ARRIVAL_TIMEOUT_MS,
      settleMs: 500,
    })
    expect(messages).toHaveLength(3)
  })

  it('Should reconnect after its LISTEN connection is killed and still react to notifications', async () => {
    const topic = uniqueTopic('relay-watch')
    await createTopics(kafka, [topic], 1)
    const errors: unknown[] = []
    const w = await startWatcher(errors)
    const { rowCount } = await db.pool.query(
      'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()',
      [APP_NAME],
    )
    expect(rowCount).toBe(1)
    await vi.waitFor(() => expect(errors.length).toBeGreaterThan(0), { timeout: 5_000 })
    await vi.waitFor(() => expect(w.listening).toBe(true), { timeout: 10_000 })
    const [id] = await insertRows(db.pool, [{ topic, key: 'after-reconnect' }])
    const messages = await collectMessages(kafka, [topic], { count: 1, timeoutMs: ARRIVAL_TIMEOUT_MS })
    expect(messages.map((m) => m.headers.id)).toEqual([id])
  })

  it('Should not hear notifications while a flow keeps it draining, and find what was committed before it listens again', async () => {
    const topic = uniqueTopic('relay-watch')
    await createTopics(kafka, [topic], 1)
    // A publish that takes 20 ms: commits every few ms land during each drain.
    const slow = wrapPublisher(publisher, { before: () => sleep(20) })
    let heard = 0
    let listens = 0
    // Committed just before each LISTEN that follows a flow: no notification announces them.
    const late: string[] = []
    const relistenPublished: number[] = []
    watcher = createWatcher({
      engine: createEngine({ pool: db.pool, publisher: slow }),
      createClient: (): ListenClient => {
        const client = new pg.Client({ connectionString: db.url, application_name: APP_NAME })
        client.on('notification', () => heard++)
        return {
          connect: () => client.connect(),
          end: () => client.end(),
          on: (event, listener) => client.on(event, listener),
          async query(text) {
            if (text.startsWith('LISTEN') && listens++ > 0)
              late.push(...(await insertRows(db.pool, [{ topic, key: `late${late.length}` }])))
            return client.query(text)
          },
        }
      },
      pollMs: POLL_MS,
      onDrain: (result, reason) => {
        if (reason === 'relisten') relistenPublished.push(result.published)
      },
    })
    await watcher.start()
    await watcher.idle()
    // Three bursts of one-row transactions, 1 s each, with pauses: it listens for the first
    // 100 ms of each (or longer on a slow machine), and the poll is a minute away.
    const ids: string[] = []
    for (let burst = 0; burst < 3; burst++) {
      const until = Date.now() + 1_000
      while (Date.now() < until)
        ids.push(...(await insertRows(db.pool, [{ topic, key: `k${ids.length % 7}` }])))
      await vi.waitFor(
        async () => expect(await statuses(db.pool)).toEqual({ published: ids.length + late.length }),
        { timeout: ARRIVAL_TIMEOUT_MS },
      )
    }
    // It stopped listening under the flow and listened again after; the row committed just
    // before its last LISTEN has no later commit to announce it: the drain that follows LISTEN
    // publishes it (a recheck that happened to be due would too), not the poll.
    await watcher.idle()
    expect(late.length).toBeGreaterThan(0)
    await vi.waitFor(
      async () => expect(await statuses(db.pool)).toEqual({ published: ids.length + late.length }),
      { timeout: ARRIVAL_TIMEOUT_MS },
    )
    expect(relistenPublished.length).toBeGreaterThan(0)
    const messages = await collectMessages(kafka, [topic], {
      count: ids.length + late.length,
      timeoutMs: ARRIVAL_TIMEOUT_MS,
    })
    expect(new Set(messages.map((m) => m.headers.id))).toEqual(new Set([...ids, ...late]))
    // Listening all along, it would hear one notification per commit (the measure, about 1 in 10
    // here, is in the README; this bound leaves room for a slow machine).
    console.info(`watch: ${heard} notifications heard for ${ids.length} commits`)
    expect(heard).toBeLessThan(ids.length * 0.8)
  })

  it('Should let one of several watchers answer notifications, and another take over when it ends', async () => {
    const topic = uniqueTopic('relay-watch')
    await createTopics(kafka, [topic], 1)
    const engine = createEngine({ pool: db.pool, publisher })
    const worked = { first: 0, second: 0 }
    const watch = (name: keyof typeof worked, pollMs: number) =>
      createWatcher({
        engine,
        createClient: () =>
          new pg.Client({ connectionString: db.url, application_name: `${APP_NAME}-${name}` }),
        pollMs,
        onDrain: () => worked[name]++,
      })
    const first = watch('first', POLL_MS)
    // Its polls come every 2 s; a notification is answered in milliseconds.
    const second = watch('second', 2_000)
    watcher = first
    try {
      await first.start()
      await second.start()
      expect([first.leading, second.leading]).toEqual([true, false])
      // Every watcher drains once at start, leading or not: let those end first.
      await Promise.all([first.idle(), second.idle()])
      await insertRows(db.pool, [{ topic, key: 'k1' }])
      // onDrain follows the drain's mark and its count of what remains: wait for it, not the row.
      await vi.waitFor(() => expect(worked.first).toBe(1), { timeout: 5_000 })
      expect(await statuses(db.pool)).toEqual({ published: 1 })
      expect(worked).toEqual({ first: 1, second: 0 })
      // The leader stops: its LISTEN connection, and the lock with it, are gone.
      await first.stop()
      await vi.waitFor(() => expect(second.leading).toBe(true), { timeout: 10_000 })
      await insertRows(db.pool, [{ topic, key: 'k2' }])
      await vi.waitFor(() => expect(worked.second).toBe(1), { timeout: 5_000 })
      expect(await statuses(db.pool)).toEqual({ published: 2 })
    } finally {
      await second.stop()
    }
  })

  it('Should publish in place of a leader that froze holding the lead, within two polls', async () => {
    const topic = uniqueTopic('relay-watch')
    await createTopics(kafka, [topic], 1)
    // A leader frozen in place: its session holds the lead lock and never drains.
    const frozen = new pg.Client({ connectionString: db.url, application_name: `${APP_NAME}-frozen` })
    await frozen.connect()
    try {
      const { rows } = await frozen.query<{ leader: boolean }>(
        `SELECT pg_try_advisory_lock($1::int, hashtext('["outbox_event",[]]')) AS leader`,
        [WATCH_LEAD_LOCK_KEY],
      )
      expect(rows[0]?.leader).toBe(true)
      const reasons: WakeReason[] = []
      const engine = createEngine({ pool: db.pool, publisher })
      watcher = createWatcher({
        engine,
        createClient: () => new pg.Client({ connectionString: db.url, application_name: APP_NAME }),
        pollMs: 300,
        onDrain: (_result, reason) => reasons.push(reason),
      })
      await watcher.start()
      await watcher.idle()
      expect(watcher.leading).toBe(false)
      const ids = await insertRows(
        db.pool,
        Array.from({ length: 20 }, (_, i) => ({ topic, key: `k${i % 3}` })),
      )
      const messages = await collectMessages(kafka, [topic], {
        count: ids.length,
        timeoutMs: ARRIVAL_TIMEOUT_MS,
      })
      expect(messages.map((m) => m.headers.id).sort()).toEqual([...ids].sort())
      // onDrain follows the drain's mark and its count of what remains: wait for it.
      await vi.waitFor(() => expect(reasons).toContain('standby'), { timeout: 5_000 })
      expect(await statuses(db.pool)).toEqual({ published: ids.length })
    } finally {
      await frozen.end()
    }
  })

  it('Should leave the table to a leader that keeps up: a standby only looks at the row first in line', async () => {
    const topic = uniqueTopic('relay-watch')
    await createTopics(kafka, [topic], 1)
    const engine = createEngine({ pool: db.pool, publisher })
    const counted = { drains: 0, looks: 0 }
    const standbyEngine = {
      drain: (options?: Parameters<typeof engine.drain>[0]) => {
        counted.drains++
        return engine.drain(options)
      },
      firstWaiting: (options?: Parameters<typeof engine.firstWaiting>[0]) => {
        counted.looks++
        return engine.firstWaiting(options)
      },
    }
    const watch = (e: Parameters<typeof createWatcher>[0]['engine'], name: string) =>
      createWatcher({
        engine: e,
        createClient: () =>
          new pg.Client({ connectionString: db.url, application_name: `${APP_NAME}-${name}` }),
        pollMs: 200,
      })
    const leader = watch(engine, 'leader')
    const standby = watch(standbyEngine, 'standby')
    watcher = leader
    try {
      await leader.start()
      await standby.start()
      await Promise.all([leader.idle(), standby.idle()])
      expect([leader.leading, standby.leading]).toEqual([true, false])
      const drainsAtStart = counted.drains
      // A steady flow of one row per transaction for 2 s: ten polls of the standby.
      const ids: string[] = []
      const until = Date.now() + 2_000
      while (Date.now() < until) {
        ids.push(...(await insertRows(db.pool, [{ topic, key: `k${ids.length % 5}` }])))
        await new Promise((r) => setTimeout(r, 25))
      }
      await vi.waitFor(async () => expect(await statuses(db.pool)).toEqual({ published: ids.length }), {
        timeout: ARRIVAL_TIMEOUT_MS,
      })
      expect(counted.looks).toBeGreaterThanOrEqual(5)
      // Draining at each poll, as every watcher that did not lead did before, would be ten drains.
      // A leader that paused past a whole poll (a slow machine) may let one or two through.
      expect(counted.drains - drainsAtStart).toBeLessThanOrEqual(2)
    } finally {
      await standby.stop()
    }
  })
})

/**
 * Liveness against real PostgreSQL and Kafka: no frozen process, silent database, broker outage,
 * signal or terminated connection may stall, overrun or dead-letter the pipeline.
 */
import { randomUUID } from 'node:crypto'
import {
  collectMessages,
  createTopics,
  kafkaBrokers,
  type TestDatabase,
  testKafka,
  uniqueTopic,
} from '@prisma-outbox/devkit'
import { Kafka, logLevel } from 'kafkajs'
import pg from 'pg'
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import type { RelayConfig } from '../src/cli/config.js'
import { createRuntime } from '../src/cli/runtime.js'
import { createJsonLogger } from '../src/core/log.js'
import { DRAIN_MARGIN_MS } from '../src/core/options.js'
import {
  CLAIM_LOCK_KEY,
  createEngine,
  createRelayApp,
  createRelayPool,
  type DrainResult,
  KafkaPublisher,
  type OutboxMessage,
  type Publisher,
  serveRelay,
} from '../src/index.js'
import { start } from './cli-process.js'
import {
  backlog,
  insertRows,
  kafkaPublisher,
  silentListener,
  sleep,
  statuses,
  testDatabase,
  waitClaimable,
} from './helpers.js'

const kafka = testKafka('relay-liveness-test')
let db: TestDatabase
let publisher: KafkaPublisher

beforeAll(async () => {
  publisher = await kafkaPublisher(kafka)
  return () => publisher.disconnect()
})
beforeEach(async () => {
  db = await testDatabase()
})
afterEach(async () => {
  await db.drop()
})

const env = (extra: Record<string, string> = {}) => ({
  DATABASE_URL: db.url,
  KAFKA_BROKERS: kafkaBrokers().join(','),
  KAFKA_CLIENT_ID: 'relay-liveness-test',
  ...extra,
})

/** A port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const s = await silentListener()
  await s.close()
  return s.port
}

/** Polls `fn` until it returns a truthy value (or fails after `ms`). */
async function until<T>(what: string, fn: () => Promise<T>, ms = 30_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + ms
  for (;;) {
    const value = await fn()
    if (value) return value as NonNullable<T>
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(20)
  }
}

describe('a frozen relay', () => {
  it('Should not stop the other relays for longer than the idle-in-transaction bound', async () => {
    await backlog(kafka, db.pool, { prefix: 'live-frozen', count: 60, keys: 60 })
    const frozenId = `frozen-${randomUUID().slice(0, 8)}`
    // Barrier: the test holds the claim lock, so the child's claim waits for it.
    const holder = new pg.Client({ connectionString: db.url })
    await holder.connect()
    await holder.query('SELECT pg_advisory_lock($1::bigint)', [CLAIM_LOCK_KEY])
    const relay = start(['drain', '--budget-ms', '60000', '--quiet'], env({ RELAY_ID: frozenId }))
    const backendOf = async () =>
      (
        await db.pool.query<{ pid: number; waiting: boolean; state: string }>(
          `SELECT pid, wait_event_type = 'Lock' AS waiting, state FROM pg_stat_activity
           WHERE application_name = $1 AND query LIKE '%pg_advisory_xact_lock%'`,
          [`outbox-relay ${frozenId}`],
        )
      ).rows[0]
    try {
      // Freeze the child while its backend waits for the lock, then hand the lock over: the frozen
      // process now holds the claim lock and will never send its claim.
      let frozen = false
      while (!frozen) {
        await until('the relay to wait for the claim lock', async () => (await backendOf())?.waiting)
        relay.child.kill('SIGSTOP')
        if ((await backendOf())?.waiting) frozen = true
        else relay.child.kill('SIGCONT')
      }
      await holder.query('SELECT pg_advisory_unlock($1::bigint)', [CLAIM_LOCK_KEY])
      const pid = await until('the frozen relay to hold the lock', async () => {
        const { rows } = await db.pool.query<{ pid: number }>(
          `SELECT l.pid FROM pg_locks l JOIN pg_stat_activity a USING (pid)
           WHERE l.locktype = 'advisory' AND l.granted AND a.application_name = $1`,
          [`outbox-relay ${frozenId}`],
        )
        return rows[0]?.pid
      })
      expect(pid).toBeGreaterThan(0)

      // Another relay: how long until it publishes?
      const pool = createRelayPool(db.url)
      const t0 = performance.now()
      let resumedAfter: number | undefined
      const other = createEngine({
        pool,
        publisher,
        options: { relayId: 'other' },
        hooks: {
          onBatch: (b) => {
            if (b.published > 0) resumedAfter ??= performance.now() - t0
          },
        },
      })
      const result = await other.drain({ budgetMs: 20_000 })
      expect(result.published).toBe(60)
      expect(resumedAfter).toBeDefined()
      // Claims take the lock shared, so the other relay need not wait at all; the bound is the
      // worst case of an exclusive holder: idleInTransactionMs (5 s) + one lock-wait slice (1 s) + a claim.
      expect(resumedAfter).toBeLessThan(5_000 + 1_000 + 1_500)
      await pool.end()
    } finally {
      relay.child.kill('SIGCONT')
      relay.child.kill('SIGKILL')
      await relay.done
      await holder.end().catch(() => {})
    }
  })
})

describe('a silent database', () => {
  it('Should make the CLI drain and watch exit 1 within seconds, naming the cause', async () => {
    const silent = await silentListener()
    try {
      const url = `postgresql://postgres@127.0.0.1:${silent.port}/postgres`
      for (const args of [
        ['drain', '--budget-ms', '2000'],
        ['watch', '--quiet'],
      ]) {
        const t0 = performance.now()
        const relay = start(args, env({ DATABASE_URL: url }))
        const killer = setTimeout(() => relay.child.kill('SIGKILL'), 45_000)
        const r = await relay.done
        clearTimeout(killer)
        expect(r.code, `${args[0]}: ${r.stderr}`).toBe(1)
        expect(r.stderr).toMatch(/connect timeout|timeout expired/)
        // Documented: the connect timeout (5 s), plus process start-up.
        expect(performance.now() - t0).toBeLessThan(20_000)
      }
    } finally {
      await silent.close()
    }
  })

  it('Should answer POST /drain, GET /stats, GET /dead and /metrics with 503 naming the cause', async () => {
    const silent = await silentListener()
    const pool = createRelayPool(`postgresql://postgres@127.0.0.1:${silent.port}/postgres`, {
      timeouts: { connectMs: 1_500 },
    })
    try {
      const engine = createEngine({ pool, publisher })
      const logger = { error: () => {}, warn: () => {} }
      const app = createRelayApp({ engine, pool, auth: 'none', logger, databaseTimeoutMs: 3_000 })
      const requests = [
        app.request('/drain', { method: 'POST', body: JSON.stringify({ budgetMs: 2_000 }) }),
        app.request('/stats'),
        app.request('/dead'),
        app.request('/dead/retry', { method: 'POST', body: JSON.stringify({ all: true }) }),
      ]
      for (const res of await Promise.all(requests)) {
        expect(res.status).toBe(503)
        const body = (await res.json()) as { error: { code: string; message: string } }
        expect(body.error.code).toBe('RELAY_DATABASE')
        expect(body.error.message).toMatch(/failed \((no answer within|.*connect timeout)/)
      }
      const health = await app.request('/health')
      expect(health.status).toBe(503)
    } finally {
      await pool.end().catch(() => {})
      await silent.close()
    }
  })
})

describe('a broker outage', () => {
  /** A publisher whose broker can be switched (the outage ends when `to` is called). */
  function switchable(first: Publisher): Publisher & { to(p: Publisher): void } {
    let current = first
    return {
      connect: async () => {},
      disconnect: async () => {},
      publish: (messages: OutboxMessage[], options) => current.publish(messages, options),
      to(p) {
        current = p
      },
    }
  }

  const unreachable = async (kind: 'closed port' | 'silent broker') => {
    const silent = kind === 'silent broker' ? await silentListener() : undefined
    const port = silent?.port ?? (await closedPort())
    const k = new Kafka({
      clientId: 'relay-liveness-outage',
      brokers: [`127.0.0.1:${port}`],
      connectionTimeout: 300,
      requestTimeout: 500,
      retry: { retries: 1, maxRetryTime: 100 },
      logLevel: logLevel.NOTHING,
    })
    const p = new KafkaPublisher({ kafka: k, retry: { retries: 1, maxRetryTime: 100 }, sendTimeoutMs: 800 })
    return { publisher: p, close: async () => silent?.close() }
  }

  it.each(['closed port', 'silent broker'] as const)(
    'Should cost no event an attempt over an outage far longer than the retry schedule (%s)',
    async (kind) => {
      const topic = uniqueTopic('live-outage')
      await createTopics(kafka, [topic], 3)
      const keys = ['a', 'b', 'c', 'd']
      await insertRows(
        db.pool,
        Array.from({ length: 40 }, (_, i) => ({ topic, key: keys[i % 4] as string, payload: { i } })),
      )
      await waitClaimable(db.pool)
      const broker = await unreachable(kind)
      const target = switchable(broker.publisher)
      const options = {
        maxAttempts: 3,
        backoff: { baseMs: 10, maxMs: 40 },
        pause: { baseMs: 20, maxMs: 100 },
        leaseMs: 1_500,
      }
      const relays = [1, 2].map((n) =>
        createEngine({ pool: db.pool, publisher: target, options: { ...options, relayId: `r${n}` } }),
      )
      try {
        // The retry schedule ends after 3 attempts * 40 ms; the outage lasts 40 times longer.
        const outageEnds = performance.now() + 5_000
        let drains = 0
        while (performance.now() < outageEnds) {
          await Promise.all(relays.map((r) => r.drain({ budgetMs: 2_000 })))
          drains++
          await sleep(25)
        }
        expect(drains).toBeGreaterThan(5)
        const { rows } = await db.pool.query<{ attempts: number; dead: string }>(
          "SELECT max(attempts) AS attempts, count(*) FILTER (WHERE status = 'dead') AS dead FROM outbox_event",
        )
        expect(rows[0]).toEqual({ attempts: 0, dead: '0' })
        const failures = relays.reduce((n, r) => n + r.counters().pauses, 0)
        expect(failures).toBeGreaterThan(0)

        // The broker is back: everything flows, in order per key, and nothing went dead.
        target.to(publisher)
        const deadline = Date.now() + 30_000
        for (;;) {
          const results: DrainResult[] = await Promise.all(relays.map((r) => r.drain()))
          if (results.every((r) => r.remaining === 0) && (await statuses(db.pool)).published === 40) break
          if (Date.now() > deadline) throw new Error('the backlog did not drain after the outage')
          await sleep(100)
        }
        expect(await statuses(db.pool)).toEqual({ published: 40 })
        const messages = await collectMessages(kafka, [topic], { count: 40 })
        for (const key of keys) {
          const seen = messages
            .filter((m) => m.key === key)
            .map((m) => (JSON.parse(m.value ?? '{}') as { i: number }).i)
          const firsts = seen.filter((v, i) => seen.indexOf(v) === i)
          expect(firsts).toEqual([...firsts].sort((x, y) => x - y))
          expect(new Set(seen).size).toBe(10)
        }
      } finally {
        await broker.publisher.disconnect()
        await broker.close()
      }
    },
  )
})

describe('terminated connections', () => {
  it('Should keep every pooled client of the CLI runtime listening for errors', async () => {
    const config = {
      command: 'drain',
      databaseUrl: db.url,
      kafka: { clientId: 'relay-liveness-test', brokers: kafkaBrokers(), ssl: false },
      engine: { relayId: `storm-${randomUUID().slice(0, 8)}` },
      drain: { budgetMs: 1_000 },
      http: { port: 0, host: '127.0.0.1', auth: 'none', maxBudgetMs: 1_000 },
      watch: { pollMs: 1_000, debounceMs: 0 },
      quiet: true,
      log: { level: 'warn', format: 'json' },
    } satisfies RelayConfig
    const lost: string[] = []
    const runtime = await createRuntime(config, {
      logger: createJsonLogger({ write: (l) => lost.push(l), level: 'warn' }),
    })
    try {
      // A checked-out client (pg-pool removes its own listener then) and one inside pool.query,
      // whose backend is cut while each waits: neither may kill the process.
      const client = await runtime.pool.connect()
      const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')
      const querying = runtime.pool.query('SELECT pg_sleep(30)').catch((e: Error) => e)
      await until('the sleeping query', async () => {
        const r = await db.pool.query(
          "SELECT 1 FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)' AND application_name = $1",
          [`outbox-relay ${config.engine.relayId}`],
        )
        return r.rowCount
      })
      const ended = new Promise<void>((resolve) => client.once('end', () => resolve()))
      await db.pool.query(
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`,
        [`outbox-relay ${config.engine.relayId}`],
      )
      await ended
      expect(await querying).toBeInstanceOf(Error)
      expect(rows[0]?.pid).toBeGreaterThan(0)
      client.release(true)
      // The pool still works afterwards.
      expect((await runtime.pool.query('SELECT 1 AS one')).rows[0]).toEqual({ one: 1 })
      expect(lost.join('')).toMatch(/database connection lost/)
    } finally {
      await runtime.close()
    }
  })

  it('Should keep a watch relay alive through a termination storm and publish everything', async () => {
    const topic = uniqueTopic('live-storm')
    await createTopics(kafka, [topic], 3)
    const relayId = `storm-${randomUUID().slice(0, 8)}`
    const relay = start(
      ['watch', '--quiet', '--poll-ms', '200'],
      env({ RELAY_ID: relayId, DRAIN_BATCH_SIZE: '20', DRAIN_LEASE_MS: '2000' }),
    )
    let exited = false
    void relay.done.then(() => {
      exited = true
    })
    try {
      const stormEnds = Date.now() + 6_000
      let n = 0
      while (Date.now() < stormEnds && !exited) {
        await insertRows(db.pool, [
          { topic, key: `k${n % 5}` },
          { topic, key: `k${(n + 1) % 5}` },
        ])
        n += 2
        await db.pool.query(
          'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1',
          [`outbox-relay ${relayId}`],
        )
        await sleep(100)
      }
      expect(exited, relay.output()).toBe(false)
      await until(
        'the backlog to be published',
        async () => (await statuses(db.pool)).published === n,
        40_000,
      )
      expect(await statuses(db.pool)).toEqual({ published: n })
    } finally {
      relay.child.kill('SIGTERM')
      await relay.done
    }
  })
})

describe('parallel HTTP drains', () => {
  it('Should answer each of 20 parallel drains within budget + DRAIN_MARGIN_MS while rows arrive', async () => {
    const topic = await backlog(kafka, db.pool, { prefix: 'live-budget', count: 3_000, keys: 500 })
    const pool = createRelayPool(db.url)
    // No relay-wide pause: on a loaded machine a send can run past a 1.5 s budget, which pauses
    // the relay for a second or more (by design), and a round whose drains all return at once
    // proves nothing about their answer time.
    const engine = createEngine({
      pool,
      publisher,
      options: { batchSize: 100, pause: { baseMs: 0, maxMs: 0 } },
    })
    const app = createRelayApp({ engine, pool, auth: 'none', logger: { error: () => {} } })
    const server = await serveRelay(app, { port: 0, hostname: '127.0.0.1' })
    let writing = true
    const writer = (async () => {
      let i = 0
      while (writing) {
        await insertRows(
          db.pool,
          Array.from({ length: 50 }, (_, j) => ({ topic, key: `k${(i * 50 + j) % 500}` })),
        )
        i++
        await sleep(20)
      }
    })()
    const budgetMs = 1_500
    try {
      const timings: number[] = []
      for (let round = 0; round < 3; round++) {
        // Each round starts with rows of its own waiting: the writer alone may lag behind a
        // round that drained everything, and a round with nothing to publish proves nothing.
        await insertRows(
          db.pool,
          Array.from({ length: 300 }, (_, j) => ({ topic, key: `r${round}-${j % 100}` })),
        )
        const calls = Array.from({ length: 20 }, async () => {
          const t0 = performance.now()
          const res = await fetch(`${server.url}/drain`, {
            method: 'POST',
            body: JSON.stringify({ budgetMs }),
            headers: { 'content-type': 'application/json' },
          })
          const body = (await res.json()) as DrainResult
          timings.push(performance.now() - t0)
          expect(res.status).toBe(200)
          return body
        })
        const results = await Promise.all(calls)
        expect(results.reduce((n, r) => n + r.published, 0)).toBeGreaterThan(0)
      }
      expect(timings).toHaveLength(60)
      // The documented upper bound the engine enforces (see DRAIN_MARGIN_MS).
      expect(Math.max(...timings)).toBeLessThanOrEqual(budgetMs + DRAIN_MARGIN_MS)
    } finally {
      writing = false
      await writer
      await server.close()
      await pool.end()
    }
  })
})

describe('signals', () => {
  it.each([
    ['SIGTERM', 143],
    ['SIGINT', 130],
  ] as const)(
    'Should stop drain on %s after the batch in flight, leaving no row leased',
    async (signal, code) => {
      await backlog(kafka, db.pool, { prefix: 'live-signal', count: 3_000, keys: 100 })
      const relayId = `sig-${randomUUID().slice(0, 8)}`
      const relay = start(
        ['drain', '--budget-ms', '60000', '--quiet'],
        env({ RELAY_ID: relayId, DRAIN_BATCH_SIZE: '10' }),
      )
      await until('the first rows to be published', async () => (await statuses(db.pool)).published)
      relay.child.kill(signal)
      const r = await relay.done
      expect(r.code, r.stderr).toBe(code)
      expect(r.stderr).toMatch(new RegExp(`stopped by ${signal}`))
      const { rows } = await db.pool.query(
        "SELECT count(*)::int AS n FROM outbox_event WHERE status = 'pending' AND locked_by = $1",
        [relayId],
      )
      expect(rows[0]).toEqual({ n: 0 })
      expect((await statuses(db.pool)).pending).toBeGreaterThan(0)
    },
  )
})

describe('bad input that would reach PostgreSQL', () => {
  it('Should answer 400 naming the field, never 503', async () => {
    const engine = createEngine({ pool: db.pool, publisher })
    const app = createRelayApp({ engine, pool: db.pool, auth: 'none', logger: { error: () => {} } })
    const cases: Array<[string, RequestInit | undefined, RegExp]> = [
      [
        '/drain',
        { method: 'POST', body: JSON.stringify({ topics: ['a\u0000b'] }) },
        /topics\.0: must not contain a NUL/,
      ],
      ['/dead?topic=a%00b', undefined, /topic: must not contain a NUL/],
      ['/dead?cursor=9999999999999999999', undefined, /cursor: .*at most 9223372036854775807/],
    ]
    for (const [path, init, message] of cases) {
      const res = await app.request(path, init)
      expect(res.status, path).toBe(400)
      const body = (await res.json()) as { error: { message: string } }
      expect(body.error.message).toMatch(message)
    }
    const ok = await app.request('/dead?cursor=9223372036854775807')
    expect(ok.status).toBe(200)
    await expect(engine.drain({ topics: ['a\u0000b'] })).rejects.toMatchObject({
      code: 'RELAY_INVALID_OPTIONS',
    })
  })
})

import { Hono } from 'hono'
import { describe, expect, it, vi } from 'vitest'
import type { PoolLike, QueryResultLike } from '../core/db.js'
import type { DrainResult, EngineCounters, OutboxStats } from '../core/engine.js'
import { RelayError } from '../core/errors.js'
import { drainOptionsSchema } from '../core/options.js'
import { createRelayApp, DEFAULT_MAX_BUDGET_MS, type RelayAppOptions, type RelayEngine } from './app.js'
import { SIGNATURE_HEADER, signWebhook } from './auth.js'
import { createRelayMetrics } from './metrics.js'
import { drainBodySchema } from './schemas.js'

// biome-ignore lint/suspicious/noExplicitAny: test responses are inspected freely
const json = (res: Response | Promise<Response>): Promise<any> => Promise.resolve(res).then((r) => r.json())

const TOKEN = 'k'.repeat(48)
const auth = { Authorization: `Bearer ${TOKEN}` }

const counters = (): EngineCounters => ({
  drains: 3,
  batches: 4,
  published: 120,
  retried: 2,
  dead: 1,
  held: 0,
  deferred: 9,
  unsettled: 3,
  pauses: 2,
  lostLeases: 0,
  publishFailures: 1,
  claimMsTotal: 10,
  publishMsTotal: 20,
  lastBatchAt: null,
})

const statsValue: OutboxStats = {
  pending: 7,
  due: 5,
  inFlight: 2,
  dead: 1,
  oldestPendingAgeMs: 1_500,
  topics: [
    { topic: 'outbox.event.employee', pending: 7, due: 5, inFlight: 2, dead: 1, oldestPendingAgeMs: 1_500 },
    { topic: 'we"ird\\topic', pending: 0, due: 0, inFlight: 0, dead: 0, oldestPendingAgeMs: null },
  ],
}

function fakeEngine(overrides: Partial<RelayEngine> = {}) {
  const drain = vi.fn(
    async (_options?: unknown): Promise<DrainResult> => ({
      published: 3,
      retried: 0,
      dead: 0,
      remaining: 0,
      durationMs: 12,
    }),
  )
  const engine: RelayEngine = {
    options: { table: 'outbox_event' },
    drain,
    stats: vi.fn(async () => statsValue),
    counters,
    ...overrides,
  }
  return { engine, drain }
}

interface Call {
  text: string
  values: unknown[] | undefined
}

function fakePool(
  handler: (
    text: string,
    values?: unknown[],
  ) => Partial<QueryResultLike> | Promise<Partial<QueryResultLike>> = () => ({}),
) {
  const calls: Call[] = []
  const query = async (text: string, values?: unknown[]): Promise<QueryResultLike> => {
    calls.push({ text, values })
    const r = await handler(text, values)
    return { rows: r.rows ?? [], rowCount: r.rowCount ?? null }
  }
  const pool: PoolLike = { query, connect: async () => ({ query, release() {} }) }
  return { pool, calls }
}

function relay(options: Partial<RelayAppOptions> = {}) {
  const { engine, drain } = fakeEngine()
  const { pool, calls } = fakePool()
  const logger = { error: vi.fn(), warn: vi.fn() }
  const app = createRelayApp({ engine, pool, auth: { token: TOKEN }, logger, ...options })
  return { app, drain, calls, logger }
}

const postJson = (app: Hono, path: string, body: unknown, headers: Record<string, string> = auth) =>
  app.request(path, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  })

describe('createRelayApp options', () => {
  it('Should throw a RelayError naming auth when auth is not given', () => {
    const { engine } = fakeEngine()
    const { pool } = fakePool()
    const build = () => createRelayApp({ engine, pool } as unknown as RelayAppOptions)
    expect(build).toThrowError(RelayError)
    expect(build).toThrowError(/auth is required/)
    try {
      build()
    } catch (error) {
      expect((error as RelayError).code).toBe('RELAY_INVALID_OPTIONS')
    }
  })

  it('Should name other bad options', () => {
    const { engine } = fakeEngine()
    const { pool } = fakePool()
    expect(() => createRelayApp({ engine, pool, auth: 'none', maxBudgetMs: 0 })).toThrowError(/maxBudgetMs/)
    expect(() => createRelayApp({ engine, pool, auth: 'none', bodyLimitBytes: 1.5 })).toThrowError(
      /bodyLimitBytes/,
    )
    expect(() => createRelayApp({ pool, auth: 'none' } as unknown as RelayAppOptions)).toThrowError(
      /engine is required/,
    )
    expect(() => createRelayApp({ engine, auth: 'none' } as unknown as RelayAppOptions)).toThrowError(
      /pool is required/,
    )
  })
})

describe('POST /drain', () => {
  it('Should drain with the default budget when the body is empty', async () => {
    const { app, drain } = relay()
    const res = await app.request('/drain', { method: 'POST', headers: auth })
    expect(res.status).toBe(200)
    expect(await json(res)).toEqual({ published: 3, retried: 0, dead: 0, remaining: 0, durationMs: 12 })
    expect(drain).toHaveBeenCalledWith({ budgetMs: DEFAULT_MAX_BUDGET_MS })
  })

  it('Should pass maxEvents and topics and cap budgetMs by maxBudgetMs', async () => {
    const { app, drain } = relay({ maxBudgetMs: 8_000 })
    await postJson(app, '/drain', { maxEvents: 10, budgetMs: 60_000, topics: ['a', 'b'] })
    expect(drain).toHaveBeenLastCalledWith({ maxEvents: 10, budgetMs: 8_000, topics: ['a', 'b'] })
    await postJson(app, '/drain', { budgetMs: 1_000 })
    expect(drain).toHaveBeenLastCalledWith({ budgetMs: 1_000 })
  })

  it('Should accept every body the engine accepts (schemas agree)', () => {
    for (const body of [
      {},
      { maxEvents: 1 },
      { budgetMs: 5, topics: ['t'] },
      { maxEvents: 10_000_000, budgetMs: 86_400_000 },
    ]) {
      expect(drainBodySchema.safeParse(body).success).toBe(true)
      expect(drainOptionsSchema.safeParse(body).success).toBe(true)
    }
  })

  it('Should be safe to call concurrently (each call drains on its own)', async () => {
    const { app, drain } = relay()
    const results = await Promise.all(Array.from({ length: 4 }, () => postJson(app, '/drain', {})))
    expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200])
    expect(drain).toHaveBeenCalledTimes(4)
  })

  it('Should answer 503 JSON without details when the database fails', async () => {
    const { engine } = fakeEngine({
      drain: async () => {
        throw new RelayError(
          'RELAY_DATABASE',
          'claim failed (authentication failed): password authentication failed for user "secretuser"',
        )
      },
    })
    const { pool } = fakePool()
    const logger = { error: vi.fn() }
    const app = createRelayApp({ engine, pool, auth: { token: TOKEN }, logger })
    const res = await postJson(app, '/drain', {})
    expect(res.status).toBe(503)
    const body = await json(res)
    expect(body).toEqual({
      error: {
        code: 'RELAY_DATABASE',
        message: 'the database is unavailable: claim failed (authentication failed)',
      },
    })
    expect(logger.error).toHaveBeenCalledOnce()
  })

  it('Should answer 500 INTERNAL for unexpected errors, without a stack', async () => {
    const { engine } = fakeEngine({
      drain: async () => {
        throw new TypeError('boom')
      },
    })
    const app = createRelayApp({
      engine,
      pool: fakePool().pool,
      auth: { token: TOKEN },
      logger: { error() {} },
    })
    const res = await postJson(app, '/drain', {})
    expect(res.status).toBe(500)
    const text = await res.text()
    expect(JSON.parse(text)).toEqual({ error: { code: 'INTERNAL', message: 'internal error' } })
    expect(text).not.toMatch(/boom|at /)
  })
})

describe('bad bodies', () => {
  const { app, drain } = relay({ bodyLimitBytes: 1024 })
  it.each([
    ['malformed JSON', '{"maxEvents": 1', 'INVALID_JSON', /malformed JSON/],
    ['a JSON string', '"drain"', 'INVALID_BODY', /\(body\)/],
    ['an array', '[1]', 'INVALID_BODY', /\(body\)/],
    ['null', 'null', 'INVALID_BODY', /\(body\)/],
    ['maxEvents as a string', { maxEvents: '10' }, 'INVALID_BODY', /maxEvents/],
    ['maxEvents as a float', { maxEvents: 1.5 }, 'INVALID_BODY', /maxEvents/],
    ['maxEvents zero', { maxEvents: 0 }, 'INVALID_BODY', /maxEvents/],
    ['maxEvents negative', { maxEvents: -1 }, 'INVALID_BODY', /maxEvents/],
    ['huge maxEvents', { maxEvents: 1e20 }, 'INVALID_BODY', /maxEvents/],
    ['maxEvents overflowing to Infinity', '{"maxEvents": 1e400}', 'INVALID_BODY', /maxEvents/],
    ['huge budgetMs', '{"budgetMs": 9007199254740993}', 'INVALID_BODY', /budgetMs/],
    ['topics as a string', { topics: 'a' }, 'INVALID_BODY', /topics/],
    ['an empty topic', { topics: [''] }, 'INVALID_BODY', /topics\.0/],
    ['empty topics', { topics: [] }, 'INVALID_BODY', /topics/],
    ['an unknown field', { maxEvent: 5 }, 'INVALID_BODY', /maxEvent: unknown field/],
  ])('Should answer 400 for %s, naming the field', async (_name, body, code, message) => {
    const res = await postJson(app, '/drain', body)
    expect(res.status).toBe(400)
    const reply = await json(res)
    expect(reply.error.code).toBe(code)
    expect(reply.error.message).toMatch(message)
  })

  it('Should answer 413 JSON for an oversized body, with or without Content-Length', async () => {
    const big = JSON.stringify({
      topics: Array.from({ length: 100 }, (_, i) => `topic-${i}-${'x'.repeat(20)}`),
    })
    const res = await postJson(app, '/drain', big)
    expect(res.status).toBe(413)
    expect(await json(res)).toEqual({
      error: { code: 'PAYLOAD_TOO_LARGE', message: 'request body is larger than 1024 bytes' },
    })
    const withLength = await app.request('/drain', {
      method: 'POST',
      headers: { ...auth, 'Content-Length': String(big.length) },
      body: big,
    })
    expect(withLength.status).toBe(413)
    expect((await json(withLength)).error.code).toBe('PAYLOAD_TOO_LARGE')
  })

  it('Should not have drained for any bad body', () => {
    expect(drain).not.toHaveBeenCalled()
  })
})

describe('GET /health', () => {
  it('Should be public and report both checks', async () => {
    const checkBroker = vi.fn(async () => {})
    const { app } = relay({ checkBroker })
    const res = await app.request('/health')
    expect(res.status).toBe(200)
    expect(await json(res)).toEqual({ status: 'ok', checks: { database: 'ok', broker: 'ok' } })
    expect(checkBroker).toHaveBeenCalledOnce()
  })

  it('Should report the broker as unchecked without checkBroker', async () => {
    const { app } = relay()
    expect(await json(app.request('/health'))).toEqual({
      status: 'ok',
      checks: { database: 'ok', broker: 'unchecked' },
    })
  })

  it('Should answer 503 naming what is down', async () => {
    const { engine } = fakeEngine()
    const { pool } = fakePool(() => {
      throw new Error('connect ECONNREFUSED')
    })
    const logger = { error: vi.fn(), warn: vi.fn() }
    const app = createRelayApp({
      engine,
      pool,
      auth: { token: TOKEN },
      logger,
      checkBroker: () => Promise.reject(new Error('broker down')),
    })
    const res = await app.request('/health')
    expect(res.status).toBe(503)
    expect(await json(res)).toEqual({
      status: 'down',
      checks: { database: 'down', broker: 'down' },
      error: { code: 'UNHEALTHY', message: 'unreachable: database, broker' },
    })
    expect(logger.warn).toHaveBeenCalledTimes(2)
  })

  it('Should count a hanging check as down after healthTimeoutMs', async () => {
    const { app } = relay({ checkBroker: () => new Promise(() => {}), healthTimeoutMs: 50 })
    const res = await app.request('/health')
    expect(res.status).toBe(503)
    expect((await json(res)).checks).toEqual({ database: 'ok', broker: 'down' })
  })
})

describe('GET /stats and /metrics', () => {
  it('Should require auth', async () => {
    const { app } = relay()
    for (const path of ['/stats', '/metrics', '/dead', '/openapi.json']) {
      const res = await app.request(path)
      expect(res.status, path).toBe(401)
      expect((await json(res)).error.code).toBe('UNAUTHORIZED')
    }
    expect((await app.request('/dead/retry', { method: 'POST', body: '{"all":true}' })).status).toBe(401)
    expect((await app.request('/dead/discard', { method: 'POST', body: '{"all":true}' })).status).toBe(401)
    expect((await app.request('/purge', { method: 'POST' })).status).toBe(401)
  })

  it('Should return the engine stats', async () => {
    const { app } = relay()
    const res = await app.request('/stats', { headers: auth })
    expect(await json(res)).toEqual(statsValue)
  })

  it('Should render Prometheus text with gauges, counters and the drain histogram', async () => {
    const metrics = createRelayMetrics()
    const { app } = relay({ metrics })
    await postJson(app, '/drain', {})
    const res = await app.request('/metrics', { headers: auth })
    expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8')
    const text = await res.text()
    expect(text).toContain('# TYPE outbox_backlog_pending gauge')
    expect(text).toContain('outbox_backlog_pending{topic="outbox.event.employee"} 7')
    expect(text).toContain('outbox_backlog_pending{topic="we\\"ird\\\\topic"} 0')
    expect(text).toContain('outbox_oldest_pending_age_seconds{topic="outbox.event.employee"} 1.5')
    expect(text).not.toContain('outbox_oldest_pending_age_seconds{topic="we')
    expect(text).toContain('outbox_dead{topic="outbox.event.employee"} 1')
    expect(text).toContain('# TYPE outbox_relay_published_total counter')
    expect(text).toContain('outbox_relay_published_total 120')
    expect(text).toContain('outbox_relay_retried_total 2')
    expect(text).toContain('outbox_relay_dead_total 1')
    expect(text).toContain('outbox_relay_deferred_total 9')
    expect(text).toContain('outbox_relay_unsettled_total 3')
    expect(text).toContain('# TYPE outbox_relay_pauses_total counter')
    expect(text).toContain('outbox_relay_pauses_total 2')
    expect(text).toContain('# TYPE outbox_relay_drain_duration_seconds histogram')
    expect(text).toContain('outbox_relay_drain_duration_seconds_bucket{le="0.01"} 0')
    expect(text).toContain('outbox_relay_drain_duration_seconds_bucket{le="0.025"} 1')
    expect(text).toContain('outbox_relay_drain_duration_seconds_count 1')
    expect(text).toContain('outbox_relay_drain_duration_seconds_sum 0.012')
    expect(text).toContain('outbox_stats_up 1')
  })

  it('Should still render counters when the database is down', async () => {
    const { engine } = fakeEngine({
      stats: async () => {
        throw new RelayError('RELAY_DATABASE', 'stats failed')
      },
    })
    const app = createRelayApp({
      engine,
      pool: fakePool().pool,
      auth: { token: TOKEN },
      logger: { error() {} },
    })
    const text = await (await app.request('/metrics', { headers: auth })).text()
    expect(text).toContain('outbox_stats_up 0')
    expect(text).toContain('outbox_relay_published_total 120')
    expect(text).not.toContain('outbox_backlog_pending')
  })

  it('Should count a drain once when both the engine hook and the app observe it', () => {
    const metrics = createRelayMetrics()
    const result: DrainResult = { published: 1, retried: 0, dead: 0, remaining: 0, durationMs: 3 }
    metrics.hooks.onDrain?.(result)
    metrics.observeDrain(result)
    expect(metrics.render({ counters: counters(), stats: undefined })).toContain(
      'outbox_relay_drain_duration_seconds_count 1',
    )
  })
})

describe('dead letters', () => {
  const deadRow = {
    id: '0190a0b0-0000-7000-8000-000000000001',
    topic: 't',
    aggregatetype: 'employee',
    aggregateid: '42',
    type: 'employee.created',
    payload: null as string | null,
    payload_bytes: 8,
    headers: { traceparent: 'x' },
    attempts: 10,
    last_error: 'KafkaJSProtocolError[MESSAGE_TOO_LARGE]: too large',
    created_at: new Date('2026-01-01T00:00:00Z'),
    died_at: new Date('2026-01-02T00:00:00Z'),
    seq: '17',
    fetched: '1',
  }

  it('Should list a page with last_error, payload sizes without payloads, and a cursor', async () => {
    const { engine } = fakeEngine()
    const { pool, calls } = fakePool((text) => (text.includes("status = 'dead'") ? { rows: [deadRow] } : {}))
    const app = createRelayApp({ engine, pool, auth: { token: TOKEN } })
    const res = await app.request('/dead?limit=1&topic=t', { headers: auth })
    expect(res.status).toBe(200)
    expect(await json(res)).toEqual({
      items: [
        {
          id: deadRow.id,
          topic: 't',
          aggregateType: 'employee',
          aggregateId: '42',
          type: 'employee.created',
          payloadBytes: 8,
          headers: { traceparent: 'x' },
          attempts: 10,
          lastError: deadRow.last_error,
          createdAt: '2026-01-01T00:00:00.000Z',
          diedAt: '2026-01-02T00:00:00.000Z',
        },
      ],
      nextCursor: '17',
    })
    expect(calls[0]?.values).toEqual([null, ['t'], 1, false, 262_144])
    await app.request('/dead?cursor=17&payload=true&maxBytes=2048', { headers: auth })
    expect(calls[1]?.values).toEqual(['17', null, 50, true, 2048])
    await app.request('/dead?limit=&cursor=&topic=', { headers: auth })
    expect(calls[2]?.values).toEqual([null, null, 50, false, 262_144])
  })

  it('Should return one dead row with its payload, 404 for another id, 400 for a non-UUID', async () => {
    const { engine } = fakeEngine()
    const row = { ...deadRow, payload: '{"n": 1}' }
    const { pool } = fakePool((text, values) =>
      text.includes("status = 'dead'") && values?.[0] === deadRow.id ? { rows: [row] } : { rows: [] },
    )
    const app = createRelayApp({ engine, pool, auth: { token: TOKEN } })
    const res = await app.request(`/dead/${deadRow.id}`, { headers: auth })
    expect(res.status).toBe(200)
    expect(await json(res)).toMatchObject({ id: deadRow.id, payload: { n: 1 }, payloadBytes: 8 })
    const missing = await app.request('/dead/0190a0b0-0000-7000-8000-000000000009', { headers: auth })
    expect(missing.status).toBe(404)
    expect((await json(missing)).error.code).toBe('NOT_FOUND')
    expect((await app.request('/dead/17', { headers: auth })).status).toBe(400)
  })

  it.each([
    ['limit=0', /limit/],
    ['limit=abc', /limit/],
    ['limit=501', /limit/],
    ['cursor=abc', /cursor/],
    ['page=2', /page: unknown field/],
  ])('Should answer 400 for ?%s', async (query, message) => {
    const { app } = relay()
    const res = await app.request(`/dead?${query}`, { headers: auth })
    expect(res.status).toBe(400)
    const body = await json(res)
    expect(body.error.code).toBe('INVALID_QUERY')
    expect(body.error.message).toMatch(message)
  })

  it('Should retry ids under the claim lock in a transaction and return the count', async () => {
    const { engine } = fakeEngine()
    const { pool, calls } = fakePool((text) => (text.startsWith('UPDATE') ? { rowCount: 1 } : {}))
    const app = createRelayApp({ engine, pool, auth: { token: TOKEN } })
    const res = await postJson(app, '/dead/retry', { ids: [deadRow.id] })
    expect(await json(res)).toEqual({ retried: 1 })
    expect(calls.map((c) => c.text.split(/\s/)[0])).toEqual(['BEGIN', 'SELECT', 'UPDATE', 'COMMIT'])
    expect(calls[1]?.text).toContain('pg_advisory_xact_lock')
    expect(calls[2]?.values).toEqual([[deadRow.id], null])
    await postJson(app, '/dead/retry', { all: true })
    expect(calls[6]?.values).toEqual([null, null])
    await postJson(app, '/dead/retry', { topics: ['t'] })
    expect(calls[10]?.values).toEqual([null, ['t']])
  })

  it('Should discard under the claim lock and return the count', async () => {
    const { engine } = fakeEngine()
    const { pool, calls } = fakePool((text) => (text.startsWith('DELETE') ? { rowCount: 2 } : {}))
    const app = createRelayApp({ engine, pool, auth: { token: TOKEN } })
    const res = await postJson(app, '/dead/discard', { topics: ['t'] })
    expect(await json(res)).toEqual({ discarded: 2 })
    expect(calls.map((c) => c.text.split(/\s/)[0])).toEqual(['BEGIN', 'SELECT', 'DELETE', 'COMMIT'])
    expect(calls[1]?.text).toContain('pg_advisory_xact_lock')
    expect(calls[2]?.text).toContain("status = 'dead'")
  })

  it.each([
    ['no body', '', /body is required/],
    ['neither ids nor all', {}, /exactly one of "ids", "topics" or "all"/],
    ['both', { ids: ['0190a0b0-0000-7000-8000-000000000001'], all: true }, /exactly one of/],
    ['an empty topic', { topics: [''] }, /topics\.0/],
    ['all: false', { all: false }, /all/],
    ['a non-uuid id', { ids: ['1'] }, /ids\.0/],
    ['empty ids', { ids: [] }, /ids/],
  ])('Should answer 400 for %s', async (_name, body, message) => {
    const { app } = relay()
    const res = await postJson(app, '/dead/retry', body)
    expect(res.status).toBe(400)
    expect((await json(res)).error.message).toMatch(message)
  })
})

describe('POST /purge', () => {
  it('Should purge with the app policy, under the purge try-lock, and take windows from the body', async () => {
    const { engine } = fakeEngine()
    const { pool, calls } = fakePool((text) => {
      if (text.includes('pg_try_advisory_xact_lock')) return { rows: [{ locked: true }] }
      if (text.includes('DELETE')) return { rowCount: 3 }
      return {}
    })
    const app = createRelayApp({ engine, pool, auth: { token: TOKEN }, retention: { batchSize: 10 } })
    const res = await postJson(app, '/purge', {})
    expect(await json(res)).toEqual({
      published: 3,
      dead: 0,
      batches: 1,
      busy: false,
      more: false,
      dryRun: false,
    })
    const deletes = calls.filter((c) => c.text.includes('DELETE'))
    expect(deletes.map((c) => c.values)).toEqual([[7 * 86_400_000, 10]])
    await postJson(app, '/purge', { olderThanMs: 60_000, deadOlderThanMs: 120_000 })
    const later = calls.filter((c) => c.text.includes('DELETE')).slice(1)
    expect(later.map((c) => [c.text.includes("'dead'"), c.values])).toEqual([
      [false, [60_000, 10]],
      [true, [120_000, 10]],
    ])
  })

  it('Should report busy when another relay holds the purge lock, and count on a dry run', async () => {
    const { engine } = fakeEngine()
    const { pool, calls } = fakePool((text) => {
      if (text.includes('pg_try_advisory_xact_lock')) return { rows: [{ locked: false }] }
      if (text.includes('count(*)')) return { rows: [{ published: '12', dead: '0' }] }
      return {}
    })
    const app = createRelayApp({ engine, pool, auth: { token: TOKEN } })
    expect(await json(await postJson(app, '/purge', {}))).toMatchObject({ busy: true, published: 0 })
    expect(calls.some((c) => c.text.includes('DELETE'))).toBe(false)
    expect(await json(await postJson(app, '/purge', { dryRun: true }))).toMatchObject({
      published: 12,
      dryRun: true,
    })
  })

  it.each([
    ['olderThanMs zero', { olderThanMs: 0 }, /olderThanMs/],
    ['olderThanMs as text', { olderThanMs: '7d' }, /olderThanMs/],
    ['an unknown field', { olderThan: 5 }, /olderThan: unknown field/],
  ])('Should answer 400 for %s', async (_name, body, message) => {
    const { app } = relay()
    const res = await postJson(app, '/purge', body)
    expect(res.status).toBe(400)
    expect((await json(res)).error.message).toMatch(message)
  })

  it('Should refuse a bad retention option when the app is created', () => {
    const { engine } = fakeEngine()
    expect(() =>
      createRelayApp({ engine, pool: fakePool().pool, auth: 'none', retention: { batchSize: 0 } }),
    ).toThrow(/batchSize/)
  })
})

describe('routing', () => {
  it('Should answer 404 JSON for unknown routes (authenticated)', async () => {
    const { app } = relay()
    const res = await app.request('/nope', { headers: auth })
    expect(res.status).toBe(404)
    expect(await json(res)).toEqual({ error: { code: 'NOT_FOUND', message: 'no route for GET /nope' } })
  })

  it('Should work mounted under a prefix, including signatures and errors', async () => {
    const secret = 'w'.repeat(40)
    const { engine, drain } = fakeEngine()
    const relayApp = createRelayApp({
      engine,
      pool: fakePool().pool,
      auth: { token: TOKEN, webhookSecret: secret },
    })
    const main = new Hono()
    main.get('/', (c) => c.text('home'))
    main.route('/outbox', relayApp)
    expect((await main.request('/outbox/health')).status).toBe(200)
    expect((await main.request('/outbox/stats')).status).toBe(401)
    expect((await main.request('/outbox/stats', { headers: auth })).status).toBe(200)
    const body = '{"maxEvents":2}'
    const res = await main.request('/outbox/drain', {
      method: 'POST',
      headers: { [SIGNATURE_HEADER]: await signWebhook(secret, body) },
      body,
    })
    expect(res.status).toBe(200)
    expect(drain).toHaveBeenCalledWith({ maxEvents: 2, budgetMs: DEFAULT_MAX_BUDGET_MS })
    const bad = await main.request('/outbox/drain', { method: 'POST', headers: auth, body: '{' })
    expect(bad.status).toBe(400)
    expect((await json(bad)).error.code).toBe('INVALID_JSON')
    expect((await main.request('/')).status).toBe(200)
  })
})

describe('cron platforms that only send GET (README: Vercel Cron)', () => {
  it('Should drain when a GET route forwards the Authorization header to POST /drain', async () => {
    const { engine, drain } = fakeEngine()
    const relayApp = createRelayApp({ engine, pool: fakePool().pool, auth: { token: TOKEN } })
    const app = new Hono()
    app.route('/outbox', relayApp)
    app.get('/api/cron/outbox', (c) =>
      relayApp.request('/drain', {
        method: 'POST',
        headers: { Authorization: c.req.header('Authorization') ?? '' },
      }),
    )
    const ok = await app.request('/api/cron/outbox', { headers: auth })
    expect(ok.status).toBe(200)
    expect(await json(ok)).toMatchObject({ published: 3 })
    expect(drain).toHaveBeenCalledOnce()
    expect((await app.request('/api/cron/outbox')).status).toBe(401)
  })
})

describe('GET /openapi.json', () => {
  it('Should list every endpoint and both auth schemes', async () => {
    const { app } = relay({ serverUrl: 'https://api.example.com/outbox' })
    const doc = await json(app.request('/openapi.json', { headers: auth }))
    expect(doc.openapi).toBe('3.1.0')
    expect(doc.servers).toEqual([{ url: 'https://api.example.com/outbox' }])
    expect(Object.keys(doc.paths).sort()).toEqual([
      '/dead',
      '/dead/discard',
      '/dead/retry',
      '/dead/{id}',
      '/drain',
      '/health',
      '/metrics',
      '/openapi.json',
      '/purge',
      '/stats',
    ])
    expect(Object.keys(doc.components.securitySchemes).sort()).toEqual(['bearerAuth', 'webhookSignature'])
    expect(doc.paths['/health'].get.security).toEqual([])
    expect(doc.components.schemas.DrainRequest).toMatchObject({
      type: 'object',
      additionalProperties: false,
      properties: { maxEvents: { type: 'integer', minimum: 1 }, topics: { type: 'array' } },
    })
    expect(doc.components.schemas.DeadPage.properties.items.items).toEqual({
      $ref: '#/components/schemas/DeadEvent',
    })
    expect(doc.paths['/dead'].get.parameters.map((p: { name: string }) => p.name)).toEqual([
      'limit',
      'maxBytes',
      'payload',
      'cursor',
      'topic',
    ])
    // every $ref resolves
    const refs = JSON.stringify(doc).match(/#\/components\/schemas\/\w+/g) ?? []
    for (const ref of refs) expect(doc.components.schemas[ref.split('/').pop() as string], ref).toBeDefined()
  })
})

/**
 * The relay's Hono app: drain on request (cron, webhook), health, stats, metrics, dead letters.
 * Web-standard APIs only (plus hono and zod), so it runs on Node, Bun, Deno and edge runtimes;
 * the database and the broker come in through the engine and pool interfaces.
 * @module
 */
import { type Context, Hono } from 'hono'
import { bodyLimit } from 'hono/body-limit'
import type { z } from 'zod'
import { databaseCall, databaseError, type PoolLike, TimeoutError, withTimeout } from '../core/db.js'
import { actOnDead, type DeadSelection, deadLetter, deadLetterPage } from '../core/dead-letters.js'
import type { Engine } from '../core/engine.js'
import { coerceError, RelayError } from '../core/errors.js'
import { DRAIN_MARGIN_MS } from '../core/options.js'
import { checkPolicy, DEFAULT_RETENTION, purgeOutbox, type RetentionPolicy } from '../core/retention.js'
import { type AuthOptions, relayAuth } from './auth.js'
import { HttpError, handleError, handleNotFound, type RelayLogger } from './errors.js'
import { createRelayMetrics, type RelayMetrics } from './metrics.js'
import { relayOpenApiDocument } from './openapi.js'
import {
  type DeadSelectionBody,
  deadIdSchema,
  deadQuerySchema,
  deadSelectionSchema,
  describeIssues,
  drainBodySchema,
  purgeBodySchema,
} from './schemas.js'

/** What the app needs of the engine (a full `Engine` fits). */
export type RelayEngine = Pick<Engine, 'drain' | 'stats' | 'counters'> & {
  readonly options: { table: string }
}

/** Default cap of a drain's time budget: below common serverless limits (30 s and up). */
export const DEFAULT_MAX_BUDGET_MS = 25_000
/** Default request body limit (64 KiB; the largest legitimate body, 1,000 retry ids, is ~40 KiB). */
export const DEFAULT_BODY_LIMIT_BYTES = 64 * 1024

/**
 * Options of {@link createRelayApp}.
 *
 * @param engine - from `createEngine` (wire `metrics.hooks` into it to measure drains run elsewhere)
 * @param pool - the engine's pool: health check, dead letters
 * @param auth - required: `{ token }`, `{ webhookSecret }`, both, or `'none'` explicitly
 * @param [checkBroker] - resolves when the broker is reachable (e.g. `kafkaHealthCheck(kafka).check`); without it `/health` reports the broker as `unchecked`
 * @param [maxBudgetMs=25000] - cap (and default) of a drain's `budgetMs`
 * @param [bodyLimitBytes=65536] - larger bodies get 413
 * @param [healthTimeoutMs=2000] - a health check slower than this counts as down
 * @param [databaseTimeoutMs=5000] - `/stats`, `/metrics` and the dead-letter routes answer 503 when the database is slower
 * @param [signal] - aborted when the server stops: running drains stop after their batch in flight
 * @param [metrics=createRelayMetrics()] - shared metrics state
 * @param [logger=console] - where 5xx details go (never to the client)
 * @param [serverUrl] - public URL of the app, for the OpenAPI document
 * @param [retention] - defaults of `POST /purge` (published rows 7 days, dead rows kept)
 */
export interface RelayAppOptions {
  engine: RelayEngine
  pool: PoolLike
  auth: AuthOptions
  checkBroker?: (() => Promise<void>) | undefined
  maxBudgetMs?: number | undefined
  bodyLimitBytes?: number | undefined
  healthTimeoutMs?: number | undefined
  databaseTimeoutMs?: number | undefined
  signal?: AbortSignal | undefined
  metrics?: RelayMetrics | undefined
  logger?: RelayLogger | undefined
  serverUrl?: string | undefined
  retention?: Partial<RetentionPolicy> | undefined
  /** Clock in ms (tests). @internal */
  now?: (() => number) | undefined
}

function positiveInt(name: string, value: number | undefined, fallback: number, max: number): number {
  if (value === undefined) return fallback
  if (!Number.isInteger(value) || value < 1 || value > max)
    throw new RelayError(
      'RELAY_INVALID_OPTIONS',
      `invalid relay app options: ${name} must be an integer between 1 and ${max}`,
    )
  return value
}

/** Reads a JSON body (empty = `{}` when `optional`) and validates it; 400 naming the field. */
async function readBody<S extends z.ZodType>(c: Context, schema: S, optional: boolean): Promise<z.output<S>> {
  const text = await c.req.text()
  let input: unknown = {}
  if (text.trim() !== '') {
    try {
      input = JSON.parse(text)
    } catch {
      throw new HttpError(400, 'INVALID_JSON', 'malformed JSON in request body')
    }
  } else if (!optional) throw new HttpError(400, 'INVALID_BODY', 'a JSON body is required')
  const result = schema.safeParse(input)
  if (!result.success)
    throw new HttpError(400, 'INVALID_BODY', `invalid body: ${describeIssues(result.error)}`)
  return result.data
}

function selection(body: DeadSelectionBody): DeadSelection {
  if (body.ids) return { ids: body.ids }
  if (body.topics) return { topics: body.topics }
  return { all: true }
}

/**
 * Creates the relay's HTTP API as a Hono app: `POST /drain`, `GET /health`, `GET /stats`,
 * `GET /metrics`, `GET /dead`, `GET /dead/:id`, `POST /dead/retry`, `POST /dead/discard`,
 * `POST /purge`, `GET /openapi.json`. Mount it anywhere with
 * `app.route('/outbox', relayApp)` or serve it as is. Options are checked here, once: without
 * an auth choice it throws a `RelayError` (`RELAY_INVALID_OPTIONS`) naming `auth`.
 *
 * Errors are `{ error: { code, message } }`: 400 bad body/query, 401 auth, 404, 413 body too
 * large, 503 database/broker down, 500 otherwise (details logged, never returned).
 *
 * @param options - see {@link RelayAppOptions}
 * @example
 * const metrics = createRelayMetrics()
 * const engine = createEngine({ pool, publisher, hooks: metrics.hooks })
 * const relay = createRelayApp({ engine, pool, metrics, auth: { token: process.env.RELAY_TOKEN } })
 * app.route('/outbox', relay)   // POST /outbox/drain with "Authorization: Bearer …"
 */
export function createRelayApp(options: RelayAppOptions): Hono {
  if (!options || typeof options !== 'object')
    throw new RelayError('RELAY_INVALID_OPTIONS', 'invalid relay app options: expected an object')
  const { engine, pool, checkBroker } = options
  if (!engine || typeof engine.drain !== 'function')
    throw new RelayError(
      'RELAY_INVALID_OPTIONS',
      'invalid relay app options: engine is required (createEngine(...))',
    )
  if (!pool || typeof pool.query !== 'function')
    throw new RelayError('RELAY_INVALID_OPTIONS', 'invalid relay app options: pool is required')
  const auth = relayAuth(options.auth, options.now)
  const maxBudgetMs = positiveInt('maxBudgetMs', options.maxBudgetMs, DEFAULT_MAX_BUDGET_MS, 3_600_000)
  const bodyLimitBytes = positiveInt(
    'bodyLimitBytes',
    options.bodyLimitBytes,
    DEFAULT_BODY_LIMIT_BYTES,
    16 * 1024 * 1024,
  )
  const healthTimeoutMs = positiveInt('healthTimeoutMs', options.healthTimeoutMs, 2_000, 60_000)
  const databaseTimeoutMs = positiveInt('databaseTimeoutMs', options.databaseTimeoutMs, 5_000, 600_000)
  const metrics = options.metrics ?? createRelayMetrics()
  const retention: RetentionPolicy = { ...DEFAULT_RETENTION, ...options.retention }
  checkPolicy(retention)
  const logger: RelayLogger = options.logger ?? console
  const table = engine.options.table
  let openapi: Record<string, unknown> | undefined

  const app = new Hono()
  app.onError(handleError(logger))
  app.notFound(handleNotFound)

  // Registered before the auth middleware: its handler answers first, so /health stays public.
  app.get('/health', async (c) => {
    const check = async (name: string, fn: () => Promise<unknown>) => {
      try {
        await withTimeout(fn(), healthTimeoutMs)
        return 'ok' as const
      } catch (error) {
        logger.warn?.(`relay: health: ${name} is down: ${coerceError(error)}`)
        return 'down' as const
      }
    }
    const [databaseState, brokerState] = await Promise.all([
      check('database', () => pool.query('SELECT 1')),
      checkBroker ? check('broker', checkBroker) : Promise.resolve('unchecked' as const),
    ])
    const checks = { database: databaseState, broker: brokerState }
    const down = Object.entries(checks)
      .filter(([, state]) => state === 'down')
      .map(([name]) => name)
    if (down.length === 0) return c.json({ status: 'ok', checks })
    return c.json(
      { status: 'down', checks, error: { code: 'UNHEALTHY', message: `unreachable: ${down.join(', ')}` } },
      503,
    )
  })

  app.use(
    '*',
    bodyLimit({
      maxSize: bodyLimitBytes,
      onError: () => {
        throw new HttpError(413, 'PAYLOAD_TOO_LARGE', `request body is larger than ${bodyLimitBytes} bytes`)
      },
    }),
  )
  app.use('*', auth)

  app.post('/drain', async (c) => {
    const body = await readBody(c, drainBodySchema, true)
    const budgetMs = Math.min(body.budgetMs ?? maxBudgetMs, maxBudgetMs)
    // The engine keeps to budget + DRAIN_MARGIN_MS; this bound only catches a pool without timeouts.
    const bound = budgetMs + DRAIN_MARGIN_MS + databaseTimeoutMs
    const result = await withTimeout(
      engine.drain({ ...body, budgetMs, signal: options.signal }),
      bound,
    ).catch((error: unknown) => {
      throw error instanceof TimeoutError ? databaseError('drain', error) : error
    })
    metrics.observeDrain(result)
    return c.json(result)
  })

  app.get('/stats', async (c) => c.json(await databaseCall('stats', () => engine.stats(), databaseTimeoutMs)))

  app.get('/metrics', async (c) => {
    let stats: Awaited<ReturnType<RelayEngine['stats']>> | undefined
    try {
      stats = await databaseCall('stats', () => engine.stats(), databaseTimeoutMs)
    } catch (error) {
      logger.error(`relay: metrics: stats unavailable: ${coerceError(error)}`)
    }
    const text = metrics.render({ counters: engine.counters(), stats })
    return c.body(text, 200, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8' })
  })

  app.get('/dead', async (c) => {
    // `?cursor=` (empty) means no cursor, as if absent
    const params = Object.fromEntries(Object.entries(c.req.query()).filter(([, v]) => v !== ''))
    const query = deadQuerySchema.safeParse(params)
    if (!query.success)
      throw new HttpError(400, 'INVALID_QUERY', `invalid query: ${describeIssues(query.error)}`)
    const { limit, maxBytes, payload, cursor, topic } = query.data
    const page = await databaseCall(
      'list dead',
      () =>
        deadLetterPage(pool, {
          table,
          limit,
          maxBytes,
          withPayload: payload,
          cursor,
          topics: topic ? [topic] : undefined,
        }),
      databaseTimeoutMs,
    )
    return c.json(page)
  })

  app.get('/dead/:id', async (c) => {
    const id = deadIdSchema.safeParse(c.req.param('id'))
    if (!id.success) throw new HttpError(400, 'INVALID_QUERY', 'invalid id: must be a UUID')
    const event = await databaseCall(
      'get dead',
      () => deadLetter(pool, { table, id: id.data }),
      databaseTimeoutMs,
    )
    if (!event) throw new HttpError(404, 'NOT_FOUND', `no dead row with id ${id.data}`)
    return c.json(event)
  })

  for (const action of ['retry', 'discard'] as const) {
    app.post(`/dead/${action}`, async (c) => {
      const body = await readBody(c, deadSelectionSchema, false)
      const n = await databaseCall(
        `${action} dead`,
        () =>
          actOnDead(pool, { table, action, selection: selection(body), lockTimeoutMs: databaseTimeoutMs }),
        databaseTimeoutMs,
      )
      return c.json(action === 'retry' ? { retried: n } : { discarded: n })
    })
  }

  app.post('/purge', async (c) => {
    const body = await readBody(c, purgeBodySchema, true)
    const policy: RetentionPolicy = {
      ...retention,
      ...(body.olderThanMs !== undefined ? { publishedMaxAgeMs: body.olderThanMs } : {}),
      ...(body.deadOlderThanMs !== undefined ? { deadMaxAgeMs: body.deadOlderThanMs } : {}),
    }
    // Stops between batches at the budget: `more: true` tells the caller to come back.
    const result = await databaseCall('purge', () =>
      purgeOutbox(pool, {
        table,
        policy,
        dryRun: body.dryRun,
        maxBatches: body.maxBatches ?? 100,
        signal: AbortSignal.timeout(maxBudgetMs),
      }),
    )
    return c.json(result)
  })

  app.get('/openapi.json', (c) => {
    openapi ??= relayOpenApiDocument({ serverUrl: options.serverUrl })
    return c.json(openapi)
  })

  return app
}

/**
 * The relay's Hono app: drain on request (cron, webhook), health, stats, metrics, dead letters.
 * Web-standard APIs only (plus hono and zod), so it runs on Node, Bun, Deno and edge runtimes;
 * the database and the broker come in through the engine and pool interfaces.
 * @module
 */
import { type Context, Hono } from 'hono'
import { bodyLimit } from 'hono/body-limit'
import { databaseCall, databaseError, TimeoutError, withTimeout } from '../core/db.js'
import { coerceError } from '../core/errors.js'
import { DRAIN_MARGIN_MS } from '../core/options.js'
import { purgeOutbox, type RetentionPolicy } from '../core/retention.js'
import { readBody } from './body.js'
import { addDeadLetterRoutes } from './dead-routes.js'
import { HttpError, handleError, handleNotFound } from './errors.js'
import { healthHandler } from './health.js'
import { relayOpenApiDocument } from './openapi.js'
import { drainBodySchema, purgeBodySchema } from './schemas.js'
import { type AppSettings, appSettings, type RelayAppOptions, type RelayEngine } from './settings.js'

export type { RelayAppOptions, RelayEngine } from './settings.js'
export { DEFAULT_BODY_LIMIT_BYTES, DEFAULT_MAX_BUDGET_MS } from './settings.js'

/** `POST /drain`: one drain, its budget capped at `maxBudgetMs`; counted in the metrics. */
function drainHandler({ engine, maxBudgetMs, databaseTimeoutMs, signal, metrics }: AppSettings) {
  return async (c: Context): Promise<Response> => {
    const body = await readBody(c, drainBodySchema, true)
    const budgetMs = Math.min(body.budgetMs ?? maxBudgetMs, maxBudgetMs)
    // The engine keeps to budget + DRAIN_MARGIN_MS; this bound only catches a pool without timeouts.
    const bound = budgetMs + DRAIN_MARGIN_MS + databaseTimeoutMs
    const result = await withTimeout(engine.drain({ ...body, budgetMs, signal }), bound).catch(
      (error: unknown) => {
        throw error instanceof TimeoutError ? databaseError('drain', error) : error
      },
    )
    metrics.observeDrain(result)
    return c.json(result)
  }
}

function statsHandler({ engine, databaseTimeoutMs }: AppSettings) {
  return async (c: Context): Promise<Response> =>
    c.json(await databaseCall('stats', () => engine.stats(), databaseTimeoutMs))
}

/** `GET /metrics`: the counters are rendered even when the statistics cannot be read. */
function metricsHandler({ engine, databaseTimeoutMs, metrics, logger }: AppSettings) {
  return async (c: Context): Promise<Response> => {
    let stats: Awaited<ReturnType<RelayEngine['stats']>> | undefined
    try {
      stats = await databaseCall('stats', () => engine.stats(), databaseTimeoutMs)
    } catch (error) {
      logger.error(`relay: metrics: stats unavailable: ${coerceError(error)}`)
    }
    const text = metrics.render({ counters: engine.counters(), stats })
    return c.body(text, 200, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8' })
  }
}

/** `POST /purge`: the app's retention policy, overridden by the body's ages. */
function purgeHandler({ pool, table, retention, maxBudgetMs }: AppSettings) {
  return async (c: Context): Promise<Response> => {
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
  }
}

/** `GET /openapi.json`: built on the first request, then kept. */
function openApiHandler({ serverUrl }: AppSettings) {
  let openapi: Record<string, unknown> | undefined
  return (c: Context): Response => {
    openapi ??= relayOpenApiDocument({ serverUrl })
    return c.json(openapi)
  }
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
  const s = appSettings(options)
  const app = new Hono()
  app.onError(handleError(s.logger))
  app.notFound(handleNotFound)

  // Registered before the auth middleware: its handler answers first, so /health stays public.
  app.get('/health', healthHandler(s))

  app.use(
    '*',
    bodyLimit({
      maxSize: s.bodyLimitBytes,
      onError: () => {
        throw new HttpError(413, 'PAYLOAD_TOO_LARGE', `request body is larger than ${s.bodyLimitBytes} bytes`)
      },
    }),
  )
  app.use('*', s.auth)

  app.post('/drain', drainHandler(s))
  app.get('/stats', statsHandler(s))
  app.get('/metrics', metricsHandler(s))
  addDeadLetterRoutes(app, s)
  app.post('/purge', purgeHandler(s))
  app.get('/openapi.json', openApiHandler(s))
  return app
}

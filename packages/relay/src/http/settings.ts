/**
 * The options of the relay's HTTP app, checked once when the app is created and resolved to
 * the settings its routes read.
 * @module
 */
import type { MiddlewareHandler } from 'hono'
import type { PoolLike } from '../core/db.js'
import type { Engine } from '../core/engine.js'
import { RelayError } from '../core/errors.js'
import { checkPolicy, DEFAULT_RETENTION, type RetentionPolicy } from '../core/retention.js'
import { type AuthOptions, relayAuth } from './auth.js'
import type { RelayLogger } from './errors.js'
import { createRelayMetrics, type RelayMetrics } from './metrics.js'

/** What the app needs of the engine (a full `Engine` fits). */
export type RelayEngine = Pick<Engine, 'drain' | 'stats' | 'counters'> & {
  readonly options: { table: string }
}

/** Default cap of a drain's time budget: below common serverless limits (30 s and up). */
export const DEFAULT_MAX_BUDGET_MS = 25_000
/** Default request body limit (64 KiB; the largest legitimate body, 1,000 retry ids, is ~40 KiB). */
export const DEFAULT_BODY_LIMIT_BYTES = 64 * 1024

/**
 * Options of `createRelayApp`.
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

/** The options, checked and with their defaults: what the routes read. */
export interface AppSettings {
  engine: RelayEngine
  pool: PoolLike
  checkBroker: (() => Promise<void>) | undefined
  /** The auth middleware. */
  auth: MiddlewareHandler
  maxBudgetMs: number
  bodyLimitBytes: number
  healthTimeoutMs: number
  databaseTimeoutMs: number
  signal: AbortSignal | undefined
  metrics: RelayMetrics
  retention: RetentionPolicy
  logger: RelayLogger
  serverUrl: string | undefined
  /** The outbox table, for the dead-letter and purge statements. */
  table: string
}

function invalid(message: string): RelayError {
  return new RelayError('RELAY_INVALID_OPTIONS', `invalid relay app options: ${message}`)
}

function positiveInt(name: string, value: number | undefined, fallback: number, max: number): number {
  if (value === undefined) return fallback
  if (!Number.isInteger(value) || value < 1 || value > max)
    throw invalid(`${name} must be an integer between 1 and ${max}`)
  return value
}

/** Checks the options (the first problem throws a `RelayError` `RELAY_INVALID_OPTIONS`) and fills in defaults. */
export function appSettings(options: RelayAppOptions): AppSettings {
  if (!options || typeof options !== 'object') throw invalid('expected an object')
  const { engine, pool } = options
  if (!engine || typeof engine.drain !== 'function') throw invalid('engine is required (createEngine(...))')
  if (!pool || typeof pool.query !== 'function') throw invalid('pool is required')
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
  return {
    engine,
    pool,
    checkBroker: options.checkBroker,
    auth,
    maxBudgetMs,
    bodyLimitBytes,
    healthTimeoutMs,
    databaseTimeoutMs,
    signal: options.signal,
    metrics,
    retention,
    logger: options.logger ?? console,
    serverUrl: options.serverUrl,
    table: engine.options.table,
  }
}

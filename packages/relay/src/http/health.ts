/**
 * `GET /health`: whether the database and the broker answer in time. Public (no auth).
 * @module
 */
import type { Context } from 'hono'
import { withTimeout } from '../core/db.js'
import { coerceError } from '../core/errors.js'
import type { RelayLogger } from './errors.js'
import type { AppSettings } from './settings.js'

/** `ok` when `fn` resolves within `timeoutMs`, else `down` (logged as a warning). */
async function probe(
  name: string,
  fn: () => Promise<unknown>,
  timeoutMs: number,
  logger: RelayLogger,
): Promise<'ok' | 'down'> {
  try {
    await withTimeout(fn(), timeoutMs)
    return 'ok'
  } catch (error) {
    logger.warn?.(`relay: health: ${name} is down: ${coerceError(error)}`)
    return 'down'
  }
}

/** 200 `{ status: 'ok', checks }`, or 503 naming what is down; the broker is `unchecked` without `checkBroker`. */
export function healthHandler(s: AppSettings) {
  const { pool, checkBroker, healthTimeoutMs, logger } = s
  return async (c: Context): Promise<Response> => {
    const [databaseState, brokerState] = await Promise.all([
      probe('database', () => pool.query('SELECT 1'), healthTimeoutMs, logger),
      checkBroker
        ? probe('broker', checkBroker, healthTimeoutMs, logger)
        : Promise.resolve('unchecked' as const),
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
  }
}

/**
 * The retention variables shared by `watch`, `serve`, `stream` and `purge`, and the schedule of
 * the long-running ones.
 * @module
 */
import { z } from 'zod'
import type { PoolLike } from '../core/db.js'
import { coerceError } from '../core/errors.js'
import { type Logger, log } from '../core/log.js'
import { createRetention, type Retention, type RetentionPolicy } from '../core/retention.js'
import type { RelayConfig } from './config.js'
import { duration, window } from './duration.js'

/**
 * `RELAY_RETENTION` (published rows, default 7d), `RELAY_DEAD_RETENTION` (dead rows, default
 * off: a dead row is an event that never reached Kafka, so it stays until an operator retries or
 * discards it, unless a window is set), `RELAY_RETENTION_INTERVAL` (default 10m) and
 * `RELAY_RETENTION_BATCH_SIZE` (rows per DELETE, default 1000).
 */
export const retentionEnvSchema = z.object({
  RELAY_RETENTION: window.default(7 * 86_400_000),
  RELAY_DEAD_RETENTION: window.default(null),
  RELAY_RETENTION_INTERVAL: duration(1_000).default(600_000),
  RELAY_RETENTION_BATCH_SIZE: z
    .string()
    .regex(/^\d+$/, 'must be an integer')
    .transform(Number)
    .pipe(z.number().min(1, 'must be between 1 and 100000').max(100_000, 'must be between 1 and 100000'))
    .default(1_000),
})

/** Retention as the CLI runs it. */
export interface RetentionConfig {
  policy: RetentionPolicy
  /** Time between purges in long-running commands. */
  intervalMs: number
}

/** The resolved {@link RetentionConfig} of parsed variables. */
export function retentionConfig(env: z.output<typeof retentionEnvSchema>): RetentionConfig {
  return {
    policy: {
      publishedMaxAgeMs: env.RELAY_RETENTION,
      deadMaxAgeMs: env.RELAY_DEAD_RETENTION,
      batchSize: env.RELAY_RETENTION_BATCH_SIZE,
    },
    intervalMs: env.RELAY_RETENTION_INTERVAL,
  }
}

/** Describes a policy in one line for logs, e.g. `published rows deleted after 7d, dead rows kept`. */
export function describePolicy(policy: RetentionPolicy): string {
  const age = (ms: number | null) => {
    if (ms === null) return 'kept'
    for (const [unit, size] of [
      ['d', 86_400_000],
      ['h', 3_600_000],
      ['m', 60_000],
      ['s', 1_000],
    ] as const)
      if (ms % size === 0) return `deleted after ${ms / size}${unit}`
    return `deleted after ${ms}ms`
  }
  return `published rows ${age(policy.publishedMaxAgeMs)}, dead rows ${age(policy.deadMaxAgeMs)}`
}

/** Starts the retention schedule of a long-running command (nothing when both windows are off). */
export function startRetention(
  config: Pick<RelayConfig, 'retention' | 'engine' | 'quiet'>,
  runtime: { pool: PoolLike },
  logger: Logger,
): Retention | undefined {
  const r = config.retention
  if (!r || (r.policy.publishedMaxAgeMs === null && r.policy.deadMaxAgeMs === null)) return undefined
  const retention = createRetention({
    pool: runtime.pool,
    table: config.engine?.table ?? 'outbox_event',
    policy: r.policy,
    intervalMs: r.intervalMs,
    onPurge: (result) => {
      if (!config.quiet)
        log(logger, 'info', `purged ${result.published} published and ${result.dead} dead rows`, {
          ...result,
        })
    },
    onError: (error) => log(logger, 'warn', `purge: ${coerceError(error, 500)}`),
  })
  retention.start()
  if (!config.quiet) log(logger, 'info', `retention: ${describePolicy(r.policy)}`)
  return retention
}

/**
 * Retention of the outbox table: old published rows (and, when asked, old dead rows) deleted in
 * short, bounded batches, one relay at a time, on demand or on an interval.
 * @module
 */
import { databaseCall, type PoolLike, run, withTransaction } from './db.js'
import { RelayError } from './errors.js'
import { countPurgeable, deleteDead, deletePublished } from './sql/delete-published.js'
import { tryLockPurge } from './sql/lock.js'

/** What a purge deletes. */
export interface RetentionPolicy {
  /** Published rows older than this (since `published_at`) go; `null` keeps them all. */
  publishedMaxAgeMs: number | null
  /** Dead rows older than this (since they died) go; `null` keeps them all. */
  deadMaxAgeMs: number | null
  /** Rows per DELETE (one short transaction each). */
  batchSize: number
}

/** Defaults: published rows kept 7 days, dead rows kept until an operator acts, 1,000 per batch. */
export const DEFAULT_RETENTION: Readonly<RetentionPolicy> = Object.freeze({
  publishedMaxAgeMs: 7 * 86_400_000,
  deadMaxAgeMs: null,
  batchSize: 1_000,
})

/** What one purge did. */
export interface PurgeResult {
  /** Published rows deleted (counted, with `dryRun`). */
  published: number
  /** Dead rows deleted (counted, with `dryRun`). */
  dead: number
  /** DELETE statements run. */
  batches: number
  /** Another relay was purging: this one stopped at once and left the work to it. */
  busy: boolean
  /** Stopped by `maxBatches` (or the signal) with rows left to delete: run again. */
  more: boolean
  dryRun: boolean
}

/** Options of {@link purgeOutbox}. */
export interface PurgeOptions {
  table: string
  policy: RetentionPolicy
  /** At most this many DELETE statements (default: until done). */
  maxBatches?: number | undefined
  /** Count what would go, delete nothing. */
  dryRun?: boolean | undefined
  /** Stops between batches. */
  signal?: AbortSignal | undefined
}

/**
 * Throws `RelayError('RELAY_INVALID_OPTIONS')` naming the bad field of a policy.
 * @internal
 */
export function checkPolicy(policy: RetentionPolicy): void {
  const age = (name: string, v: number | null) => {
    if (v !== null && (!Number.isInteger(v) || v < 0))
      throw new RelayError(
        'RELAY_INVALID_OPTIONS',
        `invalid retention: ${name} must be null or an integer >= 0 (ms)`,
      )
  }
  age('publishedMaxAgeMs', policy.publishedMaxAgeMs)
  age('deadMaxAgeMs', policy.deadMaxAgeMs)
  if (!Number.isInteger(policy.batchSize) || policy.batchSize < 1 || policy.batchSize > 100_000)
    throw new RelayError(
      'RELAY_INVALID_OPTIONS',
      'invalid retention: batchSize must be an integer between 1 and 100000',
    )
}

/**
 * One batch in its own transaction: the purge lock is tried first (never waited for), then one
 * bounded DELETE. `'busy'` when another relay holds the lock.
 */
async function purgeBatch(
  pool: PoolLike,
  statement: ReturnType<typeof deletePublished>,
): Promise<number | 'busy'> {
  return databaseCall('purge', () =>
    withTransaction(pool, async (client) => {
      const lock = await run(client, tryLockPurge())
      if (lock.rows[0]?.locked !== true) return 'busy' as const
      return (await run(client, statement)).rowCount ?? 0
    }),
  )
}

/**
 * Deletes published rows older than `policy.publishedMaxAgeMs`, then dead rows older than
 * `policy.deadMaxAgeMs`, `policy.batchSize` rows per statement. Each statement is its own short
 * transaction that first tries the purge advisory lock: with many relays, one purges and the
 * others return `busy` at once, so purges never pile up; claims never wait on a purge (rows are
 * taken `SKIP LOCKED`, and pending rows are never candidates). Safe to stop anywhere.
 *
 * @throws RelayError `RELAY_INVALID_OPTIONS` for a bad policy, `RELAY_DATABASE` when a statement fails
 * @example
 * await purgeOutbox(pool, { table: 'outbox_event', policy: { publishedMaxAgeMs: 7 * 86_400_000, deadMaxAgeMs: null, batchSize: 1000 } })
 */
export async function purgeOutbox(pool: PoolLike, options: PurgeOptions): Promise<PurgeResult> {
  const { table, policy } = options
  checkPolicy(policy)
  const result: PurgeResult = { published: 0, dead: 0, batches: 0, busy: false, more: false, dryRun: false }
  if (options.dryRun) {
    const counted = await databaseCall('count purgeable', () =>
      run(pool, countPurgeable({ table, ...policy })),
    )
    const row = counted.rows[0]
    return { ...result, published: Number(row?.published ?? 0), dead: Number(row?.dead ?? 0), dryRun: true }
  }
  const phases = [
    ['published', policy.publishedMaxAgeMs, deletePublished],
    ['dead', policy.deadMaxAgeMs, deleteDead],
  ] as const
  for (const [kind, maxAgeMs, statement] of phases) {
    if (maxAgeMs === null) continue
    for (;;) {
      if (
        options.signal?.aborted ||
        (options.maxBatches !== undefined && result.batches >= options.maxBatches)
      ) {
        result.more = true
        return result
      }
      const n = await purgeBatch(pool, statement({ table, maxAgeMs, limit: policy.batchSize }))
      if (n === 'busy') {
        result.busy = true
        return result
      }
      result.batches++
      result[kind] += n
      if (n < policy.batchSize) break
    }
  }
  return result
}

/** Options of {@link createRetention}. */
export interface RetentionOptions {
  pool: PoolLike
  table: string
  policy: RetentionPolicy
  /** Time between purges, in ms. */
  intervalMs: number
  /** DELETE statements per purge at most (default 1,000); the rest waits for the next one. */
  maxBatches?: number | undefined
  /** Told about each purge that did something. */
  onPurge?: ((result: PurgeResult) => void) | undefined
  /** Told about failures (the schedule goes on). */
  onError?: ((error: unknown) => void) | undefined
  /** Source of the first run's jitter (tests). @internal */
  random?: (() => number) | undefined
}

/** A running retention schedule. */
export interface Retention {
  /** Starts the schedule: the first purge runs within `min(intervalMs, 60 s)`, at a random point. */
  start(): void
  /** Stops the schedule; resolves once a running purge has finished its batch. */
  stop(): Promise<void>
}

/**
 * Purges on an interval, for long-running relays (`watch`, `serve`, `stream`). Nothing runs when
 * both windows of the policy are `null`. The first run is jittered so that relays started
 * together do not all try at once (they would not collide anyway: see {@link purgeOutbox}).
 *
 * @example
 * const retention = createRetention({ pool, table: 'outbox_event', policy: DEFAULT_RETENTION, intervalMs: 600_000 })
 * retention.start()
 * // on shutdown
 * await retention.stop()
 */
export function createRetention(options: RetentionOptions): Retention {
  checkPolicy(options.policy)
  if (!Number.isInteger(options.intervalMs) || options.intervalMs < 1)
    throw new RelayError('RELAY_INVALID_OPTIONS', 'invalid retention: intervalMs must be an integer >= 1')
  const random = options.random ?? Math.random
  const enabled = options.policy.publishedMaxAgeMs !== null || options.policy.deadMaxAgeMs !== null
  const controller = new AbortController()
  let timer: ReturnType<typeof setTimeout> | undefined
  let running: Promise<void> | undefined

  const tick = async () => {
    try {
      const result = await purgeOutbox(options.pool, {
        table: options.table,
        policy: options.policy,
        maxBatches: options.maxBatches ?? 1_000,
        signal: controller.signal,
      })
      if (result.published + result.dead > 0) options.onPurge?.(result)
    } catch (error) {
      options.onError?.(error)
    }
  }
  const schedule = (delayMs: number) => {
    if (controller.signal.aborted) return
    timer = setTimeout(() => {
      running = tick().finally(() => {
        running = undefined
        schedule(options.intervalMs)
      })
    }, delayMs)
    // A schedule alone must not keep a process alive.
    ;(timer as { unref?: () => void }).unref?.()
  }

  return {
    start() {
      if (!enabled || timer !== undefined || controller.signal.aborted) return
      schedule(Math.round(random() * Math.min(options.intervalMs, 60_000)))
    },
    async stop() {
      controller.abort()
      if (timer !== undefined) clearTimeout(timer)
      await running
    },
  }
}

/**
 * The relay engine: claim → publish → mark, in a loop, with retries, dead letters, retention and
 * statistics. No HTTP here; the Hono app and the CLI drive it. The batch is in `batch.ts`, the
 * drain loop in `drain.ts`.
 * @module
 */

import type { EngineContext } from './batch.js'
import { createClaimer } from './claimer.js'
import { databaseCall, type PoolLike, run } from './db.js'
import { drain } from './drain.js'
import { combineHooks } from './hooks.js'
import { engineLogHooks, type Logger } from './log.js'
import {
  type DrainOptions,
  type EngineOptions,
  type ResolvedEngineOptions,
  resolveEngineOptions,
} from './options.js'
import { type OutboxStats, toOutboxStats } from './outbox-stats.js'
import { RelayPause } from './pause.js'
import type { Publisher } from './publisher.js'
import { type DrainResult, type EngineCounters, type EngineHooks, newCounters } from './reports.js'
import { deletePublished } from './sql/delete-published.js'
import { firstWaiting as firstWaitingSql, stats as statsSql } from './sql/stats.js'

export type { OutboxStats, TopicStats } from './outbox-stats.js'
export type { BatchInfo, DrainResult, EngineCounters, EngineHooks } from './reports.js'

/** What {@link createEngine} returns. */
export interface Engine {
  readonly options: ResolvedEngineOptions
  /**
   * Publishes due rows until none is claimable, `maxEvents` rows were claimed, the next batch
   * might not finish within `budgetMs`, the signal is aborted, or a publish failed with a
   * retriable error. Budget: lock waits and every batch count against it; waits are cut
   * `drainReserveMs(budgetMs)` before it ends, so the drain answers by `budgetMs` +
   * {@link DRAIN_MARGIN_MS} at worst. A broker or network failure costs the rows no attempt and
   * pauses the whole engine (`pause`): drains return at once until the pause ends. When the
   * signal is aborted the batch in flight finishes and rows it had not sent are released. While a
   * full batch publishes, the next one is claimed beside it (at most two batches in flight); it
   * sends nothing and releases its rows when the drain stops after the first.
   * @throws RelayError `RELAY_INVALID_OPTIONS` for bad options, `RELAY_DATABASE` when a statement fails
   */
  drain(options?: DrainOptions): Promise<DrainResult>
  /** Deletes published rows older than `retention.publishedMaxAgeMs`, in bounded batches. */
  purgePublished(options?: {
    signal?: AbortSignal
    maxBatches?: number
  }): Promise<{ deleted: number; batches: number }>
  /** Backlog statistics. */
  stats(): Promise<OutboxStats>
  /**
   * The first pending row in `seq` order that is due, not leased and first of its key among the
   * unfinished rows (of `topics`, when given), and how long it has been due; undefined when there
   * is none. Rows held behind an earlier row of their key (leased, waiting for a retry, dead) are
   * passed over. A relay that keeps up claims it within moments, so the same row at two looks some
   * time apart means no relay claimed it in between (standby watchers decide with it whether to
   * drain, see `createWatcher`).
   * @throws RelayError `RELAY_DATABASE` when the statement fails
   */
  firstWaiting(options?: { topics?: string[] | undefined }): Promise<WaitingRow | undefined>
  /** A copy of the cumulative counters. */
  counters(): EngineCounters
}

/** What {@link Engine.firstWaiting} returns. */
export interface WaitingRow {
  /** The row's `seq` (a bigint, as a decimal string). */
  seq: string
  /** How long it has been due (since `available_at`), ms. */
  waitedMs: number
}

/** Arguments of {@link createEngine}. */
export interface CreateEngineArgs {
  /** A `pg.Pool` (or anything with `query` and `connect`). */
  pool: PoolLike
  /** Where messages go; connect it before draining. */
  publisher: Publisher
  options?: EngineOptions
  hooks?: EngineHooks
  /** Where failed batches (warn) and each batch and drain (debug) are logged; pino-compatible. */
  logger?: Logger | undefined
  /** Source of jitter (tests). @internal */
  random?: () => number
}

/**
 * Creates a relay engine. Options are validated here, once; a bad option throws a `RelayError`
 * with code `RELAY_INVALID_OPTIONS` naming it.
 *
 * @param args.pool - database pool
 * @param args.publisher - e.g. a connected {@link KafkaPublisher}
 * @param [args.options] - see {@link EngineOptions} for each default
 * @param [args.hooks] - observability callbacks
 * @param [args.logger] - a pino-compatible logger (see {@link engineLogHooks}); none by default
 * @example
 * const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL })
 * const publisher = new KafkaPublisher({ kafka: new Kafka({ clientId: 'relay', brokers: ['127.0.0.1:9092'] }) })
 * await publisher.connect()
 * const engine = createEngine({ pool, publisher, options: { batchSize: 200 } })
 * const { published, remaining } = await engine.drain({ budgetMs: 10_000 })
 */
export function createEngine(args: CreateEngineArgs): Engine {
  const options = resolveEngineOptions(args.options)
  const random = args.random ?? Math.random
  const ctx: EngineContext = {
    pool: args.pool,
    publisher: args.publisher,
    options,
    hooks: args.logger ? combineHooks(args.hooks, engineLogHooks(args.logger)) : (args.hooks ?? {}),
    callerHooks: args.hooks,
    random,
    counters: newCounters(),
    pause: new RelayPause(options.pause, random),
    claimer: createClaimer({ pool: args.pool, options, random }),
    typicalBatchMs: 0,
  }
  return {
    options,
    drain: (input) => drain(ctx, input),
    purgePublished: (purge) => purgePublished(ctx, purge),
    async stats() {
      const { table } = options
      const result = await databaseCall('stats', () => run(ctx.pool, statsSql({ table })))
      return toOutboxStats(result.rows)
    },
    async firstWaiting(input = {}) {
      const statement = firstWaitingSql({ table: options.table, topics: input.topics })
      const [row] = (await databaseCall('first waiting', () => run(ctx.pool, statement))).rows
      return row === undefined ? undefined : { seq: row.seq, waitedMs: Math.max(0, row.waited_ms) }
    },
    counters: () => ({ ...ctx.counters }),
  }
}

/** Deletes published rows older than `retention.publishedMaxAgeMs`, in bounded batches. */
async function purgePublished(
  ctx: EngineContext,
  purge: { signal?: AbortSignal; maxBatches?: number } = {},
): Promise<{ deleted: number; batches: number }> {
  const { table, retention } = ctx.options
  const { publishedMaxAgeMs, batchSize } = retention
  let deleted = 0
  let batches = 0
  for (;;) {
    if (purge.signal?.aborted) break
    if (purge.maxBatches !== undefined && batches >= purge.maxBatches) break
    const result = await databaseCall('purge published', () =>
      run(ctx.pool, deletePublished({ table, maxAgeMs: publishedMaxAgeMs, limit: batchSize })),
    )
    batches++
    const n = result.rowCount ?? 0
    deleted += n
    if (n < batchSize) break
  }
  return { deleted, batches }
}

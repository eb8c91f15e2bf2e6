/**
 * The stream relay: tails the outbox table's INSERTs through a logical replication slot
 * (`pgoutput`) and publishes them to Kafka, advancing the slot only after Kafka acknowledged.
 * @module
 */
import { backoffDelay } from '../core/backoff.js'
import { type PoolLike, run } from '../core/db.js'
import type { Logger } from '../core/log.js'
import type { DeadLetterPolicy, PublishedRows } from '../core/options.js'
import type { Publisher } from '../core/publisher.js'
import { DEFAULT_TABLE } from '../core/sql/table.js'
import { createStreamerContext, report, type StreamerContext, setRole, streamSettings } from './context.js'
import { SlotLost, sleep } from './control.js'
import { watchHealth } from './health.js'
import { withStreamLogging } from './log.js'
import { isSlotInUse } from './replication.js'
import { runSession } from './session.js'
import {
  checkStreamName,
  createPublication,
  createSlot,
  dropPublication,
  dropSlot,
  findPublication,
  findSlot,
} from './sql.js'
import { readStreamStats } from './stats.js'

/** Default slot and publication name. */
export const DEFAULT_STREAM_SLOT = 'outbox_relay'

/**
 * What a streamer is doing: `active` streams from the slot; `standby` waits because another
 * streamer holds the slot and takes over when it goes away.
 */
export type StreamerRole = 'idle' | 'connecting' | 'active' | 'standby' | 'stopped'

export interface StreamerOptions {
  /** PostgreSQL URL; the replication connection uses it with `replication=database`. */
  connectionString: string
  /** Pool for setup, the per-batch check and marks, and stats. */
  pool: PoolLike
  publisher: Publisher
  /** Outbox table (default `outbox_event`). */
  table?: string | undefined
  /** Replication slot (default `outbox_relay`). */
  slot?: string | undefined
  /** Publication (default: the slot's name). */
  publication?: string | undefined
  /** Events per publish (default 500); a mark statement carries up to eight such batches. */
  batchSize?: number | undefined
  /** 'block-key' (default): a dead event holds back the later events of its key, as in the polling relay. */
  deadLetterPolicy?: DeadLetterPolicy | undefined
  /** Backoff of infrastructure failures (broker or database down), ms (default 200 → 10 000). */
  retry?: { baseMs: number; maxMs: number } | undefined
  /** How often a standby retries the slot, ms (default 1 000). */
  standbyRetryMs?: number | undefined
  /**
   * Standby status updates at least this often, ms (default 10 000, and at most a third of the
   * server's `wal_sender_timeout`, so a busy streamer is never taken for a dead one).
   */
  statusIntervalMs?: number | undefined
  /**
   * When fewer than `batchSize` events are waiting, wait this long for more before publishing
   * (default 0: at once). With many small transactions a few ms let one publish and one mark carry
   * many events instead of one each: less CPU per event, more latency.
   */
  lingerMs?: number | undefined
  /** Decoded events buffered before the socket is paused (default 20 000). */
  maxBufferedEvents?: number | undefined
  /**
   * The max slot lag: above it {@link StreamStats.lagAlert} is true, the health `degraded` and
   * `onHealthChange` is called (default 1 GiB).
   */
  lagAlertBytes?: number | undefined
  /** How often the slot's health is checked for `onHealthChange`, ms (default 10 000). */
  healthCheckMs?: number | undefined
  /** `pg_stat_activity.application_name` of the replication connection (default: the URL's). */
  applicationName?: string | undefined
  /**
   * Named prepared statements, planned once per connection, on a `pg.Pool`. Unset (default): the
   * per-batch check only, whose plan probes by primary key whatever the table's statistics say.
   * `true`: the marks too. PostgreSQL keeps a mark's plan on that connection until the table is
   * next analyzed, and one made while the table was small (a fresh deploy) may read the whole
   * table, which grows with every row written until autovacuum's next ANALYZE: turn it on for a
   * table that is already large and analyzed. `false`: none (PgBouncer in transaction mode before
   * 1.21, or `max_prepared_statements = 0`).
   */
  preparedStatements?: boolean | undefined
  /**
   * What becomes of a row once Kafka acknowledged its event. `'mark'` (default): it is marked
   * published (`status`, `published_at`, `locked_by`) and stays until retention purges it, as with
   * the polling relay. `'delete'`: it is deleted, one DELETE per mark statement; the table keeps
   * only the rows not published yet and the dead and held ones, and the database does about a
   * third of the mark's work per row (no new row version, no index entry, a sixth of the WAL).
   * Polling relays on the same table treat a deleted row as finished. Rows the stream skips
   * (already finished) are never deleted by it.
   */
  publishedRows?: PublishedRows | undefined
  /** Recorded as `locked_by` of the rows this streamer published (default `stream:<slot>`). */
  streamId?: string | undefined
  onError?: ((error: unknown, where: 'publish' | 'database' | 'replication') => void) | undefined
  onRoleChange?: ((role: StreamerRole) => void) | undefined
  onBatch?: ((info: StreamBatchInfo) => void) | undefined
  /** Called when the health turns `degraded` (see {@link StreamStats.problems}) and when it is `ok` again. */
  onHealthChange?: ((stats: StreamStats) => void) | undefined
  /** A pino-compatible logger: role changes (info), failures (error), dead events (warn). */
  logger?: Logger | undefined
}

/** What one settled batch did. */
export interface StreamBatchInfo {
  published: number
  dead: number
  held: number
  /** Already finished (published, dead or deleted) when the batch was checked: not sent again. */
  skipped: number
  /** The slot position confirmed after it, if the batch closed a transaction. */
  confirmedLsn: string | undefined
}

/** Health of the stream relay, for `/stats` and `/metrics`. */
export interface StreamStats {
  role: StreamerRole
  slot: string
  publication: string
  /** The slot exists in this database. */
  slotExists: boolean
  /** Some connection streams from the slot (this process or another one). */
  slotActive: boolean
  slotActivePid: number | null
  /** `pg_current_wal_lsn() - confirmed_flush_lsn`: WAL the server keeps for this slot, bytes. */
  lagBytes: number | null
  lagAlertBytes: number
  /** `lagBytes > lagAlertBytes`, or the slot lost its WAL. */
  lagAlert: boolean
  /** `degraded` while {@link problems} is not empty. */
  health: 'ok' | 'degraded'
  /** What is wrong with the slot: lag above the limit, WAL at risk or lost, no slot. */
  problems: string[]
  /** `pg_replication_slots.wal_status`: reserved, extended, unreserved (at risk) or lost. */
  walStatus: string | null
  /** Bytes left before `max_slot_wal_keep_size` invalidates the slot; null when unlimited. */
  safeWalSizeBytes: number | null
  maxSlotWalKeepSize: string | null
  /** The slot position this process confirmed last. */
  confirmedLsn: string | null
  /** When Kafka last acknowledged a batch of this process. */
  lastAckAt: string | null
  /** When this process last handed a batch to the publisher. */
  lastPublishAt: string | null
  published: number
  dead: number
  held: number
  skipped: number
  /** Events decoded and not yet settled. */
  buffered: number
  lastError: string | null
}

export interface Streamer {
  /** Sets up the publication and slot if missing, then streams (or stands by) in the background. */
  start(): Promise<void>
  /** Finishes the batch in flight, confirms it, and closes the connection. */
  stop(): Promise<void>
  readonly role: StreamerRole
  stats(): Promise<StreamStats>
}

/**
 * Sets up what the stream relay reads from: a publication of the table's INSERTs and a logical
 * slot with `pgoutput`. Both are created only when missing; concurrent calls are safe.
 */
export async function ensureStreamSetup(
  pool: PoolLike,
  options: { table?: string | undefined; slot?: string | undefined; publication?: string | undefined },
): Promise<void> {
  const slot = checkStreamName('slot', options.slot ?? DEFAULT_STREAM_SLOT)
  const publication = checkStreamName('publication', options.publication ?? slot)
  const table = options.table ?? DEFAULT_TABLE
  const wal = await pool.query('SHOW wal_level')
  const level = (wal.rows[0] as { wal_level?: string } | undefined)?.wal_level
  if (level !== 'logical')
    throw new Error(
      `the stream relay needs wal_level = logical, but the server has wal_level = ${level ?? 'unknown'}: set it in postgresql.conf and restart PostgreSQL`,
    )
  if ((await run(pool, findPublication(publication))).rows.length === 0) {
    await run(pool, createPublication({ publication, table })).catch((error: { code?: string }) => {
      if (error.code !== '42710') throw error // created meanwhile by another streamer
    })
  }
  const found = (await run(pool, findSlot(slot))).rows[0] as { plugin: string; slot_type: string } | undefined
  if (found && (found.slot_type !== 'logical' || found.plugin !== 'pgoutput'))
    throw new Error(
      `replication slot "${slot}" exists but is a ${found.slot_type} slot of plugin ${found.plugin}; the stream relay needs a logical pgoutput slot: choose another STREAM_SLOT`,
    )
  if (!found) {
    await run(pool, createSlot(slot)).catch((error: { code?: string }) => {
      if (error.code !== '42710') throw error
    })
  }
}

/**
 * Uninstall: drops the slot (so the server stops keeping WAL for it) and the publication.
 * Fails while a streamer is connected to the slot: stop the streamers first.
 */
export async function dropStreamSetup(
  pool: PoolLike,
  options: { slot?: string | undefined; publication?: string | undefined },
): Promise<{ slotDropped: boolean }> {
  const slot = checkStreamName('slot', options.slot ?? DEFAULT_STREAM_SLOT)
  const publication = checkStreamName('publication', options.publication ?? slot)
  let dropped: { rows: unknown[] }
  try {
    dropped = await run(pool, dropSlot(slot))
  } catch (error) {
    if (isSlotInUse(error))
      throw new Error(
        `replication slot "${slot}" is in use by a running streamer: stop every streamer first`,
        {
          cause: error,
        },
      )
    throw error
  }
  await run(pool, dropPublication(publication))
  return { slotDropped: dropped.rows.length > 0 }
}

/**
 * Creates a stream relay. One streamer per slot is active; others started on the same slot
 * stand by and take over when the active one's connection goes away.
 *
 * Guarantees: the slot's confirmed position moves past a transaction only after every event of
 * it was acknowledged by Kafka (or went dead) and the batch was marked in the table, so a crash
 * loses nothing; events are published in WAL commit order, one batch at a time, so per-key order
 * is commit order; events the broker refuses for good go `dead` one by one (the batch is bisected)
 * while the others are published; broker or database outages pause the stream and retry the
 * same batch, without advancing the slot and without counting attempts.
 *
 * @example
 * const streamer = createStreamer({ connectionString: url, pool, publisher })
 * await streamer.start()
 */
export function createStreamer(streamerOptions: StreamerOptions): Streamer {
  const slot = checkStreamName('slot', streamerOptions.slot ?? DEFAULT_STREAM_SLOT)
  const options = withStreamLogging(streamerOptions, slot)
  const ctx = createStreamerContext(options, streamSettings(options, slot))
  const { pool, table, publication, healthCheckMs } = ctx.settings
  let loop: Promise<void> | undefined
  let health: { stop(): void } | undefined

  const api: Streamer = {
    get role() {
      return ctx.role
    },
    async start() {
      if (loop) throw new Error('the streamer is already started')
      ctx.controller = new AbortController()
      await ensureStreamSetup(pool, { table, slot, publication })
      loop = runLoop(ctx)
      const { onHealthChange } = options
      if (onHealthChange) health = watchHealth(() => api.stats(), healthCheckMs, onHealthChange)
    },
    async stop() {
      health?.stop()
      health = undefined
      ctx.controller.abort()
      await loop
      loop = undefined
    },
    stats() {
      return readStreamStats(ctx)
    },
  }
  return api
}

/**
 * Runs sessions until `stop()`: stands by while another connection holds the slot, backs off
 * after failures.
 */
async function runLoop(ctx: StreamerContext): Promise<void> {
  const { standbyRetryMs, retry } = ctx.settings
  let failures = 0
  while (!ctx.controller.signal.aborted) {
    try {
      await runSession(ctx)
      failures = 0
    } catch (error) {
      if (ctx.controller.signal.aborted) break
      if (isSlotInUse(error)) {
        setRole(ctx, 'standby')
        await sleep(standbyRetryMs, ctx.controller.signal)
        continue
      }
      if (error instanceof SlotLost) {
        // Frozen or cut off past wal_sender_timeout: another streamer owns the slot now.
        report(ctx, error, 'replication')
        setRole(ctx, 'standby')
        await sleep(standbyRetryMs, ctx.controller.signal)
        continue
      }
      failures++
      setRole(ctx, 'connecting')
      report(ctx, error, 'replication')
      await sleep(backoffDelay(failures, retry), ctx.controller.signal)
    }
  }
  setRole(ctx, 'stopped')
}

/**
 * A streamer's settings (its options with defaults applied) and the state its parts share: role,
 * current lease on the slot, confirmed position, counters.
 * @module
 */

import { isNodePostgresPool, type PoolLike } from '../core/db.js'
import { coerceError } from '../core/errors.js'
import type { Publisher } from '../core/publisher.js'
import { type GateIndexes, gateIndexLookup } from '../core/sql/gate-indexes.js'
import { DEFAULT_TABLE } from '../core/sql/table.js'
import type { Counts } from './batches.js'
import type { Lsn } from './pgoutput.js'
import type { ReplicationSession } from './replication.js'
import { checkStreamName, type PublishedRows } from './sql.js'
import type { StreamerOptions, StreamerRole } from './streamer.js'

export interface StreamSettings {
  slot: string
  publication: string
  table: string
  batchSize: number
  blockOnDead: boolean
  retry: { baseMs: number; maxMs: number }
  standbyRetryMs: number
  statusIntervalMs: number
  maxBuffered: number
  lingerMs: number
  lagAlertBytes: number
  healthCheckMs: number
  streamId: string
  publishedRows: PublishedRows
  pool: PoolLike
  /** Run the per-batch check as a named prepared statement (its plan does not depend on statistics). */
  prepareCheck: boolean
  /** Run the marks as named prepared statements too (`preparedStatements: true`). */
  prepareMarks: boolean
  publisher: Publisher
}

/** `options` with their defaults; throws on a bad publication name or batch size. */
export function streamSettings(options: StreamerOptions, slot: string): StreamSettings {
  const publication = checkStreamName('publication', options.publication ?? slot)
  const batchSize = options.batchSize ?? 500
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new Error(`batchSize must be a positive integer, got ${batchSize}`)
  return {
    slot,
    publication,
    table: options.table ?? DEFAULT_TABLE,
    batchSize,
    blockOnDead: (options.deadLetterPolicy ?? 'block-key') === 'block-key',
    retry: options.retry ?? { baseMs: 200, maxMs: 10_000 },
    standbyRetryMs: options.standbyRetryMs ?? 1_000,
    statusIntervalMs: options.statusIntervalMs ?? 10_000,
    maxBuffered: options.maxBufferedEvents ?? 20_000,
    lingerMs: options.lingerMs ?? 0,
    lagAlertBytes: options.lagAlertBytes ?? 1024 ** 3,
    healthCheckMs: options.healthCheckMs ?? 10_000,
    streamId: options.streamId ?? `stream:${slot}`,
    publishedRows: checkPublishedRows(options.publishedRows ?? 'mark'),
    pool: options.pool,
    prepareCheck: options.preparedStatements !== false && isNodePostgresPool(options.pool),
    prepareMarks: options.preparedStatements === true && isNodePostgresPool(options.pool),
    publisher: options.publisher,
  }
}

function checkPublishedRows(value: string): PublishedRows {
  if (value !== 'mark' && value !== 'delete')
    throw new Error(`publishedRows must be 'mark' or 'delete', got ${JSON.stringify(value)}`)
  return value
}

/** The session streaming now, and when the slot was last seen to be streamed by its connection. */
export interface Lease {
  session: ReplicationSession
  verifiedAt: number
  freshMs: number
}

export type FailureSite = 'publish' | 'database' | 'replication'

/** What a streamer's parts share; one per streamer, outliving its sessions. */
export interface StreamerContext {
  readonly settings: StreamSettings
  /** The options as given, their callbacks wrapped with logging. */
  readonly options: StreamerOptions
  role: StreamerRole
  controller: AbortController
  readonly counters: Counts
  lastAckAt: Date | null
  lastPublishAt: Date | null
  lease: Lease | undefined
  lastError: string | null
  confirmed: Lsn | null
  /** Events decoded and not yet settled. */
  buffered: number
  /** The table's gate indexes (looked up once) for the check's dead and held probes. */
  readonly gateIndexes: () => Promise<GateIndexes>
}

export function createStreamerContext(options: StreamerOptions, settings: StreamSettings): StreamerContext {
  return {
    settings,
    options,
    role: 'idle',
    controller: new AbortController(),
    counters: { published: 0, dead: 0, held: 0, skipped: 0 },
    lastAckAt: null,
    lastPublishAt: null,
    lease: undefined,
    lastError: null,
    confirmed: null,
    buffered: 0,
    gateIndexes: gateIndexLookup(settings.pool, settings.table),
  }
}

export function setRole(ctx: StreamerContext, next: StreamerRole): void {
  if (ctx.role === next) return
  ctx.role = next
  ctx.options.onRoleChange?.(next)
}

export function report(ctx: StreamerContext, error: unknown, where: FailureSite): void {
  ctx.lastError = `${where}: ${coerceError(error, 500)}`
  ctx.options.onError?.(error, where)
}

/**
 * A session's buffer: transactions decoded from the replication connection, queued, cut into
 * chunks for publishing, and the confirm of the slot position after each settled batch. Also the
 * flow control: the socket pauses while too many events wait.
 * @module
 */
import { safely } from '../core/batch.js'
import { type Chunk, type Counts, slices, takeBatch, zeroCounts } from './batches.js'
import type { StreamerContext } from './context.js'
import { decodePgOutput, formatLsn, type Lsn, type WalFrame } from './pgoutput.js'
import type { ReplicationSession } from './replication.js'
import { type ColumnIndexes, decodeInsert, outboxColumns, type Transaction } from './rows.js'

export interface SessionBuffer {
  /** Committed transactions not yet taken into chunks. */
  readonly queue: Transaction[]
  /** The transaction being decoded (between its begin and commit). */
  open: Transaction | undefined
  readonly columns: Map<number, ColumnIndexes>
  /** Batches taken from the queue and not yet marked and confirmed. */
  unsettled: number
  /** The socket is paused because too many events wait. */
  paused: boolean
  /** Chunks of at most batchSize rows taken from the queue, in order; the last of a batch confirms it. */
  readonly chunks: Chunk[]
  /** Wakes the session waiting for work. */
  wake: (() => void) | undefined
  /** Set once the server accepted START_REPLICATION. */
  replication: ReplicationSession | undefined
}

export const createSessionBuffer = (): SessionBuffer => ({
  queue: [],
  open: undefined,
  columns: new Map(),
  unsettled: 0,
  paused: false,
  chunks: [],
  wake: undefined,
  replication: undefined,
})

export function notify(buffer: SessionBuffer): void {
  buffer.wake?.()
  buffer.wake = undefined
}

/** Handles one frame of the replication connection (called synchronously, in order). */
export function receiveFrame(ctx: StreamerContext, buffer: SessionBuffer, frame: WalFrame): void {
  if (frame.kind === 'keepalive') {
    // Everything the server sent so far is settled: the slot may move up to its position
    // (WAL of other tables, or empty transactions, would otherwise pile up behind it).
    if (
      !buffer.open &&
      buffer.queue.length === 0 &&
      buffer.unsettled === 0 &&
      (ctx.confirmed === null || frame.walEnd > ctx.confirmed)
    )
      ctx.confirmed = frame.walEnd
    if (frame.replyRequested && ctx.confirmed !== null) buffer.replication?.sendStatus(ctx.confirmed)
    return
  }
  const message = decodePgOutput(frame.body)
  if (message.tag === 'begin') buffer.open = { rows: [], endLsn: 0n }
  else if (message.tag === 'relation') buffer.columns.set(message.relationId, outboxColumns(message))
  else if (message.tag === 'insert') {
    const indexes = buffer.columns.get(message.relationId)
    if (!indexes || !buffer.open) throw new Error(`insert of unknown relation ${message.relationId}`)
    buffer.open.rows.push(decodeInsert(message, indexes))
  } else if (message.tag === 'commit') {
    if (buffer.open) commit(ctx, buffer, buffer.open, message.endLsn)
  }
}

/** Queues the open transaction's pending rows; pauses the socket when too many events wait. */
function commit(ctx: StreamerContext, buffer: SessionBuffer, open: Transaction, endLsn: Lsn): void {
  open.endLsn = endLsn
  open.rows = open.rows.filter((r) => r.status === 'pending')
  buffer.queue.push(open)
  ctx.buffered += open.rows.length
  buffer.open = undefined
  if (ctx.buffered > ctx.settings.maxBuffered && !buffer.paused) {
    buffer.paused = true
    buffer.replication?.pause()
  }
  notify(buffer)
}

/** Takes whole transactions, up to batchSize events (a bigger transaction goes alone, in chunks). */
export function refill(ctx: StreamerContext, buffer: SessionBuffer): void {
  const { batchSize } = ctx.settings
  while (buffer.chunks.length < 2 && buffer.queue.length > 0) {
    const { rows, endLsn } = takeBatch(buffer.queue, batchSize)
    buffer.unsettled++
    const total = zeroCounts()
    const finish = () => confirmBatch(ctx, buffer, { endLsn, size: rows.length, info: total })
    const pieces = slices(rows, batchSize)
    for (const [i, piece] of pieces.entries())
      buffer.chunks.push({ rows: piece, total, finish: i === pieces.length - 1 ? finish : undefined })
  }
}

/**
 * After the last chunk of a batch is marked: the slot may move to the batch's end. Resumes the
 * socket once the buffer drained to half its limit.
 */
function confirmBatch(
  ctx: StreamerContext,
  buffer: SessionBuffer,
  batch: { endLsn: Lsn; size: number; info: Counts },
): void {
  const { endLsn } = batch
  if (ctx.confirmed === null || endLsn > ctx.confirmed) ctx.confirmed = endLsn
  buffer.unsettled--
  ctx.buffered -= batch.size
  if (buffer.paused && ctx.buffered <= ctx.settings.maxBuffered / 2) {
    buffer.paused = false
    buffer.replication?.resume()
  }
  if (ctx.confirmed !== null) buffer.replication?.sendStatus(ctx.confirmed)
  safely(() => ctx.options.onBatch?.({ ...batch.info, confirmedLsn: formatLsn(endLsn) }))
}

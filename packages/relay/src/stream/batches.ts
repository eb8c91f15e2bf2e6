/**
 * How queued transactions become batches and chunks: a batch is whole transactions up to
 * `batchSize` events, a chunk at most `batchSize` of its rows (one publish, one mark statement).
 * Pure.
 * @module
 */

import type { Lsn } from './pgoutput.js'
import type { StreamRow, Transaction } from './rows.js'
import type { InspectedRow } from './sql.js'
import type { StreamBatchInfo } from './streamer.js'

/** What a batch came to so far, shared by its chunks. */
export type Counts = Omit<StreamBatchInfo, 'confirmedLsn'>

export const zeroCounts = (): Counts => ({ published: 0, dead: 0, held: 0, skipped: 0 })

/** Up to `batchSize` rows of a batch, published and marked together. */
export interface Chunk {
  rows: StreamRow[]
  /** Shared by the chunks of one batch. */
  total: Counts
  /** On the last chunk of a batch: confirms the batch's end. */
  finish: (() => void) | undefined
  checked?: Promise<InspectedRow[]>
}

/**
 * Takes whole transactions off the front of `queue`, up to `batchSize` events (a bigger
 * transaction goes alone). `queue` must not be empty.
 */
export function takeBatch(queue: Transaction[], batchSize: number): { rows: StreamRow[]; endLsn: Lsn } {
  const batch: Transaction[] = []
  let size = 0
  while (
    queue.length > 0 &&
    (batch.length === 0 || size + (queue[0] as Transaction).rows.length <= batchSize)
  ) {
    const next = queue.shift() as Transaction
    batch.push(next)
    size += next.rows.length
  }
  return { rows: batch.flatMap((t) => t.rows), endLsn: (batch.at(-1) as Transaction).endLsn }
}

/** `rows` cut into pieces of at most `batchSize`, in order; one empty piece when there are none. */
export function slices(rows: StreamRow[], batchSize: number): StreamRow[][] {
  const pieces: StreamRow[][] = []
  for (let i = 0; i === 0 || i < rows.length; i += batchSize) pieces.push(rows.slice(i, i + batchSize))
  return pieces
}

/** Events waiting in the queue, counted up to batchSize. */
export function queuedEvents(queue: Transaction[], batchSize: number): number {
  let n = 0
  for (const t of queue) {
    n += t.rows.length
    if (n >= batchSize) break
  }
  return n
}

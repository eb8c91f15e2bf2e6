/**
 * Marks of published chunks, coalesced: while one mark statement runs, the chunks published
 * meanwhile queue up, and the next statement marks all of them. With many small transactions a
 * publish carries a few events; one UPDATE (and one commit, one status update) per publish would
 * cost the database more than the events themselves.
 *
 * Order is kept: chunks are marked, and their batches confirmed, in the order they were
 * published, so the slot never moves past an event whose row is not marked yet.
 * @module
 */
import { runPooled } from '../core/db.js'
import type { Counts } from './batches.js'
import type { StreamerContext } from './context.js'
import { retrying, sleep } from './control.js'
import type { PublishedChunk } from './publish.js'
import { type SettledRow, settleStreamBatch } from './sql.js'

/** A published chunk waiting for its mark. */
interface Waiting {
  chunk: PublishedChunk
  /** The counts of the chunk's batch. */
  total: Counts
  /** On the last chunk of a batch: confirms the batch's end. */
  finish: (() => void) | undefined
}

/** The marks of one session. */
export interface MarkQueue {
  readonly waiting: Waiting[]
  /** Outcomes in `waiting`. */
  rows: number
  /** The loop marking `waiting`, while it runs. */
  running: Promise<void> | undefined
  /** What ended the loop early (`Stopping`, `SlotLost` or `ServerShuttingDown`); later marks are not made. */
  failed: unknown
  /** Ends the loop's wait for more chunks early. */
  wake: (() => void) | undefined
  /** Resolves once the loop failed (`failed` is set), so an idle session notices at once. */
  readonly whenFailed: Promise<void>
  readonly onFailed: () => void
}

export function createMarkQueue(): MarkQueue {
  let onFailed = () => {}
  const whenFailed = new Promise<void>((resolve) => {
    onFailed = resolve
  })
  return {
    waiting: [],
    rows: 0,
    running: undefined,
    failed: undefined,
    wake: undefined,
    whenFailed,
    onFailed,
  }
}

/**
 * How long the loop lets a mark wait for more chunks while fewer than `batchSize` outcomes wait,
 * ms. A few ms turn many one-event marks into one statement; the publish is not delayed, only
 * the mark and the slot's confirm (a crash in between repeats these events, as any crash after a
 * publish does).
 */
export const MARK_DELAY_MS = 20

/**
 * Queues a published chunk for its mark and starts the loop if it is idle. Rejections of the
 * loop are kept in `failed`; the session checks it (see {@link markFailure}).
 */
export function queueMark(ctx: StreamerContext, marks: MarkQueue, item: Waiting): void {
  if (marks.failed !== undefined) return
  marks.waiting.push(item)
  marks.rows += item.chunk.outcomes.length
  if (marks.rows >= ctx.settings.batchSize) marks.wake?.()
  if (!marks.running) startMarking(ctx, marks)
}

/**
 * Starts the loop. A chunk queued between the loop's last look at `waiting` and the end of its
 * promise (a few microtasks) finds `running` still set: the loop is started again for it.
 */
function startMarking(ctx: StreamerContext, marks: MarkQueue): void {
  marks.running = markAll(ctx, marks)
    .catch((error: unknown) => {
      marks.failed = error
      marks.onFailed()
    })
    .then(() => {
      marks.running = undefined
      if (marks.waiting.length > 0 && marks.failed === undefined) startMarking(ctx, marks)
    })
}

/** Throws what ended the mark loop, if anything did. */
export function markFailure(marks: MarkQueue): void {
  if (marks.failed !== undefined) throw marks.failed
}

/** Resolves once every queued chunk is marked (or the loop failed). */
export async function marksSettled(marks: MarkQueue): Promise<void> {
  while (marks.running) await marks.running
}

/**
 * Marks what waits, oldest first, at most `statementRows` outcomes per statement (a chunk is
 * never split), until nothing waits.
 */
async function markAll(ctx: StreamerContext, marks: MarkQueue): Promise<void> {
  const statementRows = ctx.settings.batchSize * MARK_BATCHES
  while (marks.waiting.length > 0) {
    await gather(ctx, marks)
    const items: Waiting[] = []
    let rows = 0
    while (marks.waiting.length > 0) {
      const next = marks.waiting[0] as Waiting
      if (items.length > 0 && rows + next.chunk.outcomes.length > statementRows) break
      items.push(marks.waiting.shift() as Waiting)
      rows += next.chunk.outcomes.length
    }
    await markChunks(ctx, items)
    marks.rows -= rows
  }
}

/** Waits until `batchSize` outcomes wait, `MARK_DELAY_MS` passed, or the streamer stops. */
async function gather(ctx: StreamerContext, marks: MarkQueue): Promise<void> {
  if (marks.rows >= ctx.settings.batchSize || ctx.controller.signal.aborted) return
  const woken = new Promise<void>((resolve) => {
    marks.wake = resolve
  })
  await Promise.race([woken, sleep(MARK_DELAY_MS, ctx.controller.signal)])
  marks.wake = undefined
}

/** Chunks one mark statement carries at most, in batches of `batchSize` outcomes. */
export const MARK_BATCHES = 8

/** One statement for the outcomes of `items`, then their counts and confirms, in order. */
async function markChunks(ctx: StreamerContext, items: Waiting[]): Promise<void> {
  const { pool, table, streamId, prepareMarks, publishedRows } = ctx.settings
  const outcomes: SettledRow[] = items.flatMap((i) => i.chunk.outcomes)
  if (outcomes.length > 0)
    await retrying(ctx, 'database', () =>
      runPooled(pool, settleStreamBatch({ table, streamId, rows: outcomes, publishedRows }), prepareMarks),
    )
  for (const { chunk, total, finish } of items) {
    for (const o of chunk.outcomes) {
      ctx.counters[o.outcome]++
      total[o.outcome]++
    }
    ctx.counters.skipped += chunk.skipped
    total.skipped += chunk.skipped
    if (chunk.outcomes.some((o) => o.outcome === 'published')) ctx.lastAckAt = new Date()
    finish?.()
  }
}

/**
 * One replication session of an active streamer: connect and take the lease on the slot, then
 * pump chunks (check, publish, mark, confirm) until the connection ends or the streamer stops.
 * @module
 */
import { run } from '../core/db.js'
import { type Chunk, queuedEvents } from './batches.js'
import { createSessionBuffer, notify, receiveFrame, refill, type SessionBuffer } from './buffer.js'
import { type StreamerContext, setRole } from './context.js'
import { SlotLost, Stopping, sleep } from './control.js'
import { CHECK_FRESH_MS } from './fence.js'
import {
  createMarkQueue,
  MARK_BATCHES,
  type MarkQueue,
  markFailure,
  marksSettled,
  queueMark,
} from './marks.js'
import { inspectChunk, publishChunk } from './publish.js'
import { type ReplicationSession, startReplication } from './replication.js'
import { walSenderTimeout } from './sql.js'

/** What ends a session's waits early. */
interface SessionEnd {
  /** True once the connection ended. */
  ended: boolean
  /** Resolves when the connection ended, with its error if it failed. */
  readonly endedWith: Promise<Error | undefined>
  /** Resolves on `stop()`. */
  readonly stopped: Promise<void>
}

/** Publishing state of a session. */
interface Pipeline {
  /** Published chunks waiting for their mark (and confirm). */
  readonly marks: MarkQueue
  /** Keys this session saw go dead or held. */
  readonly blocked: Set<string>
}

/** One replication connection, from START_REPLICATION until it ends or `stop()`. */
export async function runSession(ctx: StreamerContext): Promise<void> {
  const buffer = createSessionBuffer()
  if (ctx.role !== 'standby') setRole(ctx, 'connecting')
  // The server ends a connection silent for wal_sender_timeout: report well within it, and
  // ask again whether the slot is still ours well within it too (see fence()).
  const timeoutMs = (await run(ctx.settings.pool, walSenderTimeout())).rows[0]?.ms ?? 0
  const current = await startReplication({
    connectionString: ctx.options.connectionString,
    slot: ctx.settings.slot,
    publication: ctx.settings.publication,
    applicationName: ctx.options.applicationName,
    onFrame: (frame) => receiveFrame(ctx, buffer, frame),
  })
  buffer.replication = current
  takeLease(ctx, current, timeoutMs)
  const timer = startStatusUpdates(ctx, current, timeoutMs)
  const { end, onStop } = watchEnd(ctx, current, buffer)
  const pipeline: Pipeline = { marks: createMarkQueue(), blocked: new Set() }
  try {
    await pump(ctx, buffer, pipeline, end)
    const error = end.ended ? await end.endedWith : undefined
    if (error) throw error
  } catch (error) {
    if (error instanceof Stopping) return
    // A connection that ended is reported as itself (a restart is not a takeover).
    if (error instanceof SlotLost && current.closed) throw (await end.endedWith) ?? error
    throw error
  } finally {
    await marksSettled(pipeline.marks)
    clearInterval(timer)
    // Events decoded but not settled are sent again by the server from the confirmed position.
    ctx.buffered = 0
    ctx.lease = undefined
    ctx.controller.signal.removeEventListener('abort', onStop)
    if (ctx.confirmed !== null) current.sendStatus(ctx.confirmed)
    await current.close()
  }
}

/** Takes the lease on the slot for the session just started: the streamer is active. */
function takeLease(ctx: StreamerContext, current: ReplicationSession, timeoutMs: number): void {
  ctx.lease = {
    session: current,
    verifiedAt: performance.now(),
    freshMs: timeoutMs > 0 ? Math.min(CHECK_FRESH_MS, timeoutMs / 4) : CHECK_FRESH_MS,
  }
  setRole(ctx, 'active')
}

/** Sends the confirmed position at least every `statusIntervalMs` (and a third of the timeout). */
function startStatusUpdates(
  ctx: StreamerContext,
  current: ReplicationSession,
  timeoutMs: number,
): ReturnType<typeof setInterval> {
  const { statusIntervalMs } = ctx.settings
  const timer = setInterval(
    () => {
      if (ctx.confirmed !== null) current.sendStatus(ctx.confirmed)
    },
    timeoutMs > 0 ? Math.min(statusIntervalMs, timeoutMs / 3) : statusIntervalMs,
  )
  timer.unref()
  return timer
}

/** The session's end, watched; `onStop` is the abort listener to remove when the session ends. */
function watchEnd(
  ctx: StreamerContext,
  current: ReplicationSession,
  buffer: SessionBuffer,
): { end: SessionEnd; onStop: () => void } {
  let onStop = () => {}
  const stopped = new Promise<void>((resolve) => {
    onStop = resolve
    ctx.controller.signal.addEventListener('abort', onStop, { once: true })
  })
  const end: SessionEnd = {
    ended: false,
    stopped,
    endedWith: current.ended.then((error) => {
      end.ended = true
      notify(buffer)
      return error
    }),
  }
  return { end, onStop }
}

/** Publishes chunk after chunk as transactions arrive, until the connection ends or `stop()`. */
async function pump(
  ctx: StreamerContext,
  buffer: SessionBuffer,
  pipeline: Pipeline,
  end: SessionEnd,
): Promise<void> {
  const { batchSize, lingerMs } = ctx.settings
  const { chunks, queue } = buffer
  while (!end.ended && !ctx.controller.signal.aborted) {
    if (chunks.length === 0 && queue.length > 0 && lingerMs > 0 && queuedEvents(queue, batchSize) < batchSize)
      await Promise.race([sleep(lingerMs), end.stopped, end.endedWith])
    refill(ctx, buffer)
    if (chunks.length === 0) {
      await Promise.race([
        new Promise<void>((resolve) => (buffer.wake = resolve)),
        end.stopped,
        end.endedWith,
        pipeline.marks.whenFailed,
      ])
      markFailure(pipeline.marks)
      continue
    }
    const chunk = chunks.shift() as Chunk
    // Pipelined: the next chunk is checked while this one is published, and marks run behind
    // the publishes (marks.ts). Publishes stay sequential, so Kafka order is WAL order; the slot
    // moves past a transaction only once every chunk up to its end is marked.
    chunk.checked ??= inspectChunk(ctx, chunk.rows)
    refill(ctx, buffer)
    const next = chunks[0]
    if (next && !next.checked) {
      next.checked = inspectChunk(ctx, next.rows)
      next.checked.catch(() => {})
    }
    const published = await publishChunk(ctx, chunk.rows, await chunk.checked, pipeline.blocked)
    markFailure(pipeline.marks)
    queueMark(ctx, pipeline.marks, { chunk: published, total: chunk.total, finish: chunk.finish })
    // Marks may fall behind by a few statements' worth, not more: the buffer counts events
    // until they are confirmed.
    if (pipeline.marks.rows >= ctx.settings.batchSize * MARK_BATCHES) await marksSettled(pipeline.marks)
    markFailure(pipeline.marks)
  }
}

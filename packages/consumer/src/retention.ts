/**
 * Purging the inbox: old records in bounded batches, and on an interval for long-running consumers.
 * @module
 */
import type { InboxContext } from './context.js'
import { InboxError } from './errors.js'
import type { InboxTransactionClient, PurgeOptions } from './inbox.js'

/** `inbox.purge()`: deletes this consumer's old records in bounded batches. @internal */
export async function purgeRecords<Tx extends InboxTransactionClient>(
  ctx: InboxContext<Tx>,
  { olderThanMs, batchSize = 1_000, maxBatches = 100 }: PurgeOptions,
): Promise<number> {
  if (typeof olderThanMs !== 'number' || !Number.isFinite(olderThanMs) || olderThanMs < 0) {
    throw new InboxError(
      'INBOX_INVALID_OPTIONS',
      `purge: olderThanMs must be a number >= 0, got ${String(olderThanMs)}`,
    )
  }
  for (const [name, value] of [
    ['batchSize', batchSize],
    ['maxBatches', maxBatches],
  ] as const) {
    if (!Number.isInteger(value) || value < 1) {
      throw new InboxError(
        'INBOX_INVALID_OPTIONS',
        `purge: ${name} must be an integer >= 1, got ${String(value)}`,
      )
    }
  }
  let deleted = 0
  for (let i = 0; i < maxBatches; i++) {
    const n = await ctx.prisma.$transaction((tx) =>
      Promise.resolve(
        tx.$executeRawUnsafe(ctx.statements.purgeBatch, ctx.consumer, olderThanMs, batchSize, ctx.table),
      ),
    )
    deleted += n
    if (n < batchSize) break
  }
  return deleted
}

/** Options of `inbox.startPurging`: {@link PurgeOptions} plus the schedule. */
export interface StartPurgingOptions extends PurgeOptions {
  /** Time between purges, in ms (the first one runs after a random part of it, up to a minute). */
  intervalMs: number
  /** Told how many rows each purge that deleted something removed. */
  onPurge?: (deleted: number) => void
  /** Told about a failed purge; the schedule goes on. @default console.warn */
  onError?: (error: unknown) => void
}

/** A running purge schedule. */
export interface Purging {
  /** Stops the schedule; resolves once a running purge has finished. */
  stop(): Promise<void>
}

/**
 * Runs `purge` every `intervalMs` until stopped. The timer does not keep the process alive.
 * @internal
 */
export function schedulePurge(
  purge: (options: PurgeOptions) => Promise<number>,
  options: StartPurgingOptions,
  random: () => number = Math.random,
): Purging {
  const { intervalMs, onPurge, onError, ...purgeOptions } = options
  if (!Number.isInteger(intervalMs) || intervalMs < 1)
    throw new InboxError(
      'INBOX_INVALID_OPTIONS',
      `startPurging: intervalMs must be an integer >= 1, got ${String(intervalMs)}`,
    )
  let stopped = false
  let timer: ReturnType<typeof setTimeout> | undefined
  let running: Promise<void> | undefined
  const report =
    onError ?? ((error: unknown) => console.warn('prisma-outbox consumer: inbox purge failed:', error))
  const tick = async () => {
    try {
      const deleted = await purge(purgeOptions)
      if (deleted > 0) onPurge?.(deleted)
    } catch (error) {
      try {
        report(error)
      } catch {
        // a logging hook must not stop the schedule
      }
    }
  }
  const next = (delayMs: number) => {
    if (stopped) return
    timer = setTimeout(() => {
      running = tick().finally(() => {
        running = undefined
        next(intervalMs)
      })
    }, delayMs)
    timer.unref?.()
  }
  next(Math.round(random() * Math.min(intervalMs, 60_000)))
  return {
    async stop() {
      stopped = true
      if (timer) clearTimeout(timer)
      await running
    },
  }
}

/**
 * How a streamer's work ends early or waits: the `Stopping` and `SlotLost` signals, an abortable
 * sleep, and the retry loop of infrastructure failures.
 * @module
 */
import { backoffDelay } from '../core/backoff.js'
import { sqlState } from '../core/db.js'
import { classifyPublishError } from '../core/publisher.js'
import { report, type StreamerContext } from './context.js'

/** `stop()` interrupted a retry: the session ends without finishing its batch. */
export class Stopping extends Error {}

/** The slot is streamed by another connection now: this streamer's session must end unpublished. */
export class SlotLost extends Error {}

/**
 * The server refuses new connections because it is shutting down (SQLSTATE 57P03): the session
 * must end and give its replication connection up. PostgreSQL stops a logical walsender only once
 * its client confirmed everything sent, and a streamer whose marks cannot reach the database
 * cannot confirm: it held a fast shutdown (a restart) for as long as it lived.
 */
export class ServerShuttingDown extends Error {}

/** Resolves after `ms`, or at once when `signal` aborts; leaves no listener behind either way. */
export const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const onAbort = () => {
      clearTimeout(timer)
      resolve()
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    signal?.addEventListener('abort', onAbort, { once: true })
  })

/** Runs `fn` until it succeeds; infrastructure failures back off and retry, nothing is counted. */
export async function retrying<T>(
  ctx: StreamerContext,
  where: 'publish' | 'database',
  fn: () => Promise<T>,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn()
    } catch (error) {
      if (error instanceof SlotLost) throw error
      if (where === 'publish' && classifyPublishError(error) === 'permanent') throw error
      report(ctx, error, where)
      if (where === 'database' && sqlState(error) === '57P03')
        throw new ServerShuttingDown(`the database is shutting down: ${(error as Error).message}`)
      // A stop interrupts retries, never a first attempt: a batch Kafka acknowledged gets marked.
      if (ctx.controller.signal.aborted) throw new Stopping()
      await sleep(backoffDelay(attempt, ctx.settings.retry), ctx.controller.signal)
      if (ctx.controller.signal.aborted) throw new Stopping()
    }
  }
}

/**
 * A fix for kafkajs 2.2.4's idle timer loop.
 * @module
 */
import { createRequire } from 'node:module'

/** The part of kafkajs' (internal) `RequestQueue` the fix touches. */
interface RequestQueueLike {
  pending: unknown[]
  scheduleCheckPendingRequests(): void
}

let applied: boolean | undefined

/**
 * kafkajs 2.2.4 checks each broker connection's queue of requests waiting to be sent, and after
 * every check schedules the next one. With nothing waiting and no throttle, the delay it computes
 * is negative, so Node runs it after 1 ms, and again, for as long as the connection lives
 * (kafkajs issues #1556 and #1704, unfixed in the last release). Each connection then woke the
 * process about 1,700 times a second, idle or busy: an idle `outbox-relay watch` used 4 % of a
 * core, four of them on a 2-core machine took that from the database they relay for.
 *
 * The fix schedules a check only while a request is waiting. Nothing is lost: a request that
 * arrives later and cannot be sent at once (throttled, or too many in flight) is queued, and its
 * queueing schedules the check, as in kafkajs; a check that sends nothing has nothing to do.
 *
 * Applied once per process to the kafkajs that `@prisma-outbox/relay` resolves (the one a
 * `Kafka` client of the same install uses); a no-op when that kafkajs has no such method (another
 * version). `KafkaPublisher` applies it when created.
 * @returns whether the fix is in place
 */
export function quietKafkajsIdleLoop(): boolean {
  if (applied !== undefined) return applied
  applied = false
  let queue: { prototype?: RequestQueueLike } | undefined
  try {
    queue = createRequire(import.meta.url)('kafkajs/src/network/requestQueue/index.js')
  } catch {
    return applied
  }
  const prototype = queue?.prototype
  const schedule = prototype?.scheduleCheckPendingRequests
  if (!prototype || typeof schedule !== 'function') return applied
  prototype.scheduleCheckPendingRequests = function scheduleWhileWaiting(this: RequestQueueLike) {
    if (this.pending.length > 0) schedule.call(this)
  }
  applied = true
  return applied
}

/**
 * The inbox: handle each outbox event once per consumer, even when Kafka delivers it again
 * (the relay is at-least-once). The event id is recorded in the consumer's own database, in the
 * same Prisma transaction as the handler's effects: either both commit or neither does.
 * @module
 */
import type { EachBatchPayload, EachMessagePayload } from 'kafkajs'
import { inboxContext } from './context.js'
import { deliver } from './deliver.js'
import type { OutboxEvent } from './event.js'
import { type FailedEvent, listFailed, type RetryFailedResult, retryFailed } from './failed.js'
import type { DeadLetterOptions, InboxCounters, InboxHooks, RetryOptions } from './failure.js'
import { handleEvent } from './handle.js'
import { type Purging, purgeRecords, type StartPurgingOptions, schedulePurge } from './retention.js'

/** What the inbox needs of a Prisma client: interactive transactions and raw statements. */
export interface InboxPrismaClient<Tx extends InboxTransactionClient = InboxTransactionClient> {
  $transaction<R>(fn: (tx: Tx) => Promise<R>, options?: { timeout?: number; maxWait?: number }): Promise<R>
}

export interface InboxTransactionClient {
  $executeRawUnsafe(query: string, ...values: unknown[]): PromiseLike<number>
  /** Needed by `failed()` and `retryFailed()` only; every Prisma client has it. */
  $queryRawUnsafe?<T = unknown>(query: string, ...values: unknown[]): PromiseLike<T>
}

export type InboxHandler<Tx, Payload = unknown> = (event: OutboxEvent<Payload>, tx: Tx) => Promise<void>

export interface InboxOptions {
  /** Names this consumer; each consumer sees each event once. Often the Kafka group id. */
  consumer: string
  /** The inbox table, `table` or `schema.table` (each part a plain identifier). @default 'outbox_inbox' */
  table?: string
  /** Interactive transaction timeout in ms for one event. @default 15000 */
  timeoutMs?: number
  /**
   * Retries of a failing handler in `eachMessage`/`eachBatch`, with exponential backoff and jitter.
   * @default { maxAttempts: 3, initialDelayMs: 100, maxDelayMs: 5000 }
   */
  retry?: RetryOptions
  /**
   * Where a message goes once its attempts are used up, or at once when it is not a valid outbox
   * event; the partition then moves on. Without it the last error is rethrown to kafkajs, which
   * redelivers the same message (the partition waits until the handler succeeds).
   */
  deadLetter?: DeadLetterOptions
  /**
   * Instead of a dead-letter topic: an event whose attempts are used up is recorded in the inbox
   * table as `'failed'`, with its message, and the partition moves on. A redelivery of it is
   * skipped as a duplicate; `failed()` lists such events and `retryFailed(id, handler)` runs the
   * handler on one again. A message that is not a valid outbox event (no id) cannot be recorded:
   * its error is rethrown. Needs the migration `20261201000200_inbox_failed`.
   */
  recordFailed?: boolean
  /** Callbacks for logs and metrics: duplicates skipped, retries, dead letters. */
  hooks?: InboxHooks
  /** Source of the backoff's jitter (tests). @internal */
  random?: () => number
}

export interface PurgeOptions {
  /** Records processed longer ago than this are deleted, in ms. Keep it above how long Kafka may redeliver. */
  olderThanMs: number
  /** Rows per DELETE statement. @default 1000 */
  batchSize?: number
  /** Statements per call at most; a call deletes at most `batchSize * maxBatches` rows. @default 100 */
  maxBatches?: number
}

export type HandleResult = 'processed' | 'duplicate'

export interface Inbox<Tx> {
  /**
   * Runs `handler` for one event inside a transaction that also records it; an event already
   * recorded for this consumer is skipped (`'duplicate'`) with no second effect.
   */
  handle<Payload = unknown>(
    event: OutboxEvent<Payload>,
    handler: InboxHandler<Tx, Payload>,
  ): Promise<HandleResult>
  /**
   * A kafkajs `eachMessage`: offsets are committed by kafkajs only after it resolves, i.e. after
   * the transaction committed.
   * @example consumer.run({ eachMessage: inbox.eachMessage(async (event, tx) => { ... }) })
   */
  eachMessage<Payload = unknown>(
    handler: InboxHandler<Tx, Payload>,
  ): (payload: EachMessagePayload) => Promise<void>
  /** A kafkajs `eachBatch` that resolves each offset after its event's transaction commits. */
  eachBatch<Payload = unknown>(
    handler: InboxHandler<Tx, Payload>,
  ): (payload: EachBatchPayload) => Promise<void>
  /**
   * Deletes this consumer's records processed more than `olderThanMs` ago, in bounded batches;
   * resolves to the number of rows deleted. An event redelivered after its record was purged is
   * handled again, so keep `olderThanMs` above the topic's retention (or the longest replay).
   * @example await inbox.purge({ olderThanMs: 14 * 24 * 3600_000 })
   */
  purge(options: PurgeOptions): Promise<number>
  /**
   * Runs {@link Inbox.purge} every `intervalMs` (and the first time within a minute) until
   * `stop()`: for long-running consumers. Several instances of the consumer may run it: one purges
   * at a time, the others find the purge lock taken and wait for their next turn.
   * @example
   * const purging = inbox.startPurging({ olderThanMs: 14 * 86_400_000, intervalMs: 3_600_000 })
   * // on shutdown
   * await purging.stop()
   */
  startPurging(options: StartPurgingOptions): Purging
  /** This consumer's failed events (`recordFailed`), oldest first. */
  failed(options?: { limit?: number }): Promise<FailedEvent[]>
  /**
   * Runs `handler` again on a failed event, in a transaction that also marks it processed. If the
   * handler throws, the record stays failed (its attempts and error updated) and the error is
   * rethrown. Resolves `'not-found'` when this consumer has no failed record of that id.
   */
  retryFailed<Payload = unknown>(
    eventId: string,
    handler: InboxHandler<Tx, Payload>,
  ): Promise<RetryFailedResult>
  /** Counts since the inbox was created: processed, duplicates, retries, deadLettered, failed, recordedFailed. */
  counters(): InboxCounters
}

/**
 * Creates the inbox of one consumer.
 *
 * @param prisma - a Prisma client (extended or not) whose database has the `outbox_inbox` table
 * @param options.consumer - this consumer's name
 * @param [options.table='outbox_inbox'] - the inbox table
 * @example
 * const inbox = createInbox(prisma, { consumer: 'directory' })
 * await consumer.run({
 *   eachMessage: inbox.eachMessage(async (event, tx) => {
 *     await tx.directoryEntry.upsert({ ... })
 *   }),
 * })
 */
export function createInbox<Tx extends InboxTransactionClient>(
  prisma: InboxPrismaClient<Tx>,
  options: InboxOptions,
): Inbox<Tx> {
  const ctx = inboxContext(prisma, options)
  const inbox: Inbox<Tx> = {
    handle: (event, handler) => handleEvent(ctx, event, handler),
    eachMessage:
      (handler) =>
      async ({ topic, partition, message, heartbeat }) => {
        await deliver(ctx, { topic, partition, message }, handler, heartbeat)
      },
    eachBatch:
      (handler) =>
      async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
        for (const message of batch.messages) {
          if (!isRunning() || isStale()) break
          await deliver(ctx, { topic: batch.topic, partition: batch.partition, message }, handler, heartbeat)
          resolveOffset(message.offset)
          await heartbeat()
        }
      },
    purge: (purgeOptions) => purgeRecords(ctx, purgeOptions),
    startPurging(purging) {
      return schedulePurge((o) => inbox.purge(o), purging, ctx.random)
    },
    failed: (failedOptions) => listFailed(ctx, failedOptions),
    retryFailed: (eventId, handler) => retryFailed(ctx, eventId, handler),
    counters: () => ({ ...ctx.counts }),
  }
  return inbox
}

/**
 * The inbox: handle each outbox event once per consumer, even when Kafka delivers it again
 * (the relay is at-least-once). The event id is recorded in the consumer's own database, in the
 * same Prisma transaction as the handler's effects: either both commit or neither does.
 * @module
 */
import type { EachBatchPayload, EachMessagePayload, KafkaMessage } from 'kafkajs'
import { InboxError } from './errors.js'
import { eventFromMessage, type OutboxEvent } from './event.js'
import {
  errorText,
  eventOfRecord,
  type FailedEvent,
  failedRecordValues,
  failedSql,
  queryRows,
  type RetryFailedResult,
} from './failed.js'
import {
  type DeadLetterOptions,
  deadLetterMessage,
  failurePolicy,
  type InboxCounters,
  type InboxHooks,
  type RetryOptions,
} from './failure.js'
import { type Purging, type StartPurgingOptions, schedulePurge } from './retention.js'

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

const NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/

/**
 * `table` or `schema.table` for SQL text: each part a double-quoted identifier with embedded
 * quotes doubled (`app.outbox_inbox` → `"app"."outbox_inbox"`), the rule of the relay and the
 * extension; undefined when a part is not a plain identifier.
 */
function quoteTable(name: string): string | undefined {
  const parts = name.split('.')
  if (parts.length > 2 || !parts.every((part) => NAME.test(part))) return undefined
  return parts.map((part) => `"${part.replaceAll('"', '""')}"`).join('.')
}

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
  if (!options || typeof options.consumer !== 'string' || options.consumer.trim() === '') {
    throw new InboxError(
      'INBOX_INVALID_OPTIONS',
      'options.consumer must name the consumer (a non-empty string)',
    )
  }
  const table = quoteTable(options.table ?? 'outbox_inbox')
  if (table === undefined) {
    throw new InboxError(
      'INBOX_INVALID_OPTIONS',
      `options.table "${options.table}" must be a plain SQL identifier, or two joined by a dot (schema.table)`,
    )
  }
  const timeout = options.timeoutMs ?? 15_000
  const policy = failurePolicy(options.retry, options.deadLetter, options.random)
  const hooks = options.hooks ?? {}
  if (options.recordFailed && options.deadLetter) {
    throw new InboxError(
      'INBOX_INVALID_OPTIONS',
      'options.recordFailed and options.deadLetter exclude each other: give up to the inbox table or to a topic',
    )
  }
  const failedStatements = failedSql(table)
  const counts: InboxCounters = {
    processed: 0,
    duplicates: 0,
    retries: 0,
    deadLettered: 0,
    failed: 0,
    recordedFailed: 0,
  }
  const safely = (call: () => void) => {
    try {
      call()
    } catch {
      // hooks are for logs and metrics; they must not change what the inbox does
    }
  }
  // ON CONFLICT DO NOTHING: a concurrent delivery of the same event waits on the unique key
  // until the first transaction ends, then sees the conflict and is skipped.
  const record = `INSERT INTO ${table} ("consumer", "event_id", "event_type", "topic", "partition", "offset")
    VALUES ($1, $2::uuid, $3, $4, $5, $6::bigint) ON CONFLICT DO NOTHING`
  // ctid batches: a bounded DELETE without a key of its own (the index on processed_at finds them).
  // The try-lock (per consumer and table) lets one instance purge at a time: the others delete
  // nothing and stop at once. The candidates are a MATERIALIZED CTE, run once, so the statement
  // never deletes more than $3 rows whatever plan it gets; SKIP LOCKED never waits on a row.
  const purgeBatch = `WITH lock AS (
      SELECT pg_try_advisory_xact_lock(hashtext('prisma-outbox inbox purge ' || $4 || ' ' || $1)) AS ok
    ), old AS MATERIALIZED (
      SELECT i.ctid FROM ${table} AS i, lock
      WHERE lock.ok AND i."consumer" = $1 AND i."status" = 'processed'
        AND i."processed_at" < now() - make_interval(secs => $2::double precision / 1000)
      LIMIT $3
      FOR UPDATE OF i SKIP LOCKED
    )
    DELETE FROM ${table} WHERE ctid IN (SELECT ctid FROM old)`

  const handle = async <Payload>(event: OutboxEvent<Payload>, handler: InboxHandler<Tx, Payload>) => {
    const result = await prisma.$transaction(
      async (tx): Promise<HandleResult> => {
        const inserted = await tx.$executeRawUnsafe(
          record,
          options.consumer,
          event.id,
          event.type ?? null,
          event.topic,
          event.partition,
          event.offset,
        )
        if (inserted === 0) return 'duplicate'
        await handler(event, tx)
        return 'processed'
      },
      { timeout },
    )
    if (result === 'duplicate') {
      counts.duplicates++
      safely(() => hooks.onDuplicate?.(event as OutboxEvent))
    } else counts.processed++
    return result
  }

  /** Gives up on a message: to the dead-letter topic when there is one, else rethrows. */
  const giveUp = async (
    source: { topic: string; partition: number; message: KafkaMessage },
    error: unknown,
    attempts: number,
    event?: OutboxEvent,
  ) => {
    const info = {
      topic: source.topic,
      partition: source.partition,
      offset: source.message.offset,
      error,
      attempts,
    }
    const deadLetter = policy.deadLetter
    if (options.recordFailed && event) {
      await prisma.$transaction((tx) =>
        Promise.resolve(
          tx.$executeRawUnsafe(
            failedStatements.record,
            ...failedRecordValues(options.consumer, event, source.message, error, attempts),
          ),
        ),
      )
      counts.recordedFailed++
      safely(() => hooks.onDeadLetter?.({ ...info, event, recordedFailed: true }))
      return
    }
    if (!deadLetter) {
      counts.failed++
      safely(() => hooks.onDeadLetter?.(event ? { ...info, event } : info))
      throw error
    }
    const deadLetterTopic = deadLetter.topic(source.topic)
    await deadLetter.producer.send({
      topic: deadLetterTopic,
      acks: -1,
      messages: [deadLetterMessage(source, options.consumer, error, attempts)],
    })
    counts.deadLettered++
    safely(() => hooks.onDeadLetter?.({ ...info, ...(event ? { event } : {}), deadLetterTopic }))
  }

  /** One message with the failure policy: bounded retries, then dead letter. */
  const deliver = async <Payload>(
    source: { topic: string; partition: number; message: KafkaMessage },
    handler: InboxHandler<Tx, Payload>,
    heartbeat: () => Promise<void>,
  ) => {
    let event: OutboxEvent<Payload>
    try {
      event = eventFromMessage(source.topic, source.partition, source.message) as OutboxEvent<Payload>
    } catch (error) {
      // Not an outbox event: no retry can fix it.
      await giveUp(source, error, 1)
      return
    }
    const prepare = (handler as { prepare?: (event: OutboxEvent) => OutboxEvent | undefined }).prepare
    if (typeof prepare === 'function') {
      try {
        // Typed handlers: a payload failing its schema never reaches the handler, nor a retry.
        event = (prepare(event as OutboxEvent) ?? event) as OutboxEvent<Payload>
      } catch (error) {
        await giveUp(source, error, 1, event as OutboxEvent)
        return
      }
    }
    for (let attempt = 1; ; attempt++) {
      try {
        await handle(event, handler)
        return
      } catch (error) {
        if (attempt >= policy.maxAttempts) {
          await giveUp(source, error, attempt, event as OutboxEvent)
          return
        }
        const delayMs = policy.delayMs(attempt)
        counts.retries++
        safely(() => hooks.onRetry?.({ event: event as OutboxEvent, error, attempt, delayMs }))
        await heartbeat()
        await new Promise((resolve) => setTimeout(resolve, delayMs))
        await heartbeat()
      }
    }
  }

  const retryFailed = async <Payload>(
    eventId: string,
    handler: InboxHandler<Tx, Payload>,
  ): Promise<RetryFailedResult> => {
    try {
      return await prisma
        .$transaction(
          async (tx): Promise<RetryFailedResult> => {
            type Row = Parameters<typeof eventOfRecord>[0]
            const [row] = await queryRows<Row>(tx, failedStatements.take, options.consumer, eventId)
            if (!row) return 'not-found'
            let event = eventOfRecord(row) as OutboxEvent<Payload>
            const prepare = (handler as { prepare?: (event: OutboxEvent) => OutboxEvent | undefined }).prepare
            if (typeof prepare === 'function')
              event = (prepare(event as OutboxEvent) ?? event) as OutboxEvent<Payload>
            await handler(event, tx)
            return 'processed'
          },
          { timeout },
        )
        .then((result) => {
          if (result === 'processed') counts.processed++
          return result
        })
    } catch (error) {
      await prisma
        .$transaction((tx) =>
          Promise.resolve(
            tx.$executeRawUnsafe(failedStatements.stillFailed, options.consumer, eventId, errorText(error)),
          ),
        )
        .catch(() => {})
      throw error
    }
  }

  const inbox: Inbox<Tx> = {
    handle,
    eachMessage:
      (handler) =>
      async ({ topic, partition, message, heartbeat }) => {
        await deliver({ topic, partition, message }, handler, heartbeat)
      },
    eachBatch:
      (handler) =>
      async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
        for (const message of batch.messages) {
          if (!isRunning() || isStale()) break
          await deliver({ topic: batch.topic, partition: batch.partition, message }, handler, heartbeat)
          resolveOffset(message.offset)
          await heartbeat()
        }
      },
    async purge({ olderThanMs, batchSize = 1_000, maxBatches = 100 }) {
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
        const n = await prisma.$transaction((tx) =>
          Promise.resolve(tx.$executeRawUnsafe(purgeBatch, options.consumer, olderThanMs, batchSize, table)),
        )
        deleted += n
        if (n < batchSize) break
      }
      return deleted
    },
    startPurging(purging) {
      return schedulePurge((o) => inbox.purge(o), purging, options.random)
    },
    async failed({ limit = 100 } = {}) {
      if (!Number.isInteger(limit) || limit < 1)
        throw new InboxError(
          'INBOX_INVALID_OPTIONS',
          `failed: limit must be an integer >= 1, got ${String(limit)}`,
        )
      return prisma.$transaction((tx) =>
        queryRows<FailedEvent>(tx, failedStatements.list, options.consumer, limit),
      )
    },
    retryFailed: (eventId, handler) => retryFailed(eventId, handler),
    counters: () => ({ ...counts }),
  }
  return inbox
}

/**
 * The inbox: handle each outbox event once per consumer, even when Kafka delivers it again
 * (the relay is at-least-once). The event id is recorded in the consumer's own database, in the
 * same Prisma transaction as the handler's effects: either both commit or neither does.
 * @module
 */
import type { EachBatchPayload, EachMessagePayload } from 'kafkajs'
import { InboxError } from './errors.js'
import { eventFromMessage, type OutboxEvent } from './event.js'

/** What the inbox needs of a Prisma client: interactive transactions and raw statements. */
export interface InboxPrismaClient<Tx extends InboxTransactionClient = InboxTransactionClient> {
  $transaction<R>(fn: (tx: Tx) => Promise<R>, options?: { timeout?: number; maxWait?: number }): Promise<R>
}

export interface InboxTransactionClient {
  $executeRawUnsafe(query: string, ...values: unknown[]): PromiseLike<number>
}

export type InboxHandler<Tx, Payload = unknown> = (event: OutboxEvent<Payload>, tx: Tx) => Promise<void>

export interface InboxOptions {
  /** Names this consumer; each consumer sees each event once. Often the Kafka group id. */
  consumer: string
  /** The inbox table. @default 'outbox_inbox' */
  table?: string
  /** Interactive transaction timeout in ms for one event. @default 15000 */
  timeoutMs?: number
}

export type HandleResult = 'processed' | 'duplicate'

const NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/

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
  const table = options.table ?? 'outbox_inbox'
  if (!NAME.test(table)) {
    throw new InboxError('INBOX_INVALID_OPTIONS', `options.table "${table}" must be a plain SQL identifier`)
  }
  const timeout = options.timeoutMs ?? 15_000
  // ON CONFLICT DO NOTHING: a concurrent delivery of the same event waits on the unique key
  // until the first transaction ends, then sees the conflict and is skipped.
  const record = `INSERT INTO "${table}" ("consumer", "event_id", "event_type", "topic", "partition", "offset")
    VALUES ($1, $2::uuid, $3, $4, $5, $6::bigint) ON CONFLICT DO NOTHING`

  const handle = <Payload>(event: OutboxEvent<Payload>, handler: InboxHandler<Tx, Payload>) =>
    prisma.$transaction(
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

  return {
    handle,
    eachMessage:
      (handler) =>
      async ({ topic, partition, message }) => {
        await handle(eventFromMessage(topic, partition, message) as OutboxEvent<never>, handler)
      },
    eachBatch:
      (handler) =>
      async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
        for (const message of batch.messages) {
          if (!isRunning() || isStale()) break
          await handle(eventFromMessage(batch.topic, batch.partition, message) as OutboxEvent<never>, handler)
          resolveOffset(message.offset)
          await heartbeat()
        }
      },
  }
}

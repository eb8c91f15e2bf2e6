/**
 * Failed inbox records: an event given up on is kept in the inbox table as `'failed'`, with its
 * message, instead of going to a dead-letter topic. A redelivery finds the row and is skipped, so
 * the event is not redelivered forever; `retryFailed` runs the handler on it again. The SQL of
 * these records is all here, and the inbox's listing and retrying of them.
 * @module
 */
import type { KafkaMessage } from 'kafkajs'
import type { InboxContext } from './context.js'
import { InboxError } from './errors.js'
import { decodeHeaders, eventFromMessage, type OutboxEvent } from './event.js'
import type { InboxHandler, InboxTransactionClient } from './inbox.js'
import { prepareEvent } from './typed.js'

/** A failed event, as `inbox.failed()` lists it. */
export interface FailedEvent {
  eventId: string
  eventType: string | null
  topic: string | null
  partition: number | null
  offset: string | null
  attempts: number | null
  lastError: string | null
  failedAt: Date
}

/** What `retryFailed` answers: handled now, or no failed record of that id for this consumer. */
export type RetryFailedResult = 'processed' | 'not-found'

/** A transaction client able to read rows (every Prisma client is). */
interface QueryClient {
  $executeRawUnsafe(query: string, ...values: unknown[]): PromiseLike<number>
  $queryRawUnsafe?<T = unknown>(query: string, ...values: unknown[]): PromiseLike<T>
}

const MAX_ERROR = 2_000

/** The statements of one inbox table (already quoted). @internal */
export function failedSql(table: string) {
  return {
    // A redelivery of a failed event meets this row: ON CONFLICT keeps the first record.
    record: `INSERT INTO ${table} ("consumer", "event_id", "event_type", "topic", "partition", "offset",
        "status", "attempts", "last_error", "message_key", "message_value", "message_headers")
      VALUES ($1, $2::uuid, $3, $4, $5, $6::bigint, 'failed', $7, $8, $9, $10, $11::jsonb)
      ON CONFLICT DO NOTHING`,
    list: `SELECT "event_id"::text AS "eventId", "event_type" AS "eventType", "topic", "partition",
        "offset"::text AS "offset", "attempts", "last_error" AS "lastError", "processed_at" AS "failedAt"
      FROM ${table} WHERE "consumer" = $1 AND "status" = 'failed'
      ORDER BY "processed_at", "event_id" LIMIT $2`,
    // Taken out of the failed state inside the retry's transaction: a failed handler rolls it back.
    // The message stays (RETURNING gives the new row, and it documents what was retried).
    take: `UPDATE ${table} SET "status" = 'processed', "processed_at" = now()
      WHERE "consumer" = $1 AND "event_id" = $2::uuid AND "status" = 'failed'
      RETURNING "topic", "partition", "offset"::text AS "offset", "message_key" AS "key",
        "message_value" AS "value", "message_headers" AS "headers"`,
    stillFailed: `UPDATE ${table} SET "attempts" = coalesce("attempts", 0) + 1, "last_error" = $3
      WHERE "consumer" = $1 AND "event_id" = $2::uuid AND "status" = 'failed'`,
  }
}

/** The parameters of `record` for an event given up on. @internal */
export function failedRecordValues(
  consumer: string,
  event: OutboxEvent,
  message: KafkaMessage,
  error: unknown,
  attempts: number,
): unknown[] {
  return [
    consumer,
    event.id,
    event.type ?? null,
    event.topic,
    event.partition,
    event.offset,
    attempts,
    errorText(error),
    message.key?.toString('utf8') ?? null,
    message.value?.toString('utf8') ?? null,
    JSON.stringify(decodeHeaders(message.headers)),
  ]
}

/** `String(error)`, bounded. @internal */
export function errorText(error: unknown): string {
  return String(error instanceof Error ? `${error.name}: ${error.message}` : error).slice(0, MAX_ERROR)
}

/** Rows as `$queryRawUnsafe` gives them; throws naming what is missing on a client without it. @internal */
export async function queryRows<T>(tx: QueryClient, sql: string, ...values: unknown[]): Promise<T[]> {
  if (typeof tx.$queryRawUnsafe !== 'function')
    throw new InboxError(
      'INBOX_INVALID_OPTIONS',
      'failed records need a Prisma client with $queryRawUnsafe (listing and retrying them reads rows)',
    )
  return (await tx.$queryRawUnsafe<T[]>(sql, ...values)) ?? []
}

/** The event of a taken failed record, rebuilt from its stored message. @internal */
export function eventOfRecord(row: {
  topic: string | null
  partition: number | null
  offset: string | null
  key: string | null
  value: string | null
  headers: Record<string, string> | null
}): OutboxEvent {
  const message = {
    key: row.key === null ? null : Buffer.from(row.key),
    value: row.value === null ? null : Buffer.from(row.value),
    headers: row.headers ?? {},
    offset: row.offset ?? '0',
    timestamp: '0',
    attributes: 0,
  } as KafkaMessage
  return eventFromMessage(row.topic ?? '', row.partition ?? 0, message)
}

/** `inbox.failed()`: this consumer's failed events, oldest first. @internal */
export async function listFailed<Tx extends InboxTransactionClient>(
  ctx: InboxContext<Tx>,
  { limit = 100 }: { limit?: number } = {},
): Promise<FailedEvent[]> {
  if (!Number.isInteger(limit) || limit < 1)
    throw new InboxError(
      'INBOX_INVALID_OPTIONS',
      `failed: limit must be an integer >= 1, got ${String(limit)}`,
    )
  return ctx.prisma.$transaction((tx) =>
    queryRows<FailedEvent>(tx, ctx.statements.failed.list, ctx.consumer, limit),
  )
}

/**
 * `inbox.retryFailed()`: the handler runs again on a failed event, in a transaction that also marks
 * it processed; a handler that throws leaves it failed (attempts and error updated), and rethrows.
 * @internal
 */
export async function retryFailed<Tx extends InboxTransactionClient, Payload>(
  ctx: InboxContext<Tx>,
  eventId: string,
  handler: InboxHandler<Tx, Payload>,
): Promise<RetryFailedResult> {
  const statements = ctx.statements.failed
  try {
    return await ctx.prisma
      .$transaction(
        async (tx): Promise<RetryFailedResult> => {
          type Row = Parameters<typeof eventOfRecord>[0]
          const [row] = await queryRows<Row>(tx, statements.take, ctx.consumer, eventId)
          if (!row) return 'not-found'
          const event = prepareEvent(handler, eventOfRecord(row) as OutboxEvent<Payload>)
          await handler(event, tx)
          return 'processed'
        },
        { timeout: ctx.timeout },
      )
      .then((result) => {
        if (result === 'processed') ctx.counts.processed++
        return result
      })
  } catch (error) {
    await ctx.prisma
      .$transaction((tx) =>
        Promise.resolve(
          tx.$executeRawUnsafe(statements.stillFailed, ctx.consumer, eventId, errorText(error)),
        ),
      )
      .catch(() => {})
    throw error
  }
}

/**
 * Kafka messages to handled events, with the failure policy: bounded retries, then the message is
 * given up on (recorded as failed, dead-lettered, or its error rethrown).
 * @module
 */
import type { KafkaMessage } from 'kafkajs'
import { type InboxContext, safely } from './context.js'
import { eventFromMessage, type OutboxEvent } from './event.js'
import { failedRecordValues } from './failed.js'
import { deadLetterMessage } from './failure.js'
import { handleEvent } from './handle.js'
import type { InboxHandler, InboxTransactionClient } from './inbox.js'
import { prepareEvent } from './typed.js'

/** Where a message was read. */
export interface MessageSource {
  topic: string
  partition: number
  message: KafkaMessage
}

/** One message with the failure policy: bounded retries, then dead letter. */
export async function deliver<Tx extends InboxTransactionClient, Payload>(
  ctx: InboxContext<Tx>,
  source: MessageSource,
  handler: InboxHandler<Tx, Payload>,
  heartbeat: () => Promise<void>,
): Promise<void> {
  let event: OutboxEvent<Payload>
  try {
    event = eventFromMessage(source.topic, source.partition, source.message) as OutboxEvent<Payload>
  } catch (error) {
    // Not an outbox event: no retry can fix it.
    await giveUp(ctx, source, error, 1)
    return
  }
  try {
    // Typed handlers: a payload failing its schema never reaches the handler, nor a retry.
    event = prepareEvent(handler, event)
  } catch (error) {
    await giveUp(ctx, source, error, 1, event as OutboxEvent)
    return
  }
  for (let attempt = 1; ; attempt++) {
    try {
      await handleEvent(ctx, event, handler)
      return
    } catch (error) {
      if (attempt >= ctx.policy.maxAttempts) {
        await giveUp(ctx, source, error, attempt, event as OutboxEvent)
        return
      }
      const delayMs = ctx.policy.delayMs(attempt)
      ctx.counts.retries++
      safely(() => ctx.hooks.onRetry?.({ event: event as OutboxEvent, error, attempt, delayMs }))
      await heartbeat()
      await new Promise((resolve) => setTimeout(resolve, delayMs))
      await heartbeat()
    }
  }
}

/**
 * Gives up on a message: records it as failed (`recordFailed`), or sends it to the dead-letter topic
 * when there is one, else rethrows.
 */
async function giveUp<Tx extends InboxTransactionClient>(
  ctx: InboxContext<Tx>,
  source: MessageSource,
  error: unknown,
  attempts: number,
  event?: OutboxEvent,
): Promise<void> {
  const info = {
    topic: source.topic,
    partition: source.partition,
    offset: source.message.offset,
    error,
    attempts,
  }
  const deadLetter = ctx.policy.deadLetter
  if (ctx.recordFailed && event) {
    await ctx.prisma.$transaction((tx) =>
      Promise.resolve(
        tx.$executeRawUnsafe(
          ctx.statements.failed.record,
          ...failedRecordValues(ctx.consumer, event, source.message, error, attempts),
        ),
      ),
    )
    ctx.counts.recordedFailed++
    safely(() => ctx.hooks.onDeadLetter?.({ ...info, event, recordedFailed: true }))
    return
  }
  if (!deadLetter) {
    ctx.counts.failed++
    safely(() => ctx.hooks.onDeadLetter?.(event ? { ...info, event } : info))
    throw error
  }
  const deadLetterTopic = deadLetter.topic(source.topic)
  await deadLetter.producer.send({
    topic: deadLetterTopic,
    acks: -1,
    messages: [deadLetterMessage(source, ctx.consumer, error, attempts)],
  })
  ctx.counts.deadLettered++
  safely(() => ctx.hooks.onDeadLetter?.({ ...info, ...(event ? { event } : {}), deadLetterTopic }))
}

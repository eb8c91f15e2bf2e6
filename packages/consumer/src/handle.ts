/**
 * Handling one event once: its record and the handler's effects commit in one transaction.
 * @module
 */
import { type InboxContext, safely } from './context.js'
import type { OutboxEvent } from './event.js'
import type { HandleResult, InboxHandler, InboxTransactionClient } from './inbox.js'

/**
 * Runs `handler` for one event inside a transaction that also records it; an event already
 * recorded for this consumer is skipped (`'duplicate'`) with no second effect.
 */
export async function handleEvent<Tx extends InboxTransactionClient, Payload>(
  ctx: InboxContext<Tx>,
  event: OutboxEvent<Payload>,
  handler: InboxHandler<Tx, Payload>,
): Promise<HandleResult> {
  const result = await ctx.prisma.$transaction(
    async (tx): Promise<HandleResult> => {
      const inserted = await tx.$executeRawUnsafe(
        ctx.statements.record,
        ctx.consumer,
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
    { timeout: ctx.timeout },
  )
  if (result === 'duplicate') {
    ctx.counts.duplicates++
    safely(() => ctx.hooks.onDuplicate?.(event as OutboxEvent))
  } else ctx.counts.processed++
  return result
}

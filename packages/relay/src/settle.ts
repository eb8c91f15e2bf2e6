/**
 * Publishing one claimed batch and deciding the fate of each row, including finding poison rows.
 * @module
 */
import { RelayError } from './errors.js'
import { messageBytes, type OutboxMessage } from './message.js'
import { classifyPublishError } from './publisher.js'

/** What happened to one row of a batch. */
export type RowOutcome =
  | { kind: 'published' }
  /** The send that carried it failed; `permanent` when retrying cannot help. */
  | { kind: 'failed'; permanent: boolean; error: unknown }
  /** Not sent: an earlier row of its topic + key failed in this batch, or we stopped early. */
  | { kind: 'held' }

export interface SettleResult {
  outcomes: Map<string, RowOutcome>
  /** Number of `publish` calls made (1 when the batch went through at once). */
  sends: number
  /** True when some send failed with a retriable error (the broker is probably in trouble). */
  retriableFailure: boolean
}

const keyOf = (m: OutboxMessage) => `${m.topic}\u0000${m.key}`

/**
 * Publishes `messages` (in seq order) and returns each row's outcome.
 *
 * - The whole batch goes in one `publish` call. If it succeeds, every row is published.
 * - A failed call counts as unpublished for EVERY row in it (a partial write in Kafka cannot be
 *   told apart, and a later row of a key must never be marked while an earlier one is not).
 * - Retriable failure: every row of the call fails (to be retried with backoff) and we stop; rows
 *   not yet tried are held (released without counting an attempt).
 * - Permanent failure of a call with several rows: one of them is poison (or together they are
 *   too large). Split the call in two halves and publish them in order, recursively, until
 *   single rows fail: only those go dead. Before each call, rows whose topic + key already
 *   failed in this batch are held back instead of sent, so no row overtakes an earlier failed row
 *   of its key — unless that earlier row went dead and `blockOnDead` is false ('continue').
 *
 * Duplicates are possible only for rows of a failed call that Kafka had in fact accepted
 * (another partition of the same request): at-least-once, deduplicated by the `id` header.
 *
 * @param messages - the batch, in seq order
 * @param publish - sends messages in order or throws
 * @param options.blockOnDead - hold later rows of a key whose row went dead ('block-key')
 * @example
 * const { outcomes } = await settleBatch(messages, (m) => publisher.publish(m), { blockOnDead: true })
 */
export async function settleBatch(
  messages: OutboxMessage[],
  publish: (messages: OutboxMessage[]) => Promise<void>,
  options: {
    blockOnDead: boolean
    classify?: (error: unknown) => 'retriable' | 'permanent'
    /** Rows larger than this fail permanently without being sent (0: no check). */
    maxMessageBytes?: number
  },
): Promise<SettleResult> {
  const classify = options.classify ?? classifyPublishError
  const outcomes = new Map<string, RowOutcome>()
  const blocked = new Set<string>()
  let sends = 0
  let stopped = false

  // Oversized rows would fail the request that carries them, and with it rows Kafka had accepted
  // on other partitions (which then repeat): fail them here, before any send.
  const limit = options.maxMessageBytes ?? 0
  const sendable: OutboxMessage[] = []
  for (const m of messages) {
    const bytes = limit > 0 ? messageBytes(m) : 0
    if (bytes > limit) {
      const error = new RelayError(
        'RELAY_PUBLISH_PERMANENT',
        `message too large: ${bytes} bytes (key + value + headers) exceeds maxMessageBytes ${limit}`,
      )
      outcomes.set(m.id, { kind: 'failed', permanent: true, error })
      if (options.blockOnDead) blocked.add(keyOf(m))
    } else sendable.push(m)
  }

  const attempt = async (list: OutboxMessage[]): Promise<void> => {
    const sendable: OutboxMessage[] = []
    for (const m of list) {
      if (stopped || blocked.has(keyOf(m))) outcomes.set(m.id, { kind: 'held' })
      else sendable.push(m)
    }
    if (sendable.length === 0) return
    try {
      sends++
      await publish(sendable)
      for (const m of sendable) outcomes.set(m.id, { kind: 'published' })
      return
    } catch (error) {
      const kind = classify(error)
      if (kind === 'permanent' && sendable.length > 1) {
        const middle = Math.ceil(sendable.length / 2)
        await attempt(sendable.slice(0, middle))
        await attempt(sendable.slice(middle))
        return
      }
      const permanent = kind === 'permanent'
      for (const m of sendable) {
        outcomes.set(m.id, { kind: 'failed', permanent, error })
        if (!permanent || options.blockOnDead) blocked.add(keyOf(m))
      }
      if (!permanent) stopped = true
    }
  }

  await attempt(sendable)
  return { outcomes, sends, retriableFailure: stopped }
}

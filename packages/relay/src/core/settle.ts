/**
 * Publishing one claimed batch and deciding the fate of each row, including finding poison rows.
 * @module
 */

import { RelayError } from './errors.js'
import { messageBytes, type OutboxMessage } from './message.js'
import { classifyPublishFailure, type PublishFailureKind } from './publisher.js'

/** What happened to one row of a batch. */
export type RowOutcome =
  | { kind: 'published' }
  /**
   * The send that carried it failed because of an event (`permanent`: retrying cannot help;
   * else the broker refused it for a reason that may pass): costs an attempt.
   */
  | { kind: 'failed'; permanent: boolean; error: unknown }
  /** The send failed because of the broker or the network: retry later, no attempt. */
  | { kind: 'deferred'; error: unknown }
  /** The send timed out: it may still land, so the row keeps its lease; no attempt. */
  | { kind: 'unsettled'; error: unknown }
  /** Not sent: an earlier row of its topic + key failed in this batch, or we stopped early. */
  | { kind: 'held' }

export interface SettleResult {
  outcomes: Map<string, RowOutcome>
  /** Number of `publish` calls made (1 when the batch went through at once). */
  sends: number
  /** True when some send failed with a retriable error (the broker is probably in trouble). */
  retriableFailure: boolean
  /** True when a send failed for a reason that is not an event's: pause the relay. */
  infrastructureFailure: boolean
}

const keyOf = (m: OutboxMessage) => `${m.topic}\u0000${m.key}`

/**
 * Publishes `messages` (in seq order) and returns each row's outcome.
 *
 * - The whole batch goes in one `publish` call. If it succeeds, every row is published.
 * - A failed call counts as unpublished for EVERY row in it (a partial write in Kafka cannot be
 *   told apart, and a later row of a key must never be marked while an earlier one is not).
 * - Failure of the broker or the network (`'unavailable'`): the rows of the call are deferred
 *   (retried later without counting an attempt) and we stop; rows not yet tried are held. A
 *   timeout leaves the call's rows unsettled (they may still land). A `'rejected'` call fails
 *   its rows with an attempt and we stop.
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
    classify?: (error: unknown) => PublishFailureKind
    /** Rows larger than this fail permanently without being sent (0: no check). */
    maxMessageBytes?: number
    /** Asked before each send; true holds the rest of the batch unsent (budget, shutdown). */
    stopBefore?: () => boolean
  },
): Promise<SettleResult> {
  const state: Settlement = {
    publish,
    classify: options.classify ?? classifyPublishFailure,
    blockOnDead: options.blockOnDead,
    stopBefore: options.stopBefore,
    outcomes: new Map(),
    blocked: new Set(),
    sends: 0,
    stopped: false,
    retriableFailure: false,
    infrastructureFailure: false,
  }
  await attempt(state, failOversized(state, messages, options.maxMessageBytes ?? 0))
  const { outcomes, sends, retriableFailure, infrastructureFailure } = state
  return { outcomes, sends, retriableFailure, infrastructureFailure }
}

/** One batch being settled: how to send, and what is known so far. */
interface Settlement {
  publish: (messages: OutboxMessage[]) => Promise<void>
  classify: (error: unknown) => PublishFailureKind
  blockOnDead: boolean
  stopBefore: (() => boolean) | undefined
  outcomes: Map<string, RowOutcome>
  /** Keys (`keyOf`) whose later rows are held. */
  blocked: Set<string>
  sends: number
  /** No more sends: the rest is held. */
  stopped: boolean
  retriableFailure: boolean
  infrastructureFailure: boolean
}

/**
 * Fails rows larger than `limit` (0: no check) and returns the others. Oversized rows would fail
 * the request that carries them, and with it rows Kafka had accepted on other partitions (which
 * then repeat): fail them here, before any send.
 */
function failOversized(state: Settlement, messages: OutboxMessage[], limit: number): OutboxMessage[] {
  const sendable: OutboxMessage[] = []
  for (const m of messages) {
    const bytes = limit > 0 ? messageBytes(m) : 0
    if (bytes > limit) {
      const error = new RelayError(
        'RELAY_PUBLISH_PERMANENT',
        `message too large: ${bytes} bytes (key + value + headers) exceeds maxMessageBytes ${limit}`,
      )
      state.outcomes.set(m.id, { kind: 'failed', permanent: true, error })
      if (state.blockOnDead) state.blocked.add(keyOf(m))
    } else sendable.push(m)
  }
  return sendable
}

/** Sends `list` (minus held rows) in one call; a permanent failure of several rows is bisected. */
async function attempt(state: Settlement, list: OutboxMessage[]): Promise<void> {
  if (!state.stopped && state.stopBefore?.()) state.stopped = true
  const sendable: OutboxMessage[] = []
  for (const m of list) {
    if (state.stopped || state.blocked.has(keyOf(m))) state.outcomes.set(m.id, { kind: 'held' })
    else sendable.push(m)
  }
  if (sendable.length === 0) return
  try {
    state.sends++
    await state.publish(sendable)
    for (const m of sendable) state.outcomes.set(m.id, { kind: 'published' })
  } catch (error) {
    const kind = state.classify(error)
    if (kind === 'permanent' && sendable.length > 1) {
      const middle = Math.ceil(sendable.length / 2)
      await attempt(state, sendable.slice(0, middle))
      await attempt(state, sendable.slice(middle))
    } else recordFailure(state, sendable, kind, error)
  }
}

/** The outcome of rows whose send failed with `kind` (and was not bisected). */
function recordFailure(
  state: Settlement,
  sent: OutboxMessage[],
  kind: PublishFailureKind,
  error: unknown,
): void {
  if (kind === 'not-sent') {
    for (const m of sent) state.outcomes.set(m.id, { kind: 'held' })
    state.stopped = true
    return
  }
  if (kind === 'unavailable' || kind === 'timeout') {
    for (const m of sent)
      state.outcomes.set(m.id, { kind: kind === 'timeout' ? 'unsettled' : 'deferred', error })
    state.stopped = true
    state.retriableFailure = true
    state.infrastructureFailure = true
    return
  }
  const permanent = kind === 'permanent'
  for (const m of sent) {
    state.outcomes.set(m.id, { kind: 'failed', permanent, error })
    if (!permanent || state.blockOnDead) state.blocked.add(keyOf(m))
  }
  if (!permanent) {
    state.stopped = true
    state.retriableFailure = true
  }
}

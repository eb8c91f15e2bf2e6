/**
 * One chunk's way to Kafka: checked (still pending? its key blocked?), then published in order
 * behind the fence. Its mark follows in marks.ts.
 * @module
 */
import { runPooled } from '../core/db.js'
import { coerceError } from '../core/errors.js'
import { toMessage } from '../core/message.js'
import { report, type StreamerContext } from './context.js'
import { retrying, SlotLost, Stopping, sleep } from './control.js'
import { fence, lost } from './fence.js'
import type { StreamRow } from './rows.js'
import { type InspectedRow, inspectStreamBatch, type SettledRow } from './sql.js'

const keyOf = (row: StreamRow) => `${row.topic}\u0000${row.aggregateid}`

const heldReason = (row: StreamRow) =>
  `held back by the stream relay: an earlier event of topic "${row.topic}" key "${row.aggregateid}" is dead or waiting (dead-letter policy block-key); publish them with outbox-relay drain after retrying the dead event`

/**
 * The check query of one chunk, repeated until every row's transaction is visible (a decoded
 * commit can precede its visibility by a moment). Rejects with `SlotLost` when the slot is no
 * longer streamed by this session's server process, else only with `Stopping`.
 */
export async function inspectChunk(ctx: StreamerContext, rows: StreamRow[]): Promise<InspectedRow[]> {
  if (rows.length === 0) return []
  const { table, blockOnDead, slot, pool, prepareCheck } = ctx.settings
  const statement = inspectStreamBatch({
    table,
    blockOnDead,
    slot,
    gates: blockOnDead ? await ctx.gateIndexes() : undefined,
    rows: rows.map((r) => ({ id: r.id, topic: r.topic, key: r.aggregateid, seq: r.seq, txid: r.txid })),
  })
  for (let wait = 1; ; wait = Math.min(wait * 2, 50)) {
    const at = performance.now()
    const checked = (await retrying(ctx, 'database', () => runPooled(pool, statement, prepareCheck)))
      .rows as InspectedRow[]
    const current = ctx.lease
    const owner = checked[0]?.slot_pid ?? null
    if (!current || owner !== current.session.pid) throw lost(slot, owner, current?.session.pid ?? 0)
    current.verifiedAt = Math.max(current.verifiedAt, at)
    if (checked.every((r) => r.visible)) return checked
    await sleep(wait)
  }
}

/** Publishes `rows` in order; bisects on permanent failures; records every row's outcome. */
async function publishInOrder(
  ctx: StreamerContext,
  rows: StreamRow[],
  outcomes: SettledRow[],
  blocked: Set<string>,
): Promise<void> {
  const sendable: StreamRow[] = []
  for (const row of rows) {
    if (ctx.settings.blockOnDead && blocked.has(keyOf(row)))
      outcomes.push({ id: row.id, outcome: 'held', error: heldReason(row) })
    else sendable.push(row)
  }
  if (sendable.length === 0) return
  try {
    await retrying(ctx, 'publish', async () => {
      await fence(ctx)
      ctx.lastPublishAt = new Date()
      return ctx.settings.publisher.publish(sendable.map(toMessage))
    })
    for (const row of sendable) outcomes.push({ id: row.id, outcome: 'published' })
  } catch (error) {
    if (error instanceof Stopping || error instanceof SlotLost) throw error
    const only = sendable.length === 1 ? sendable[0] : undefined
    if (only) {
      outcomes.push({ id: only.id, outcome: 'dead', error: coerceError(error) })
      blocked.add(keyOf(only))
      report(ctx, error, 'publish')
      return
    }
    const half = Math.ceil(sendable.length / 2)
    await publishInOrder(ctx, sendable.slice(0, half), outcomes, blocked)
    await publishInOrder(ctx, sendable.slice(half), outcomes, blocked)
  }
}

export interface PublishedChunk {
  outcomes: SettledRow[]
  skipped: number
}

/**
 * Publishes the rows of a checked chunk that are still pending. `blocked` holds the keys this
 * session saw go dead or held: their later events are held without waiting for marks to commit
 * (or for a check that ran before them).
 */
export async function publishChunk(
  ctx: StreamerContext,
  rows: StreamRow[],
  checked: InspectedRow[],
  blocked: Set<string>,
): Promise<PublishedChunk> {
  const byId = new Map(checked.map((r) => [r.id, r]))
  const outcomes: SettledRow[] = []
  const toSend: StreamRow[] = []
  let skipped = 0
  for (const row of rows) {
    const now = byId.get(row.id)
    if (now?.status !== 'pending') {
      skipped++
      continue
    }
    if (now.blocked) blocked.add(keyOf(row))
    toSend.push(row)
  }
  await publishInOrder(ctx, toSend, outcomes, blocked)
  return { outcomes, skipped }
}

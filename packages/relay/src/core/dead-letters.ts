/**
 * Dead letters for operators: pages bounded in rows and bytes, one row with its payload, and the
 * two actions, retry and discard. Shared by the HTTP API and the CLI.
 * @module
 */
import { type PoolLike, type Queryable, run, withTransaction } from './db.js'
import { type DeadRow, discardDead, getDead, listDead } from './sql/list-dead.js'
import { lockClaimsBounded } from './sql/lock.js'
import { retryDead } from './sql/retry-dead.js'

/** A dead row as the API and the CLI show it. */
export interface DeadEvent {
  id: string
  topic: string
  aggregateType: string
  aggregateId: string
  type: string
  /** The event body; present only when asked for. */
  payload?: unknown
  /** Size of the payload's JSON text, in bytes. */
  payloadBytes: number
  headers: Record<string, unknown>
  attempts: number
  lastError: string | null
  createdAt: string
  /** When the row went dead (ISO 8601). */
  diedAt: string
}

/** A page of dead rows. */
export interface DeadPage {
  items: DeadEvent[]
  /** Pass as `cursor` for the next page; null on the last page. */
  nextCursor: string | null
}

/** Default byte budget of a page: 256 KiB. */
export const DEFAULT_DEAD_PAGE_BYTES = 256 * 1024

function toDeadEvent(row: DeadRow): DeadEvent {
  const event: DeadEvent = {
    id: row.id,
    topic: row.topic,
    aggregateType: row.aggregatetype,
    aggregateId: row.aggregateid,
    type: row.type,
    payloadBytes: Number(row.payload_bytes),
    headers: row.headers ?? {},
    attempts: row.attempts,
    lastError: row.last_error,
    createdAt: new Date(row.created_at).toISOString(),
    diedAt: new Date(row.died_at).toISOString(),
  }
  if (row.payload !== null) {
    try {
      event.payload = JSON.parse(row.payload)
    } catch {
      event.payload = row.payload
    }
  }
  return event
}

/**
 * Reads a page of dead rows, oldest first: at most `limit` rows and `maxBytes` bytes (a single
 * larger row comes alone), payloads only with `withPayload`.
 *
 * @example
 * const page = await deadLetterPage(pool, { table: 'outbox_event', limit: 50, maxBytes: 262_144, withPayload: false })
 */
export async function deadLetterPage(
  db: Queryable,
  params: {
    table: string
    limit: number
    maxBytes: number
    withPayload: boolean
    cursor?: string | undefined
    topics?: string[] | undefined
  },
): Promise<DeadPage> {
  const { rows } = await run(db, listDead({ ...params, afterSeq: params.cursor }))
  const last = rows[rows.length - 1]
  const fetched = Number(rows[0]?.fetched ?? 0)
  const more = rows.length < fetched || fetched === params.limit
  return { items: rows.map(toDeadEvent), nextCursor: more && last ? last.seq : null }
}

/** One dead row with its payload, or undefined when `id` is not a dead row. */
export async function deadLetter(
  db: Queryable,
  params: { table: string; id: string },
): Promise<DeadEvent | undefined> {
  const { rows } = await run(db, getDead(params))
  return rows[0] ? toDeadEvent(rows[0]) : undefined
}

/** Which dead rows an action applies to. */
export type DeadSelection = { ids: string[] } | { topics: string[] } | { all: true }

/**
 * Retries (back to pending, attempts 0, due now) or discards (deletes) the selected dead rows,
 * in one transaction under the (shared) claim lock: both make later rows of the same keys
 * claimable, like the engine's own failure marks.
 *
 * @param params.lockTimeoutMs - longest wait for the claim lock (and idle time in the transaction)
 * @returns how many rows were retried or discarded
 * @example
 * await actOnDead(pool, { table: 'outbox_event', action: 'retry', selection: { topics: ['orders'] }, lockTimeoutMs: 5000 })
 */
export async function actOnDead(
  pool: PoolLike,
  params: { table: string; action: 'retry' | 'discard'; selection: DeadSelection; lockTimeoutMs: number },
): Promise<number> {
  const { selection, table } = params
  const where = {
    table,
    ids: 'ids' in selection ? selection.ids : undefined,
    topics: 'topics' in selection ? selection.topics : undefined,
  }
  return withTransaction(pool, async (client) => {
    await run(
      client,
      lockClaimsBounded({ lockTimeoutMs: params.lockTimeoutMs, idleInTransactionMs: params.lockTimeoutMs }),
    )
    const result = await run(client, params.action === 'retry' ? retryDead(where) : discardDead(where))
    return result.rowCount ?? 0
  })
}

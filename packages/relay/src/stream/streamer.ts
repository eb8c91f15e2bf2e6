/**
 * The stream relay: tails the outbox table's INSERTs through a logical replication slot
 * (`pgoutput`) and publishes them to Kafka, advancing the slot only after Kafka acknowledged.
 * @module
 */
import { backoffDelay } from '../core/backoff.js'
import { type PoolLike, run } from '../core/db.js'
import { coerceError } from '../core/errors.js'
import type { Logger } from '../core/log.js'
import { toMessage } from '../core/message.js'
import type { DeadLetterPolicy } from '../core/options.js'
import { classifyPublishError, type Publisher } from '../core/publisher.js'
import type { ClaimedRow } from '../core/sql/claim-batch.js'
import { DEFAULT_TABLE } from '../core/sql/table.js'
import { slotProblems, watchHealth } from './health.js'
import { withStreamLogging } from './log.js'
import { decodePgOutput, formatLsn, type Lsn, type WalFrame } from './pgoutput.js'
import { isSlotInUse, type ReplicationSession, startReplication } from './replication.js'
import {
  checkStreamName,
  createPublication,
  createSlot,
  dropPublication,
  dropSlot,
  findPublication,
  findSlot,
  type InspectedRow,
  inspectStreamBatch,
  type SettledRow,
  type SlotStatsRow,
  settleStreamBatch,
  slotOwner,
  slotStats,
  walSenderTimeout,
} from './sql.js'

/** Default slot and publication name. */
export const DEFAULT_STREAM_SLOT = 'outbox_relay'

/**
 * What a streamer is doing: `active` streams from the slot; `standby` waits because another
 * streamer holds the slot and takes over when it goes away.
 */
export type StreamerRole = 'idle' | 'connecting' | 'active' | 'standby' | 'stopped'

export interface StreamerOptions {
  /** PostgreSQL URL; the replication connection uses it with `replication=database`. */
  connectionString: string
  /** Pool for setup, the per-batch check and marks, and stats. */
  pool: PoolLike
  publisher: Publisher
  /** Outbox table (default `outbox_event`). */
  table?: string | undefined
  /** Replication slot (default `outbox_relay`). */
  slot?: string | undefined
  /** Publication (default: the slot's name). */
  publication?: string | undefined
  /** Events per publish and per mark statement (default 500). */
  batchSize?: number | undefined
  /** 'block-key' (default): a dead event holds back the later events of its key, as in the polling relay. */
  deadLetterPolicy?: DeadLetterPolicy | undefined
  /** Backoff of infrastructure failures (broker or database down), ms (default 200 → 10 000). */
  retry?: { baseMs: number; maxMs: number } | undefined
  /** How often a standby retries the slot, ms (default 1 000). */
  standbyRetryMs?: number | undefined
  /**
   * Standby status updates at least this often, ms (default 10 000, and at most a third of the
   * server's `wal_sender_timeout`, so a busy streamer is never taken for a dead one).
   */
  statusIntervalMs?: number | undefined
  /**
   * When fewer than `batchSize` events are waiting, wait this long for more before publishing
   * (default 0: at once). With many small transactions a few ms let one publish and one mark carry
   * many events instead of one each: less CPU per event, more latency.
   */
  lingerMs?: number | undefined
  /** Decoded events buffered before the socket is paused (default 20 000). */
  maxBufferedEvents?: number | undefined
  /**
   * The max slot lag: above it {@link StreamStats.lagAlert} is true, the health `degraded` and
   * `onHealthChange` is called (default 1 GiB).
   */
  lagAlertBytes?: number | undefined
  /** How often the slot's health is checked for `onHealthChange`, ms (default 10 000). */
  healthCheckMs?: number | undefined
  /** `pg_stat_activity.application_name` of the replication connection (default: the URL's). */
  applicationName?: string | undefined
  /** Recorded as `locked_by` of the rows this streamer published (default `stream:<slot>`). */
  streamId?: string | undefined
  onError?: ((error: unknown, where: 'publish' | 'database' | 'replication') => void) | undefined
  onRoleChange?: ((role: StreamerRole) => void) | undefined
  onBatch?: ((info: StreamBatchInfo) => void) | undefined
  /** Called when the health turns `degraded` (see {@link StreamStats.problems}) and when it is `ok` again. */
  onHealthChange?: ((stats: StreamStats) => void) | undefined
  /** A pino-compatible logger: role changes (info), failures (error), dead events (warn). */
  logger?: Logger | undefined
}

/** What one settled batch did. */
export interface StreamBatchInfo {
  published: number
  dead: number
  held: number
  /** Already finished (published, dead or deleted) when the batch was checked: not sent again. */
  skipped: number
  /** The slot position confirmed after it, if the batch closed a transaction. */
  confirmedLsn: string | undefined
}

/** Health of the stream relay, for `/stats` and `/metrics`. */
export interface StreamStats {
  role: StreamerRole
  slot: string
  publication: string
  /** The slot exists in this database. */
  slotExists: boolean
  /** Some connection streams from the slot (this process or another one). */
  slotActive: boolean
  slotActivePid: number | null
  /** `pg_current_wal_lsn() - confirmed_flush_lsn`: WAL the server keeps for this slot, bytes. */
  lagBytes: number | null
  lagAlertBytes: number
  /** `lagBytes > lagAlertBytes`, or the slot lost its WAL. */
  lagAlert: boolean
  /** `degraded` while {@link problems} is not empty. */
  health: 'ok' | 'degraded'
  /** What is wrong with the slot: lag above the limit, WAL at risk or lost, no slot. */
  problems: string[]
  /** `pg_replication_slots.wal_status`: reserved, extended, unreserved (at risk) or lost. */
  walStatus: string | null
  /** Bytes left before `max_slot_wal_keep_size` invalidates the slot; null when unlimited. */
  safeWalSizeBytes: number | null
  maxSlotWalKeepSize: string | null
  /** The slot position this process confirmed last. */
  confirmedLsn: string | null
  /** When Kafka last acknowledged a batch of this process. */
  lastAckAt: string | null
  /** When this process last handed a batch to the publisher. */
  lastPublishAt: string | null
  published: number
  dead: number
  held: number
  skipped: number
  /** Events decoded and not yet settled. */
  buffered: number
  lastError: string | null
}

export interface Streamer {
  /** Sets up the publication and slot if missing, then streams (or stands by) in the background. */
  start(): Promise<void>
  /** Finishes the batch in flight, confirms it, and closes the connection. */
  stop(): Promise<void>
  readonly role: StreamerRole
  stats(): Promise<StreamStats>
}

/** One decoded outbox row and the transaction it belongs to. */
interface StreamRow extends ClaimedRow {
  status: string
  /** The inserting transaction (xid8 as text). */
  txid: string
}

interface Transaction {
  rows: StreamRow[]
  endLsn: Lsn
}

const REQUIRED_COLUMNS = [
  'id',
  'aggregatetype',
  'aggregateid',
  'type',
  'topic',
  'payload',
  'headers',
  'attempts',
  'seq',
  'status',
  'txid',
] as const
type Column = (typeof REQUIRED_COLUMNS)[number]

class Stopping extends Error {}

/** The slot is streamed by another connection now: this streamer's session must end unpublished. */
class SlotLost extends Error {}

/**
 * A batch checked longer ago than this is checked again right before it is published, so a
 * process that was frozen (or starved) between its check and its publish finds out that it lost
 * the slot. Also at most a quarter of `wal_sender_timeout`, the shortest silence after which the
 * server ends a streamer's connection and a standby may take over.
 */
const CHECK_FRESH_MS = 1_000

/** Resolves after `ms`, or at once when `signal` aborts; leaves no listener behind either way. */
const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const onAbort = () => {
      clearTimeout(timer)
      resolve()
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    signal?.addEventListener('abort', onAbort, { once: true })
  })

/**
 * Sets up what the stream relay reads from: a publication of the table's INSERTs and a logical
 * slot with `pgoutput`. Both are created only when missing; concurrent calls are safe.
 */
export async function ensureStreamSetup(
  pool: PoolLike,
  options: { table?: string | undefined; slot?: string | undefined; publication?: string | undefined },
): Promise<void> {
  const slot = checkStreamName('slot', options.slot ?? DEFAULT_STREAM_SLOT)
  const publication = checkStreamName('publication', options.publication ?? slot)
  const table = options.table ?? DEFAULT_TABLE
  const wal = await pool.query('SHOW wal_level')
  const level = (wal.rows[0] as { wal_level?: string } | undefined)?.wal_level
  if (level !== 'logical')
    throw new Error(
      `the stream relay needs wal_level = logical, but the server has wal_level = ${level ?? 'unknown'}: set it in postgresql.conf and restart PostgreSQL`,
    )
  if ((await run(pool, findPublication(publication))).rows.length === 0) {
    await run(pool, createPublication({ publication, table })).catch((error: { code?: string }) => {
      if (error.code !== '42710') throw error // created meanwhile by another streamer
    })
  }
  const found = (await run(pool, findSlot(slot))).rows[0] as { plugin: string; slot_type: string } | undefined
  if (found && (found.slot_type !== 'logical' || found.plugin !== 'pgoutput'))
    throw new Error(
      `replication slot "${slot}" exists but is a ${found.slot_type} slot of plugin ${found.plugin}; the stream relay needs a logical pgoutput slot: choose another STREAM_SLOT`,
    )
  if (!found) {
    await run(pool, createSlot(slot)).catch((error: { code?: string }) => {
      if (error.code !== '42710') throw error
    })
  }
}

/**
 * Uninstall: drops the slot (so the server stops keeping WAL for it) and the publication.
 * Fails while a streamer is connected to the slot: stop the streamers first.
 */
export async function dropStreamSetup(
  pool: PoolLike,
  options: { slot?: string | undefined; publication?: string | undefined },
): Promise<{ slotDropped: boolean }> {
  const slot = checkStreamName('slot', options.slot ?? DEFAULT_STREAM_SLOT)
  const publication = checkStreamName('publication', options.publication ?? slot)
  let dropped: { rows: unknown[] }
  try {
    dropped = await run(pool, dropSlot(slot))
  } catch (error) {
    if (isSlotInUse(error))
      throw new Error(
        `replication slot "${slot}" is in use by a running streamer: stop every streamer first`,
        {
          cause: error,
        },
      )
    throw error
  }
  await run(pool, dropPublication(publication))
  return { slotDropped: dropped.rows.length > 0 }
}

/**
 * Creates a stream relay. One streamer per slot is active; others started on the same slot
 * stand by and take over when the active one's connection goes away.
 *
 * Guarantees: the slot's confirmed position moves past a transaction only after every event of
 * it was acknowledged by Kafka (or went dead) and the batch was marked in the table, so a crash
 * loses nothing; events are published in WAL commit order, one batch at a time, so per-key order
 * is commit order; events the broker refuses for good go `dead` one by one (the batch is bisected)
 * while the others are published; broker or database outages pause the stream and retry the
 * same batch, without advancing the slot and without counting attempts.
 *
 * @example
 * const streamer = createStreamer({ connectionString: url, pool, publisher })
 * await streamer.start()
 */
export function createStreamer(streamerOptions: StreamerOptions): Streamer {
  const slot = checkStreamName('slot', streamerOptions.slot ?? DEFAULT_STREAM_SLOT)
  const options = withStreamLogging(streamerOptions, slot)
  const publication = checkStreamName('publication', options.publication ?? slot)
  const table = options.table ?? DEFAULT_TABLE
  const batchSize = options.batchSize ?? 500
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new Error(`batchSize must be a positive integer, got ${batchSize}`)
  const blockOnDead = (options.deadLetterPolicy ?? 'block-key') === 'block-key'
  const retry = options.retry ?? { baseMs: 200, maxMs: 10_000 }
  const standbyRetryMs = options.standbyRetryMs ?? 1_000
  const statusIntervalMs = options.statusIntervalMs ?? 10_000
  const maxBuffered = options.maxBufferedEvents ?? 20_000
  const lingerMs = options.lingerMs ?? 0
  const lagAlertBytes = options.lagAlertBytes ?? 1024 ** 3
  const healthCheckMs = options.healthCheckMs ?? 10_000
  const streamId = options.streamId ?? `stream:${slot}`
  const { pool, publisher } = options

  let role: StreamerRole = 'idle'
  let controller = new AbortController()
  let loop: Promise<void> | undefined
  const counters = { published: 0, dead: 0, held: 0, skipped: 0 }
  let lastAckAt: Date | null = null
  let lastPublishAt: Date | null = null
  let health: { stop(): void } | undefined
  /** The session streaming now, and when the slot was last seen to be streamed by its connection. */
  let lease: { session: ReplicationSession; verifiedAt: number; freshMs: number } | undefined
  let lastError: string | null = null
  let confirmed: Lsn | null = null
  let buffered = 0

  const setRole = (next: StreamerRole) => {
    if (role === next) return
    role = next
    options.onRoleChange?.(next)
  }
  const report = (error: unknown, where: 'publish' | 'database' | 'replication') => {
    lastError = `${where}: ${coerceError(error, 500)}`
    options.onError?.(error, where)
  }

  /** Runs `fn` until it succeeds; infrastructure failures back off and retry, nothing is counted. */
  async function retrying<T>(where: 'publish' | 'database', fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn()
      } catch (error) {
        if (error instanceof SlotLost) throw error
        if (where === 'publish' && classifyPublishError(error) === 'permanent') throw error
        report(error, where)
        // A stop interrupts retries, never a first attempt: a batch Kafka acknowledged gets marked.
        if (controller.signal.aborted) throw new Stopping()
        await sleep(backoffDelay(attempt, retry), controller.signal)
        if (controller.signal.aborted) throw new Stopping()
      }
    }
  }

  const lost = (owner: number | null, pid: number) =>
    new SlotLost(
      `replication slot "${slot}" is streamed by ${owner === null ? 'no connection' : `another connection (pid ${owner})`} now, not by this streamer's (pid ${pid}): what it decoded stays unpublished`,
    )

  /**
   * Right before each publish: throws `SlotLost` unless this session still streams the slot. The
   * connection must be open, and the slot's owner is asked again when it was last seen longer
   * than `freshMs` ago (a process frozen, or starved, past `wal_sender_timeout` wakes up here).
   */
  async function fence(): Promise<void> {
    const current = lease
    if (!current || current.session.closed)
      throw new SlotLost(`the replication connection of slot "${slot}" ended: its batch stays unpublished`)
    if (performance.now() - current.verifiedAt <= current.freshMs) return
    const at = performance.now()
    const owner = (await retrying('database', () => run(pool, slotOwner(slot)))).rows[0]?.pid ?? null
    if (owner !== current.session.pid) throw lost(owner, current.session.pid)
    if (current.session.closed)
      throw new SlotLost(`the replication connection of slot "${slot}" ended: its batch stays unpublished`)
    current.verifiedAt = Math.max(current.verifiedAt, at)
  }

  const keyOf = (row: StreamRow) => `${row.topic}\u0000${row.aggregateid}`

  /** Publishes `rows` in order; bisects on permanent failures; records every row's outcome. */
  async function publishInOrder(
    rows: StreamRow[],
    outcomes: SettledRow[],
    blocked: Set<string>,
  ): Promise<void> {
    const sendable: StreamRow[] = []
    for (const row of rows) {
      if (blockOnDead && blocked.has(keyOf(row)))
        outcomes.push({ id: row.id, outcome: 'held', error: heldReason(row) })
      else sendable.push(row)
    }
    if (sendable.length === 0) return
    try {
      await retrying('publish', async () => {
        await fence()
        lastPublishAt = new Date()
        return publisher.publish(sendable.map(toMessage))
      })
      for (const row of sendable) outcomes.push({ id: row.id, outcome: 'published' })
    } catch (error) {
      if (error instanceof Stopping || error instanceof SlotLost) throw error
      const only = sendable.length === 1 ? sendable[0] : undefined
      if (only) {
        outcomes.push({ id: only.id, outcome: 'dead', error: coerceError(error) })
        blocked.add(keyOf(only))
        report(error, 'publish')
        return
      }
      const half = Math.ceil(sendable.length / 2)
      await publishInOrder(sendable.slice(0, half), outcomes, blocked)
      await publishInOrder(sendable.slice(half), outcomes, blocked)
    }
  }

  const heldReason = (row: StreamRow) =>
    `held back by the stream relay: an earlier event of topic "${row.topic}" key "${row.aggregateid}" is dead or waiting (dead-letter policy block-key); publish them with outbox-relay drain after retrying the dead event`

  interface PublishedChunk {
    outcomes: SettledRow[]
    skipped: number
  }

  /**
   * The check query of one chunk, repeated until every row's transaction is visible (a decoded
   * commit can precede its visibility by a moment). Rejects with `SlotLost` when the slot is no
   * longer streamed by this session's server process, else only with `Stopping`.
   */
  async function inspectChunk(rows: StreamRow[]): Promise<InspectedRow[]> {
    if (rows.length === 0) return []
    const statement = inspectStreamBatch({
      table,
      blockOnDead,
      slot,
      rows: rows.map((r) => ({ id: r.id, topic: r.topic, key: r.aggregateid, seq: r.seq, txid: r.txid })),
    })
    for (let wait = 1; ; wait = Math.min(wait * 2, 50)) {
      const at = performance.now()
      const checked = (await retrying('database', () => run(pool, statement))).rows as InspectedRow[]
      const current = lease
      const owner = checked[0]?.slot_pid ?? null
      if (!current || owner !== current.session.pid) throw lost(owner, current?.session.pid ?? 0)
      current.verifiedAt = Math.max(current.verifiedAt, at)
      if (checked.every((r) => r.visible)) return checked
      await sleep(wait)
    }
  }

  /**
   * Publishes the rows of a checked chunk that are still pending. `blocked` holds the keys this
   * session saw go dead or held: their later events are held without waiting for marks to commit
   * (or for a check that ran before them).
   */
  async function publishChunk(
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
    await publishInOrder(toSend, outcomes, blocked)
    return { outcomes, skipped }
  }

  type Counts = Omit<StreamBatchInfo, 'confirmedLsn'>

  interface Chunk {
    rows: StreamRow[]
    /** Shared by the chunks of one batch. */
    total: Counts
    /** On the last chunk of a batch: confirms the batch's end. */
    finish: (() => void) | undefined
    checked?: Promise<InspectedRow[]>
  }

  /** Marks a published chunk (one statement) and adds its outcomes to `total` and the counters. */
  async function settleChunk(chunk: PublishedChunk, total: Counts): Promise<void> {
    const { outcomes } = chunk
    if (outcomes.length > 0)
      await retrying('database', () => run(pool, settleStreamBatch({ table, streamId, rows: outcomes })))
    for (const o of outcomes) {
      counters[o.outcome]++
      total[o.outcome]++
    }
    counters.skipped += chunk.skipped
    total.skipped += chunk.skipped
    if (outcomes.some((o) => o.outcome === 'published')) lastAckAt = new Date()
  }

  /** One replication connection, from START_REPLICATION until it ends or `stop()`. */
  async function session(): Promise<void> {
    const queue: Transaction[] = []
    let open: Transaction | undefined
    const columns = new Map<number, Map<Column, number>>()
    /** Batches taken from the queue and not yet marked and confirmed. */
    let unsettled = 0
    let settling: Promise<void> = Promise.resolve()
    const blocked = new Set<string>()
    let paused = false
    /** Chunks of at most batchSize rows taken from the queue, in order; the last of a batch confirms it. */
    const chunks: Chunk[] = []
    /** Takes whole transactions, up to batchSize events (a bigger transaction goes alone, in chunks). */
    const refill = () => {
      while (chunks.length < 2 && queue.length > 0) {
        const batch: Transaction[] = []
        let size = 0
        while (
          queue.length > 0 &&
          (batch.length === 0 || size + (queue[0] as Transaction).rows.length <= batchSize)
        ) {
          const next = queue.shift() as Transaction
          batch.push(next)
          size += next.rows.length
        }
        unsettled++
        const rows = batch.flatMap((t) => t.rows)
        const endLsn = (batch.at(-1) as Transaction).endLsn
        const total: Counts = { published: 0, dead: 0, held: 0, skipped: 0 }
        const finish = () => {
          if (confirmed === null || endLsn > confirmed) confirmed = endLsn
          unsettled--
          buffered -= size
          if (paused && buffered <= maxBuffered / 2) {
            paused = false
            replication?.resume()
          }
          if (confirmed !== null) replication?.sendStatus(confirmed)
          options.onBatch?.({ ...total, confirmedLsn: formatLsn(endLsn) })
        }
        for (let i = 0; i === 0 || i < rows.length; i += batchSize)
          chunks.push({
            rows: rows.slice(i, i + batchSize),
            total,
            finish: i + batchSize >= rows.length ? finish : undefined,
          })
      }
    }
    /** Events waiting in the queue, counted up to batchSize. */
    const queuedEvents = () => {
      let n = 0
      for (const t of queue) {
        n += t.rows.length
        if (n >= batchSize) break
      }
      return n
    }
    let wake: (() => void) | undefined
    const notify = () => {
      wake?.()
      wake = undefined
    }
    let replication: ReplicationSession | undefined

    const onFrame = (frame: WalFrame) => {
      if (frame.kind === 'keepalive') {
        // Everything the server sent so far is settled: the slot may move up to its position
        // (WAL of other tables, or empty transactions, would otherwise pile up behind it).
        if (
          !open &&
          queue.length === 0 &&
          unsettled === 0 &&
          (confirmed === null || frame.walEnd > confirmed)
        )
          confirmed = frame.walEnd
        if (frame.replyRequested && confirmed !== null) replication?.sendStatus(confirmed)
        return
      }
      const message = decodePgOutput(frame.body)
      if (message.tag === 'begin') open = { rows: [], endLsn: 0n }
      else if (message.tag === 'relation') {
        const indexes = new Map<Column, number>()
        for (const name of REQUIRED_COLUMNS) {
          const index = message.columns.findIndex((c) => c.name === name)
          if (index < 0)
            throw new Error(
              `table ${message.schema}.${message.name} has no column "${name}": is it an outbox table?`,
            )
          indexes.set(name, index)
        }
        columns.set(message.relationId, indexes)
      } else if (message.tag === 'insert') {
        const indexes = columns.get(message.relationId)
        if (!indexes || !open) throw new Error(`insert of unknown relation ${message.relationId}`)
        const value = (name: Column) => message.values[indexes.get(name) as number] ?? null
        const headers = value('headers')
        open.rows.push({
          id: value('id') as string,
          aggregatetype: value('aggregatetype') as string,
          aggregateid: value('aggregateid') as string,
          type: value('type') as string,
          topic: value('topic') as string,
          payload: value('payload') as string,
          headers: headers === null ? null : (JSON.parse(headers) as Record<string, unknown>),
          attempts: Number(value('attempts') ?? 0),
          seq: value('seq') as string,
          status: value('status') as string,
          txid: value('txid') as string,
        })
      } else if (message.tag === 'commit') {
        if (!open) return
        open.endLsn = message.endLsn
        open.rows = open.rows.filter((r) => r.status === 'pending')
        queue.push(open)
        buffered += open.rows.length
        open = undefined
        if (buffered > maxBuffered && !paused) {
          paused = true
          replication?.pause()
        }
        notify()
      }
    }

    if (role !== 'standby') setRole('connecting')
    // The server ends a connection silent for wal_sender_timeout: report well within it, and
    // ask again whether the slot is still ours well within it too (see fence()).
    const timeoutMs = (await run(pool, walSenderTimeout())).rows[0]?.ms ?? 0
    replication = await startReplication({
      connectionString: options.connectionString,
      slot,
      publication,
      applicationName: options.applicationName,
      onFrame,
    })
    const current = replication
    lease = {
      session: current,
      verifiedAt: performance.now(),
      freshMs: timeoutMs > 0 ? Math.min(CHECK_FRESH_MS, timeoutMs / 4) : CHECK_FRESH_MS,
    }
    setRole('active')
    const timer = setInterval(
      () => {
        if (confirmed !== null) current.sendStatus(confirmed)
      },
      timeoutMs > 0 ? Math.min(statusIntervalMs, timeoutMs / 3) : statusIntervalMs,
    )
    timer.unref()
    let onStop = () => {}
    const stopped = new Promise<void>((resolve) => {
      onStop = resolve
      controller.signal.addEventListener('abort', onStop, { once: true })
    })
    let ended = false
    const endedWith = current.ended.then((error) => {
      ended = true
      notify()
      return error
    })
    try {
      while (!ended && !controller.signal.aborted) {
        if (chunks.length === 0 && queue.length > 0 && lingerMs > 0 && queuedEvents() < batchSize)
          await Promise.race([sleep(lingerMs), stopped, endedWith])
        refill()
        if (chunks.length === 0) {
          await Promise.race([new Promise<void>((resolve) => (wake = resolve)), stopped, endedWith])
          continue
        }
        const chunk = chunks.shift() as Chunk
        // Pipelined, three deep: the next chunk is checked while this one is published and the
        // previous one is marked. Publishes stay sequential, so Kafka order is WAL order; the slot
        // moves past a transaction only once every chunk up to its end is marked.
        chunk.checked ??= inspectChunk(chunk.rows)
        refill()
        const next = chunks[0]
        if (next && !next.checked) {
          next.checked = inspectChunk(next.rows)
          next.checked.catch(() => {})
        }
        const published = await publishChunk(chunk.rows, await chunk.checked, blocked)
        await settling
        settling = settleChunk(published, chunk.total).then(() => chunk.finish?.())
        settling.catch(() => {})
      }
      const error = ended ? await endedWith : undefined
      if (error) throw error
    } catch (error) {
      if (error instanceof Stopping) return
      // A connection that ended is reported as itself (a restart is not a takeover).
      if (error instanceof SlotLost && current.closed) throw (await endedWith) ?? error
      throw error
    } finally {
      await settling.catch(() => {})
      clearInterval(timer)
      // Events decoded but not settled are sent again by the server from the confirmed position.
      buffered = 0
      lease = undefined
      controller.signal.removeEventListener('abort', onStop)
      if (confirmed !== null) current.sendStatus(confirmed)
      await current.close()
    }
  }

  async function runLoop(): Promise<void> {
    let failures = 0
    while (!controller.signal.aborted) {
      try {
        await session()
        failures = 0
      } catch (error) {
        if (controller.signal.aborted) break
        if (isSlotInUse(error)) {
          setRole('standby')
          await sleep(standbyRetryMs, controller.signal)
          continue
        }
        if (error instanceof SlotLost) {
          // Frozen or cut off past wal_sender_timeout: another streamer owns the slot now.
          report(error, 'replication')
          setRole('standby')
          await sleep(standbyRetryMs, controller.signal)
          continue
        }
        failures++
        setRole('connecting')
        report(error, 'replication')
        await sleep(backoffDelay(failures, retry), controller.signal)
      }
    }
    setRole('stopped')
  }

  const api: Streamer = {
    get role() {
      return role
    },
    async start() {
      if (loop) throw new Error('the streamer is already started')
      controller = new AbortController()
      await ensureStreamSetup(pool, { table, slot, publication })
      loop = runLoop()
      const { onHealthChange } = options
      if (onHealthChange) health = watchHealth(() => api.stats(), healthCheckMs, onHealthChange)
    },
    async stop() {
      health?.stop()
      health = undefined
      controller.abort()
      await loop
      loop = undefined
    },
    async stats() {
      const row = (await run(pool, slotStats(slot))).rows[0] as SlotStatsRow | undefined
      const lagBytes = row?.lag_bytes == null ? null : Number(row.lag_bytes)
      const walStatus = row?.wal_status ?? null
      const problems = slotProblems({
        slot,
        slotExists: row !== undefined,
        lagBytes,
        lagAlertBytes,
        walStatus,
      })
      return {
        role,
        slot,
        publication,
        slotExists: row !== undefined,
        slotActive: row?.active ?? false,
        slotActivePid: row?.active_pid ?? null,
        lagBytes,
        lagAlertBytes,
        lagAlert: (lagBytes !== null && lagBytes > lagAlertBytes) || walStatus === 'lost',
        health: problems.length === 0 ? 'ok' : 'degraded',
        problems,
        walStatus,
        safeWalSizeBytes: row?.safe_wal_size == null ? null : Number(row.safe_wal_size),
        maxSlotWalKeepSize: row?.max_slot_wal_keep_size ?? null,
        confirmedLsn: confirmed === null ? null : formatLsn(confirmed),
        lastAckAt: lastAckAt?.toISOString() ?? null,
        lastPublishAt: lastPublishAt?.toISOString() ?? null,
        ...counters,
        buffered,
        lastError,
      }
    },
  }
  return api
}

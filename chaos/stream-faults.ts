/**
 * Faults of the stream profile (`--relay stream`): the active streamer frozen (SIGSTOP) past
 * `wal_sender_timeout`, and its walsender terminated on the server side. Each returns what it
 * measured; run.ts puts them on the timeline, into the report and into the verdict.
 */
import type pg from 'pg'
import { type RelayFleet, STREAM_SLOT } from './relays.ts'
import { log, sleep } from './util.ts'

const RELAY_APP = /^outbox-relay (chaos-r\d+-\d+)$/

/** The relay streaming the slot now and its walsender, if any. */
async function activeStreamer(pool: pg.Pool): Promise<{ relayId: string; pid: number } | undefined> {
  const { rows } = await pool
    .query<{ app: string; pid: number }>(
      `SELECT a.application_name AS app, s.active_pid AS pid FROM pg_replication_slots AS s
       JOIN pg_stat_activity AS a ON a.pid = s.active_pid WHERE s.slot_name = $1`,
      [STREAM_SLOT],
    )
    .catch(() => ({ rows: [] as Array<{ app: string; pid: number }> }))
  const row = rows[0]
  const relayId = row ? RELAY_APP.exec(row.app)?.[1] : undefined
  return row && relayId ? { relayId, pid: row.pid } : undefined
}

/** Polls `check` every 50 ms until it returns a value, for at most `forMs`; null when it never did. */
async function until<T>(check: () => Promise<T | undefined>, forMs: number): Promise<T | null> {
  const deadline = Date.now() + forMs
  while (Date.now() < deadline) {
    const value = await check()
    if (value !== undefined) return value
    await sleep(50)
  }
  return null
}

export interface StreamFreeze {
  relayId: string
  frozenMs: number
  /** From SIGSTOP until another streamer held the slot; null: no takeover while frozen. */
  takeoverMs: number | null
  /** From SIGCONT until the woken streamer reported `standby`; null: it never did (within 30 s). */
  standbyMs: number | null
  /** The woken streamer handed a batch to Kafka after SIGCONT (it must not: the slot is not its own). */
  publishedAfterWake: boolean
  /** Its `lastPublishAt` from /stats, for the report. */
  lastPublishAt: string | null
}

interface StreamerStats {
  role: string
  lastPublishAt: string | null
}

/**
 * Freezes the active streamer for `frozenMs` (longer than the private server's wal_sender_timeout),
 * measures how long until a standby holds the slot, lets it go, and checks through its /stats that
 * it went back to standby without publishing anything after it woke up.
 */
export async function freezeActiveStreamer(
  pool: pg.Pool,
  fleet: RelayFleet,
  frozenMs: number,
): Promise<StreamFreeze | null> {
  const active = await until(async () => {
    const found = await activeStreamer(pool)
    return found && fleet.processOf(found.relayId) && fleet.statsUrlOf(found.relayId) ? found : undefined
  }, 30_000)
  const child = active ? fleet.processOf(active.relayId) : undefined
  const statsUrl = active ? fleet.statsUrlOf(active.relayId) : undefined
  if (!active || !child || !statsUrl) {
    log('FAULT frozen streamer: no active streamer with a stats endpoint within 30 s; skipped')
    return null
  }
  child.kill('SIGSTOP')
  const t0 = performance.now()
  const takeover = await until(async () => {
    const now = await activeStreamer(pool)
    return now && now.relayId !== active.relayId ? performance.now() - t0 : undefined
  }, frozenMs)
  await sleep(Math.max(0, frozenMs - (performance.now() - t0)))
  const wokeAt = Date.now()
  child.kill('SIGCONT')
  const t1 = performance.now()
  const read = () =>
    fetch(`${statsUrl}/stats`, { signal: AbortSignal.timeout(2_000) }).then(
      (r) => r.json() as Promise<StreamerStats>,
    )
  const standby = await until(async () => {
    const stats = await read().catch(() => undefined)
    return stats?.role === 'standby' ? stats : undefined
  }, 30_000)
  const last = standby ?? (await read().catch(() => null))
  return {
    relayId: active.relayId,
    frozenMs,
    takeoverMs: takeover,
    standbyMs: standby ? performance.now() - t1 : null,
    publishedAfterWake: last?.lastPublishAt != null && Date.parse(last.lastPublishAt) >= wokeAt,
    lastPublishAt: last?.lastPublishAt ?? null,
  }
}

export interface WalSenderTerminated {
  relayId: string
  /** From pg_terminate_backend on the walsender until a streamer held the slot again; null: never (60 s). */
  resumeMs: number | null
  /** Who streams afterwards (the same relay reconnecting, or a standby). */
  nextRelayId: string | null
}

/** Terminates the active streamer's walsender (the server ends the replication connection). */
export async function terminateWalSender(pool: pg.Pool): Promise<WalSenderTerminated | null> {
  const active = await until(() => activeStreamer(pool), 30_000)
  if (!active) {
    log('FAULT walsender terminated: no active streamer within 30 s; skipped')
    return null
  }
  await pool.query('SELECT pg_terminate_backend($1)', [active.pid])
  const t0 = performance.now()
  const next = await until(async () => {
    const now = await activeStreamer(pool)
    return now && now.pid !== active.pid ? now : undefined
  }, 60_000)
  return {
    relayId: active.relayId,
    resumeMs: next ? performance.now() - t0 : null,
    nextRelayId: next?.relayId ?? null,
  }
}

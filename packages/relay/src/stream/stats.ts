/**
 * A streamer's {@link StreamStats}: the slot as the server sees it, and this process's counters.
 * @module
 */
import { run } from '../core/db.js'
import type { StreamerContext } from './context.js'
import { slotProblems } from './health.js'
import { formatLsn } from './pgoutput.js'
import { type SlotStatsRow, slotStats } from './sql.js'
import type { StreamStats } from './streamer.js'

/** Reads the slot's row and combines it with what this streamer knows. */
export async function readStreamStats(ctx: StreamerContext): Promise<StreamStats> {
  const { slot, publication, lagAlertBytes, pool } = ctx.settings
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
    role: ctx.role,
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
    confirmedLsn: ctx.confirmed === null ? null : formatLsn(ctx.confirmed),
    lastAckAt: ctx.lastAckAt?.toISOString() ?? null,
    lastPublishAt: ctx.lastPublishAt?.toISOString() ?? null,
    ...ctx.counters,
    buffered: ctx.buffered,
    lastError: ctx.lastError,
  }
}

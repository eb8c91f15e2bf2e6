/**
 * Fencing: a streamer publishes only while its own connection streams the slot, so a process
 * frozen past `wal_sender_timeout` (a standby took over meanwhile) publishes nothing stale.
 * @module
 */
import { run } from '../core/db.js'
import type { StreamerContext } from './context.js'
import { retrying, SlotLost } from './control.js'
import { slotOwner } from './sql.js'

/**
 * A batch checked longer ago than this is checked again right before it is published, so a
 * process that was frozen (or starved) between its check and its publish finds out that it lost
 * the slot. Also at most a quarter of `wal_sender_timeout`, the shortest silence after which the
 * server ends a streamer's connection and a standby may take over.
 */
export const CHECK_FRESH_MS = 1_000

/** The error for a slot found streamed by `owner` instead of this session's server process `pid`. */
export const lost = (slot: string, owner: number | null, pid: number) =>
  new SlotLost(
    `replication slot "${slot}" is streamed by ${owner === null ? 'no connection' : `another connection (pid ${owner})`} now, not by this streamer's (pid ${pid}): what it decoded stays unpublished`,
  )

const ended = (slot: string) =>
  new SlotLost(`the replication connection of slot "${slot}" ended: its batch stays unpublished`)

/**
 * Right before each publish: throws `SlotLost` unless this session still streams the slot. The
 * connection must be open, and the slot's owner is asked again when it was last seen longer
 * than `freshMs` ago (a process frozen, or starved, past `wal_sender_timeout` wakes up here).
 */
export async function fence(ctx: StreamerContext): Promise<void> {
  const { slot, pool } = ctx.settings
  const current = ctx.lease
  if (!current || current.session.closed) throw ended(slot)
  if (performance.now() - current.verifiedAt <= current.freshMs) return
  const at = performance.now()
  const owner = (await retrying(ctx, 'database', () => run(pool, slotOwner(slot)))).rows[0]?.pid ?? null
  if (owner !== current.session.pid) throw lost(slot, owner, current.session.pid)
  if (current.session.closed) throw ended(slot)
  current.verifiedAt = Math.max(current.verifiedAt, at)
}

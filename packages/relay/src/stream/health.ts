/**
 * The stream relay's health: what about its slot a DBA must hear of (lag above the limit, WAL at
 * risk or lost, slot gone), and a watchdog that reports each change between ok and degraded.
 * @module
 */

/** The slot facts the health is judged from (a subset of `StreamStats`). */
export interface SlotFacts {
  slot: string
  slotExists: boolean
  lagBytes: number | null
  lagAlertBytes: number
  walStatus: string | null
}

/**
 * What is wrong with the slot, one sentence each; empty when healthy. A lag above the limit, WAL
 * the server may drop (`unreserved`) or has dropped (`lost`), or no slot at all.
 */
export function slotProblems(facts: SlotFacts): string[] {
  if (!facts.slotExists)
    return [`replication slot "${facts.slot}" does not exist: start a streamer to create it`]
  const problems: string[] = []
  if (facts.lagBytes !== null && facts.lagBytes > facts.lagAlertBytes)
    problems.push(
      `slot lag ${facts.lagBytes} bytes is above the limit of ${facts.lagAlertBytes} bytes: the server keeps that much WAL for the slot`,
    )
  if (facts.walStatus === 'unreserved')
    problems.push(
      'the slot is past max_slot_wal_keep_size (wal_status unreserved): the server may drop WAL it still needs',
    )
  if (facts.walStatus === 'lost')
    problems.push(
      'the slot lost WAL it needed (wal_status lost): drop it and create it again, then publish the rows written meanwhile with outbox-relay drain',
    )
  return problems
}

/**
 * Checks the health every `everyMs` and calls `onChange` when it turns degraded or ok again (not
 * on the first check when it is ok). A failing check (database down) is skipped: the streamer
 * reports that failure itself.
 */
export function watchHealth<S extends { health: 'ok' | 'degraded' }>(
  check: () => Promise<S>,
  everyMs: number,
  onChange: (stats: S) => void,
): { stop(): void } {
  let last: 'ok' | 'degraded' = 'ok'
  let running = false
  let stopped = false
  const timer = setInterval(() => {
    if (running) return
    running = true
    check()
      .then((stats) => {
        if (!stopped && stats.health !== last) {
          last = stats.health
          onChange(stats)
        }
      })
      .catch(() => {})
      .finally(() => {
        running = false
      })
  }, everyMs)
  timer.unref()
  return {
    stop() {
      stopped = true
      clearInterval(timer)
    },
  }
}

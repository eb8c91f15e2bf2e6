/**
 * What the rows of a settled batch come to: which to mark published, failed (retry or dead),
 * deferred or released. Pure; the engine runs the marks.
 * @module
 */

import { backoffDelay } from './backoff.js'
import { coerceError } from './errors.js'
import type { SettleResult } from './settle.js'
import type { ClaimedRow } from './sql/claim-batch.js'
import type { FailedRow } from './sql/mark-failed.js'

/** A settled batch, sorted by what each row needs next. */
export interface BatchOutcome {
  publishedIds: string[]
  /** Rows whose send failed because of the event: an attempt more, retried later or dead. */
  failed: FailedRow[]
  /** Rows not sent (behind a failed row of their key, or the drain stopped): released. */
  heldIds: string[]
  /** Rows whose send failed because of the broker or the network: retried later, no attempt. */
  deferredIds: string[]
  /** Rows whose send timed out: they keep their lease. */
  unsettled: number
  /** Rows of `failed` that went dead. */
  dead: number
  /** The first publish error of the batch. */
  firstError: unknown
}

/**
 * Sorts the rows of a batch by their outcome in `settled`; a failed row goes dead when the
 * failure is permanent or it used up `maxAttempts`, else it waits the backoff of its attempt.
 *
 * @example
 * const outcome = sortOutcomes(rows, settled, { maxAttempts: 10, backoff: { baseMs: 1000, maxMs: 300_000 } })
 */
export function sortOutcomes(
  rows: ClaimedRow[],
  settled: Pick<SettleResult, 'outcomes'>,
  retry: { maxAttempts: number; backoff: { baseMs: number; maxMs: number } },
  random: () => number = Math.random,
): BatchOutcome {
  const out: BatchOutcome = {
    publishedIds: [],
    failed: [],
    heldIds: [],
    deferredIds: [],
    unsettled: 0,
    dead: 0,
    firstError: undefined,
  }
  for (const row of rows) {
    const outcome = settled.outcomes.get(row.id) ?? { kind: 'held' as const }
    if (outcome.kind === 'published') out.publishedIds.push(row.id)
    else if (outcome.kind === 'held') out.heldIds.push(row.id)
    else {
      out.firstError ??= outcome.error
      if (outcome.kind === 'deferred') out.deferredIds.push(row.id)
      else if (outcome.kind === 'unsettled') out.unsettled++
      else {
        const attempts = row.attempts + 1
        const isDead = outcome.permanent || attempts >= retry.maxAttempts
        if (isDead) out.dead++
        const error = coerceError(outcome.error)
        out.failed.push({
          id: row.id,
          status: isDead ? 'dead' : 'pending',
          delayMs: isDead ? 0 : backoffDelay(attempts, retry.backoff, random),
          error: isDead && !outcome.permanent ? `gave up after ${attempts} attempts: ${error}` : error,
        })
      }
    }
  }
  return out
}

/**
 * What the engine reports: one drain's result, one batch, the hooks that receive them, and the
 * counters behind `/metrics`.
 * @module
 */

/** What one drain did; also the body of `POST /drain`. */
export interface DrainResult {
  /** Rows published and marked by this relay. */
  published: number
  /** Rows whose publish failed and that will be retried after a backoff. */
  retried: number
  /** Rows that went dead in this drain (permanent error or `maxAttempts`). */
  dead: number
  /** Pending rows still due (for the drain's topics) when it stopped. */
  remaining: number
  durationMs: number
}

/** One batch, as reported to {@link EngineHooks.onBatch}. */
export interface BatchInfo {
  relayId: string
  /** Rows claimed. */
  size: number
  claimMs: number
  publishMs: number
  markMs: number
  /** `publish` calls made (more than 1 when a permanent failure was bisected). */
  sends: number
  /** Rows published AND marked by us (see `lostLeases`). */
  published: number
  retried: number
  dead: number
  /** Rows released unsent behind a failed earlier row of their key, or when the drain stopped. */
  held: number
  /** Rows whose send failed because of the broker or the network: retried later, no attempt. */
  deferred: number
  /** Rows whose send timed out: they keep their lease until it expires, no attempt. */
  unsettled: number
  /** Published rows we could not mark because our lease had been taken over. */
  lostLeases: number
  /** The most failed attempts any claimed row had before this batch (0: every row's first try). */
  maxAttempts: number
  outcome: 'published' | 'partial' | 'failed'
  /** The first publish error of the batch, coerced to text. */
  error?: string
}

/** Callbacks for observability. They must not throw (errors are swallowed). */
export interface EngineHooks {
  onBatch?(info: BatchInfo): void
  onDrain?(result: DrainResult): void
  /**
   * Runs each batch attempt (claim, publish, mark; `onBatch` included) inside `run`, e.g. in a
   * tracing context. Must call `run` once and settle as it does: its errors are not swallowed.
   */
  wrapBatch?<T>(run: () => Promise<T>): Promise<T>
}

/** Cumulative counters since the engine was created (for `/metrics`). */
export interface EngineCounters {
  drains: number
  batches: number
  published: number
  retried: number
  dead: number
  held: number
  deferred: number
  unsettled: number
  lostLeases: number
  publishFailures: number
  /** Times the relay paused after a broker/network failure. */
  pauses: number
  claimMsTotal: number
  publishMsTotal: number
  lastBatchAt: Date | null
}

/** Counters of an engine that has done nothing yet. @internal */
export function newCounters(): EngineCounters {
  return {
    drains: 0,
    batches: 0,
    published: 0,
    retried: 0,
    dead: 0,
    held: 0,
    deferred: 0,
    unsettled: 0,
    lostLeases: 0,
    publishFailures: 0,
    pauses: 0,
    claimMsTotal: 0,
    publishMsTotal: 0,
    lastBatchAt: null,
  }
}

/** Adds a finished batch to the counters. @internal */
export function countBatch(counters: EngineCounters, info: BatchInfo, publishFailed: boolean): void {
  counters.batches++
  counters.published += info.published
  counters.retried += info.retried
  counters.dead += info.dead
  counters.held += info.held
  counters.deferred += info.deferred
  counters.unsettled += info.unsettled
  counters.lostLeases += info.lostLeases
  if (publishFailed) counters.publishFailures++
  counters.claimMsTotal += info.claimMs
  counters.publishMsTotal += info.publishMs
  counters.lastBatchAt = new Date()
}

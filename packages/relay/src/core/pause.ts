/**
 * The relay-wide pause after a broker or network failure: drains return at once until it ends.
 * @module
 */
import { backoffDelay } from './backoff.js'

/** A pause that doubles with each failure in a row (see `pause` in the engine options). @internal */
export class RelayPause {
  /** `performance.now()` time the pause ends. */
  private until = 0
  /** Failures in a row, capped. */
  private streak = 0

  constructor(
    private readonly bounds: { baseMs: number; maxMs: number },
    private readonly random: () => number,
  ) {}

  /** Starts (or lengthens) the pause after a failure; returns its delay in ms. */
  start(): number {
    const delay = backoffDelay(this.streak + 1, this.bounds, this.random)
    this.streak = Math.min(this.streak + 1, 30)
    this.until = Math.max(this.until, performance.now() + delay)
    return delay
  }

  /** A publish went through: the next failure pauses for the base delay again. */
  reset(): void {
    this.streak = 0
  }

  /** Whether the pause still runs at `now` (a `performance.now()` time). */
  isActive(now: number): boolean {
    return now < this.until
  }
}

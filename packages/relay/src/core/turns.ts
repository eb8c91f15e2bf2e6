/**
 * One claim of an engine at a time, in the order asked, each waiting at most its own deadline.
 * @module
 */

/**
 * Claims of one engine wait their turn in process: claims of one process running at once would
 * only find each other's rows locked (claims of different relays run in parallel), and a drain
 * queued here holds no pooled connection (which marks and counts of other drains need) and can
 * give up at its deadline.
 * @internal
 */
export class TurnQueue {
  /** The end of the queue. */
  private tail: Promise<void> = Promise.resolve()

  /**
   * Waits for the turns asked for before this one to end. Resolves to the function that ends
   * this turn, or undefined when it did not come within `waitMs` (its place is then given up).
   */
  async take(waitMs: number): Promise<(() => void) | undefined> {
    const previous = this.tail
    let release!: () => void
    const mine = new Promise<void>((resolve) => {
      release = resolve
    })
    this.tail = previous.then(() => mine)
    let timer: ReturnType<typeof setTimeout> | undefined
    const turn = await Promise.race([
      previous.then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), Math.max(0, waitMs))
      }),
    ])
    clearTimeout(timer)
    if (turn) return release
    release()
    return undefined
  }
}

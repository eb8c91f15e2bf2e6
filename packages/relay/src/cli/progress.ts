/**
 * Progress of long drains on a terminal: one line on stderr, rewritten in place, only when
 * stderr is a TTY (never in cron logs or pipes).
 * @module
 */
import type { EngineHooks } from '../core/engine.js'

/** A stream the progress line goes to. */
export interface ProgressStream {
  write(text: string): unknown
  isTTY?: boolean | undefined
}

/**
 * Returns engine hooks that draw `draining: N published, N retried, N dead` after each batch, at
 * most every `intervalMs`, and `done()` to end the line. A no-op when the stream is not a TTY.
 *
 * @example
 * const progress = drainProgress(process.stderr)
 * createEngine({ pool, publisher, hooks: progress.hooks })
 */
export function drainProgress(
  stream: ProgressStream,
  intervalMs = 200,
): { hooks: EngineHooks; done(): void } {
  if (!stream.isTTY) return { hooks: {}, done() {} }
  const totals = { published: 0, retried: 0, dead: 0, batches: 0 }
  let last = 0
  let drawn = false
  const draw = () => {
    stream.write(
      `\r\x1b[2Kdraining: ${totals.published} published, ${totals.retried} retried, ${totals.dead} dead (${totals.batches} batches)`,
    )
    drawn = true
  }
  return {
    hooks: {
      onBatch(info) {
        totals.published += info.published
        totals.retried += info.retried
        totals.dead += info.dead
        totals.batches++
        const now = Date.now()
        if (now - last >= intervalMs) {
          last = now
          draw()
        }
      },
    },
    done() {
      if (totals.batches > 0) draw()
      if (drawn) stream.write('\n')
    },
  }
}

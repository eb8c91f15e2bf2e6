import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'

export const ROOT = fileURLToPath(new URL('..', import.meta.url))

const started = performance.now()

/** Seconds since the run started. */
export const elapsed = () => (performance.now() - started) / 1000

/** A progress line on stderr, prefixed with the seconds since the run started. */
export function log(message: string): void {
  process.stderr.write(`[${elapsed().toFixed(1).padStart(6)}s] ${message}\n`)
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** `fn` until it resolves, every `everyMs`, for at most `forMs`. */
export async function retry<T>(fn: () => Promise<T>, forMs: number, everyMs = 250): Promise<T> {
  const deadline = Date.now() + forMs
  for (;;) {
    try {
      return await fn()
    } catch (error) {
      if (Date.now() > deadline) throw error
      await sleep(everyMs)
    }
  }
}

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createReporter } from '../src/demo.js'

beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(() => {
  vi.useRealTimers()
})

describe('createReporter', () => {
  it('prints a problem once its grace period has passed', () => {
    const printed: string[] = []
    const reporter = createReporter(1_000, (m) => printed.push(m))
    reporter.report('connection lost')
    expect(printed).toEqual([])
    vi.advanceTimersByTime(1_000)
    expect(printed).toEqual(['connection lost'])
  })

  it('drops problems reported just before or after a shutdown began', () => {
    const printed: string[] = []
    const reporter = createReporter(1_000, (m) => printed.push(m))
    reporter.report('connection lost') // Ctrl-C reached PostgreSQL first
    reporter.stopping()
    reporter.report('drain failed')
    vi.advanceTimersByTime(5_000)
    expect(printed).toEqual([])
  })
})

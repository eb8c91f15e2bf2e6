import { describe, expect, it } from 'vitest'
import { backoffDelay } from './backoff.js'

const opts = { baseMs: 1_000, maxMs: 10_000 }

describe('backoffDelay', () => {
  it('Should stay within [base, min(max, base * 2^(attempt-1))]', () => {
    expect(backoffDelay(1, opts, () => 0.99)).toBe(1_000)
    expect(backoffDelay(3, opts, () => 0)).toBe(1_000)
    expect(backoffDelay(3, opts, () => 1)).toBe(4_000)
    expect(backoffDelay(10, opts, () => 1)).toBe(10_000)
    expect(backoffDelay(1_000, opts, () => 0.5)).toBe(5_500)
  })

  it('Should jitter', () => {
    const values = new Set(Array.from({ length: 20 }, () => backoffDelay(5, opts)))
    expect(values.size).toBeGreaterThan(10)
    for (const v of values) {
      expect(v).toBeGreaterThanOrEqual(1_000)
      expect(v).toBeLessThanOrEqual(10_000)
    }
  })

  it('Should allow a zero base', () => {
    expect(backoffDelay(4, { baseMs: 0, maxMs: 0 })).toBe(0)
  })
})

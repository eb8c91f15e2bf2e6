import { describe, expect, it } from 'vitest'
import type { BatchInfo } from '../core/engine.js'
import { drainProgress } from './progress.js'

const batch = (published: number): BatchInfo => ({
  relayId: 'r',
  size: published,
  claimMs: 1,
  publishMs: 1,
  markMs: 1,
  sends: 1,
  published,
  retried: 0,
  dead: 0,
  held: 0,
  deferred: 0,
  unsettled: 0,
  lostLeases: 0,
  maxAttempts: 0,
  outcome: 'published',
})

describe('drainProgress', () => {
  it('Should draw one rewritten line on a TTY and end it', () => {
    const out: string[] = []
    const progress = drainProgress({ isTTY: true, write: (t: string) => out.push(t) }, 0)
    progress.hooks.onBatch?.(batch(500))
    progress.hooks.onBatch?.(batch(200))
    progress.done()
    expect(out[0]).toBe('\r\x1b[2Kdraining: 500 published, 0 retried, 0 dead (1 batches)')
    expect(out.at(-2)).toBe('\r\x1b[2Kdraining: 700 published, 0 retried, 0 dead (2 batches)')
    expect(out.at(-1)).toBe('\n')
  })

  it('Should write nothing when the stream is not a TTY', () => {
    const out: string[] = []
    const progress = drainProgress({ isTTY: false, write: (t: string) => out.push(t) }, 0)
    progress.hooks.onBatch?.(batch(5))
    progress.done()
    expect(out).toEqual([])
    expect(progress.hooks).toEqual({})
  })
})

import { describe, expect, it } from 'vitest'
import { sortOutcomes } from './outcome.js'
import type { RowOutcome } from './settle.js'
import type { ClaimedRow } from './sql/claim-batch.js'

const row = (id: string, attempts = 0): ClaimedRow => ({
  id,
  aggregatetype: 'a',
  aggregateid: 'k',
  type: 't',
  topic: 'orders',
  payload: '{}',
  headers: null,
  attempts,
  seq: id.slice(1),
})

const retry = { maxAttempts: 3, backoff: { baseMs: 1000, maxMs: 8000 } }

describe('sortOutcomes', () => {
  it('Should sort each row by its outcome, a missing one counting as held', () => {
    const outcomes = new Map<string, RowOutcome>([
      ['r1', { kind: 'published' }],
      ['r2', { kind: 'deferred', error: new Error('broker down') }],
      ['r3', { kind: 'unsettled', error: new Error('timeout') }],
      ['r4', { kind: 'held' }],
    ])
    const out = sortOutcomes([row('r1'), row('r2'), row('r3'), row('r4'), row('r5')], { outcomes }, retry)
    expect(out).toMatchObject({
      publishedIds: ['r1'],
      deferredIds: ['r2'],
      unsettled: 1,
      heldIds: ['r4', 'r5'],
      failed: [],
      dead: 0,
    })
    expect(String(out.firstError)).toContain('broker down')
  })

  it('Should retry a failed row after its backoff, and give up at maxAttempts or on a permanent error', () => {
    const outcomes = new Map<string, RowOutcome>([
      ['r1', { kind: 'failed', permanent: false, error: 'not authorised' }],
      ['r2', { kind: 'failed', permanent: false, error: 'not authorised' }],
      ['r3', { kind: 'failed', permanent: true, error: 'too large' }],
    ])
    const out = sortOutcomes([row('r1', 0), row('r2', 2), row('r3', 0)], { outcomes }, retry, () => 0)
    expect(out.failed).toEqual([
      { id: 'r1', status: 'pending', delayMs: 1000, error: 'not authorised' },
      { id: 'r2', status: 'dead', delayMs: 0, error: 'gave up after 3 attempts: not authorised' },
      { id: 'r3', status: 'dead', delayMs: 0, error: 'too large' },
    ])
    expect(out.dead).toBe(2)
    expect(out.firstError).toBe('not authorised')
  })
})

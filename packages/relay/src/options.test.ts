import { describe, expect, it } from 'vitest'
import { RelayError } from './errors.js'
import { drainOptionsSchema, parseOptions, resolveEngineOptions } from './options.js'

describe('resolveEngineOptions', () => {
  it('Should apply the documented defaults', () => {
    const o = resolveEngineOptions(undefined)
    expect(o).toMatchObject({
      batchSize: 500,
      leaseMs: 60_000,
      maxAttempts: 10,
      publishTimeoutMs: 15_000,
      pause: { baseMs: 1_000, maxMs: 30_000 },
      lockWaitMs: 30_000,
      idleInTransactionMs: 5_000,
      backoff: { baseMs: 1_000, maxMs: 300_000 },
      deadLetterPolicy: 'block-key',
      table: 'outbox_event',
      retention: { publishedMaxAgeMs: 604_800_000, batchSize: 1_000 },
    })
    expect(o.relayId).toMatch(/^.+-\d+-[0-9a-f]{6}$/)
    expect(resolveEngineOptions({}).relayId).not.toBe(o.relayId)
  })

  it('Should keep nested defaults when only part of a group is given', () => {
    expect(resolveEngineOptions({ backoff: { baseMs: 10 } }).backoff).toEqual({ baseMs: 10, maxMs: 300_000 })
    expect(resolveEngineOptions({ retention: { batchSize: 5 } }).retention.publishedMaxAgeMs).toBe(
      604_800_000,
    )
  })

  it.each([
    [{ batchSize: 0 }, /batchSize/],
    [{ leaseMs: 1.5 }, /leaseMs/],
    [{ deadLetterPolicy: 'drop' }, /deadLetterPolicy/],
    [{ backoff: { baseMs: 10, maxMs: 5 } }, /backoff\.baseMs: baseMs must not exceed maxMs/],
    [{ table: 'a.b.c' }, /table/],
    [{ table: '' }, /table/],
    [{ bachSize: 10 }, /bachSize/],
  ])('Should throw RELAY_INVALID_OPTIONS naming the option for %j', (input, pattern) => {
    let error: unknown
    try {
      resolveEngineOptions(input as never)
    } catch (e) {
      error = e
    }
    expect(error).toBeInstanceOf(RelayError)
    expect((error as RelayError).code).toBe('RELAY_INVALID_OPTIONS')
    expect((error as RelayError).message).toMatch(pattern)
  })
})

describe('drainOptionsSchema', () => {
  it('Should accept the documented request and reject bad fields', () => {
    expect(
      parseOptions(drainOptionsSchema, { maxEvents: 5, budgetMs: 100, topics: ['t'] }, 'drain options'),
    ).toEqual({
      maxEvents: 5,
      budgetMs: 100,
      topics: ['t'],
    })
    expect(() => parseOptions(drainOptionsSchema, { maxEvents: -1 }, 'drain options')).toThrow(/maxEvents/)
    expect(() => parseOptions(drainOptionsSchema, { topics: [''] }, 'drain options')).toThrow(/topics\.0/)
  })
})

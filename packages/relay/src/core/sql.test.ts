import { describe, expect, it } from 'vitest'
import {
  claimBatch,
  countDue,
  deletePublished,
  lockClaims,
  markFailed,
  markPublished,
  quoteTable,
  releaseRows,
  stats,
} from './sql/index.js'

describe('quoteTable', () => {
  it('Should quote each part and escape quotes', () => {
    expect(quoteTable('outbox_event')).toBe('"outbox_event"')
    expect(quoteTable('app.Outbox')).toBe('"app"."Outbox"')
    expect(quoteTable('we"ird')).toBe('"we""ird"')
    expect(() => quoteTable('a..b')).toThrow()
    expect(() => quoteTable('a.b.c')).toThrow()
  })
})

describe('statements', () => {
  const table = 'app.outbox'
  it('Should parameterise every value and use the quoted table', () => {
    const claim = claimBatch({
      table,
      relayId: 'r1',
      limit: 10,
      leaseMs: 500,
      blockOnDead: true,
      topics: ['t'],
    })
    expect(claim.values).toEqual(['r1', 500, 10, ['t'], true])
    expect(claim.text).toContain('UPDATE "app"."outbox" AS c')
    expect(claim.text).toContain('FOR UPDATE OF o SKIP LOCKED')
    expect(claim.text).toContain('o.txid < snap.xmin')
    expect(
      claimBatch({ table, relayId: 'r', limit: 1, leaseMs: 1, blockOnDead: false, topics: [] }).values[3],
    ).toBeNull()

    expect(lockClaims().text).toBe('SELECT pg_advisory_xact_lock($1::bigint)')
    expect(markPublished({ table, relayId: 'r1', ids: ['a'] })).toMatchObject({ values: [['a'], 'r1'] })
    expect(markPublished({ table, relayId: 'r1', ids: [] }).text).toContain('locked_by = $2')
    expect(releaseRows({ table, relayId: 'r1', ids: ['a'] }).text).toContain('locked_by = $2')
    const failed = markFailed({
      table,
      relayId: 'r1',
      rows: [
        { id: 'a', status: 'pending', delayMs: 10.4, error: 'e1' },
        { id: 'b', status: 'dead', delayMs: -5, error: 'e2' },
      ],
    })
    expect(failed.values).toEqual([['a', 'b'], ['pending', 'dead'], [10, 0], ['e1', 'e2'], 'r1'])
    expect(failed.text).toContain('o.locked_by = $5')
    expect(deletePublished({ table, maxAgeMs: 1000, limit: 5 }).values).toEqual([1000, 5])
    expect(stats({ table }).text).toContain('FROM "app"."outbox"')
    expect(countDue({ table }).values).toEqual([null])
  })
})

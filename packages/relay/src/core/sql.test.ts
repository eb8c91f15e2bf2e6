import { describe, expect, expectTypeOf, it } from 'vitest'
import { type Queryable, type QueryResult, run } from './db.js'
import { CLAIM_WINDOW_FACTOR, type ClaimResultRow } from './sql/claim-batch.js'
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
  topicFilter,
} from './sql/index.js'
import type { TopicStatsRow } from './sql/stats.js'

describe('typed statements', () => {
  it('Should type the rows of run() by the statement, without casts', async () => {
    const seen: string[] = []
    const db: Queryable = {
      query: async (text) => {
        seen.push(text)
        return { rows: [], rowCount: 0 }
      },
    }
    const claimed = run(
      db,
      claimBatch({ table: 'outbox_event', relayId: 'r', limit: 1, leaseMs: 1000, blockOnDead: true }),
    )
    expectTypeOf(claimed).resolves.toEqualTypeOf<QueryResult<ClaimResultRow>>()
    expectTypeOf(run(db, stats({ table: 'outbox_event' }))).resolves.toEqualTypeOf<
      QueryResult<TopicStatsRow>
    >()
    expectTypeOf(run(db, countDue({ table: 'outbox_event' }))).resolves.toEqualTypeOf<
      QueryResult<{ n: string }>
    >()
    expectTypeOf(
      run(db, markPublished({ table: 'outbox_event', relayId: 'r', ids: [] })),
    ).resolves.toEqualTypeOf<QueryResult<never>>()
    expect((await claimed).rows).toEqual([])
    expect(seen[0]).toContain('RETURNING')
  })
})

describe('quoteTable', () => {
  it('Should quote each part and escape quotes', () => {
    expect(quoteTable('outbox_event')).toBe('"outbox_event"')
    expect(quoteTable('app.Outbox')).toBe('"app"."Outbox"')
    expect(quoteTable('we"ird')).toBe('"we""ird"')
    expect(() => quoteTable('a..b')).toThrow()
    expect(() => quoteTable('a.b.c')).toThrow()
  })
})

describe('topicFilter', () => {
  it('Should pass topics on, and give null (every topic) for none or an empty list', () => {
    expect(topicFilter(['a', 'b'])).toEqual(['a', 'b'])
    expect(topicFilter([])).toBeNull()
    expect(topicFilter(undefined)).toBeNull()
    expect(countDue({ table: 't', topics: [] }).values).toEqual([null])
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
    expect(claim.values).toEqual(['r1', 500, 10, 10 * CLAIM_WINDOW_FACTOR, 10 * CLAIM_WINDOW_FACTOR, ['t']])
    expect(claim.text).toContain('o.topic = ANY($6::text[])')
    const after = claimBatch({
      table,
      relayId: 'r1',
      limit: 10,
      leaseMs: 500,
      blockOnDead: true,
      after: '42',
    })
    expect(after.values).toEqual(['r1', 500, 10, 10 * CLAIM_WINDOW_FACTOR, 10 * CLAIM_WINDOW_FACTOR, '42'])
    expect(after.text).toContain('o.seq > $6::bigint')
    // A larger window, the same candidates and the same text (one prepared statement).
    const wider = claimBatch({
      table,
      relayId: 'r1',
      limit: 10,
      leaseMs: 500,
      blockOnDead: true,
      after: '42',
      windowScale: 8,
    })
    expect(wider.values).toEqual([
      'r1',
      500,
      10,
      10 * CLAIM_WINDOW_FACTOR * 8,
      10 * CLAIM_WINDOW_FACTOR,
      '42',
    ])
    expect(wider.name).toBe(after.name)
    expect(claim.text).toContain('UPDATE "app"."outbox" AS c')
    expect(claim.text).toContain('FOR UPDATE OF o SKIP LOCKED')
    expect(claim.text).toContain('o.txid < snap.xmin')
    // What a claim does not need is left out of its text, so one plan fits every value.
    const plain = claimBatch({ table, relayId: 'r', limit: 1, leaseMs: 1, blockOnDead: false, topics: [] })
    expect(plain.values).toEqual(['r', 1, 1, CLAIM_WINDOW_FACTOR, CLAIM_WINDOW_FACTOR])
    expect(plain.text).not.toMatch(/dead AS|\.topic = ANY|seq > \$/)
    expect(claim.text).toContain('dead AS MATERIALIZED')
    // The gate of the dead probes only where the index of dead rows answers it in one look.
    expect(claim.text).not.toContain("x.status = 'dead'")
    const gated = claimBatch({
      table,
      relayId: 'r1',
      limit: 10,
      leaseMs: 500,
      blockOnDead: true,
      deadIndex: true,
    })
    expect(gated.text).toContain(`WHERE EXISTS (SELECT 1 FROM "app"."outbox" AS x WHERE x.status = 'dead')`)
    expect(gated.name).not.toBe(
      claimBatch({ table, relayId: 'r1', limit: 10, leaseMs: 500, blockOnDead: true }).name,
    )

    // One name per text, and a different name for a different text.
    expect(claim.name).toMatch(/^outbox_claim_[0-9a-f]{16}$/)
    expect(
      claimBatch({ table, relayId: 'r2', limit: 99, leaseMs: 1, blockOnDead: true, topics: ['u'] }).name,
    ).toBe(claim.name)
    expect(new Set([claim.name, after.name, plain.name]).size).toBe(3)
    expect(
      claimBatch({ table: 'other', relayId: 'r1', limit: 10, leaseMs: 500, blockOnDead: true }).name,
    ).not.toBe(claimBatch({ table, relayId: 'r1', limit: 10, leaseMs: 500, blockOnDead: true }).name)

    expect(lockClaims().text).toBe('SELECT pg_advisory_xact_lock_shared($1::bigint)')
    expect(markPublished({ table, relayId: 'r1', ids: ['a'] })).toMatchObject({ values: [['a'], 'r1'] })
    expect(markPublished({ table, relayId: 'r1', ids: [] }).text).toContain('locked_by = $2')
    // Deleting published rows keeps the mark's guard: only our lease, only pending rows.
    const deleting = markPublished({ table, relayId: 'r1', ids: ['a'], publishedRows: 'delete' })
    expect(deleting.text).toMatch(
      /^DELETE FROM "app"."outbox" AS o\nWHERE o.id = ANY\(\$1::uuid\[\]\) AND o.locked_by = \$2 AND \(o.status = 'pending'\) IS NOT FALSE$/,
    )
    expect(deleting.values).toEqual([['a'], 'r1'])
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

/**
 * The engine's statements that name their rows by id (mark published, delete published, mark
 * failed, release, defer) against a real PostgreSQL: on a table never analyzed whose index of pending rows is
 * full of entries of rows published and not vacuumed yet, they must not walk that index.
 */
import type { TestDatabase } from '@prisma-outbox/devkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { deferRows, markFailed, markPublished, releaseRows } from '../src/core/sql/index.js'
import { insertMany, scansOf, unanalyzedDatabase } from './helpers.js'

let db: TestDatabase
beforeAll(async () => {
  db = await unanalyzedDatabase()
})
afterAll(async () => {
  await db?.drop()
})

/** 20k rows of which the first 19.5k were published (their pending-index entries stay), the rest leased by `r1`. */
async function leasedBehindPublished(): Promise<string[]> {
  await db.pool.query('DELETE FROM outbox_event')
  const ids = await insertMany(db.pool, 20_000)
  await db.pool.query(
    "UPDATE outbox_event SET status = 'published', published_at = now() WHERE id = ANY($1::uuid[])",
    [ids.slice(0, 19_500)],
  )
  const leased = ids.slice(19_500)
  await db.pool.query(
    "UPDATE outbox_event SET locked_by = 'r1', locked_until = now() + interval '1 minute' WHERE id = ANY($1::uuid[])",
    [leased],
  )
  return leased
}

const statements = {
  markPublished: (ids: string[]) => markPublished({ table: 'outbox_event', relayId: 'r1', ids }),
  deletePublishedRows: (ids: string[]) =>
    markPublished({ table: 'outbox_event', relayId: 'r1', ids, publishedRows: 'delete' }),
  markFailed: (ids: string[]) =>
    markFailed({
      table: 'outbox_event',
      relayId: 'r1',
      rows: ids.map((id) => ({ id, status: 'pending' as const, delayMs: 1_000, error: 'x' })),
    }),
  releaseRows: (ids: string[]) => releaseRows({ table: 'outbox_event', relayId: 'r1', ids }),
  deferRows: (ids: string[]) =>
    deferRows({ table: 'outbox_event', relayId: 'r1', ids, delayMs: 1_000, error: 'broker down' }),
}

describe('engine statements by id on a table never analyzed', () => {
  it.each(Object.keys(statements) as Array<keyof typeof statements>)(
    '%s finds its 500 rows without walking the index of pending rows and its dead entries',
    async (name) => {
      const leased = await leasedBehindPublished()
      const statement = statements[name](leased)
      const client = await db.pool.connect()
      try {
        await client.query('BEGIN')
        const { rows } = await client.query({
          text: `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${statement.text}`,
          values: statement.values,
        })
        const plan = rows[0]['QUERY PLAN'][0].Plan
        const scans = scansOf(plan)
        console.info(`${name} of 500 rows behind 19.5k published: ${scans.join(', ')}`)
        expect(scans).not.toContain('Bitmap Index Scan using outbox_event_pending_seq_idx')
        expect(scans).not.toContain('Index Scan using outbox_event_pending_seq_idx')
        expect(plan['Actual Rows'] ?? 0).toBe(0)
        expect(plan.Plans?.[0]?.['Actual Rows']).toBe(500)
      } finally {
        await client.query('ROLLBACK')
        client.release()
      }
    },
  )
})

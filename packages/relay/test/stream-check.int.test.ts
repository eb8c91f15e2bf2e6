/**
 * The stream relay's per-batch check statement against a real PostgreSQL: what it says of each
 * row, and that its work does not grow with one key's backlog (under the plan PostgreSQL makes for
 * the values and under the one generic plan a prepared check settles on).
 */
import { randomUUID } from 'node:crypto'
import type { TestDatabase } from '@prisma-outbox/devkit'
import type pg from 'pg'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import {
  type InspectedRow,
  inspectStreamBatch,
  type SettledRow,
  settleStreamBatch,
} from '../src/stream/sql.js'
import {
  explainPrepared,
  insertMany,
  insertRows,
  scansOf,
  sqlLiterals,
  testDatabase,
  unanalyzedDatabase,
} from './helpers.js'

let db: TestDatabase
beforeAll(async () => {
  db = await testDatabase()
})
afterAll(async () => {
  await db?.drop()
})
beforeEach(async () => {
  await db.pool.query('DELETE FROM outbox_event')
})

interface Row {
  id: string
  topic: string
  aggregateid: string
  seq: string
  txid: string
}

const rowsOf = (ids: string[]): Promise<Row[]> => rowsOfIn(db.pool, ids)

function check(rows: Row[], blockOnDead = true) {
  return inspectStreamBatch({
    table: 'outbox_event',
    blockOnDead,
    slot: 'no_such_slot',
    rows: rows.map((r) => ({ id: r.id, topic: r.topic, key: r.aggregateid, seq: r.seq, txid: r.txid })),
  })
}

describe('stream check', () => {
  it('holds a row behind an earlier dead or held row of its key, not behind fresh pending rows or its own batch', async () => {
    const ids = await insertRows(db.pool, [
      { topic: 't', key: 'dead' },
      { topic: 't', key: 'dead' },
      { topic: 't', key: 'held' },
      { topic: 't', key: 'held' },
      { topic: 't', key: 'fresh' },
      { topic: 't', key: 'fresh' },
      { topic: 't', key: 'same-batch' },
      { topic: 't', key: 'same-batch' },
      { topic: 'other', key: 'dead' },
    ])
    await db.pool.query(
      "UPDATE outbox_event SET status = 'dead', last_error = 'x' WHERE id = ANY($1::uuid[])",
      [[ids[0], ids[6]]],
    )
    await db.pool.query("UPDATE outbox_event SET last_error = 'held back' WHERE id = $1", [ids[2]])
    const batch = await rowsOf([ids[1], ids[3], ids[5], ids[6], ids[7], ids[8]] as string[])
    const checked = (await db.pool.query(check(batch).text, check(batch).values)).rows as InspectedRow[]
    const byId = new Map(checked.map((r) => [r.id, r]))
    expect(byId.get(ids[1] as string)).toMatchObject({ status: 'pending', blocked: true, visible: true })
    expect(byId.get(ids[3] as string)).toMatchObject({ status: 'pending', blocked: true })
    expect(byId.get(ids[5] as string)).toMatchObject({ status: 'pending', blocked: false })
    // The dead row is in the batch itself: the batch publishes it (or not) in order.
    expect(byId.get(ids[7] as string)).toMatchObject({ blocked: false })
    expect(byId.get(ids[6] as string)).toMatchObject({ status: 'dead' })
    // Another topic, same key: not held.
    expect(byId.get(ids[8] as string)).toMatchObject({ blocked: false, slot_pid: null })
    const off = check(batch, false)
    const unblocked = (await db.pool.query(off.text, off.values)).rows as InspectedRow[]
    expect(unblocked.every((r) => r.blocked === false)).toBe(true)
  })

  it.each(['custom', 'generic'] as const)(
    'does the same database work per check whatever one key’s backlog (%s plan)',
    async (mode) => {
      /**
       * Shared buffers the head-of-line probes of a check of the last 100 rows of one key touch,
       * behind `backlog` of its rows. (The rest of the check looks the 100 rows up by id; a custom
       * plan may read the table for that instead, which grows with the table, not the key.)
       */
      async function buffersOfCheck(backlog: number): Promise<number> {
        await db.pool.query('DELETE FROM outbox_event')
        const rows = Array.from({ length: backlog + 100 }, () => ({
          topic: 't',
          key: 'hot',
          id: randomUUID(),
        }))
        for (let i = 0; i < rows.length; i += 2_000) await insertRows(db.pool, rows.slice(i, i + 2_000))
        // The streamer published and marked the earlier rows; their index entries stay until a vacuum.
        await db.pool.query(
          "UPDATE outbox_event SET status = 'published', published_at = now() WHERE id = ANY($1::uuid[])",
          [rows.slice(0, backlog).map((r) => r.id)],
        )
        await db.pool.query('ANALYZE outbox_event')
        const statement = check(await rowsOf(rows.slice(backlog).map((r) => r.id)))
        const client = await db.pool.connect()
        try {
          await client.query('BEGIN')
          // The second run is measured: the first one marks dead index entries as such.
          await explainPrepared(client, statement, mode)
          const plan = await explainPrepared(client, statement, mode)
          return keyProbeBuffers(plan[0]['QUERY PLAN'][0].Plan)
        } finally {
          await client.query('ROLLBACK')
          client.release()
        }
      }
      const small = await buffersOfCheck(1_000)
      const large = await buffersOfCheck(10_000)
      expect(small).toBeGreaterThan(0)
      console.info(
        `stream check of 100 (${mode} plan), shared buffers: hot key 1k rows ${small}, 10k rows ${large}`,
      )
      // Ten times the key's backlog. A check through the index of unfinished rows walked every
      // earlier entry of the key: 3,550 buffers for the whole check at 1k, 35,445 at 10k.
      expect(large).toBeLessThan(small * 1.3)
    },
  )
})

describe('stream statements on a table never analyzed', () => {
  let fresh: TestDatabase
  beforeAll(async () => {
    fresh = await unanalyzedDatabase()
  })
  afterAll(async () => {
    await fresh?.drop()
  })

  it('keeps probing by primary key when the table has grown since its generic plan was made', async () => {
    const client = await fresh.pool.connect()
    try {
      // The plan a prepared check settles on after a few runs, made now while the table is empty.
      await client.query('SET plan_cache_mode = force_generic_plan')
      const empty = check([{ id: randomUUID(), topic: 't', aggregateid: 'k', seq: '1', txid: '1' }])
      await client.query(`PREPARE stream_check AS ${empty.text}`)
      await client.query(`EXECUTE stream_check(${sqlLiterals(client, empty.values)})`)
      const ids = await insertMany(fresh.pool, 20_000)
      const last = await rowsOfIn(fresh.pool, ids.slice(-100))
      const statement = check(last)
      const { rows } = await client.query(
        `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) EXECUTE stream_check(${sqlLiterals(client, statement.values)})`,
      )
      const plan = rows[0]['QUERY PLAN'][0].Plan
      const scans = scansOf(plan)
      console.info(
        `stream check of 100 rows behind 20k, generic plan made on the empty table: ${plan['Shared Hit Blocks'] + plan['Shared Read Blocks']} shared buffers; ${scans.join(', ')}`,
      )
      // Planned as a join, it hashed a sequential scan of the whole table (20k rows) for each batch.
      expect(scans).not.toContain('Seq Scan on outbox_event')
      expect(scans).toContain('Index Scan using outbox_event_pkey')
    } finally {
      client.release(true)
    }
  })

  it.each([
    ['mark', false],
    ['delete', false],
    ['mark', true],
    ['delete', true],
  ] as const)(
    'settle their rows without walking the index of pending rows and its dead entries (%s, a dead row too: %s)',
    async (publishedRows, withDead) => {
      await fresh.pool.query('DELETE FROM outbox_event')
      const ids = await insertMany(fresh.pool, 20_000)
      // Published and deleted by the stream, not vacuumed yet: their entries stay in every index.
      await fresh.pool.query('DELETE FROM outbox_event WHERE id = ANY($1::uuid[])', [ids.slice(0, 19_000)])
      const rows: SettledRow[] = ids.slice(19_500).map((id) => ({ id, outcome: 'published' }))
      if (withDead) rows[0] = { id: rows[0]?.id as string, outcome: 'dead', error: 'too large' }
      const statement = settleStreamBatch({ table: 'outbox_event', streamId: 's', rows, publishedRows })
      const client = await fresh.pool.connect()
      try {
        await client.query('BEGIN')
        const { rows: explained } = await client.query({
          text: `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${statement.text}`,
          values: statement.values,
        })
        const plan = explained[0]['QUERY PLAN'][0].Plan
        const scans = scansOf(plan)
        console.info(`stream ${publishedRows} of 500 rows behind 19k dead entries: ${scans.join(', ')}`)
        expect(scans).not.toContain('Bitmap Index Scan using outbox_event_pending_seq_idx')
        expect(scans).not.toContain('Index Scan using outbox_event_pending_seq_idx')
      } finally {
        await client.query('ROLLBACK')
        client.release()
      }
    },
  )
})

async function rowsOfIn(pool: pg.Pool, ids: string[]): Promise<Row[]> {
  const { rows } = await pool.query<Row>(
    'SELECT id::text, topic, aggregateid, seq::text, txid::text FROM outbox_event WHERE id = ANY($1::uuid[]) ORDER BY seq',
    [ids],
  )
  return rows
}

/** Indexes a head-of-line probe of the check may use. */
const KEY_INDEXES = new Set([
  'outbox_event_dead_key_idx',
  'outbox_event_held_key_idx',
  'outbox_event_unfinished_key_idx',
])

/** Shared buffers of the plan's scans of the per-key indexes (leaf nodes: their counts are their own). */
// biome-ignore lint/suspicious/noExplicitAny: EXPLAIN's JSON
function keyProbeBuffers(node: any): number {
  const own = KEY_INDEXES.has(node['Index Name'])
    ? Number(node['Shared Hit Blocks'] ?? 0) + Number(node['Shared Read Blocks'] ?? 0)
    : 0
  // biome-ignore lint/suspicious/noExplicitAny: EXPLAIN's JSON
  return own + (node.Plans ?? []).reduce((n: number, child: any) => n + keyProbeBuffers(child), 0)
}

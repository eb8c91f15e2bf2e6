/**
 * The gates of the claim's dead probes and of the stream check's dead and held probes (see
 * `gateIndexes`): with the partial index of such rows, the per-key probes run only when the table
 * holds one; the answers stay the same. Real PostgreSQL.
 */
import type { TestDatabase } from '@prisma-outbox/devkit'
import type pg from 'pg'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { claimBatch } from '../src/core/sql/claim-batch.js'
import { gateIndexes, gateIndexLookup } from '../src/core/sql/gate-indexes.js'
import { type InspectedRow, inspectStreamBatch } from '../src/stream/sql.js'
import { explainPrepared, insertRows, scansOf, sqlLiterals, testDatabase } from './helpers.js'

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

const BOTH = { dead: true, held: true }

/**
 * How often the per-key probes into `index` ran (scans with an index condition; the gate's own
 * look into the index has none), in an EXPLAIN (ANALYZE, FORMAT JSON) plan.
 */
// biome-ignore lint/suspicious/noExplicitAny: EXPLAIN's JSON
function keyProbes(node: any, index: string): number {
  const own = node['Index Name'] === index && node['Index Cond'] !== undefined ? node['Actual Loops'] : 0
  // biome-ignore lint/suspicious/noExplicitAny: EXPLAIN's JSON
  return own + (node.Plans ?? []).reduce((n: number, child: any) => n + keyProbes(child, index), 0)
}

/** Runs `statement` under EXPLAIN ANALYZE (rolled back) with the plan a prepared statement settles on. */
async function probesOf(statement: { text: string; values: unknown[] }, index: string): Promise<number> {
  const client: pg.PoolClient = await db.pool.connect()
  try {
    await client.query('BEGIN')
    const plan = await explainPrepared(client, statement, 'generic')
    return keyProbes(plan[0]['QUERY PLAN'][0].Plan, index)
  } finally {
    await client.query('ROLLBACK')
    client.release()
  }
}

/** 20 rows on keys k0…k9, the first `dead` of them dead and the next `held` pending with last_error. */
async function rowsWith(counts: { dead: number; held: number }) {
  const ids = await insertRows(
    db.pool,
    Array.from({ length: 20 }, (_, i) => ({ topic: 't', key: `k${i % 10}` })),
  )
  await db.pool.query(
    "UPDATE outbox_event SET status = 'dead', last_error = 'x' WHERE id = ANY($1::uuid[])",
    [ids.slice(0, counts.dead)],
  )
  await db.pool.query("UPDATE outbox_event SET last_error = 'held back' WHERE id = ANY($1::uuid[])", [
    ids.slice(counts.dead, counts.dead + counts.held),
  ])
  const { rows } = await db.pool.query<{ id: string; topic: string; key: string; seq: string; txid: string }>(
    `SELECT id::text, topic, aggregateid AS key, seq::text, txid::text FROM outbox_event
     WHERE id = ANY($1::uuid[]) ORDER BY seq`,
    [ids.slice(10)],
  )
  return rows
}

describe('gate indexes', () => {
  it('finds both indexes of the migrations, and tells when one is missing', async () => {
    const { rows } = await db.pool.query(gateIndexes('outbox_event').text, gateIndexes('outbox_event').values)
    expect(rows[0]).toEqual(BOTH)
    const other = await testDatabase()
    try {
      await other.pool.query('DROP INDEX outbox_event_held_key_idx')
      expect(await gateIndexLookup(other.pool, 'outbox_event')()).toEqual({ dead: true, held: false })
      expect(await gateIndexLookup(other.pool, 'no_such_table')()).toEqual({ dead: false, held: false })
    } finally {
      await other.drop()
    }
  })

  it('leaves out the claim’s dead probes on a table without dead rows, and runs them when there is one', async () => {
    await rowsWith({ dead: 0, held: 0 })
    const claim = (deadIndex: boolean) =>
      claimBatch({
        table: 'outbox_event',
        relayId: 'r',
        limit: 5,
        leaseMs: 1000,
        blockOnDead: true,
        deadIndex,
      })
    expect(await probesOf(claim(true), 'outbox_event_dead_key_idx')).toBe(0)
    // Without the gate, one probe per key of the window.
    expect(await probesOf(claim(false), 'outbox_event_dead_key_idx')).toBe(10)
    await db.pool.query('DELETE FROM outbox_event')
    await rowsWith({ dead: 1, held: 0 })
    expect(await probesOf(claim(true), 'outbox_event_dead_key_idx')).toBeGreaterThan(0)
  })

  it('holds k0 behind its dead row with the gate on, as without it', async () => {
    await rowsWith({ dead: 1, held: 0 })
    for (const deadIndex of [true, false]) {
      const claim = claimBatch({
        table: 'outbox_event',
        relayId: `r-${deadIndex}`,
        limit: 100,
        leaseMs: 1000,
        blockOnDead: true,
        deadIndex,
      })
      const client = await db.pool.connect()
      try {
        await client.query('BEGIN')
        const { rows } = await client.query<{ aggregateid: string | null }>(claim.text, claim.values)
        expect(rows.map((r) => r.aggregateid).sort()).toEqual(
          Array.from({ length: 9 }, (_, i) => `k${i + 1}`)
            .flatMap((k) => [k, k])
            .sort(),
        )
      } finally {
        await client.query('ROLLBACK')
        client.release()
      }
    }
  })

  it.each([
    ['no dead or held row', { dead: 0, held: 0 }, { dead: 0, held: 0 }],
    ['a dead row', { dead: 1, held: 0 }, { dead: 10, held: 0 }],
    ['a held row', { dead: 0, held: 1 }, { dead: 0, held: 10 }],
  ])('runs the stream check’s probes only where needed: %s', async (_, counts, probes) => {
    const batch = (await rowsWith(counts)).map((r) => ({ ...r }))
    const check = inspectStreamBatch({
      table: 'outbox_event',
      blockOnDead: true,
      slot: 'none',
      rows: batch,
      gates: BOTH,
    })
    expect(await probesOf(check, 'outbox_event_dead_key_idx')).toBe(probes.dead)
    expect(await probesOf(check, 'outbox_event_held_key_idx')).toBe(probes.held)
    // The same answers as the check without gates.
    const plain = inspectStreamBatch({ table: 'outbox_event', blockOnDead: true, slot: 'none', rows: batch })
    const answers = async (s: { text: string; values: unknown[] }) =>
      ((await db.pool.query(s.text, s.values)).rows as InspectedRow[]).map((r) => [r.id, r.blocked])
    expect(await answers(check)).toEqual(await answers(plain))
    expect((await answers(check)).some(([, blocked]) => blocked)).toBe(counts.dead + counts.held > 0)
  })

  it('keeps the gates on their indexes in a plan made while the table was empty', async () => {
    const client = await db.pool.connect()
    try {
      const rows = [{ id: '00000000-0000-0000-0000-000000000001', topic: 't', key: 'k', seq: '1', txid: '1' }]
      const check = inspectStreamBatch({
        table: 'outbox_event',
        blockOnDead: true,
        slot: 'none',
        rows,
        gates: BOTH,
      })
      await client.query('BEGIN')
      await client.query('SET LOCAL plan_cache_mode = force_generic_plan')
      await client.query(`PREPARE empty_gate AS ${check.text}`)
      await client.query(`EXECUTE empty_gate(${sqlLiterals(client, check.values)})`)
      await insertRows(
        client,
        Array.from({ length: 5_000 }, (_, i) => ({ topic: 't', key: `k${i}` })),
      )
      await client.query(
        "UPDATE outbox_event SET status = 'published', published_at = now() WHERE status = 'pending'",
      )
      const { rows: plan } = await client.query(
        `EXPLAIN (FORMAT JSON) EXECUTE empty_gate(${sqlLiterals(client, check.values)})`,
      )
      const scans = scansOf(plan[0]['QUERY PLAN'][0].Plan)
      expect(scans).toContain('Index Only Scan using outbox_event_dead_key_idx')
      expect(scans).toContain('Index Only Scan using outbox_event_held_key_idx')
      expect(scans.filter((s) => s.startsWith('Seq Scan on outbox_event'))).toEqual([])
    } finally {
      await client.query('ROLLBACK')
      client.release()
    }
  })
})

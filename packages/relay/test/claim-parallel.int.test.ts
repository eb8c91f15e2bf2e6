/**
 * Claims run in parallel across relays (no exclusive lock): two claim statements interleaved with
 * barriers on real PostgreSQL must never hand out a row while an earlier row of its key is held by
 * the other claim, whether that claim is still open or committed after this one's snapshot.
 */
import {
  collectMessages,
  createTopics,
  type TestDatabase,
  testKafka,
  uniqueTopic,
} from '@prisma-outbox/devkit'
import type pg from 'pg'
import { afterEach, describe, expect, it } from 'vitest'
import { type ClaimBatchParams, type ClaimResultRow, claimBatch } from '../src/core/sql/claim-batch.js'
import { markPublished } from '../src/core/sql/mark-published.js'
import { createEngine, type KafkaPublisher } from '../src/index.js'
import { expectInsertOrderPerKey, insertRows, useRelayServices, waitClaimable } from './helpers.js'

const kafka = testKafka('relay-claim-parallel-test')
let db: TestDatabase
let publisher: KafkaPublisher
useRelayServices(kafka, { publisher: (p) => (publisher = p), db: (d) => (db = d) })

/** An advisory lock key the test holds to stop a claim right after its snapshot was taken. */
const BARRIER = 424242

const open: pg.PoolClient[] = []
afterEach(async () => {
  for (const client of open.splice(0)) {
    await client.query('ROLLBACK').catch(() => {})
    await client.query('SELECT pg_advisory_unlock_all()').catch(() => {})
    client.release()
  }
})

/** A connection with an open transaction, kept until the test ends. */
async function begin(): Promise<pg.PoolClient> {
  const client = await db.pool.connect()
  open.push(client)
  await client.query('BEGIN')
  return client
}

function params(relayId: string, topic: string, limit: number, extra: Partial<ClaimBatchParams> = {}) {
  return {
    table: 'outbox_event',
    relayId,
    limit,
    leaseMs: 60_000,
    blockOnDead: true,
    topics: [topic],
    ...extra,
  }
}

/** The claim statement, stopped after its snapshot until {@link BARRIER} is free. */
function claimText(p: ClaimBatchParams) {
  const claim = claimBatch(p)
  // `snap` is the first part the statement evaluates, after its snapshot was taken.
  const marker = 'SELECT statement_timestamp() AS ts,'
  expect(claim.text).toContain(marker)
  return {
    ...claim,
    text: claim.text.replace(marker, `${marker} pg_advisory_xact_lock(${BARRIER}) AS barrier,`),
  }
}

/** Ids of the claimed rows, in seq order (RETURNING keeps no order). */
const claimedIds = (rows: ClaimResultRow[]) =>
  rows
    .filter((r) => r.id !== null)
    .sort((x, y) => Number(x.seq) - Number(y.seq))
    .map((r) => r.id)

async function pidOf(client: pg.PoolClient): Promise<number> {
  const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')
  return rows[0]?.pid as number
}

/** Resolves once backend `pid` waits for a lock (the barrier). */
async function untilWaiting(pid: number): Promise<void> {
  for (let i = 0; i < 500; i++) {
    const { rows } = await db.pool.query(
      "SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND wait_event_type = 'Lock'",
      [pid],
    )
    if (rows.length > 0) return
    await new Promise((r) => setTimeout(r, 10))
  }
  throw new Error(`backend ${pid} never waited for the barrier`)
}

/**
 * Runs `p`'s claim on a connection of its own, stopped right after its snapshot was taken; the
 * claim goes on when `resume()` is called, and `rows` resolves with what it claimed.
 */
async function claimPausedAfterSnapshot(p: ClaimBatchParams) {
  const holder = await db.pool.connect()
  open.push(holder)
  await holder.query('SELECT pg_advisory_lock($1)', [BARRIER])
  const b = await begin()
  const pid = await pidOf(b)
  const late = claimText(p)
  const rows = b.query(late.text, late.values).then((r) => claimedIds(r.rows))
  rows.catch(() => {})
  await untilWaiting(pid)
  return {
    rows,
    async resume() {
      await holder.query('SELECT pg_advisory_unlock($1)', [BARRIER])
    },
    /** Ends the claim's transaction: its leases show, and the rows it locked and left are free. */
    async commit() {
      await b.query('COMMIT')
    },
  }
}

describe('parallel claims', () => {
  it('Should not claim a later row of a key while an open claim holds its earlier rows', async () => {
    const topic = uniqueTopic('relay')
    const [k1, k2, k3, k4, other] = await insertRows(db.pool, [
      { topic, key: 'K' },
      { topic, key: 'K' },
      { topic, key: 'K' },
      { topic, key: 'K' },
      { topic, key: 'L' },
    ])
    await waitClaimable(db.pool)
    const a = await begin()
    const first = claimBatch(params('a', topic, 2))
    expect(claimedIds((await a.query(first.text, first.values)).rows)).toEqual([k1, k2])
    // A's transaction is still open: K1 and K2 are row-locked, not yet visibly leased.
    const b = await begin()
    const second = claimBatch(params('b', topic, 10))
    const got = claimedIds((await b.query(second.text, second.values)).rows)
    expect(got).toEqual([other])
    expect(got).not.toContain(k3)
    expect(got).not.toContain(k4)
  })

  it('Should not claim a later row of a key whose earlier rows another claim committed after this snapshot', async () => {
    const topic = uniqueTopic('relay')
    const [k1, k2, k3, other] = await insertRows(db.pool, [
      { topic, key: 'K' },
      { topic, key: 'K' },
      { topic, key: 'K' },
      { topic, key: 'L' },
    ])
    await waitClaimable(db.pool)
    const late = await claimPausedAfterSnapshot(params('b', topic, 10))
    // B's snapshot sees K1..K3 free; A claims K1, K2 and commits before B locks anything.
    const first = claimBatch(params('a', topic, 2))
    expect(claimedIds((await db.pool.query(first.text, first.values)).rows)).toEqual([k1, k2])
    await late.resume()
    const got = await late.rows
    expect(got).toEqual([other])
    expect(got).not.toContain(k3)
  })

  it('Should hold a key whose head another relay published and deleted after this snapshot, then claim the rest next time', async () => {
    const topic = uniqueTopic('relay')
    const [k1, k2, other] = await insertRows(db.pool, [
      { topic, key: 'K' },
      { topic, key: 'K' },
      { topic, key: 'L' },
    ])
    await waitClaimable(db.pool)
    const late = await claimPausedAfterSnapshot(params('b', topic, 10))
    // B's snapshot sees K1 and K2 free; A claims K1, publishes it and deletes it
    // (publishedRows 'delete') before B locks anything.
    const first = claimBatch(params('a', topic, 1))
    expect(claimedIds((await db.pool.query(first.text, first.values)).rows)).toEqual([k1])
    const gone = markPublished({
      table: 'outbox_event',
      relayId: 'a',
      ids: [k1 as string],
      publishedRows: 'delete',
    })
    expect((await db.pool.query(gone.text, gone.values)).rowCount).toBe(1)
    await late.resume()
    // K1 vanished under B's row lock: B cannot tell a deleted head from one taken by another
    // claim, so K2 waits for the next claim; the other key goes now.
    expect(await late.rows).toEqual([other])
    await late.commit()
    const again = claimBatch(params('c', topic, 10))
    expect(claimedIds((await db.pool.query(again.text, again.values)).rows)).toEqual([k2])
  })

  it('Should keep a key held when a claim committed after this snapshot released its head for a retry later', async () => {
    const topic = uniqueTopic('relay')
    const [k1, k2] = await insertRows(db.pool, [
      { topic, key: 'K' },
      { topic, key: 'K' },
    ])
    await waitClaimable(db.pool)
    const first = claimBatch(params('a', topic, 1))
    expect(claimedIds((await db.pool.query(first.text, first.values)).rows)).toEqual([k1])
    const late = await claimPausedAfterSnapshot(params('b', topic, 10))
    // A's publish of K1 failed: back to pending, due in an hour.
    await db.pool.query(
      "UPDATE outbox_event SET locked_by = NULL, locked_until = NULL, attempts = 1, available_at = now() + interval '1 hour' WHERE id = $1",
      [k1],
    )
    await late.resume()
    expect(await late.rows).not.toContain(k2)
    // And a claim after both sees K1 waiting: K2 stays held.
    const again = claimBatch(params('c', topic, 10))
    expect(claimedIds((await db.pool.query(again.text, again.values)).rows)).toEqual([])
  })

  it('Should share a backlog between two open claims, each taking rows the other does not hold', async () => {
    const topic = uniqueTopic('relay')
    const ids = await insertRows(
      db.pool,
      Array.from({ length: 40 }, (_, i) => ({ topic, key: `k${i}` })),
    )
    await waitClaimable(db.pool)
    const a = await begin()
    const b = await begin()
    const first = claimBatch(params('a', topic, 20))
    const second = claimBatch(params('b', topic, 20))
    expect(claimedIds((await a.query(first.text, first.values)).rows)).toEqual(ids.slice(0, 20))
    expect(claimedIds((await b.query(second.text, second.values)).rows)).toEqual(ids.slice(20))
  })

  it('Should say "contended" when every candidate is taken by an open claim and the window is not full', async () => {
    const topic = uniqueTopic('relay')
    await insertRows(db.pool, [
      { topic, key: 'K' },
      { topic, key: 'L' },
    ])
    await waitClaimable(db.pool)
    const a = await begin()
    const first = claimBatch(params('a', topic, 10))
    expect(claimedIds((await a.query(first.text, first.values)).rows)).toHaveLength(2)
    const second = claimBatch(params('b', topic, 10))
    const { rows } = await db.pool.query(second.text, second.values)
    expect(rows).toEqual([expect.objectContaining({ id: null, window_end: null, contended: true })])
    await a.query('COMMIT')
    // Once A's leases are visible nothing is claimable, and nothing is contended.
    expect((await db.pool.query(second.text, second.values)).rows).toEqual([])
  })

  it('Should publish every other key past a relay stuck inside its claim, then the stuck keys in order once it is gone', async () => {
    const topic = uniqueTopic('relay')
    await createTopics(kafka, [topic], 3)
    const rows = Array.from({ length: 60 }, (_, i) => ({ topic, key: `k${i % 6}`, payload: { i } }))
    await insertRows(db.pool, rows)
    await waitClaimable(db.pool)
    // A relay frozen between its claim statement and COMMIT: rows of k0 and k1 stay row-locked.
    const stuck = await begin()
    const first = claimBatch(params('stuck', topic, 2))
    const { rows: taken } = await stuck.query(first.text, first.values)
    expect(claimedIds(taken)).toHaveLength(2)
    const engine = createEngine({ pool: db.pool, publisher, options: { relayId: 'live', batchSize: 7 } })
    const during = await engine.drain()
    expect(during.published).toBe(40)
    // Its session ends (the server's idle-in-transaction timeout, here a rollback): all flows.
    await stuck.query('ROLLBACK')
    const after = await engine.drain()
    expect(after.published).toBe(20)
    const messages = await collectMessages(kafka, [topic], { count: 60, settleMs: 1_000 })
    expect(messages).toHaveLength(60)
    expectInsertOrderPerKey(messages, rows)
  })
})

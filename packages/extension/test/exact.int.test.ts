/**
 * Exact capture under concurrency, referential actions and size: the rows a statement changes
 * are exactly the rows plain Prisma changes, and each gets exactly its event. Two connections are
 * interleaved with barriers: one transaction holds a row lock, the other's statement is seen
 * waiting for it in pg_locks before the first one moves on.
 */
import type { TestDatabase } from '@prisma-outbox/devkit'
import type { PoolClient } from 'pg'
import { describe, expect, it } from 'vitest'
import type { PrismaClient } from './generated/client/client.js'
import { type ExtendedPrisma, extendedPrisma, outboxRows, useCaptureDatabase } from './helpers.js'

let db: TestDatabase
let base: PrismaClient
let prisma: ExtendedPrisma

useCaptureDatabase({ db: (d) => (db = d), base: (c) => (base = c), prisma: (c) => (prisma = c) })

/** Resolves once some session of the test database waits for a lock held by `holder`. */
async function someoneWaitsOn(holder: PoolClient): Promise<void> {
  const { rows: me } = await holder.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')
  const pid = me[0]?.pid
  for (;;) {
    const { rows } = await db.pool.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND $1 = ANY(pg_blocking_pids(pid))',
      [pid],
    )
    if ((rows[0]?.n ?? 0) > 0) return
    await new Promise((resolve) => setImmediate(resolve))
  }
}

/** Runs `work` on a second connection inside a transaction it leaves open until `release()`. */
async function holdInTransaction(work: (c: PoolClient) => Promise<unknown>) {
  const client = await db.pool.connect()
  await client.query('BEGIN')
  await work(client)
  return {
    client,
    async commit() {
      await client.query('COMMIT')
      client.release()
    },
  }
}

/** Sends a (lazy) PrismaPromise now, without awaiting its result. */
const start = <T>(query: PromiseLike<T>): Promise<T> => Promise.resolve().then(() => query)

const types = async () => (await outboxRows(db)).map((r) => `${r.type} ${r.aggregateid}`)

describe('filters are re-checked under the row lock, as plain Prisma does', () => {
  async function twoEmployees() {
    await base.employee.createMany({
      data: [
        { email: 'a@corp.test', name: 'A', active: false },
        { email: 'b@corp.test', name: 'B', active: false },
      ],
    })
    await db.pool.query('TRUNCATE outbox_event')
  }

  it('deleteMany leaves a row another transaction moved out of the filter meanwhile', async () => {
    await twoEmployees()
    const other = await holdInTransaction((c) =>
      c.query(`UPDATE employee SET active = true WHERE email = 'a@corp.test'`),
    )
    const deleting = start(prisma.employee.deleteMany({ where: { active: false } }))
    await someoneWaitsOn(other.client)
    await other.commit()
    expect(await deleting).toEqual({ count: 1 })
    expect((await base.employee.findMany()).map((e) => e.email)).toEqual(['a@corp.test'])
    // The other transaction's raw UPDATE is captured too, then exactly the row deleteMany deleted.
    const rows = await outboxRows(db)
    expect(rows.map((r) => [r.type, r.payload.email])).toEqual([
      ['employee.updated', 'a@corp.test'],
      ['employee.deleted', 'b@corp.test'],
    ])
  })

  it('updateMany skips a row another transaction moved out of the filter, and its event shows the new values', async () => {
    await twoEmployees()
    const other = await holdInTransaction((c) =>
      c.query(`UPDATE employee SET active = true, name = 'A2' WHERE email = 'a@corp.test'`),
    )
    const updating = start(prisma.employee.updateMany({ where: { active: false }, data: { name: 'X' } }))
    await someoneWaitsOn(other.client)
    await other.commit()
    expect(await updating).toEqual({ count: 1 })
    const names = (await base.employee.findMany({ orderBy: { email: 'asc' } })).map((e) => e.name)
    expect(names).toEqual(['A2', 'X'])
    const rows = await outboxRows(db)
    expect(rows.map((r) => [r.type, r.payload.email, r.payload.name])).toEqual([
      ['employee.updated', 'a@corp.test', 'A2'],
      ['employee.updated', 'b@corp.test', 'X'],
    ])
  })

  it('updateMany after a concurrent change sees the committed values (EvalPlanQual), inside a caller transaction too', async () => {
    await twoEmployees()
    const other = await holdInTransaction((c) =>
      c.query(`UPDATE employee SET name = 'B2' WHERE email = 'b@corp.test'`),
    )
    const updating = prisma.$transaction(async (tx) =>
      tx.employee.updateMany({ where: { active: false }, data: { active: true } }),
    )
    await someoneWaitsOn(other.client)
    await other.commit()
    expect(await updating).toEqual({ count: 2 })
    const rows = await outboxRows(db)
    expect(rows.map((r) => [r.payload.email, r.payload.name, r.payload.active])).toEqual([
      ['b@corp.test', 'B2', false],
      ['a@corp.test', 'A', true],
      ['b@corp.test', 'B2', true],
    ])
  })

  it('delete by a unique key and a filter is a no-op error exactly like plain Prisma when the filter stops matching', async () => {
    const e = await base.employee.create({ data: { email: 'c@corp.test', name: 'C', active: false } })
    await db.pool.query('TRUNCATE outbox_event')
    const other = await holdInTransaction((c) =>
      c.query(`UPDATE employee SET active = true WHERE id = $1`, [e.id]),
    )
    const deleting = start(prisma.employee.delete({ where: { id: e.id, active: false } })).then(
      () => 'deleted',
      (error: { code?: string }) => error.code,
    )
    await someoneWaitsOn(other.client)
    await other.commit()
    expect(await deleting).toBe('P2025')
    expect(await base.employee.count()).toBe(1)
    expect(await types()).toEqual([`employee.updated ${e.id}`])
  })
})

describe('racing upserts of one new key', () => {
  it.each([2, 10])(
    '%i concurrent standalone upserts: one row, exactly one created and the rest updated',
    async (n) => {
      const results = await Promise.allSettled(
        Array.from({ length: n }, (_, i) =>
          prisma.department
            .upsert({
              where: { name: 'Racing' },
              create: { name: 'Racing' },
              update: { name: 'Racing' },
            })
            .then((d) => ({ d, i })),
        ),
      )
      const ok = results.filter((r) => r.status === 'fulfilled').length
      expect(ok).toBe(n)
      expect(await base.department.count()).toBe(1)
      const rows = await outboxRows(db)
      expect(rows.filter((r) => r.type === 'department.created')).toHaveLength(1)
      expect(rows.filter((r) => r.type === 'department.updated')).toHaveLength(n - 1)
    },
  )
})

describe('referential actions produce the events of the captured rows they change', () => {
  async function tree() {
    await base.parent.create({ data: { id: 1, code: 'p1' } })
    await base.mid.create({ data: { id: 10, parentCode: 'p1' } })
    await base.leaf.createMany({
      data: [
        { id: 100, midId: 10 },
        { id: 101, midId: 10 },
      ],
    })
    await db.pool.query('TRUNCATE outbox_event')
  }

  it('deleting an uncaptured Parent cascades through an uncaptured Mid: one deleted per Leaf', async () => {
    await tree()
    await prisma.parent.delete({ where: { id: 1 } })
    expect(await base.leaf.count()).toBe(0)
    expect((await types()).sort()).toEqual(['leaf.deleted 100', 'leaf.deleted 101'])
  })

  it('deleteMany of Parents cascades too, in a caller transaction', async () => {
    await tree()
    await prisma.$transaction(async (tx) => tx.parent.deleteMany({}))
    expect((await types()).sort()).toEqual(['leaf.deleted 100', 'leaf.deleted 101'])
  })

  it('updating a referenced key (default onUpdate Cascade) gives one updated per Leaf, with the new key', async () => {
    await tree()
    await prisma.mid.update({ where: { id: 10 }, data: { id: 11 } })
    const rows = await outboxRows(db)
    expect(rows.map((r) => [r.type, r.aggregateid, r.payload.midId]).sort()).toEqual([
      ['leaf.updated', '100', 11],
      ['leaf.updated', '101', 11],
    ])
  })

  it('onDelete SetNull on Employee gives employee.updated with the key gone', async () => {
    const d = await base.department.create({ data: { name: 'Ops' } })
    await base.employee.create({ data: { email: 'o@corp.test', name: 'O', departmentId: d.id } })
    await db.pool.query('TRUNCATE outbox_event')
    await prisma.department.delete({ where: { id: d.id } })
    const rows = await outboxRows(db)
    const view = rows.map((r) => [r.type, 'departmentId' in r.payload ? r.payload.departmentId : 'none'])
    expect(view.sort()).toEqual([
      ['department.deleted', 'none'],
      ['employee.updated', null],
    ])
  })

  it('nested writes into captured models are captured, at any depth', async () => {
    await prisma.department.create({
      data: { name: 'Nested', employees: { create: [{ email: 'n1@corp.test', name: 'N1' }] } },
    })
    await prisma.parent.create({
      data: { id: 2, code: 'p2', mids: { create: { id: 20, leaves: { create: [{ id: 200 }] } } } },
    })
    expect((await types()).map((t) => t.split(' ')[0]).sort()).toEqual([
      'department.created',
      'employee.created',
      'leaf.created',
    ])
  })
})

describe('no new timeouts or size limits', () => {
  it('a standalone update that waits longer than 5 s for a row lock succeeds, as in plain Prisma', async () => {
    const e = await base.employee.create({ data: { email: 'w@corp.test', name: 'W' } })
    const other = await holdInTransaction((c) =>
      c.query(`UPDATE employee SET name = 'held' WHERE id = $1`, [e.id]),
    )
    const updating = start(prisma.employee.update({ where: { id: e.id }, data: { name: 'after' } }))
    await someoneWaitsOn(other.client)
    // The holder keeps the lock for longer than Prisma's 5 s interactive-transaction default.
    await other.client.query('SELECT pg_sleep(5.5)')
    await other.commit()
    expect((await updating).name).toBe('after')
    expect((await outboxRows(db)).map((r) => r.payload.name)).toEqual(['W', 'held', 'after'])
  }, 60_000)

  it('createMany, updateMany and deleteMany of 100,000 rows succeed, one event per row', async () => {
    const n = 100_000
    const data = Array.from({ length: n }, (_, i) => ({ id: i + 1, midId: 10 }))
    await base.parent.create({ data: { id: 1, code: 'p1', mids: { create: { id: 10 } } } })
    expect(await prisma.leaf.createMany({ data })).toEqual({ count: n })
    expect(await prisma.leaf.updateMany({ data: { label: 'x' } })).toEqual({ count: n })
    expect(await prisma.leaf.deleteMany({})).toEqual({ count: n })
    const { rows } = await db.pool.query<{ type: string; n: number; ids: number }>(
      'SELECT type, count(*)::int AS n, count(DISTINCT aggregateid)::int AS ids FROM outbox_event GROUP BY type ORDER BY type',
    )
    expect(rows).toEqual([
      { type: 'leaf.created', n, ids: n },
      { type: 'leaf.deleted', n, ids: n },
      { type: 'leaf.updated', n, ids: n },
    ])
  }, 300_000)
})

describe('writes from outside the extension', () => {
  it('raw SQL and the plain client are captured by the same triggers once the extended client ran', async () => {
    const other = extendedPrisma(db)
    await other.employee.create({ data: { email: 'r1@corp.test', name: 'R1' } })
    await base.employee.create({ data: { email: 'r2@corp.test', name: 'R2' } })
    await db.pool.query(`UPDATE employee SET name = 'R3' WHERE email = 'r2@corp.test'`)
    expect((await types()).map((t) => t.split(' ')[0])).toEqual([
      'employee.created',
      'employee.created',
      'employee.updated',
    ])
    await other.$disconnect()
  })
})

/**
 * The write matrix: every write operation × every way of calling it (standalone, interactive
 * `$transaction(async tx => …)`, batch `$transaction([...])`) commits exactly its outbox rows,
 * and a rollback leaves neither the change nor a row.
 */
import type { TestDatabase } from '@prisma-outbox/devkit'
import { describe, expect, it } from 'vitest'
import type { Employee, PrismaClient } from './generated/client/client.js'
import { datamodel } from './generated/outbox/index.js'
import { type ExtendedPrisma, type OutboxRowView, outboxRows, useCaptureDatabase } from './helpers.js'

let db: TestDatabase
let base: PrismaClient
let prisma: ExtendedPrisma

useCaptureDatabase({ db: (d) => (db = d), base: (c) => (base = c), prisma: (c) => (prisma = c) })

/** The client (root or transaction) an operation is called on. */
type Client = Pick<ExtendedPrisma, 'employee' | 'auditNote'>
type Kind = 'created' | 'updated' | 'deleted'

/** What the payload of an employee must be: every scalar field, JSON-encoded by the documented rules. */
function employeePayload(e: Employee): Record<string, unknown> {
  return {
    id: e.id,
    email: e.email,
    name: e.name,
    salary: e.salary.toFixed(2), // Decimal(12, 2): the column's scale is kept
    active: e.active,
    hiredAt: e.hiredAt.toISOString(),
    profile: e.profile,
    departmentId: e.departmentId,
  }
}

const employees = () => base.employee.findMany({ orderBy: { email: 'asc' } })

async function seed(count: number): Promise<Employee[]> {
  const out: Employee[] = []
  for (let i = 1; i <= count; i++) {
    out.push(
      await base.employee.create({
        data: {
          email: `e${i}@corp.test`,
          name: `Employee ${i}`,
          salary: `${i}000.50`,
          profile: { level: i },
        },
      }),
    )
  }
  // The capture triggers recorded the seeding too; the cases look at their own events only.
  await db.pool.query('TRUNCATE outbox_event')
  return out
}

interface Case {
  op: string
  /** Employees e1..eN that exist before the write (their events are cleared). */
  seeded: number
  run(client: Client): PromiseLike<unknown>
  kind: Kind
  /** Emails of the records the write affects, in the order their events are expected. */
  affected: string[]
  /** What the caller gets back, as plain Prisma would return it. */
  returns(result: unknown): void
}

const newEmployee = (n: string) => ({
  email: `${n}@corp.test`,
  name: n,
  salary: '1234.56',
  profile: { tags: [n] },
})
const e1e2 = { email: { in: ['e1@corp.test', 'e2@corp.test'] } }

const cases: Case[] = [
  {
    op: 'create',
    seeded: 0,
    run: (c) => c.employee.create({ data: newEmployee('new') }),
    kind: 'created',
    affected: ['new@corp.test'],
    returns: (r) => expect(r).toMatchObject({ email: 'new@corp.test', name: 'new' }),
  },
  {
    op: 'createMany',
    seeded: 0,
    run: (c) => c.employee.createMany({ data: [newEmployee('a'), newEmployee('b'), newEmployee('c')] }),
    kind: 'created',
    affected: ['a@corp.test', 'b@corp.test', 'c@corp.test'],
    returns: (r) => expect(r).toEqual({ count: 3 }),
  },
  {
    op: 'createManyAndReturn',
    seeded: 0,
    run: (c) => c.employee.createManyAndReturn({ data: [newEmployee('a'), newEmployee('b')] }),
    kind: 'created',
    affected: ['a@corp.test', 'b@corp.test'],
    returns: (r) => expect((r as Employee[]).map((e) => e.email)).toEqual(['a@corp.test', 'b@corp.test']),
  },
  {
    op: 'update',
    seeded: 2,
    run: (c) =>
      c.employee.update({ where: { email: 'e1@corp.test' }, data: { name: 'Renamed', salary: '99.99' } }),
    kind: 'updated',
    affected: ['e1@corp.test'],
    returns: (r) => expect(r).toMatchObject({ email: 'e1@corp.test', name: 'Renamed' }),
  },
  {
    op: 'updateMany',
    seeded: 3,
    run: (c) => c.employee.updateMany({ where: e1e2, data: { active: false } }),
    kind: 'updated',
    affected: ['e1@corp.test', 'e2@corp.test'],
    returns: (r) => expect(r).toEqual({ count: 2 }),
  },
  {
    op: 'updateManyAndReturn',
    seeded: 3,
    run: (c) => c.employee.updateManyAndReturn({ where: e1e2, data: { active: false } }),
    kind: 'updated',
    affected: ['e1@corp.test', 'e2@corp.test'],
    returns: (r) => expect((r as Employee[]).map((e) => e.active)).toEqual([false, false]),
  },
  {
    op: 'upsert (creates)',
    seeded: 1,
    run: (c) =>
      c.employee.upsert({
        where: { email: 'new@corp.test' },
        create: newEmployee('new'),
        update: { name: 'unused' },
      }),
    kind: 'created',
    affected: ['new@corp.test'],
    returns: (r) => expect(r).toMatchObject({ email: 'new@corp.test', name: 'new' }),
  },
  {
    op: 'upsert (updates)',
    seeded: 1,
    run: (c) =>
      c.employee.upsert({
        where: { email: 'e1@corp.test' },
        create: newEmployee('unused'),
        update: { name: 'Upserted' },
      }),
    kind: 'updated',
    affected: ['e1@corp.test'],
    returns: (r) => expect(r).toMatchObject({ email: 'e1@corp.test', name: 'Upserted' }),
  },
  {
    op: 'delete',
    seeded: 2,
    run: (c) => c.employee.delete({ where: { email: 'e2@corp.test' } }),
    kind: 'deleted',
    affected: ['e2@corp.test'],
    returns: (r) => expect(r).toMatchObject({ email: 'e2@corp.test', name: 'Employee 2' }),
  },
  {
    op: 'deleteMany',
    seeded: 3,
    run: (c) => c.employee.deleteMany({ where: e1e2 }),
    kind: 'deleted',
    affected: ['e1@corp.test', 'e2@corp.test'],
    returns: (r) => expect(r).toEqual({ count: 2 }),
  },
]

type Mode = 'standalone' | 'interactive' | 'batch'

/** Runs `c.run` the way `mode` says and returns what the caller gets back. */
async function runIn(mode: Mode, c: Case): Promise<unknown> {
  switch (mode) {
    case 'standalone':
      return c.run(prisma)
    case 'interactive':
      return prisma.$transaction(async (tx) => {
        await tx.auditNote.create({ data: { text: 'same transaction' } })
        return c.run(tx)
      })
    case 'batch': {
      const [, result] = await prisma.$transaction([
        prisma.auditNote.create({ data: { text: 'same transaction' } }),
        c.run(prisma) as Parameters<ExtendedPrisma['$transaction']>[0] extends (infer P)[] ? P : never,
      ])
      return result
    }
  }
}

function expectRows(rows: OutboxRowView[], kind: Kind, records: Employee[]): void {
  expect(rows).toHaveLength(records.length)
  rows.forEach((row, i) => {
    const record = records[i] as Employee
    expect(row).toMatchObject({
      aggregatetype: 'employee',
      aggregateid: record.id,
      type: `employee.${kind}`,
      topic: 'outbox.event.employee',
      headers: { schemaVersion: datamodel.models.Employee.version },
    })
    expect(row.payload).toEqual(employeePayload(record))
  })
}

describe.each<Mode>(['standalone', 'interactive', 'batch'])('%s', (mode) => {
  it.each(cases)('$op commits the change and one outbox row per affected record', async (c) => {
    const before = await seed(c.seeded)
    const result = await runIn(mode, c)
    c.returns(result)

    const after = await employees()
    const source = c.kind === 'deleted' ? before : after
    const records = c.affected.map((email) => source.find((e) => e.email === email) as Employee)
    expectRows(await outboxRows(db), c.kind, records)
    if (c.kind === 'deleted') expect(after.map((e) => e.email)).not.toContain(c.affected[0])
    if (mode !== 'standalone') expect(await base.auditNote.count()).toBe(1)
  })
})

describe('rollback leaves neither the change nor an outbox row', () => {
  it.each(cases)('interactive: $op, then the callback throws', async (c) => {
    await seed(c.seeded)
    const before = await employees()
    await expect(
      prisma.$transaction(async (tx) => {
        await c.run(tx)
        expect(await tx.outboxEvent.count(), 'the rows are written inside the transaction').toBe(
          c.affected.length,
        )
        throw new Error('boom')
      }),
    ).rejects.toThrow('boom')
    expect(await employees()).toEqual(before)
    expect(await outboxRows(db)).toEqual([])
  })

  it.each(cases)('batch: $op, then a later statement violates a unique constraint', async (c) => {
    await seed(c.seeded)
    await base.auditNote.create({ data: { id: 1, text: 'taken' } })
    const before = await employees()
    await expect(
      prisma.$transaction([
        c.run(prisma) as ReturnType<ExtendedPrisma['auditNote']['create']>,
        prisma.auditNote.create({ data: { id: 1, text: 'duplicate id' } }),
      ]),
    ).rejects.toMatchObject({ code: 'P2002' })
    expect(await employees()).toEqual(before)
    expect(await outboxRows(db)).toEqual([])
  })

  it('standalone: a write the database rejects leaves no outbox row', async () => {
    await seed(1)
    await expect(
      prisma.employee.create({ data: { ...newEmployee('x'), email: 'e1@corp.test' } }),
    ).rejects.toMatchObject({
      code: 'P2002',
    })
    await expect(
      prisma.employee.update({ where: { email: 'nobody@corp.test' }, data: { name: 'x' } }),
    ).rejects.toMatchObject({ code: 'P2025' })
    expect(await outboxRows(db)).toEqual([])
  })
})

describe('writes that affect no record write no row', () => {
  const none = { email: 'nobody@corp.test' }
  it.each<[string, (c: Client) => PromiseLike<unknown>, unknown]>([
    ['createMany with no data', (c) => c.employee.createMany({ data: [] }), { count: 0 }],
    ['createManyAndReturn with no data', (c) => c.employee.createManyAndReturn({ data: [] }), []],
    [
      'updateMany matching nothing',
      (c) => c.employee.updateMany({ where: none, data: { name: 'x' } }),
      { count: 0 },
    ],
    [
      'updateManyAndReturn matching nothing',
      (c) => c.employee.updateManyAndReturn({ where: none, data: { name: 'x' } }),
      [],
    ],
    ['deleteMany matching nothing', (c) => c.employee.deleteMany({ where: none }), { count: 0 }],
    [
      'createMany skipping duplicates only',
      (c) => c.employee.createMany({ data: [newEmployee('dup')], skipDuplicates: true }),
      { count: 0 },
    ],
  ])('%s', async (_name, run, expected) => {
    await base.employee.create({ data: newEmployee('dup') })
    await db.pool.query('TRUNCATE outbox_event')
    expect(await run(prisma)).toEqual(expected)
    expect(await prisma.$transaction(async (tx) => run(tx))).toEqual(expected)
    expect(await outboxRows(db)).toEqual([])
  })

  it('writes of a model that is not captured write no row', async () => {
    await prisma.auditNote.create({ data: { text: 'a' } })
    await prisma.auditNote.createMany({ data: [{ text: 'b' }, { text: 'c' }] })
    await prisma.auditNote.updateMany({ data: { text: 'd' } })
    await prisma.auditNote.deleteMany({})
    expect(await outboxRows(db)).toEqual([])
  })
})

describe('nested transactions (savepoints)', () => {
  it('a nested tx.$transaction commits its rows with the outer transaction', async () => {
    await prisma.$transaction(async (tx) => {
      await tx.employee.create({ data: newEmployee('outer') })
      await tx.$transaction(async (inner) => {
        await inner.employee.create({ data: newEmployee('inner') })
      })
    })
    const rows = await outboxRows(db)
    expect(rows.map((r) => [r.type, r.payload.email])).toEqual([
      ['employee.created', 'outer@corp.test'],
      ['employee.created', 'inner@corp.test'],
    ])
  })

  it('rolling back the nested transaction removes its change and rows only', async () => {
    await prisma.$transaction(async (tx) => {
      await tx.employee.create({ data: newEmployee('outer') })
      await expect(
        tx.$transaction(async (inner) => {
          await inner.employee.create({ data: newEmployee('inner') })
          await inner.employee.update({
            where: { email: 'outer@corp.test' },
            data: { name: 'changed inside' },
          })
          throw new Error('inner boom')
        }),
      ).rejects.toThrow('inner boom')
      await tx.employee.update({ where: { email: 'outer@corp.test' }, data: { name: 'changed after' } })
    })
    expect((await employees()).map((e) => [e.email, e.name])).toEqual([['outer@corp.test', 'changed after']])
    const rows = await outboxRows(db)
    expect(rows.map((r) => [r.type, r.payload.name])).toEqual([
      ['employee.created', 'outer'],
      ['employee.updated', 'changed after'],
    ])
  })

  it('an outer rollback also removes the rows of a committed nested transaction', async () => {
    await expect(
      prisma.$transaction(async (tx) => {
        await tx.$transaction(async (inner) => {
          await inner.employee.create({ data: newEmployee('inner') })
          await inner.$outbox.emit({ aggregateType: 'x', aggregateId: 1, type: 'x.nested', payload: null })
        })
        expect(await tx.outboxEvent.count()).toBe(2)
        throw new Error('outer boom')
      }),
    ).rejects.toThrow('outer boom')
    expect(await employees()).toEqual([])
    expect(await outboxRows(db)).toEqual([])
  })
})

/**
 * Failure paths: a failed outbox insert fails the write, bad events and options are refused with
 * a message naming the problem; nested writes and referential actions are captured, not missed.
 * Also: many standalone writes at once.
 */

import { PrismaPg } from '@prisma/adapter-pg'
import type { TestDatabase } from '@prisma-outbox/devkit'
import { afterAll, beforeEach, describe, expect, it } from 'vitest'
import { dropCaptureStatements, isOutboxError, OutboxError } from '../src/index.js'
import { PrismaClient } from './generated/client/client.js'
import { captureSql, outbox } from './generated/outbox/index.js'
import { type ExtendedPrisma, extendedPrisma, outboxRows, useCaptureDatabase } from './helpers.js'

let db: TestDatabase
let base: PrismaClient
let prisma: ExtendedPrisma

useCaptureDatabase({ db: (d) => (db = d), base: (c) => (base = c), prisma: (c) => (prisma = c) })

/** Asserts `promise` rejects with an OutboxError of `code` whose message contains each of `parts`. */
async function rejectsWith(
  promise: PromiseLike<unknown> | (() => unknown),
  code: string,
  ...parts: string[]
) {
  const error = await Promise.resolve()
    .then(() => (typeof promise === 'function' ? promise() : promise))
    .then(
      () => undefined,
      (e: unknown) => e,
    )
  expect(error, 'expected an OutboxError').toBeInstanceOf(OutboxError)
  expect(isOutboxError(error)).toBe(true)
  expect((error as OutboxError).code).toBe(code)
  for (const part of parts) expect((error as OutboxError).message).toContain(part)
}

describe('a failing outbox insert fails the write', () => {
  beforeEach(async () => {
    await db.pool.query(
      `ALTER TABLE outbox_event ADD CONSTRAINT no_forbidden CHECK (payload->>'name' <> 'forbidden')`,
    )
  })
  afterAll(async () => {
    await db.pool.query('ALTER TABLE outbox_event DROP CONSTRAINT IF EXISTS no_forbidden')
  })

  it.each<[string, () => Promise<unknown>]>([
    [
      'standalone create',
      () => prisma.employee.create({ data: { email: 'f@corp.test', name: 'forbidden' } }),
    ],
    [
      'interactive create',
      () =>
        prisma.$transaction(async (tx) =>
          tx.employee.create({ data: { email: 'f@corp.test', name: 'forbidden' } }),
        ),
    ],
    [
      'batch create after another write',
      () =>
        prisma.$transaction([
          prisma.auditNote.create({ data: { text: 'first' } }),
          prisma.employee.create({ data: { email: 'f@corp.test', name: 'forbidden' } }),
        ]),
    ],
    [
      'standalone createMany',
      () =>
        prisma.employee.createMany({
          data: [
            { email: 'ok@corp.test', name: 'fine' },
            { email: 'f@corp.test', name: 'forbidden' },
          ],
        }),
    ],
  ])('%s rejects and writes nothing', async (_name, write) => {
    await expect(write()).rejects.toThrow(/no_forbidden|check constraint/i)
    expect(await base.employee.count()).toBe(0)
    expect(await base.auditNote.count()).toBe(0)
    expect(await outboxRows(db)).toEqual([])
    await db.pool.query('ALTER TABLE outbox_event DROP CONSTRAINT no_forbidden')
  })

  it('a missing outbox table fails the write', async () => {
    await db.pool.query('ALTER TABLE outbox_event DROP CONSTRAINT no_forbidden')
    await db.pool.query('ALTER TABLE outbox_event RENAME TO outbox_event_gone')
    try {
      await expect(prisma.employee.create({ data: { email: 'a@corp.test', name: 'A' } })).rejects.toThrow(
        /outbox_event/,
      )
      await expect(
        prisma.$transaction([prisma.employee.create({ data: { email: 'b@corp.test', name: 'B' } })]),
      ).rejects.toThrow(/outbox_event/)
    } finally {
      await db.pool.query('ALTER TABLE outbox_event_gone RENAME TO outbox_event')
    }
    expect(await base.employee.count()).toBe(0)
  })
})

describe('$outbox.emit input', () => {
  it('a payload JSON cannot hold fails, naming the path, and rolls back the transaction', async () => {
    const circular: Record<string, unknown> = {}
    circular.self = circular
    for (const [payload, path] of [
      [{ fn: () => 1 }, '$.fn'],
      [{ list: [1, Number.NaN] }, '$.list[1]'],
      [circular, '$.self'],
      [Symbol('s'), '$'],
    ] as const) {
      await rejectsWith(
        prisma.$transaction(async (tx) => {
          await tx.employee.create({ data: { email: 'a@corp.test', name: 'A' } })
          await tx.$outbox.emit({ aggregateType: 'x', aggregateId: 1, type: 'x.y', payload })
        }),
        'OUTBOX_UNSERIALISABLE_PAYLOAD',
        path,
      )
    }
    expect(await base.employee.count()).toBe(0)
    expect(await outboxRows(db)).toEqual([])
  })

  it.each<[string, Record<string, unknown>, string]>([
    ['missing type', { aggregateType: 'x', aggregateId: 1, payload: {} }, 'type'],
    ['empty aggregateId', { aggregateType: 'x', aggregateId: '', type: 'x.y', payload: {} }, 'aggregateId'],
    [
      'bad topic',
      { aggregateType: 'x', aggregateId: 1, type: 'x.y', payload: {}, topic: 'bad topic!' },
      'topic',
    ],
    ['bad aggregateType', { aggregateType: '.x', aggregateId: 1, type: 'x.y', payload: {} }, 'aggregateType'],
    ['missing payload', { aggregateType: 'x', aggregateId: 1, type: 'x.y' }, 'payload'],
    [
      'non-string header',
      { aggregateType: 'x', aggregateId: 1, type: 'x.y', payload: {}, headers: { n: 1 } },
      'headers',
    ],
    ['unknown field', { aggregateType: 'x', aggregateId: 1, type: 'x.y', payload: {}, key: 'k' }, 'key'],
  ])('%s is refused, naming the field', async (_name, input, field) => {
    await rejectsWith(() => prisma.$outbox.emit(input as never), 'OUTBOX_INVALID_EVENT', field)
    await rejectsWith(
      prisma.$transaction(async (tx) => tx.$outbox.emit(input as never)),
      'OUTBOX_INVALID_EVENT',
      field,
    )
    expect(await outboxRows(db)).toEqual([])
  })
})

describe('bad options fail when the extension is built', () => {
  it.each<[string, Parameters<typeof outbox>[0], string[]]>([
    ['unknown model', { models: { Nope: true } as never }, ['models.Nope', 'Nope', 'Employee']],
    ['bad topic', { models: { Employee: { topic: 'bad topic!' } } }, ['bad topic!', 'Employee']],
    ['bad aggregateType', { models: { Employee: { aggregateType: 'has space' } } }, ['has space']],
    ['missing outbox model', { outboxModel: 'Nope' as never }, ['"Nope"', 'outbox model']],
    ['outbox model without outbox columns', { outboxModel: 'AuditNote' }, ['AuditNote', 'aggregatetype']],
    ['capturing the outbox model', { models: { OutboxEvent: true } }, ['OutboxEvent']],
    ['unknown option', { topics: [] } as never, ['topics']],
    ['headers not a function', { headers: { traceparent: 'x' } } as never, ['headers']],
  ])('%s', async (_name, options, parts) => {
    await rejectsWith(() => base.$extends(outbox(options)), 'OUTBOX_INVALID_OPTIONS', ...parts)
  })

  it('headers() returning non-strings fails the write, not silently', async () => {
    const client = extendedPrisma(db, { headers: () => ({ n: 1 }) as never })
    try {
      await rejectsWith(
        client.employee.create({ data: { email: 'a@corp.test', name: 'A' } }),
        'OUTBOX_INVALID_EVENT',
        'headers',
      )
      expect(await base.employee.count()).toBe(0)
    } finally {
      await client.$disconnect()
    }
  })
})

describe('nested writes and referential actions are captured, never missed', () => {
  it('nested creates and upserts of captured records each get their event, in any call form', async () => {
    await prisma.department.create({
      data: { name: 'R&D', employees: { create: [{ email: 'a@corp.test', name: 'A' }] } },
    })
    await prisma.$transaction(async (tx) =>
      tx.employee.create({
        data: { email: 'b@corp.test', name: 'B', department: { create: { name: 'Ops' } } },
      }),
    )
    await prisma.employee.upsert({
      where: { email: 'a@corp.test' },
      create: { email: 'a@corp.test', name: 'A' },
      update: { department: { upsert: { create: { name: 'x' }, update: { name: 'R&D 2' } } } },
    })
    const rows = await outboxRows(db)
    expect(rows.map((r) => [r.type, r.payload.name])).toEqual([
      ['department.created', 'R&D'],
      ['employee.created', 'A'],
      ['department.created', 'Ops'],
      ['employee.created', 'B'],
      // The employee row itself is not written (no scalar changes), as in plain Prisma.
      ['department.updated', 'R&D 2'],
    ])
  })

  it('connecting captured records from the side without the key gives their updated events', async () => {
    const { id } = await base.department.create({ data: { name: 'R&D' } })
    const e = await base.employee.create({ data: { email: 'a@corp.test', name: 'A' } })
    await db.pool.query('TRUNCATE outbox_event')
    await prisma.department.update({ where: { id }, data: { employees: { connect: [{ id: e.id }] } } })
    const rows = await outboxRows(db)
    expect(rows.map((r) => [r.type, r.aggregateid, r.payload.departmentId ?? null])).toContainEqual([
      'employee.updated',
      e.id,
      id,
    ])
  })

  it('deleting a Department that still has employees (onDelete SetNull) gives their updated events', async () => {
    const { id } = await base.department.create({ data: { name: 'R&D' } })
    const e = await base.employee.create({ data: { email: 'a@corp.test', name: 'A', departmentId: id } })
    await db.pool.query('TRUNCATE outbox_event')
    await prisma.department.deleteMany({ where: { name: 'R&D' } })
    expect((await base.employee.findFirstOrThrow()).departmentId).toBeNull()
    const rows = await outboxRows(db)
    expect(rows.map((r) => [r.type, r.aggregateid]).sort()).toEqual(
      [
        ['department.deleted', String(id)],
        ['employee.updated', e.id],
      ].sort(),
    )
  })
})

/** Polls until a session of this database is blocked on a lock (another transaction's row lock). */
async function waitUntilSomeoneWaitsForALock(): Promise<void> {
  for (let i = 0; i < 500; i++) {
    const { rows } = await db.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`,
    )
    if ((rows[0]?.n ?? 0) > 0) return
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  throw new Error('no session started waiting for the row lock within 5 s')
}

describe('concurrency', () => {
  it('deleteMany deletes what is left when another transaction deleted some of its records meanwhile, like plain Prisma', async () => {
    await base.employee.createMany({
      data: [
        { email: 'e1@corp.test', name: 'E1' },
        { email: 'e2@corp.test', name: 'E2' },
      ],
    })
    await db.pool.query('TRUNCATE outbox_event')
    // B deletes e1 but does not commit yet: A's delete waits for B's row lock, then skips e1.
    const other = await db.pool.connect()
    try {
      await other.query('BEGIN')
      await other.query(`DELETE FROM employee WHERE email = 'e1@corp.test'`)
      const deleting = Promise.resolve().then(() => prisma.employee.deleteMany({}))
      await waitUntilSomeoneWaitsForALock()
      await other.query('COMMIT')
      expect(await deleting).toEqual({ count: 1 })
    } finally {
      other.release()
    }
    expect(await base.employee.count()).toBe(0)
    const rows = await outboxRows(db)
    expect(rows.map((r) => [r.type, r.payload.email])).toEqual([
      ['employee.deleted', 'e1@corp.test'],
      ['employee.deleted', 'e2@corp.test'],
    ])
  })

  it('20 parallel standalone writes on different records each commit their row', async () => {
    const n = 20
    const created = await Promise.all(
      Array.from({ length: n }, (_, i) =>
        prisma.employee.create({ data: { email: `p${i}@corp.test`, name: `P${i}` } }),
      ),
    )
    await Promise.all(
      created.map((e) => prisma.employee.update({ where: { id: e.id }, data: { name: `${e.name}!` } })),
    )
    await Promise.all(
      Array.from({ length: n }, (_, i) =>
        prisma.$transaction(async (tx) => {
          await tx.membership.create({ data: { userId: i, groupId: 'g', role: 'r' } })
          await tx.$outbox.emit({
            aggregateType: 'membership',
            aggregateId: i,
            type: 'membership.checked',
            payload: i,
          })
        }),
      ),
    )
    const rows = await outboxRows(db)
    expect(rows).toHaveLength(4 * n)
    for (const e of created) {
      expect(
        rows
          .filter((r) => r.aggregateid === e.id)
          .map((r) => r.type)
          .sort(),
      ).toEqual(['employee.created', 'employee.updated'])
    }
    expect(rows.filter((r) => r.type === 'membership.created')).toHaveLength(n)
    expect(rows.filter((r) => r.type === 'membership.checked')).toHaveLength(n)
    expect(new Set(rows.map((r) => r.id)).size).toBe(4 * n)
  })
})

describe('installing and verifying the capture triggers', () => {
  const dropAll = async () => {
    for (const table of ['employee', 'department', 'membership', 'blob', 'leaf', 'probe', 'pair']) {
      for (const statement of dropCaptureStatements(table)) await db.pool.query(statement)
    }
  }

  it("a client with a pool of one connection checks the triggers inside the caller's transaction", async () => {
    const single = new PrismaClient({ adapter: new PrismaPg({ connectionString: db.url, max: 1 }) }).$extends(
      outbox(),
    )
    try {
      await single.$transaction(async (tx) =>
        tx.employee.create({ data: { email: 's@corp.test', name: 'S' } }),
      )
      expect((await outboxRows(db)).map((r) => r.type)).toEqual(['employee.created'])
    } finally {
      await single.$disconnect()
    }
  })

  it("triggers: 'verify' fails naming the models and the SQL; the generated capture.sql satisfies it", async () => {
    await dropAll()
    const strict = extendedPrisma(db, { triggers: 'verify' })
    try {
      await rejectsWith(
        strict.employee.create({ data: { email: 'v@corp.test', name: 'V' } }),
        'OUTBOX_NOT_INSTALLED',
        'Employee ("employee")',
        'CREATE OR REPLACE TRIGGER "prisma_outbox_insert" AFTER INSERT ON "employee"',
      )
      expect(await base.employee.count()).toBe(0)
      await db.pool.query(captureSql)
      await strict.employee.create({ data: { email: 'v@corp.test', name: 'V' } })
      expect((await outboxRows(db)).map((r) => r.type)).toEqual(['employee.created'])
    } finally {
      await strict.$disconnect()
    }
  })

  it('five new clients writing at once install the triggers once, and every write has its event', async () => {
    await dropAll()
    const clients = Array.from({ length: 5 }, () => extendedPrisma(db))
    try {
      await Promise.all(
        clients.map((c, i) => c.employee.create({ data: { email: `c${i}@corp.test`, name: `C${i}` } })),
      )
      const rows = await outboxRows(db)
      expect(rows.map((r) => r.payload.email).sort()).toEqual([
        'c0@corp.test',
        'c1@corp.test',
        'c2@corp.test',
        'c3@corp.test',
        'c4@corp.test',
      ])
      const { rows: triggers } = await db.pool.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_trigger WHERE tgrelid = 'employee'::regclass AND tgname LIKE 'prisma_outbox_%'`,
      )
      expect(triggers[0]?.n).toBe(3)
    } finally {
      for (const c of clients) await c.$disconnect()
    }
  })

  it('installing gives up, naming why, when a long transaction holds a captured table, and works once it ends', async () => {
    await dropAll()
    const other = await db.pool.connect()
    const fresh = extendedPrisma(db)
    try {
      await other.query('BEGIN')
      await other.query('LOCK TABLE employee IN ROW EXCLUSIVE MODE')
      await rejectsWith(
        fresh.employee.create({ data: { email: 'l@corp.test', name: 'L' } }),
        'OUTBOX_NOT_INSTALLED',
        'lock timeout',
      )
      await other.query('COMMIT')
      await fresh.employee.create({ data: { email: 'l@corp.test', name: 'L' } })
      expect((await outboxRows(db)).map((r) => r.type)).toEqual(['employee.created'])
    } finally {
      other.release()
      await fresh.$disconnect()
    }
  }, 60_000)
})

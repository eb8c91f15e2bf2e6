/**
 * What the outbox rows contain: aggregate ids, JSON encoding of every Prisma scalar type,
 * annotation and option settings, headers, ids; and that the caller's select/omit/include shape
 * only the returned value, never the payload.
 */
import type { TestDatabase } from '@prisma-outbox/devkit'
import { beforeEach, describe, expect, it } from 'vitest'
import type { PrismaClient } from './generated/client/client.js'
import { datamodel } from './generated/outbox/index.js'
import { type ExtendedPrisma, extendedPrisma, outboxRows, useCaptureDatabase } from './helpers.js'

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

let db: TestDatabase
let base: PrismaClient
let prisma: ExtendedPrisma
const others: { $disconnect(): Promise<void> }[] = []

useCaptureDatabase({ db: (d) => (db = d), base: (c) => (base = c), prisma: (c) => (prisma = c) }, others)

/** Seeding writes are captured too: forget their events. */
const clearEvents = () => db.pool.query('TRUNCATE outbox_event')

/** A client with different options on the same database, disconnected in afterAll. */
function clientWith(options: Parameters<typeof extendedPrisma>[1]) {
  const client = extendedPrisma(db, options)
  others.push(client)
  return client
}

describe('aggregate ids', () => {
  it('joins a composite primary key with ":" in declaration order', async () => {
    await prisma.membership.create({ data: { userId: 1, groupId: 'abc', role: 'owner' } })
    const [row] = await outboxRows(db)
    expect(row).toMatchObject({
      aggregatetype: 'membership',
      aggregateid: '1:abc',
      type: 'membership.created',
      topic: 'outbox.event.membership',
      payload: { userId: 1, groupId: 'abc', role: 'owner' },
    })
  })

  it('percent-encodes ":" and "%" inside a key part, so ids stay unambiguous', async () => {
    await prisma.membership.create({ data: { userId: 1, groupId: 'a:b%c', role: 'member' } })
    await prisma.membership.delete({ where: { userId_groupId: { userId: 1, groupId: 'a:b%c' } } })
    const rows = await outboxRows(db)
    expect(rows.map((r) => [r.type, r.aggregateid])).toEqual([
      ['membership.created', '1:a%3Ab%25c'],
      ['membership.deleted', '1:a%3Ab%25c'],
    ])
  })

  it('composite and BigInt keys work for updateMany and deleteMany', async () => {
    await base.membership.createMany({
      data: [
        { userId: 1, groupId: 'a', role: 'member' },
        { userId: 2, groupId: 'a:b', role: 'member' },
        { userId: 3, groupId: 'c', role: 'owner' },
      ],
    })
    await base.blob.createMany({ data: [1n, 2n ** 62n].map((id) => ({ id, data: new Uint8Array([1]) })) })
    await clearEvents()
    expect(
      await prisma.membership.updateMany({ where: { role: 'member' }, data: { role: 'guest' } }),
    ).toEqual({
      count: 2,
    })
    expect(await prisma.membership.deleteMany({ where: { role: 'guest' } })).toEqual({ count: 2 })
    expect(await prisma.blob.deleteMany({})).toEqual({ count: 2 })
    expect(await base.membership.findMany()).toEqual([{ userId: 3, groupId: 'c', role: 'owner' }])
    const rows = await outboxRows(db)
    expect(rows.map((r) => [r.type, r.aggregateid]).sort()).toEqual(
      [
        ['membership.updated', '1:a'],
        ['membership.updated', '2:a%3Ab'],
        ['membership.deleted', '1:a'],
        ['membership.deleted', '2:a%3Ab'],
        ['blob.deleted', '1'],
        ['blob.deleted', '4611686018427387904'],
      ].sort(),
    )
  })

  it('writes a BigInt id as its exact decimal text', async () => {
    await prisma.blob.create({ data: { id: 9007199254740993n, data: new Uint8Array([1]) } })
    const [row] = await outboxRows(db)
    expect(row?.aggregateid).toBe('9007199254740993')
  })
})

describe('payload encoding', () => {
  it('encodes BigInt and Decimal as strings, Date as ISO-8601, Bytes as base64 and keeps Json', async () => {
    const meta = { tags: ['a', 'b'], nested: { ok: true, n: 1.5, none: null } }
    await prisma.blob.create({
      data: { id: 9007199254740993n, data: new Uint8Array([0, 1, 2, 254, 255]), meta },
    })
    await prisma.employee.create({
      data: {
        id: '0190a0a0-0000-7000-8000-000000000001',
        email: 'ada@corp.test',
        name: 'Ada',
        salary: '123456.70',
        hiredAt: new Date('2024-02-29T12:34:56.789Z'),
        profile: { languages: ['en', 'fr'], remote: true },
      },
    })
    const [blob, employee] = await outboxRows(db)
    expect(blob?.payload).toEqual({ id: '9007199254740993', data: 'AAEC/v8=', meta })
    expect(employee?.payload).toEqual({
      id: '0190a0a0-0000-7000-8000-000000000001',
      email: 'ada@corp.test',
      name: 'Ada',
      salary: '123456.70', // Decimal(12, 2): the scale is kept
      active: true,
      hiredAt: '2024-02-29T12:34:56.789Z',
      profile: { languages: ['en', 'fr'], remote: true },
      departmentId: null,
    })
  })

  it('the payload of a delete is the record before the delete', async () => {
    await base.blob.create({ data: { id: 7n, data: Buffer.from('hi'), meta: { v: 1 } } })
    await clearEvents()
    await prisma.blob.delete({ where: { id: 7n } })
    const [row] = await outboxRows(db)
    expect(row).toMatchObject({
      type: 'blob.deleted',
      aggregateid: '7',
      payload: { id: '7', data: 'aGk=', meta: { v: 1 } },
    })
  })
})

describe("the caller's select / omit / include shape the result, not the payload", () => {
  const fullPayloadKeys = ['active', 'departmentId', 'email', 'hiredAt', 'id', 'name', 'profile', 'salary']
  let departmentId: number

  beforeEach(async () => {
    departmentId = (await base.department.create({ data: { name: 'R&D' } })).id
    await clearEvents()
  })

  async function payloadKeys(): Promise<string[][]> {
    return (await outboxRows(db)).map((r) => Object.keys(r.payload).sort())
  }

  it('create with select returns only the selected fields', async () => {
    const result = await prisma.employee.create({
      data: { email: 'a@corp.test', name: 'A', departmentId },
      select: { email: true, department: { select: { name: true } } },
    })
    expect(result).toEqual({ email: 'a@corp.test', department: { name: 'R&D' } })
    expect(await payloadKeys()).toEqual([fullPayloadKeys])
  })

  it('update with omit drops the omitted fields', async () => {
    const { id } = await base.employee.create({ data: { email: 'a@corp.test', name: 'A' } })
    await clearEvents()
    const result = await prisma.employee.update({
      where: { id },
      data: { name: 'B' },
      omit: { salary: true, profile: true },
    })
    const plain = await base.employee.findUniqueOrThrow({
      where: { id },
      omit: { salary: true, profile: true },
    })
    expect(result).toEqual(plain)
    expect(result).not.toHaveProperty('salary')
    expect(await payloadKeys()).toEqual([fullPayloadKeys])
  })

  it('upsert with include adds the relation', async () => {
    const result = await prisma.employee.upsert({
      where: { email: 'a@corp.test' },
      create: { email: 'a@corp.test', name: 'A', departmentId },
      update: {},
      include: { department: true },
    })
    expect(result.department).toEqual({ id: departmentId, name: 'R&D' })
    expect(await payloadKeys()).toEqual([fullPayloadKeys])
  })

  it('delete with select returns the selected fields of the deleted record', async () => {
    const { id } = await base.employee.create({ data: { email: 'a@corp.test', name: 'A', departmentId } })
    await clearEvents()
    const result = await prisma.employee.delete({ where: { id }, select: { name: true, department: true } })
    expect(result).toEqual({ name: 'A', department: { id: departmentId, name: 'R&D' } })
    expect(await payloadKeys()).toEqual([fullPayloadKeys])
  })

  it('createManyAndReturn and updateManyAndReturn with select / omit', async () => {
    const created = await prisma.employee.createManyAndReturn({
      data: [
        { email: 'a@corp.test', name: 'A' },
        { email: 'b@corp.test', name: 'B' },
      ],
      select: { email: true },
    })
    expect(created).toEqual([{ email: 'a@corp.test' }, { email: 'b@corp.test' }])
    const updated = await prisma.employee.updateManyAndReturn({
      where: {},
      data: { active: false },
      omit: { id: true, salary: true, hiredAt: true, profile: true, departmentId: true },
    })
    expect(updated.sort((x, y) => x.email.localeCompare(y.email))).toEqual([
      { email: 'a@corp.test', name: 'A', active: false },
      { email: 'b@corp.test', name: 'B', active: false },
    ])
    expect(await payloadKeys()).toEqual(Array(4).fill(fullPayloadKeys))
  })

  it('createManyAndReturn with include reads the relations, in order', async () => {
    const created = await prisma.employee.createManyAndReturn({
      data: [
        { email: 'b@corp.test', name: 'B', departmentId },
        { email: 'a@corp.test', name: 'A' },
      ],
      include: { department: true },
    })
    expect(await payloadKeys()).toEqual([fullPayloadKeys, fullPayloadKeys])
    const plain = await base.employee.createManyAndReturn({
      data: [{ email: 'c@corp.test', name: 'C', departmentId }],
      include: { department: true },
    })
    expect(created.map((e) => [e.email, e.department])).toEqual([
      ['b@corp.test', { id: departmentId, name: 'R&D' }],
      ['a@corp.test', null],
    ])
    expect(Object.keys(created[0] ?? {}).sort()).toEqual(Object.keys(plain[0] ?? {}).sort())
  })
})

describe('settings from annotations and options', () => {
  it('/// @outbox(aggregateType, topic) on Department sets both', async () => {
    const { id } = await prisma.department.create({ data: { name: 'Sales' } })
    const [row] = await outboxRows(db)
    expect(row).toMatchObject({
      aggregatetype: 'department',
      aggregateid: String(id),
      type: 'department.created',
      topic: 'hr.departments',
      payload: { id, name: 'Sales' },
    })
  })

  it('the models option adds a model that is not annotated', async () => {
    const client = clientWith({ models: { AuditNote: true } })
    const { id } = await client.auditNote.create({ data: { text: 'hello' } })
    const [row] = await outboxRows(db)
    expect(row).toMatchObject({
      aggregatetype: 'auditNote',
      aggregateid: String(id),
      type: 'auditNote.created',
      topic: 'outbox.event.auditNote',
      payload: { id, text: 'hello' },
    })
  })

  it('the models option overrides an annotation, field by field', async () => {
    const client = clientWith({
      models: { Employee: { aggregateType: 'staff', topic: 'hr.staff' }, Department: { topic: 'hr.teams' } },
    })
    await client.employee.create({ data: { email: 'a@corp.test', name: 'A' } })
    await client.department.create({ data: { name: 'Ops' } })
    const rows = await outboxRows(db)
    expect(rows.map((r) => [r.aggregatetype, r.type, r.topic])).toEqual([
      ['staff', 'staff.created', 'hr.staff'],
      ['department', 'department.created', 'hr.teams'],
    ])
  })

  it('the headers option adds headers to every row, read at each write', async () => {
    let traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'
    const client = clientWith({ headers: () => ({ traceparent }) })
    await client.employee.create({ data: { email: 'a@corp.test', name: 'A' } })
    traceparent = '00-11111111111111111111111111111111-2222222222222222-01'
    await client.$transaction(async (tx) => {
      await tx.employee.update({ where: { email: 'a@corp.test' }, data: { name: 'B' } })
      await tx.$outbox.emit({
        aggregateType: 'x',
        aggregateId: 1,
        type: 'x.happened',
        payload: {},
        headers: { extra: 'y' },
      })
    })
    const rows = await outboxRows(db)
    const schemaVersion = datamodel.models.Employee.version
    expect(rows.map((r) => r.headers)).toEqual([
      { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', schemaVersion },
      { traceparent, schemaVersion },
      { traceparent, extra: 'y' },
    ])
  })

  it('headers reach the events of batch transactions and of cascades, and do not leak into later transactions', async () => {
    let traceparent = 'batch'
    const client = clientWith({ headers: () => ({ traceparent }) })
    const d = await client.department.create({ data: { name: 'H' } })
    await client.$transaction([
      client.employee.create({ data: { email: 'h1@corp.test', name: 'H1', departmentId: d.id } }),
      client.employee.create({ data: { email: 'h2@corp.test', name: 'H2', departmentId: d.id } }),
    ])
    traceparent = 'cascade'
    await client.department.delete({ where: { id: d.id } })
    await base.employee.update({ where: { email: 'h1@corp.test' }, data: { name: 'plain' } })
    const rows = await outboxRows(db)
    expect(rows.map((r) => [r.type, r.headers.traceparent ?? 'none'])).toEqual([
      ['department.created', 'batch'],
      ['employee.created', 'batch'],
      ['employee.created', 'batch'],
      ['department.deleted', 'cascade'],
      ['employee.updated', 'cascade'],
      ['employee.updated', 'cascade'],
      ['employee.updated', 'none'],
    ])
  })

  it('event ids are UUIDv7, unique, their millisecond timestamps never decreasing in write order', async () => {
    await prisma.employee.createMany({
      data: Array.from({ length: 5 }, (_, i) => ({ email: `e${i}@corp.test`, name: `E${i}` })),
    })
    await prisma.department.create({ data: { name: 'Later' } })
    const ids = (await outboxRows(db)).map((r) => r.id)
    expect(ids).toHaveLength(6)
    for (const id of ids) expect(id).toMatch(UUID_V7)
    // Rows of one statement share a millisecond; the relay orders by seq, not by id.
    const millis = ids.map((id) => Number.parseInt(id.replaceAll('-', '').slice(0, 12), 16))
    expect([...millis].sort((a, b) => a - b)).toEqual(millis)
    expect(new Set(ids).size).toBe(6)
  })
})

describe('$outbox.emit', () => {
  it('writes a custom event inside an interactive transaction, and rolls back with it', async () => {
    await prisma.$transaction(async (tx) => {
      const written = await tx.$outbox.emit({
        aggregateType: 'payroll',
        aggregateId: 42n,
        type: 'payroll.recalculated',
        payload: { total: 10n, at: new Date('2025-01-01T00:00:00Z') },
      })
      expect(written).toBe(1)
    })
    await expect(
      prisma.$transaction(async (tx) => {
        await tx.$outbox.emit({
          aggregateType: 'payroll',
          aggregateId: 'gone',
          type: 'payroll.lost',
          payload: null,
        })
        throw new Error('boom')
      }),
    ).rejects.toThrow('boom')
    const rows = await outboxRows(db)
    expect(rows).toHaveLength(1)
    expect(rows[0]).toMatchObject({
      aggregatetype: 'payroll',
      aggregateid: '42',
      type: 'payroll.recalculated',
      topic: 'outbox.event.payroll',
      payload: { total: '10', at: '2025-01-01T00:00:00.000Z' },
      headers: {},
    })
    expect(rows[0]?.id).toMatch(UUID_V7)
  })

  it('works standalone and as an element of a batch transaction', async () => {
    await prisma.$outbox.emit({
      aggregateType: 'a',
      aggregateId: 1,
      type: 'a.one',
      payload: 1,
      topic: 'custom.topic',
    })
    await prisma.$transaction([
      prisma.employee.create({ data: { email: 'a@corp.test', name: 'A' } }),
      prisma.$outbox.emit({ aggregateType: 'a', aggregateId: 2, type: 'a.two', payload: [1, 2] }) as never,
    ])
    await expect(
      prisma.$transaction([
        prisma.$outbox.emit({ aggregateType: 'a', aggregateId: 3, type: 'a.three', payload: 'x' }) as never,
        prisma.department.create({ data: { name: 'D' } }),
        prisma.department.create({ data: { name: 'D' } }),
      ]),
    ).rejects.toMatchObject({ code: 'P2002' })
    const rows = await outboxRows(db)
    expect(rows.map((r) => [r.type, r.topic, r.payload])).toEqual([
      ['a.one', 'custom.topic', 1],
      ['employee.created', 'outbox.event.employee', expect.objectContaining({ email: 'a@corp.test' })],
      ['a.two', 'outbox.event.a', [1, 2]],
    ])
  })
})

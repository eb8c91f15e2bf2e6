/**
 * The examples of packages/extension/README.md, run as written (connection and ids supplied).
 */

import { PrismaPg } from '@prisma/adapter-pg'
import type { TestDatabase } from '@prisma-outbox/devkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { outboxMigrationSql, outboxModelPrisma } from '../src/sql/index.js'
import { PrismaClient } from './generated/client/client.js'
import { datamodel, outbox } from './generated/outbox/index.js'
import { dispose, outboxRows, testDatabase } from './helpers.js'

let db: TestDatabase
let connectionString: string
const clients: { $disconnect(): Promise<void> }[] = []
beforeAll(async () => {
  db = await testDatabase()
  connectionString = db.url
})
afterAll(async () => {
  await dispose(db, ...clients)
})

describe('README: adopt it in five minutes', () => {
  it('step 3: create, interactive transaction with emit, batch delete', async () => {
    const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString }) }).$extends(outbox())
    clients.push(prisma)

    const { id } = await prisma.employee.create({ data: { email: 'ada@example.com', name: 'Ada' } }) // + employee.created

    await prisma.$transaction(async (tx) => {
      await tx.employee.update({ where: { id }, data: { name: 'Ada L.' } }) // + employee.updated
      await tx.$outbox.emit({
        aggregateType: 'payroll',
        aggregateId: id,
        type: 'payroll.recalculated',
        payload: { id },
      })
    })

    await prisma.$transaction([prisma.employee.delete({ where: { id } })]) // + employee.deleted

    const rows = await outboxRows(db)
    expect(rows.map((r) => [r.type, r.aggregateid, r.topic])).toEqual([
      ['employee.created', id, 'outbox.event.employee'],
      ['employee.updated', id, 'outbox.event.employee'],
      ['payroll.recalculated', id, 'outbox.event.payroll'],
      ['employee.deleted', id, 'outbox.event.employee'],
    ])
  })

  it('step 2: the migration and the model are exported as text', () => {
    expect(outboxMigrationSql()).toContain('CREATE TABLE "outbox_event"')
    expect(outboxModelPrisma()).toContain('model OutboxEvent')
  })
})

describe('README: options', () => {
  it('captures more models, overrides an annotation and adds headers', async () => {
    const currentTraceparent = () => '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'
    const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString }) }).$extends(
      outbox({
        // capture more models, or override an annotation (names are checked by TypeScript)
        models: { AuditNote: true, Employee: { aggregateType: 'staff', topic: 'hr.staff' } },
        outboxModel: 'OutboxEvent', // the outbox model's name
        headers: () => ({ traceparent: currentTraceparent() }), // added to every event
      }),
    )
    clients.push(prisma)
    await db.pool.query('DELETE FROM outbox_event')
    const note = await prisma.auditNote.create({ data: { text: 'hello' } })
    const staff = await prisma.employee.create({ data: { email: 'grace@example.com', name: 'Grace' } })
    const rows = await outboxRows(db)
    expect(rows.map((r) => [r.type, r.aggregateid, r.topic, r.headers])).toEqual([
      [
        'auditNote.created',
        String(note.id),
        'outbox.event.auditNote',
        { traceparent: currentTraceparent(), schemaVersion: datamodel.models.AuditNote.version },
      ],
      [
        'staff.created',
        staff.id,
        'hr.staff',
        { traceparent: currentTraceparent(), schemaVersion: datamodel.models.Employee.version },
      ],
    ])
  })
})

/**
 * The examples of packages/extension/README.md, run as written (connection and ids supplied).
 */

import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { trace } from '@opentelemetry/api'
import { PrismaPg } from '@prisma/adapter-pg'
import type { TestDatabase } from '@prisma-outbox/devkit'
import { inMemoryTracing } from '@prisma-outbox/devkit/otel'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { defineEvents, eventJsonSchemas } from '../src/index.js'
import { captureSpans, traceHeaders } from '../src/otel/index.js'
import { outboxMigrationSql, outboxModelPrisma } from '../src/sql/index.js'
import { PrismaClient } from './generated/client/client.js'
import { datamodel, events, type OutboxEvents, outbox } from './generated/outbox/index.js'
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

describe('README: typed events', () => {
  const base = () => new PrismaClient({ adapter: new PrismaPg({ connectionString }) })

  it('parses an event of the catalogue into its payload type', async () => {
    const prisma = base().$extends(outbox())
    clients.push(prisma)
    const { id } = await prisma.employee.create({
      data: { email: `typed-${Date.now()}@example.com`, name: 'Ada' },
    })
    const [row] = (await outboxRows(db)).filter((r) => r.aggregateid === id && r.type === 'employee.created')
    const json: unknown = JSON.parse(JSON.stringify(row?.payload))

    const payload: OutboxEvents['employee.created'] = events['employee.created'].schema.parse(json)

    expect(payload).toMatchObject({ id, name: 'Ada' })
    expect(row?.headers).toMatchObject({ schemaVersion: events['employee.created'].version })
  })

  it('custom event types: emit takes the declared types, and their JSON Schemas go to files', async () => {
    const customEvents = defineEvents({
      'payroll.recalculated': { aggregateType: 'payroll', schema: z.object({ total: z.string() }) },
      'payroll.closed': {
        aggregateType: 'payroll',
        topic: 'hr.payroll',
        schema: z.object({ month: z.number().int() }),
      },
    })
    const prisma = base().$extends(outbox({ events: customEvents }))
    clients.push(prisma)
    const id = `p-${Date.now()}`
    await prisma.$outbox.emit({ type: 'payroll.closed', aggregateId: id, payload: { month: 3 } })
    const [row] = (await outboxRows(db)).filter((r) => r.aggregateid === id)
    expect(row).toMatchObject({ type: 'payroll.closed', topic: 'hr.payroll', payload: { month: 3 } })

    const dir = mkdtempSync(join(tmpdir(), 'outbox-readme-schemas-'))
    mkdirSync(join(dir, 'schemas'))
    for (const [topic, schema] of Object.entries(eventJsonSchemas(customEvents)))
      writeFileSync(join(dir, `schemas/${topic}.schema.json`), `${JSON.stringify(schema, null, 2)}\n`)
    const written = JSON.parse(readFileSync(join(dir, 'schemas/hr.payroll.schema.json'), 'utf8'))
    expect(JSON.stringify(written)).toContain('payroll.closed')
  })
})

describe('README: tracing (OpenTelemetry)', () => {
  it('traceHeaders puts the active span on the row; captureSpans gives each write its own span', async () => {
    const tracing = inMemoryTracing()
    try {
      const base = new PrismaClient({ adapter: new PrismaPg({ connectionString }) })
      const prisma = base.$extends(outbox({ headers: traceHeaders }))
      const spanned = base
        .$extends(captureSpans({ models: ['Employee'] }))
        .$extends(outbox({ headers: traceHeaders }))
      clients.push(base)
      const request = await trace.getTracer('readme').startActiveSpan('request', async (span) => {
        await prisma.employee.create({ data: { email: `traced-${Date.now()}@example.com`, name: 'A' } })
        span.end()
        return span.spanContext()
      })
      const { id } = await spanned.employee.create({
        data: { email: `spanned-${Date.now()}@example.com`, name: 'B' },
      })
      const rows = (await outboxRows(db)).filter((r) => r.type === 'employee.created')
      const traced = rows.find((r) =>
        (r.headers as Record<string, string>).traceparent?.includes(request.spanId),
      )
      expect(traced?.headers).toMatchObject({ traceparent: `00-${request.traceId}-${request.spanId}-01` })

      const capture = tracing.exporter
        .getFinishedSpans()
        .find((s) => s.name === 'outbox capture Employee.create')
      const own = rows.find((r) => r.aggregateid === id)
      expect(own?.headers).toMatchObject({
        traceparent: `00-${capture?.spanContext().traceId}-${capture?.spanContext().spanId}-01`,
      })
    } finally {
      await tracing.stop()
    }
  })
})

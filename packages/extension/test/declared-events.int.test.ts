/**
 * Custom event types declared with `defineEvents`: `$outbox.emit` takes only declared types with
 * payloads of their schemas (a compile error otherwise, and a clear error at run time for callers
 * TypeScript does not check), writes the parsed payload and the type's `schemaVersion` header.
 */
import { PrismaPg } from '@prisma/adapter-pg'
import type { TestDatabase } from '@prisma-outbox/devkit'
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { defineEvents, OutboxError } from '../src/index.js'
import { PrismaClient } from './generated/client/client.js'
import { outbox } from './generated/outbox/index.js'
import { outboxRows, useCaptureDatabase } from './helpers.js'

let db: TestDatabase
const others: { $disconnect(): Promise<void> }[] = []
useCaptureDatabase({ db: (d) => (db = d), base: () => undefined, prisma: () => undefined }, others)

const customEvents = defineEvents({
  'payroll.recalculated': {
    aggregateType: 'payroll',
    schema: z.object({ total: z.string(), at: z.iso.datetime() }),
  },
  'payroll.closed': {
    aggregateType: 'payroll',
    topic: 'hr.payroll',
    schema: z.object({ month: z.number().int() }),
  },
})

function client() {
  const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: db.url }) }).$extends(
    outbox({ events: customEvents }),
  )
  others.push(prisma)
  return prisma
}

describe('declared custom events', () => {
  it('emit writes the declared aggregate type, topic, parsed payload and schema version', async () => {
    const prisma = client()
    await prisma.$transaction(async (tx) => {
      await tx.$outbox.emit({
        type: 'payroll.recalculated',
        aggregateId: 42,
        payload: { total: '10.00', at: '2025-01-01T00:00:00.000Z' },
        headers: { extra: 'x' },
      })
      await tx.$outbox.emit({ type: 'payroll.closed', aggregateId: 'p-1', payload: { month: 3 } })
    })
    const rows = await outboxRows(db)
    expect(
      rows.map(({ aggregatetype, aggregateid, type, payload, topic, headers }) => ({
        aggregatetype,
        aggregateid,
        type,
        payload,
        topic,
        headers,
      })),
    ).toEqual([
      {
        aggregatetype: 'payroll',
        aggregateid: '42',
        type: 'payroll.recalculated',
        payload: { total: '10.00', at: '2025-01-01T00:00:00.000Z' },
        topic: 'outbox.event.payroll',
        headers: { extra: 'x', schemaVersion: customEvents['payroll.recalculated'].version },
      },
      {
        aggregatetype: 'payroll',
        aggregateid: 'p-1',
        type: 'payroll.closed',
        payload: { month: 3 },
        topic: 'hr.payroll',
        headers: { schemaVersion: customEvents['payroll.closed'].version },
      },
    ])
  })

  it('a typo in the type or the payload is a compile error and, unchecked, fails the call and its transaction', async () => {
    const prisma = client()
    await expect(
      prisma.$transaction(async (tx) => {
        await tx.employee.create({ data: { email: 'a@corp.test', name: 'A' } })
        // @ts-expect-error: 'payroll.recalcualted' is not a declared type
        await tx.$outbox.emit({ type: 'payroll.recalcualted', aggregateId: 1, payload: { month: 1 } })
      }),
    ).rejects.toThrow(
      /type "payroll.recalcualted" is not declared in options.events \(declared: payroll.recalculated, payroll.closed\)/,
    )
    await expect(
      (async () =>
        // @ts-expect-error: month must be a number
        prisma.$outbox.emit({ type: 'payroll.closed', aggregateId: 1, payload: { month: '3' } }))(),
    ).rejects.toThrow(/payload of "payroll.closed".*month/s)
    await expect(
      (async () =>
        prisma.$outbox.emit({
          type: 'payroll.closed',
          aggregateId: 1,
          // @ts-expect-error: the declaration gives the aggregate type
          aggregateType: 'x',
          payload: { month: 3 },
        }))(),
    ).rejects.toThrow(OutboxError)
    expect(await outboxRows(db)).toEqual([])
  })

  it('a bad declaration fails naming the event type', () => {
    expect(() => defineEvents({ 'a.b': { aggregateType: 'has space', schema: z.object({}) } })).toThrow(
      /event type "a.b".*aggregateType/s,
    )
    expect(() => defineEvents({ 'a.b': { aggregateType: 'a', schema: {} as never } })).toThrow(
      /event type "a.b".*zod schema/s,
    )
    expect(() => outbox({ events: {} })).toThrow(
      /options.events must be the non-empty result of defineEvents/,
    )
  })
})

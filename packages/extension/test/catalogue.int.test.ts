/**
 * The generated event catalogue (test/generated/outbox/events.ts, from a schema with every
 * Prisma scalar type): its types are the payloads as encoded, its zod schemas parse exactly the
 * payloads the capture triggers write, each event carries its schema version, and a JSON Schema
 * document is written per topic.
 */
import { readFile } from 'node:fs/promises'
import { PrismaPg } from '@prisma/adapter-pg'
import type { TestDatabase } from '@prisma-outbox/devkit'
import { describe, expect, expectTypeOf, it } from 'vitest'
import { PrismaClient } from './generated/client/client.js'
import {
  datamodel,
  events,
  type JsonValue,
  type OutboxEvents,
  type OutboxEventType,
  outbox,
  ProbePayload,
} from './generated/outbox/index.js'
import { outboxRows, useCaptureDatabase } from './helpers.js'

let db: TestDatabase
const others: { $disconnect(): Promise<void> }[] = []
useCaptureDatabase({ db: (d) => (db = d), base: () => undefined, prisma: () => undefined }, others)

describe('the generated event catalogue', () => {
  it('types each payload as encoded: BigInt, Decimal, DateTime and Bytes as strings, non-finite floats as strings', () => {
    expectTypeOf<OutboxEvents['probe.created']>().toEqualTypeOf<{
      id: string
      text: string
      n: number
      big: string
      ratio: number | 'NaN' | 'Infinity' | '-Infinity'
      small: number | 'NaN' | 'Infinity' | '-Infinity'
      price: string
      amount: string
      ok: boolean
      at: string
      atTz: string
      day: string
      data: string
      doc: JsonValue
      mood: 'happy' | 'sad'
      tags: string[]
      moods: ('happy' | 'sad')[]
      uid: string | null
    }>()
    expectTypeOf<OutboxEvents['probe.deleted']>().toEqualTypeOf<OutboxEvents['probe.created']>()
    expectTypeOf<OutboxEvents['department.updated']>().toEqualTypeOf<{ id: number; name: string }>()
    // Annotated models only, under their aggregate types; AuditNote is not annotated.
    expectTypeOf<'auditNote.created'>().not.toExtend<OutboxEventType>()
    expectTypeOf<'employee.created' | 'hr.departments'>().not.toEqualTypeOf<OutboxEventType>()
    expect(events['department.created'].topic).toBe('hr.departments')
    expect(events['employee.created'].topic).toBe('outbox.event.employee')
    expect(Object.keys(events)).not.toContain('auditNote.created')
  })

  it('parses exactly what the triggers write, and each row carries its schema version', async () => {
    const client = new PrismaClient({ adapter: new PrismaPg({ connectionString: db.url }) }).$extends(
      outbox(),
    )
    others.push(client)
    const probe = await client.probe.create({
      data: {
        big: -9007199254740993n,
        ratio: Number.NaN,
        small: 0.25,
        price: '-0.5',
        amount: '12345678.90',
        at: new Date('+012345-06-07T08:09:10.011Z'),
        data: new Uint8Array([0, 1, 2, 254, 255]),
        doc: [1, { a: null }],
        mood: 'sad',
        moods: ['sad'],
      },
    })
    await client.probe.update({
      where: { id: probe.id },
      data: { uid: '0190a0a0-0000-7000-8000-000000000001' },
    })
    await client.probe.delete({ where: { id: probe.id } })
    await client.department.create({ data: { name: 'Ops' } })
    const rows = await outboxRows(db)
    expect(rows.map((r) => r.type)).toEqual([
      'probe.created',
      'probe.updated',
      'probe.deleted',
      'department.created',
    ])
    for (const row of rows) {
      const entry = events[row.type as OutboxEventType]
      expect(entry.schema.parse(row.payload)).toEqual(row.payload)
      expect(row.topic).toBe(entry.topic)
      expect(row.headers.schemaVersion).toBe(entry.version)
    }
    expect(events['probe.created'].version).toBe(datamodel.models.Probe.version)
    expect(rows[0]?.payload).toMatchObject({ big: '-9007199254740993', ratio: 'NaN', small: 0.25 })
  })

  it('the zod schemas reject what the triggers never write', () => {
    const valid = {
      id: 'p',
      text: '',
      n: 1,
      big: '1',
      ratio: 1.5,
      small: 'Infinity',
      price: '1.00',
      amount: 'NaN',
      ok: false,
      at: '2024-02-29T12:34:56.789Z',
      atTz: '2024-02-29T12:34:56.789Z',
      day: '2024-02-29T00:00:00.000Z',
      data: 'AAEC',
      doc: null,
      mood: 'happy',
      tags: [],
      moods: [],
      uid: null,
    }
    expect(ProbePayload.safeParse(valid).success).toBe(true)
    for (const [field, bad] of [
      ['big', 1],
      ['big', '1.5'],
      ['ratio', 'nan'],
      ['price', '1e3'],
      ['at', '2024-02-29T12:34:56Z'],
      ['data', 'not base64!'],
      ['mood', 'SAD'],
      ['n', 1.5],
      ['uid', undefined],
      ['tags', [1]],
    ] as const) {
      const result = ProbePayload.safeParse({ ...valid, [field]: bad })
      expect(result.success, `${field} = ${JSON.stringify(bad)}`).toBe(false)
      expect(result.error?.issues[0]?.path[0]).toBe(field)
    }
  })

  it('writes one JSON Schema document per topic, naming each event type and its version', async () => {
    const file = new URL('./generated/outbox/schemas/hr.departments.schema.json', import.meta.url)
    const schema = JSON.parse(await readFile(file, 'utf8'))
    expect(schema['x-outbox-events']).toEqual({
      'department.created': {
        payload: { $ref: '#/$defs/Department' },
        schemaVersion: events['department.created'].version,
      },
      'department.updated': {
        payload: { $ref: '#/$defs/Department' },
        schemaVersion: events['department.updated'].version,
      },
      'department.deleted': {
        payload: { $ref: '#/$defs/Department' },
        schemaVersion: events['department.deleted'].version,
      },
    })
    expect(schema.$defs.Department).toEqual({
      title: 'Department payload',
      type: 'object',
      properties: { id: { type: 'integer' }, name: { type: 'string' } },
      required: ['id', 'name'],
    })
    const probe = JSON.parse(
      await readFile(
        new URL('./generated/outbox/schemas/outbox.event.probe.schema.json', import.meta.url),
        'utf8',
      ),
    )
    expect(probe.$defs.Probe.properties.uid).toEqual({ anyOf: [{ type: 'string' }, { type: 'null' }] })
    expect(probe.$defs.Probe.properties.moods).toEqual({ type: 'array', items: { enum: ['happy', 'sad'] } })
  })
})

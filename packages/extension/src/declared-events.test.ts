import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { defineEvents, eventJsonSchemas } from './declared-events.js'

describe('eventJsonSchemas', () => {
  const events = defineEvents({
    'payroll.recalculated': { aggregateType: 'payroll', schema: z.object({ total: z.string() }) },
    // A default: the message value always has `month` (the output), though emit may omit it.
    'payroll.closed': {
      aggregateType: 'payroll',
      schema: z.object({ month: z.number().int().default(1), note: z.string().optional() }),
    },
    'audit/logged': { aggregateType: 'audit', topic: 'hr.audit', schema: z.object({ who: z.string() }) },
  })

  it('Should write one document per topic, in the generated files shape', () => {
    const docs = eventJsonSchemas(events)
    expect(Object.keys(docs).sort()).toEqual(['hr.audit', 'outbox.event.payroll'])
    const payroll = docs['outbox.event.payroll']
    expect(payroll).toMatchObject({
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      $id: 'outbox.event.payroll.schema.json',
      oneOf: [{ $ref: '#/$defs/payroll.recalculated' }, { $ref: '#/$defs/payroll.closed' }],
      'x-outbox-events': {
        'payroll.recalculated': {
          payload: { $ref: '#/$defs/payroll.recalculated' },
          schemaVersion: events['payroll.recalculated'].version,
        },
        'payroll.closed': {
          payload: { $ref: '#/$defs/payroll.closed' },
          schemaVersion: events['payroll.closed'].version,
        },
      },
    })
    expect(payroll?.$defs).toMatchObject({
      'payroll.recalculated': {
        title: 'payroll.recalculated payload',
        type: 'object',
        properties: { total: { type: 'string' } },
        required: ['total'],
      },
    })
  })

  it('Should describe the payload as written (the schema output), each sub-schema without its own $schema', () => {
    const defs = eventJsonSchemas(events)['outbox.event.payroll']?.$defs as Record<string, unknown>
    const closed = defs['payroll.closed'] as Record<string, unknown>
    expect(closed.required).toEqual(['month'])
    expect(closed.properties).toMatchObject({ month: { type: 'integer', default: 1 } })
    expect(closed).not.toHaveProperty('$schema')
  })

  it('Should escape a type with "/" in its JSON pointer', () => {
    expect(eventJsonSchemas(events)['hr.audit']?.oneOf).toEqual([{ $ref: '#/$defs/audit~1logged' }])
  })
})

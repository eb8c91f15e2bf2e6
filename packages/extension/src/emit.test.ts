import { describe, expect, it } from 'vitest'
import { rowForEmit } from './emit.js'

describe('rowForEmit', () => {
  it('builds a row with the default topic and merged headers', () => {
    const row = rowForEmit(
      {
        aggregateType: 'payroll',
        aggregateId: 7n,
        type: 'payroll.done',
        payload: { at: new Date(0) },
        headers: { b: '2', a: 'x' },
      },
      { a: '1' },
    )
    expect(row).toMatchObject({
      aggregatetype: 'payroll',
      aggregateid: '7',
      type: 'payroll.done',
      topic: 'outbox.event.payroll',
      payload: '{"at":"1970-01-01T00:00:00.000Z"}',
      headers: '{"a":"x","b":"2"}',
    })
  })

  it('accepts null as the payload', () => {
    expect(rowForEmit({ aggregateType: 'a', aggregateId: 'k', type: 't', payload: null }, {}).payload).toBe(
      'null',
    )
  })

  it.each<[string, unknown, string]>([
    ['type', { aggregateType: 'a', aggregateId: 1, payload: 1 }, 'type'],
    ['aggregateId', { aggregateType: 'a', aggregateId: Number.NaN, type: 't', payload: 1 }, 'aggregateId'],
    ['topic', { aggregateType: 'a', aggregateId: 1, type: 't', payload: 1, topic: 'a b' }, 'topic'],
    ['payload', { aggregateType: 'a', aggregateId: 1, type: 't' }, 'payload'],
  ])('refuses a bad %s, naming it', (_name, input, field) => {
    expect(() => rowForEmit(input as never, {})).toThrow(
      expect.objectContaining({ code: 'OUTBOX_INVALID_EVENT' }),
    )
    expect(() => rowForEmit(input as never, {})).toThrow(field)
  })
})

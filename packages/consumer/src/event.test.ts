import { describe, expect, it } from 'vitest'
import { eventFromMessage } from './event.js'

const message = (headers: Record<string, string>, value: string | null) => ({
  key: Buffer.from('emp-1'),
  value: value === null ? null : Buffer.from(value),
  headers: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, Buffer.from(v)])),
  offset: '7',
  timestamp: '0',
  attributes: 0,
})

describe('eventFromMessage', () => {
  const id = '01a2033c-d462-7374-9d6c-401335236873'
  it('reads id, type, aggregate and payload from the relay message format', () => {
    const event = eventFromMessage(
      'outbox.event.employee',
      2,
      message(
        { id, eventType: 'employee.created', aggregateType: 'employee', traceparent: 'tp' },
        '{"name":"Ada"}',
      ),
    )
    expect(event).toEqual({
      id,
      type: 'employee.created',
      aggregateType: 'employee',
      aggregateId: 'emp-1',
      payload: { name: 'Ada' },
      headers: { id, eventType: 'employee.created', aggregateType: 'employee', traceparent: 'tp' },
      topic: 'outbox.event.employee',
      partition: 2,
      offset: '7',
    })
  })
  it('names the message when the id header is missing or not a UUID', () => {
    expect(() => eventFromMessage('t', 0, message({}, '{}'))).toThrow('message t[0]@7 has no event id')
    expect(() => eventFromMessage('t', 0, message({ id: 'nope' }, '{}'))).toThrow(
      /header "id" must be a UUID/,
    )
  })
  it('names the event when the value is not JSON', () => {
    expect(() => eventFromMessage('t', 1, message({ id }, '{oops'))).toThrow(
      `(event ${id}) has a value that is not JSON`,
    )
  })
})

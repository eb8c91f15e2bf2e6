import { describe, expect, it } from 'vitest'
import { toMessage } from './message.js'

const ROW = {
  id: '0192f0c4-0000-7000-8000-000000000001',
  aggregatetype: 'employee',
  aggregateid: '42',
  type: 'employee.updated',
  topic: 'outbox.event.employee',
  attempts: 0,
  seq: '7',
}

describe('toMessage', () => {
  it('Should follow the Debezium outbox conventions and protect the reserved headers', () => {
    const message = toMessage({
      ...ROW,
      payload: '{"id": 42, "n": 12345678901234567890}',
      headers: { traceparent: '00-abc', id: 'spoof', retries: 2, obj: { a: 1 }, gone: null },
    })
    expect(message).toEqual({
      id: '0192f0c4-0000-7000-8000-000000000001',
      topic: 'outbox.event.employee',
      key: '42',
      // the payload text is passed through untouched (no float rounding of big numbers)
      value: '{"id": 42, "n": 12345678901234567890}',
      headers: {
        traceparent: '00-abc',
        retries: '2',
        obj: '{"a":1}',
        id: '0192f0c4-0000-7000-8000-000000000001',
        eventType: 'employee.updated',
        aggregateType: 'employee',
      },
    })
  })

  it('Should put the reserved headers after the row’s own, as Debezium’s EventRouter does, even when the row spoofs one', () => {
    const message = toMessage({
      ...ROW,
      payload: '{}',
      // jsonb returns keys shortest first: a spoofed `id` comes before the others
      headers: { id: 'spoof', eventType: 'x', traceparent: '00-abc' },
    })
    expect(Object.keys(message.headers)).toEqual(['traceparent', 'id', 'eventType', 'aggregateType'])
  })
})

import { describe, expect, it } from 'vitest'
import { toMessage } from './message.js'

describe('toMessage', () => {
  it('Should follow the Debezium outbox conventions and protect the reserved headers', () => {
    const message = toMessage({
      id: '0192f0c4-0000-7000-8000-000000000001',
      aggregatetype: 'employee',
      aggregateid: '42',
      type: 'employee.updated',
      topic: 'outbox.event.employee',
      payload: '{"id": 42, "n": 12345678901234567890}',
      headers: { traceparent: '00-abc', id: 'spoof', retries: 2, obj: { a: 1 }, gone: null },
      attempts: 0,
      seq: '7',
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
})

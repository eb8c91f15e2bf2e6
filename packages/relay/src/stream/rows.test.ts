import { describe, expect, it } from 'vitest'
import { decodeInsert, outboxColumns } from './rows.js'

const names = ['txid', 'id', 'aggregatetype', 'aggregateid', 'type', 'topic', 'payload', 'headers']
const relation = (columns: string[]) => ({
  tag: 'relation' as const,
  relationId: 7,
  schema: 'public',
  name: 'outbox_event',
  columns: columns.map((name) => ({ name, typeOid: 25 })),
})
const all = [...names, 'attempts', 'seq', 'status', 'created_at']

describe('stream rows', () => {
  it('refuses a relation without an outbox column', () => {
    expect(() => outboxColumns(relation(names))).toThrow(
      'table public.outbox_event has no column "attempts": is it an outbox table?',
    )
  })

  it('reads an insert by column name, parsing headers and attempts', () => {
    const indexes = outboxColumns(relation(all))
    const values = [
      '42',
      'e1',
      'order',
      'o-1',
      'placed',
      'orders',
      '{}',
      '{"k":"v"}',
      '2',
      '9',
      'pending',
      'x',
    ]
    expect(decodeInsert({ tag: 'insert', relationId: 7, values }, indexes)).toEqual({
      id: 'e1',
      aggregatetype: 'order',
      aggregateid: 'o-1',
      type: 'placed',
      topic: 'orders',
      payload: '{}',
      headers: { k: 'v' },
      attempts: 2,
      seq: '9',
      status: 'pending',
      txid: '42',
    })
  })

  it('reads null headers as null and null attempts as 0', () => {
    const indexes = outboxColumns(relation(all))
    const values = ['42', 'e1', 'order', 'o-1', 'placed', 'orders', '{}', null, null, '9', 'pending', null]
    const decoded = decodeInsert({ tag: 'insert', relationId: 7, values }, indexes)
    expect(decoded.headers).toBeNull()
    expect(decoded.attempts).toBe(0)
  })
})

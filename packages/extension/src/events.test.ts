import { describe, expect, it } from 'vitest'
import type { OutboxModelInfo } from './datamodel.js'
import { OutboxError } from './errors.js'
import {
  aggregateIdOf,
  insertRowsStatement,
  primaryKeyFilter,
  primaryKeyWhere,
  rowForChange,
  scalarsOf,
} from './events.js'

const scalar = (type: string) => ({ kind: 'scalar' as const, type, isList: false })
const single: OutboxModelInfo = {
  dbName: 'employee',
  primaryKey: ['id'],
  fields: {
    id: scalar('String'),
    name: scalar('String'),
    department: { kind: 'object', type: 'Department', isList: false },
  },
  relations: {},
}
const composite: OutboxModelInfo = {
  dbName: 'membership',
  primaryKey: ['userId', 'groupId'],
  fields: { userId: scalar('Int'), groupId: scalar('String'), role: scalar('String') },
  relations: {},
}
const keyed = (...primaryKey: string[]): OutboxModelInfo => ({ ...single, primaryKey })

describe('aggregateIdOf', () => {
  it('is the primary key as text', () => {
    expect(aggregateIdOf('E', single, { id: 'abc', name: 'x' })).toBe('abc')
    expect(aggregateIdOf('E', single, { id: 42 })).toBe('42')
    expect(aggregateIdOf('E', single, { id: 9007199254740993n })).toBe('9007199254740993')
  })

  it('does not encode a single key, even with ":"', () => {
    expect(aggregateIdOf('E', single, { id: 'a:b%c' })).toBe('a:b%c')
  })

  it('joins composite keys with ":" in declaration order', () => {
    expect(aggregateIdOf('M', composite, { groupId: 'abc', role: 'r', userId: 1 })).toBe('1:abc')
  })

  it('percent-encodes ":" and "%" inside composite parts, so different keys never collide', () => {
    expect(aggregateIdOf('M', composite, { userId: 1, groupId: 'a:b' })).toBe('1:a%3Ab')
    expect(aggregateIdOf('M', composite, { userId: 1, groupId: '100%' })).toBe('1:100%25')
    expect(aggregateIdOf('M', composite, { userId: 1, groupId: '%3A' })).toBe('1:%253A')
    const info = keyed('a', 'b')
    expect(aggregateIdOf('X', info, { a: 'x:y', b: 'z' })).not.toBe(
      aggregateIdOf('X', info, { a: 'x', b: 'y:z' }),
    )
  })

  it('writes Date and Bytes key parts predictably', () => {
    const info = keyed('day', 'hash')
    expect(
      aggregateIdOf('X', info, { day: new Date('2024-01-02T00:00:00Z'), hash: new Uint8Array([255, 0]) }),
    ).toBe('2024-01-02T00%3A00%3A00.000Z:/wA=')
    expect(aggregateIdOf('X', keyed('day'), { day: new Date('2024-01-02T00:00:00Z') })).toBe(
      '2024-01-02T00:00:00.000Z',
    )
  })

  it('refuses a record without its key, naming the field', () => {
    expect(() => aggregateIdOf('Membership', composite, { userId: 1 })).toThrow(OutboxError)
    expect(() => aggregateIdOf('Membership', composite, { userId: 1, groupId: null })).toThrow(
      'record of Membership has no value for its primary key field groupId',
    )
  })
})

describe('primary key helpers', () => {
  it('builds a unique where, compound keys in Prisma form', () => {
    expect(primaryKeyWhere(single, { id: 'a', name: 'n' })).toEqual({ id: 'a' })
    expect(primaryKeyWhere(composite, { userId: 1, groupId: 'g', role: 'r' })).toEqual({
      userId_groupId: { userId: 1, groupId: 'g' },
    })
    expect(primaryKeyFilter(composite, { userId: 1, groupId: 'g', role: 'r' })).toEqual({
      userId: 1,
      groupId: 'g',
    })
  })

  it('scalarsOf drops relations and unknown keys', () => {
    expect(scalarsOf(single, { id: 'a', name: 'n', department: { id: 1 }, _count: 3 })).toEqual({
      id: 'a',
      name: 'n',
    })
  })
})

describe('rowForChange', () => {
  it('builds the row: type, topic, JSON payload of scalars, headers, UUIDv7 id', () => {
    const row = rowForChange(
      'Employee',
      single,
      { aggregateType: 'employee', topic: 'hr.employees' },
      'updated',
      { id: 'a', name: 'n', department: { id: 1 } },
      { traceparent: 't' },
    )
    expect(row).toMatchObject({
      aggregatetype: 'employee',
      aggregateid: 'a',
      type: 'employee.updated',
      topic: 'hr.employees',
      payload: '{"id":"a","name":"n"}',
      headers: '{"traceparent":"t"}',
    })
    expect(row.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
  })
})

describe('insertRowsStatement', () => {
  it('is one parameterised INSERT with one array per column, table name quoted', () => {
    const rows = [1, 2].map((n) => ({
      id: `id${n}`,
      aggregatetype: 'a',
      aggregateid: `${n}`,
      type: 'a.created',
      payload: '{}',
      topic: 't',
      headers: '{}',
    }))
    const [sql, ...params] = insertRowsStatement('my"table', rows)
    expect(sql).toContain('INSERT INTO "my""table"')
    expect(sql).toContain('unnest(')
    expect(params).toHaveLength(7)
    expect(params[0]).toEqual(['id1', 'id2'])
    expect(params[2]).toEqual(['1', '2'])
  })
})

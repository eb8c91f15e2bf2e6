import { describe, expect, it } from 'vitest'
import { insertRowsStatement } from './events.js'

describe('insertRowsStatement', () => {
  it('is one parameterised INSERT with one array per column, into the table given', () => {
    const rows = [1, 2].map((n) => ({
      id: `id${n}`,
      aggregatetype: 'a',
      aggregateid: `${n}`,
      type: 'a.created',
      payload: '{}',
      topic: 't',
      headers: '{}',
    }))
    const [sql, ...params] = insertRowsStatement('"app"."outbox_event"', rows)
    expect(sql).toContain('INSERT INTO "app"."outbox_event"')
    expect(sql).toContain('unnest(')
    expect(params).toHaveLength(7)
    expect(params[0]).toEqual(['id1', 'id2'])
    expect(params[2]).toEqual(['1', '2'])
  })
})

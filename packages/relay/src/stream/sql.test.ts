import { describe, expect, it } from 'vitest'
import type { Publisher } from '../core/publisher.js'
import { streamSettings } from './context.js'
import { type SettledRow, settleStreamBatch } from './sql.js'

const published: SettledRow[] = [
  { id: 'a', outcome: 'published' },
  { id: 'b', outcome: 'published' },
]
const mixed: SettledRow[] = [
  { id: 'a', outcome: 'published' },
  { id: 'b', outcome: 'dead', error: 'too large' },
  { id: 'c', outcome: 'held', error: 'held back' },
]
const settle = (rows: SettledRow[], publishedRows?: 'mark' | 'delete') =>
  settleStreamBatch({ table: 'outbox_event', streamId: 'stream:s', rows, publishedRows })

describe('stream settle statements', () => {
  it('marks published rows by default, in one UPDATE of the pending ones', () => {
    const statement = settle(published)
    expect(statement.text).toMatch(/^UPDATE "outbox_event" AS o SET status = 'published'/)
    expect(statement.text).toMatch(/\(o\.status = 'pending'\) IS NOT FALSE$/)
    expect(statement.values).toEqual([['a', 'b'], 'stream:s'])
    expect(statement.name).toMatch(/^outbox_stream_mark_/)
  })

  it("deletes published rows under 'delete', pending ones only", () => {
    const statement = settle(published, 'delete')
    expect(statement.text).toBe(
      `DELETE FROM "outbox_event" AS o WHERE o.id = ANY($1::uuid[]) AND (o.status = 'pending') IS NOT FALSE`,
    )
    expect(statement.values).toEqual([['a', 'b']])
    expect(statement.name).toMatch(/^outbox_stream_delete_/)
  })

  it("under 'delete', a mixed batch deletes the published rows and updates the dead and held ones", () => {
    const statement = settle(mixed, 'delete')
    expect(statement.text).toMatch(
      /DELETE FROM "outbox_event" AS o USING s WHERE o\.id = s\.id AND s\.outcome = 'published' AND \(o\.status = 'pending'\) IS NOT FALSE/,
    )
    expect(statement.text).toMatch(/UPDATE "outbox_event" AS o[\s\S]*AND s\.outcome <> 'published'$/)
    expect(statement.values).toEqual([
      ['a', 'b', 'c'],
      ['published', 'dead', 'held'],
      [null, 'too large', 'held back'],
      'stream:s',
    ])
    expect(settle(mixed).text).not.toMatch(/DELETE/)
    expect(settle(mixed).name).not.toBe(statement.name)
  })

  it('refuses an unknown publishedRows', () => {
    const options = {
      connectionString: 'postgresql://unused',
      pool: {
        query: () => Promise.reject(new Error('unused')),
        connect: () => Promise.reject(new Error('unused')),
      },
      publisher: {} as Publisher,
      publishedRows: 'drop' as 'delete',
    }
    expect(() => streamSettings(options, 'outbox_relay')).toThrow(
      /publishedRows must be 'mark' or 'delete', got "drop"/,
    )
  })
})

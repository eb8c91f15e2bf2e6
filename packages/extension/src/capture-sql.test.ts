import { describe, expect, it } from 'vitest'
import { captureScript, captureStatements, payloadSql } from './capture-sql.js'
import type { OutboxDatamodel, OutboxModelInfo } from './datamodel.js'

const wide: OutboxModelInfo = {
  dbName: 'wide',
  primaryKey: ['f0'],
  fields: Object.fromEntries(
    Array.from({ length: 120 }, (_, i) => [`f${i}`, { kind: 'scalar', type: 'Int', isList: false }]),
  ),
  relations: {},
}

describe('capture SQL', () => {
  it('splits wide payloads into jsonb_build_object calls of at most 100 arguments', () => {
    const sql = payloadSql({ models: { Wide: wide } }, wide, 'r')
    const calls = sql.split(' || ')
    expect(calls).toHaveLength(3)
    for (const call of calls) expect((call.match(/, to_jsonb\(/g) ?? []).length).toBeLessThanOrEqual(50)
    expect(sql).toContain(`'f119', to_jsonb(r."f119")`)
  })

  it('keeps function names within 63 bytes, distinct for long table names', () => {
    const long = (suffix: string) => ({ ...wide, dbName: `${'t'.repeat(60)}_${suffix}` })
    const datamodel: OutboxDatamodel = { models: { A: long('a'), B: long('b') } }
    const captured = new Map([
      ['A', { aggregateType: 'a', topic: 'a' }],
      ['B', { aggregateType: 'b', topic: 'b' }],
    ])
    const [a, b] = captureStatements(datamodel, { captured, outboxTable: 'outbox_event' })
    for (const c of [a, b]) expect(Buffer.byteLength(c?.functionName ?? '')).toBeLessThanOrEqual(63 + 2)
    expect(a?.functionName).not.toBe(b?.functionName)
  })

  it('maps @map-ped enum values back to their Prisma names, and qualifies names with a schema', () => {
    const datamodel: OutboxDatamodel = {
      models: {
        M: {
          dbName: 'm',
          primaryKey: ['id'],
          fields: {
            id: { kind: 'scalar', type: 'Int', isList: false },
            mood: { kind: 'enum', type: 'Mood', isList: false, dbName: 'mood_col' },
          },
          relations: {},
        },
      },
      enums: { Mood: { values: { sad: 'SAD' } } },
    }
    const captured = new Map([['M', { aggregateType: 'm', topic: 't' }]])
    const sql = captureScript(datamodel, { captured, outboxTable: 'outbox_event', schema: 'app' })
    expect(sql).toContain(`CASE r."mood_col"::text WHEN 'SAD' THEN 'sad' ELSE r."mood_col"::text END`)
    expect(sql).toContain('INSERT INTO "app"."outbox_event"')
    expect(sql).toContain('AFTER DELETE ON "app"."m"')
    expect(sql).not.toContain('search_path')
  })
})

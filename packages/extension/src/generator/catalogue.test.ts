import { describe, expect, it } from 'vitest'
import type { OutboxModelInfo } from '../datamodel.js'
import { catalogueEvents, payloadVersion, renderCatalogueModule, topicJsonSchemas } from './catalogue.js'

const model = (fields: OutboxModelInfo['fields'], outbox?: OutboxModelInfo['outbox']): OutboxModelInfo => ({
  dbName: 'thing',
  primaryKey: ['id'],
  fields,
  relations: {},
  ...(outbox ? { outbox } : {}),
})
const id = { kind: 'scalar', type: 'String', isList: false } as const
const outboxModel = model(
  Object.fromEntries(
    ['id', 'aggregatetype', 'aggregateid', 'type', 'payload', 'topic', 'headers'].map((name) => [name, id]),
  ),
)

describe('payload versions', () => {
  const base = model({ id, n: { kind: 'scalar', type: 'Int', isList: false } })
  const v = payloadVersion('Thing', base, {})

  it('change when a field is added, removed, renamed, retyped, made optional or a list', () => {
    const variants: OutboxModelInfo['fields'][] = [
      {
        id,
        n: { kind: 'scalar', type: 'Int', isList: false },
        m: { kind: 'scalar', type: 'Int', isList: false },
      },
      { id },
      { id, count: { kind: 'scalar', type: 'Int', isList: false } },
      { id, n: { kind: 'scalar', type: 'BigInt', isList: false } },
      { id, n: { kind: 'scalar', type: 'Int', isList: false, optional: true } },
      { id, n: { kind: 'scalar', type: 'Int', isList: true } },
    ]
    const versions = variants.map((fields) => payloadVersion('Thing', model(fields), {}))
    expect(new Set([v, ...versions]).size).toBe(variants.length + 1)
  })

  it('change when an enum gains a value; not for what the payload does not show', () => {
    const withEnum = model({ id, mood: { kind: 'enum', type: 'Mood', isList: false } })
    expect(payloadVersion('Thing', withEnum, { Mood: ['happy'] })).not.toBe(
      payloadVersion('Thing', withEnum, { Mood: ['happy', 'sad'] }),
    )
    // Column names, native types of the same encoding and relations leave the payload as it is.
    const same = model({
      id: { ...id, dbName: 'thing_id', nativeType: 'Uuid' },
      n: { kind: 'scalar', type: 'Int', isList: false, dbName: 'n_col' },
      other: { kind: 'object', type: 'Other', isList: false },
    })
    expect(payloadVersion('Thing', same, {})).toBe(v)
  })
})

describe('the catalogue', () => {
  it('lists annotated models only, under their aggregate types and topics, quoting odd field names', () => {
    const datamodel = {
      models: {
        OutboxEvent: outboxModel,
        Thing: model({ id, 'my-field': { kind: 'scalar', type: 'Int', isList: false } }, { topic: 'things' }),
        Quiet: model({ id }),
      },
    }
    expect(catalogueEvents(datamodel, {}).map((e) => [e.type, e.topic])).toEqual([
      ['thing.created', 'things'],
      ['thing.updated', 'things'],
      ['thing.deleted', 'things'],
    ])
    const source = renderCatalogueModule(datamodel, {})
    expect(source).toContain('  "my-field": number')
    expect(source).not.toContain('Quiet')
    expect([...topicJsonSchemas(datamodel, {}).keys()]).toEqual(['things'])
  })

  it('is empty without an outbox model', () => {
    expect(catalogueEvents({ models: { Thing: model({ id }, {}) } }, {})).toEqual([])
  })

  it('names a scalar type it cannot encode', () => {
    const datamodel = {
      models: {
        OutboxEvent: outboxModel,
        Thing: model({ id, x: { kind: 'scalar', type: 'Vector', isList: false } }, {}),
      },
    }
    expect(() => renderCatalogueModule(datamodel, {})).toThrow(
      /no payload encoding for the scalar type Vector/,
    )
  })
})

import { describe, expect, it } from 'vitest'
import type { OutboxDatamodel, OutboxModelInfo } from './datamodel.js'
import { OutboxError } from './errors.js'
import { defaultAggregateType, defaultTopic, resolveOptions } from './options.js'

const scalar = (type = 'String') => ({ kind: 'scalar' as const, type, isList: false })
const outboxFields = Object.fromEntries(
  ['id', 'aggregatetype', 'aggregateid', 'type', 'payload', 'topic', 'headers'].map((f) => [f, scalar()]),
)
const model = (extra: Partial<OutboxModelInfo> = {}): OutboxModelInfo => ({
  dbName: 'x',
  primaryKey: ['id'],
  fields: { id: scalar() },
  relations: {},
  ...extra,
})

/** A small schema: one annotated model, one plain, one without a primary key, and the outbox. */
const datamodel: OutboxDatamodel = {
  models: {
    PurchaseOrder: model({ dbName: 'purchase_order', outbox: {} }),
    Invoice: model({ dbName: 'invoice', outbox: { aggregateType: 'bill', topic: 'finance.bills' } }),
    Note: model({ dbName: 'note' }),
    View: model({ dbName: 'view', primaryKey: [] }),
    OutboxEvent: model({ dbName: 'outbox_event', fields: outboxFields }),
    Events2: model({ dbName: 'events_two', fields: outboxFields }),
  },
}

function invalid(options: unknown, ...parts: string[]) {
  try {
    resolveOptions(datamodel, options)
  } catch (error) {
    expect(error).toBeInstanceOf(OutboxError)
    expect((error as OutboxError).code).toBe('OUTBOX_INVALID_OPTIONS')
    for (const part of parts) expect((error as Error).message).toContain(part)
    return
  }
  throw new Error(`expected options ${JSON.stringify(options)} to be refused`)
}

describe('resolveOptions', () => {
  it('captures annotated models with their defaults and annotation settings', () => {
    const resolved = resolveOptions(datamodel, undefined)
    expect(Object.fromEntries(resolved.captured)).toEqual({
      PurchaseOrder: { aggregateType: 'purchaseOrder', topic: 'outbox.event.purchaseOrder' },
      Invoice: { aggregateType: 'bill', topic: 'finance.bills' },
    })
    expect(resolved.outboxTable).toBe('outbox_event')
    expect(resolved.headers).toBeUndefined()
  })

  it('adds models with true, and overrides annotation settings one by one', () => {
    const resolved = resolveOptions(datamodel, {
      models: { Note: true, Invoice: { topic: 'finance.invoices' }, PurchaseOrder: { aggregateType: 'po' } },
    })
    expect(Object.fromEntries(resolved.captured)).toEqual({
      PurchaseOrder: { aggregateType: 'po', topic: 'outbox.event.po' },
      Invoice: { aggregateType: 'bill', topic: 'finance.invoices' },
      Note: { aggregateType: 'note', topic: 'outbox.event.note' },
    })
  })

  it('models: { X: true } keeps the annotation of X', () => {
    expect(resolveOptions(datamodel, { models: { Invoice: true } }).captured.get('Invoice')).toEqual({
      aggregateType: 'bill',
      topic: 'finance.bills',
    })
  })

  it('uses another outbox model and keeps the headers function', () => {
    const headers = () => ({ traceparent: 't' })
    const resolved = resolveOptions(datamodel, { outboxModel: 'Events2', headers })
    expect(resolved.outboxTable).toBe('events_two')
    expect(resolved.headers?.()).toEqual({ traceparent: 't' })
  })

  it.each<[string, unknown, string[]]>([
    ['an unknown model', { models: { Nope: true } }, ['models.Nope', 'no model "Nope"', 'PurchaseOrder']],
    [
      'a topic Kafka would reject',
      { models: { Note: { topic: 'bad topic!' } } },
      ['models.Note', '"bad topic!"', 'Kafka topic'],
    ],
    ['the topic ".."', { models: { Note: { topic: '..' } } }, ['".."']],
    ['a topic that is too long', { models: { Note: { topic: 'x'.repeat(250) } } }, ['1-249']],
    ['an aggregate type with spaces', { models: { Note: { aggregateType: 'a b' } } }, ['"a b"', 'Note']],
    ['a missing outbox model', { outboxModel: 'Nope' }, ['outbox model "Nope" is not in the Prisma schema']],
    ['an outbox model without the columns', { outboxModel: 'Note' }, ['"Note" lacks', 'aggregatetype']],
    ['capturing the outbox model', { models: { OutboxEvent: true } }, ['models.OutboxEvent']],
    ['a model without a primary key', { models: { View: true } }, ['View has no primary key']],
    ['an unknown option', { topic: 'x' }, ['topic']],
    ['an unknown model setting', { models: { Note: { key: 'id' } } }, ['key']],
    ['headers that are not a function', { headers: { a: 'b' } }, ['headers']],
    ['options that are not an object', 'yes', ['invalid outbox options']],
  ])('refuses %s, naming it', (_name, options, parts) => {
    invalid(options, ...parts)
  })

  it('refuses a bad annotation setting, naming the annotation', () => {
    const bad: OutboxDatamodel = {
      models: { ...datamodel.models, Note: model({ outbox: { topic: 'no spaces please' } }) },
    }
    expect(() => resolveOptions(bad, {})).toThrow('/// @outbox on model Note: topic "no spaces please"')
  })
})

describe('defaults', () => {
  it('lower-cases the first letter of the model for the aggregate type', () => {
    expect(defaultAggregateType('PurchaseOrder')).toBe('purchaseOrder')
    expect(defaultAggregateType('employee')).toBe('employee')
  })
  it('derives the topic from the aggregate type', () => {
    expect(defaultTopic('purchaseOrder')).toBe('outbox.event.purchaseOrder')
  })
})

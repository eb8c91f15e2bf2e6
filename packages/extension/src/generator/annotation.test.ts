import { describe, expect, it } from 'vitest'
import { OutboxError } from '../errors.js'
import { annotationWarnings, parseOutboxAnnotation } from './annotation.js'

describe('parseOutboxAnnotation', () => {
  it('returns undefined for a model without the annotation', () => {
    expect(parseOutboxAnnotation('M', undefined)).toBeUndefined()
    expect(parseOutboxAnnotation('M', '')).toBeUndefined()
    expect(
      parseOutboxAnnotation('M', 'Just a comment.\nMentions outbox but not as @ annotation'),
    ).toBeUndefined()
  })

  it('reads a bare @outbox', () => {
    expect(parseOutboxAnnotation('M', '@outbox')).toEqual({})
    expect(parseOutboxAnnotation('M', 'Employees.\n  @outbox  \nMore text.')).toEqual({})
    expect(parseOutboxAnnotation('M', '@outbox()')).toEqual({})
  })

  it('reads aggregateType and topic, in any order and spacing', () => {
    expect(
      parseOutboxAnnotation('M', '@outbox(aggregateType: "department", topic: "hr.departments")'),
    ).toEqual({
      aggregateType: 'department',
      topic: 'hr.departments',
    })
    expect(parseOutboxAnnotation('M', '@outbox( topic:"t" ,aggregateType :  "a" )')).toEqual({
      aggregateType: 'a',
      topic: 't',
    })
    expect(parseOutboxAnnotation('M', '@outbox(topic: "only.topic")')).toEqual({ topic: 'only.topic' })
  })

  it.each<[string, string]>([
    ['@outbox\n@outbox(topic: "x")', 'more than one @outbox annotation'],
    ['@outbox(aggregateType: "a"', 'cannot read'],
    ['@outbox(aggregateType: a)', 'cannot read the argument "aggregateType: a"'],
    ['@outbox(key: "id")', 'unknown argument "key"'],
    ['@outbox trailing words', 'cannot read'],
  ])('refuses %j, naming the model', (doc, message) => {
    expect(() => parseOutboxAnnotation('Employee', doc)).toThrow(OutboxError)
    expect(() => parseOutboxAnnotation('Employee', doc)).toThrow(`/// @outbox on model Employee: `)
    expect(() => parseOutboxAnnotation('Employee', doc)).toThrow(message)
  })

  it('does not take @outboxed or similar words for the annotation', () => {
    expect(parseOutboxAnnotation('M', '@outboxed')).toBeUndefined()
  })
})

describe('annotationWarnings', () => {
  it('warns about misspelt, differently cased and two-slash annotations, naming the line', () => {
    const warnings = annotationWarnings(
      [
        '/// @outbox',
        'model A {}',
        '/// @outbx',
        '/// @OUTBOX(topic: "x")',
        '  // @outbox',
        '/// @outboxes are great',
        '/// @output',
      ].join('\n'),
    )
    expect(warnings).toHaveLength(4)
    expect(warnings[0]).toContain('line 3')
    expect(warnings[1]).toContain('line 4')
    expect(warnings[2]).toContain('line 5')
    expect(warnings[2]).toContain('"/// @outbox"')
    expect(warnings[3]).toContain('@outboxes')
  })

  it('is silent for correct annotations and unrelated comments', () => {
    expect(annotationWarnings('/// @outbox\n/// @outbox(topic: "t")\n// a comment\n/// @deprecated')).toEqual(
      [],
    )
  })
})

import { Decimal } from '@prisma/client/runtime/client'
import { describe, expect, it } from 'vitest'
import { OutboxError } from './errors.js'
import { toJsonSafe } from './json.js'

describe('toJsonSafe', () => {
  it('keeps JSON values as they are', () => {
    const value = { s: 'x', n: 1.5, b: false, nil: null, list: [1, 'a', { deep: [true] }] }
    expect(toJsonSafe(value)).toEqual(value)
  })

  it('encodes BigInt and Decimal as exact strings', () => {
    expect(toJsonSafe(12345678901234567890n)).toBe('12345678901234567890')
    expect(toJsonSafe(new Decimal('123456789012345678.90'))).toBe('123456789012345678.9')
    expect(toJsonSafe(new Decimal('0.000000001'))).toBe('0.000000001')
    expect(toJsonSafe(new Decimal('1e+30'))).toBe('1000000000000000000000000000000')
  })

  it('encodes Date as ISO-8601 and Bytes as base64', () => {
    expect(toJsonSafe(new Date(Date.UTC(2024, 1, 29, 12, 0, 0, 5)))).toBe('2024-02-29T12:00:00.005Z')
    expect(toJsonSafe(new Uint8Array([0, 1, 254, 255]))).toBe('AAH+/w==')
    expect(toJsonSafe(Buffer.from('hello'))).toBe('aGVsbG8=')
    // A view into a larger buffer encodes only its own bytes.
    expect(toJsonSafe(new Uint8Array([9, 9, 1, 2, 9]).subarray(2, 4))).toBe('AQI=')
  })

  it('drops undefined object fields and turns undefined array items into null, like JSON.stringify', () => {
    expect(toJsonSafe({ a: undefined, b: 1 })).toEqual({ b: 1 })
    expect(toJsonSafe([undefined, 1])).toEqual([null, 1])
    expect(toJsonSafe(undefined)).toBeUndefined()
  })

  it('encodes nested values', () => {
    expect(toJsonSafe({ when: new Date(0), ids: [1n, 2n], money: { amount: new Decimal('1.10') } })).toEqual({
      when: '1970-01-01T00:00:00.000Z',
      ids: ['1', '2'],
      money: { amount: '1.1' },
    })
  })

  it('allows the same object twice when it is not a cycle', () => {
    const shared = { x: 1 }
    expect(toJsonSafe({ a: shared, b: [shared] })).toEqual({ a: { x: 1 }, b: [{ x: 1 }] })
  })

  it.each<[string, unknown, string]>([
    ['a function', { a: { f: () => 1 } }, '$.a.f is a function'],
    ['a symbol', [Symbol('s')], '$[0] is a symbol'],
    ['NaN', { n: Number.NaN }, '$.n is non-finite number NaN'],
    ['Infinity', Number.POSITIVE_INFINITY, '$ is non-finite number Infinity'],
    ['an invalid Date', { d: new Date('nope') }, '$.d is an invalid Date'],
  ])('refuses %s, naming the path', (_name, value, message) => {
    expect(() => toJsonSafe(value)).toThrow(message)
    try {
      toJsonSafe(value)
    } catch (error) {
      expect(error).toBeInstanceOf(OutboxError)
      expect((error as OutboxError).code).toBe('OUTBOX_UNSERIALISABLE_PAYLOAD')
    }
  })

  it('refuses cycles', () => {
    const a: Record<string, unknown> = { list: [] }
    ;(a.list as unknown[]).push(a)
    expect(() => toJsonSafe(a)).toThrow('$.list[0] is a circular reference')
  })
})

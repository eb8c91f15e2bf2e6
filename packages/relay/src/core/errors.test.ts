import { describe, expect, it } from 'vitest'
import { coerceError, isRelayError, RelayError } from './errors.js'

describe('RelayError', () => {
  it('Should carry a literal code, a cause and retriable', () => {
    const cause = new Error('socket hang up')
    const error = new RelayError('RELAY_PUBLISH_RETRIABLE', 'publish failed', { cause })
    expect(error).toBeInstanceOf(Error)
    expect(error.name).toBe('RelayError')
    expect(error.code).toBe('RELAY_PUBLISH_RETRIABLE')
    expect(error.cause).toBe(cause)
    expect(error.retriable).toBe(true)
    expect(new RelayError('RELAY_PUBLISH_PERMANENT', 'x').retriable).toBe(false)
    expect(isRelayError(error, 'RELAY_PUBLISH_RETRIABLE')).toBe(true)
    expect(isRelayError(error, 'RELAY_DATABASE')).toBe(false)
    expect(isRelayError(cause)).toBe(false)
  })

  it('Should recognise a RelayError thrown by another copy of the package, by its shape', () => {
    // Two installed versions, or one bundled twice: same name and code, a different class.
    class RelayError extends Error {
      override readonly name = 'RelayError'
      readonly code = 'RELAY_DATABASE'
    }
    const foreign = new RelayError('database down')
    expect(isRelayError(foreign)).toBe(true)
    expect(isRelayError(foreign, 'RELAY_DATABASE')).toBe(true)
    expect(isRelayError(foreign, 'RELAY_INVALID_OPTIONS')).toBe(false)
    expect(isRelayError(Object.assign(new Error('x'), { name: 'RelayError' }))).toBe(false)
    expect(isRelayError({ name: 'RelayError', code: 'RELAY_DATABASE' })).toBe(false)
  })
})

describe('coerceError', () => {
  it('Should render the cause chain and the kafka error type', () => {
    const inner = Object.assign(new Error('too big'), {
      name: 'KafkaJSProtocolError',
      type: 'MESSAGE_TOO_LARGE',
    })
    expect(coerceError(new Error('send failed', { cause: inner }))).toBe(
      'Error: send failed <- KafkaJSProtocolError[MESSAGE_TOO_LARGE]: too big',
    )
  })

  it('Should handle non-errors and truncate', () => {
    expect(coerceError('plain')).toBe('plain')
    expect(coerceError({ a: 1 })).toBe('{"a":1}')
    expect(coerceError(undefined)).toBe('undefined')
    const long = coerceError(new Error('x'.repeat(10_000)))
    expect(long.length).toBe(4096)
    expect(long.endsWith('…')).toBe(true)
    expect(coerceError(new Error('abcdef'), 5)).toBe('Erro…')
  })

  it('Should stop on cyclic causes', () => {
    const a = new Error('a')
    const b = new Error('b', { cause: a })
    ;(a as { cause?: unknown }).cause = b
    expect(coerceError(b)).toBe('Error: b <- Error: a')
  })
})

import { describe, expect, it } from 'vitest'
import { deadLetterMessage, failurePolicy } from './failure.js'

const producer = { send: async () => undefined }

describe('failurePolicy', () => {
  it('doubles the delay up to maxDelayMs, with jitter down to half of it', () => {
    const high = failurePolicy({ initialDelayMs: 100, maxDelayMs: 1_000 }, undefined, () => 1)
    expect([1, 2, 3, 4, 5, 40].map((a) => high.delayMs(a))).toEqual([100, 200, 400, 800, 1_000, 1_000])
    const low = failurePolicy({ initialDelayMs: 100, maxDelayMs: 1_000 }, undefined, () => 0)
    expect([1, 2, 5].map((a) => low.delayMs(a))).toEqual([50, 100, 500])
  })

  it('defaults to 3 attempts and no dead-letter topic', () => {
    const policy = failurePolicy(undefined, undefined)
    expect(policy.maxAttempts).toBe(3)
    expect(policy.deadLetter).toBeUndefined()
  })

  it('names the dead-letter topic after the source topic unless told otherwise', () => {
    expect(failurePolicy(undefined, { producer }).deadLetter?.topic('orders')).toBe('orders.dlq')
    expect(failurePolicy(undefined, { producer, topic: 'all.dlq' }).deadLetter?.topic('orders')).toBe(
      'all.dlq',
    )
    expect(failurePolicy(undefined, { producer, topic: (t) => `dlq.${t}` }).deadLetter?.topic('o')).toBe(
      'dlq.o',
    )
  })

  it('rejects bad options with a message naming the option', () => {
    expect(() => failurePolicy({ maxAttempts: 0 }, undefined)).toThrow(/options.retry.maxAttempts/)
    expect(() => failurePolicy({ initialDelayMs: -1 }, undefined)).toThrow(/options.retry.initialDelayMs/)
    expect(() => failurePolicy({ initialDelayMs: 50, maxDelayMs: 10 }, undefined)).toThrow(
      /options.retry.maxDelayMs \(10\) must be at least/,
    )
    expect(() => failurePolicy(undefined, { producer: {} as typeof producer })).toThrow(
      /options.deadLetter.producer/,
    )
    expect(() => failurePolicy(undefined, { producer, topic: 'bad topic' })).toThrow(
      /options.deadLetter.topic/,
    )
  })
})

describe('deadLetterMessage', () => {
  it('keeps key, value and headers, and adds where and why', () => {
    const message = {
      key: Buffer.from('k'),
      value: Buffer.from('{}'),
      headers: { id: Buffer.from('x') },
      offset: '12',
      timestamp: '0',
      attributes: 0,
    }
    const dead = deadLetterMessage({ topic: 't', partition: 3, message }, 'c', new TypeError('boom'), 2)
    expect(dead.key).toBe(message.key)
    expect(dead.value).toBe(message.value)
    expect(dead.headers).toEqual({
      id: message.headers.id,
      'dlq.topic': 't',
      'dlq.partition': '3',
      'dlq.offset': '12',
      'dlq.consumer': 'c',
      'dlq.attempts': '2',
      'dlq.error': 'TypeError: boom',
    })
    const long = deadLetterMessage({ topic: 't', partition: 0, message }, 'c', 'x'.repeat(5_000), 1)
    expect(long.headers['dlq.error']).toHaveLength(1_003)
  })
})

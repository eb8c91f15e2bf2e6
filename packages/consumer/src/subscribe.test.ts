import { describe, expect, it } from 'vitest'
import { subscribe } from './subscribe.js'

const notYet = Object.assign(new Error('This server does not host this topic-partition'), {
  type: 'UNKNOWN_TOPIC_OR_PARTITION',
})

describe('subscribe', () => {
  it('retries while the topic is missing, doubling the wait up to maxDelayMs', async () => {
    let calls = 0
    const consumer = {
      subscribe: async () => {
        if (++calls < 4) throw notYet
      },
    }
    const delays: number[] = []
    await subscribe(consumer, {
      topics: ['t'],
      maxDelayMs: 250,
      onWaiting: ({ delayMs }) => delays.push(delayMs),
    })
    expect(calls).toBe(4)
    expect(delays).toEqual([100, 200, 250])
  })

  it('rethrows any other error at once', async () => {
    const other = Object.assign(new Error('no'), { type: 'TOPIC_AUTHORIZATION_FAILED' })
    let calls = 0
    const consumer = {
      subscribe: async () => {
        calls++
        throw other
      },
    }
    await expect(subscribe(consumer, { topics: ['t'] })).rejects.toBe(other)
    expect(calls).toBe(1)
  })

  it('stops waiting when its signal is aborted', async () => {
    const controller = new AbortController()
    const consumer = {
      subscribe: async () => {
        throw notYet
      },
    }
    const waiting = subscribe(consumer, {
      topics: ['t'],
      signal: controller.signal,
      onWaiting: () => controller.abort(new Error('shutting down')),
    })
    await expect(waiting).rejects.toThrow('shutting down')
  })
})

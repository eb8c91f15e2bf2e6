import { describe, expect, it } from 'vitest'
import type { OutboxMessage } from '../core/message.js'
import { tracedPublisher, tracerRegistered, tracingHooks } from './index.js'

describe('relay tracing without an SDK registered', () => {
  it('Should send each message as it was, and open no scope that changes what a batch returns', async () => {
    const sent: OutboxMessage[] = []
    const publisher = tracedPublisher({
      connect: async () => {},
      disconnect: async () => {},
      publish: async (messages) => {
        sent.push(...messages)
      },
    })
    const message: OutboxMessage = {
      id: 'id-1',
      topic: 't',
      key: 'k',
      value: '{}',
      headers: { id: 'id-1', traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' },
    }
    const result = await tracingHooks().wrapBatch?.(async () => {
      await publisher.publish([message])
      return 'done'
    })
    expect(result).toBe('done')
    expect(sent[0]).toBe(message)
    expect(tracerRegistered()).toBe(false)
  })
})

import { createRequire } from 'node:module'
import { describe, expect, it } from 'vitest'
import { quietKafkajsIdleLoop } from './kafkajs-idle.js'

type Queue = {
  pending: unknown[]
  throttledUntil: number
  throttleCheckTimeoutId: ReturnType<typeof setTimeout> | null
  scheduleCheckPendingRequests(): void
  checkPendingRequests(): void
}

const RequestQueue = createRequire(import.meta.url)('kafkajs/src/network/requestQueue/index.js') as {
  prototype: Queue
}

/** A queue as kafkajs leaves it between requests, on kafkajs' own prototype. */
function idleQueue(pending: unknown[] = []): Queue {
  const queue = Object.create(RequestQueue.prototype) as Queue
  Object.assign(queue, { pending, throttledUntil: -1, throttleCheckTimeoutId: null })
  queue.checkPendingRequests = () => {}
  return queue
}

describe('quietKafkajsIdleLoop', () => {
  it('Should leave an idle kafkajs request queue without a timer, and schedule one while a request waits', () => {
    // kafkajs 2.2.4 as released: a check of an empty queue arms a timer (1 ms: the delay is negative).
    const before = idleQueue()
    before.scheduleCheckPendingRequests()
    const armed = before.throttleCheckTimeoutId !== null
    if (before.throttleCheckTimeoutId) clearTimeout(before.throttleCheckTimeoutId)

    expect(quietKafkajsIdleLoop()).toBe(true)
    expect(quietKafkajsIdleLoop()).toBe(true) // once per process
    expect(armed).toBe(true)

    const idle = idleQueue()
    idle.scheduleCheckPendingRequests()
    expect(idle.throttleCheckTimeoutId).toBeNull()

    // Throttled with a request waiting: the check is scheduled for when the throttle ends.
    const waiting = idleQueue([{ correlationId: 1 }])
    waiting.throttledUntil = Date.now() + 60_000
    waiting.scheduleCheckPendingRequests()
    expect(waiting.throttleCheckTimeoutId).not.toBeNull()
    if (waiting.throttleCheckTimeoutId) clearTimeout(waiting.throttleCheckTimeoutId)
  })
})

import { describe, expect, it } from 'vitest'
import type { OutboxEvent } from './event.js'
import { prepareEvent } from './typed.js'

const event = {
  id: '01a2033c-d462-7374-9d6c-401335236873',
  type: 'employee.created',
  payload: { raw: true },
} as unknown as OutboxEvent

describe('prepareEvent', () => {
  it('Should give a plain handler the event as it is', () => {
    expect(prepareEvent(async () => {}, event)).toBe(event)
  })

  it('Should give a typed handler the event its prepare returns', () => {
    const typed = { ...event, payload: { parsed: true } }
    const handler = Object.assign(async () => {}, { prepare: () => typed })
    expect(prepareEvent(handler, event)).toBe(typed)
  })

  it('Should keep the event when prepare skips it (returns undefined)', () => {
    const handler = Object.assign(async () => {}, { prepare: () => undefined })
    expect(prepareEvent(handler, event)).toBe(event)
  })

  it('Should let the error of prepare through', () => {
    const handler = Object.assign(async () => {}, {
      prepare: () => {
        throw new Error('payload does not match')
      },
    })
    expect(() => prepareEvent(handler, event)).toThrow('payload does not match')
  })
})

import { describe, expect, it } from 'vitest'
import { duration, parseDuration, window } from './duration.js'

describe('parseDuration', () => {
  it.each([
    ['500ms', 500],
    ['30s', 30_000],
    ['10m', 600_000],
    ['12h', 43_200_000],
    ['7d', 604_800_000],
    ['2w', 1_209_600_000],
    [' 1d ', 86_400_000],
  ])('Should read %s as %i ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms)
  })

  it.each(['7', '1.5h', '-1d', '7 d', 'd', '7days', '', '99999999999999w'])(
    'Should refuse %j, saying what is expected',
    (text) => {
      expect(() => parseDuration(text)).toThrow(/duration|100 years/)
    },
  )
})

describe('window', () => {
  it('Should read 0 and off as no window, anything else as a duration', () => {
    expect(window.parse('0')).toBeNull()
    expect(window.parse('OFF')).toBeNull()
    expect(window.parse('90d')).toBe(90 * 86_400_000)
    const bad = window.safeParse('7')
    expect(bad.success).toBe(false)
    expect(bad.error?.issues[0]?.message).toMatch(/or 0\/off to keep the rows/)
  })
})

describe('duration', () => {
  it('Should enforce its minimum', () => {
    expect(duration(1_000).safeParse('500ms').success).toBe(false)
    expect(duration(1_000).parse('1s')).toBe(1_000)
  })
})

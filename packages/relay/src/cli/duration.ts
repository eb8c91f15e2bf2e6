/**
 * Durations in configuration and flags: `500ms`, `30s`, `10m`, `12h`, `7d`, `2w`.
 * @module
 */
import { z } from 'zod'

const UNITS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const

/** The largest duration accepted: 100 years, in ms. */
export const MAX_DURATION_MS = 100 * 365 * 86_400_000

/**
 * Parses `<integer><unit>` with unit `ms`, `s`, `m`, `h`, `d` or `w` into milliseconds.
 *
 * @throws Error saying what is expected, e.g. for `7` (no unit) or `1.5h`
 * @example
 * parseDuration('7d') // 604800000
 */
export function parseDuration(text: string): number {
  const m = /^(\d{1,15})(ms|s|m|h|d|w)$/.exec(text.trim())
  if (!m)
    throw new Error(`"${text}" is not a duration: use a whole number and a unit, e.g. 30s, 10m, 12h, 7d`)
  const ms = Number(m[1]) * UNITS[m[2] as keyof typeof UNITS]
  if (ms > MAX_DURATION_MS) throw new Error(`"${text}" is longer than 100 years`)
  return ms
}

/** A duration of at least `minMs`, from text (zod), in ms. */
export const duration = (minMs = 1) =>
  z.string().transform((value, ctx) => {
    try {
      const ms = parseDuration(value)
      if (ms >= minMs) return ms
      ctx.addIssue({ code: 'custom', message: `must be at least ${minMs} ms` })
    } catch (error) {
      ctx.addIssue({ code: 'custom', message: (error as Error).message })
    }
    return z.NEVER
  })

/** A retention window: a duration, or `0`/`off` for none (`null`: keep the rows). */
export const window = z.string().transform((value, ctx) => {
  const v = value.trim().toLowerCase()
  if (v === '0' || v === 'off') return null
  try {
    return parseDuration(v)
  } catch (error) {
    ctx.addIssue({ code: 'custom', message: `${(error as Error).message}, or 0/off to keep the rows` })
    return z.NEVER
  }
})

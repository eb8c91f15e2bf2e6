import { describe, expect, it } from 'vitest'
import { drainExitCode, EXIT, main } from './main.js'

const io = () => {
  const out: string[] = []
  const err: string[] = []
  return {
    out,
    err,
    io: {
      env: {},
      stdout: { write: (t: string) => out.push(t) },
      stderr: { write: (t: string) => err.push(t) },
    },
  }
}

describe('drainExitCode', () => {
  it.each([
    [{ published: 10, retried: 0, dead: 0, remaining: 0 }, EXIT.OK],
    [{ published: 0, retried: 0, dead: 0, remaining: 0 }, EXIT.OK],
    [{ published: 9, retried: 1, dead: 0, remaining: 0 }, EXIT.FAILED],
    [{ published: 9, retried: 0, dead: 1, remaining: 0 }, EXIT.FAILED],
    [{ published: 9, retried: 0, dead: 0, remaining: 3 }, EXIT.FAILED],
  ])('Should map %j to %i', (result, code) => {
    expect(drainExitCode({ ...result, durationMs: 1 })).toBe(code)
  })
})

describe('main', () => {
  it('Should print usage for --help (0) and without arguments (2)', async () => {
    const a = io()
    expect(await main(['--help'], a.io)).toBe(0)
    expect(a.out.join('')).toMatch(/^usage: outbox-relay <command>/)
    const b = io()
    expect(await main([], b.io)).toBe(2)
  })

  it('Should return 2 and name the variable for a bad environment', async () => {
    const a = io()
    expect(await main(['watch'], a.io)).toBe(2)
    expect(a.err.join('')).toMatch(/DATABASE_URL: is required/)
  })

  it('Should exit 2, not 1, for a bad table name, without a ZodError dump', async () => {
    const a = io()
    const env = {
      DATABASE_URL: 'postgresql://x@127.0.0.1:1/x',
      KAFKA_BROKERS: '127.0.0.1:1',
      OUTBOX_TABLE: 'a.b.c',
    }
    expect(await main(['drain'], { ...a.io, env })).toBe(EXIT.CONFIG)
    expect(a.err.join('')).toMatch(/OUTBOX_TABLE: must be "table" or "schema.table"/)
    expect(a.err.join('')).not.toMatch(/ZodError/)
  })
})

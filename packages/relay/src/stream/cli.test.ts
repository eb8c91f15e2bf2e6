import { describe, expect, it } from 'vitest'
import { main } from '../cli/main.js'
import { loadStreamConfig } from './cli.js'

function io(env: Record<string, string>) {
  const out: string[] = []
  const err: string[] = []
  return {
    out,
    err,
    io: { env, stdout: { write: (t: string) => out.push(t) }, stderr: { write: (t: string) => err.push(t) } },
  }
}

const base = { DATABASE_URL: 'postgresql://postgres@127.0.0.1:1/app', KAFKA_BROKERS: '127.0.0.1:1' }

describe('outbox-relay stream configuration', () => {
  it('prints its usage for --help', async () => {
    const a = io({})
    expect(await main(['stream', '--help'], a.io)).toBe(0)
    expect(a.out.join('')).toMatch(/^usage: outbox-relay stream \[--drop-slot\]/)
  })

  it('names a bad slot name and exits 2', async () => {
    const a = io({ ...base, STREAM_SLOT: 'Bad-Slot' })
    expect(await main(['stream'], a.io)).toBe(2)
    expect(a.err.join('')).toMatch(/STREAM_SLOT: slot name "Bad-Slot" is invalid/)
  })

  it('names a bad number and exits 2', async () => {
    const a = io({ ...base, STREAM_LAG_ALERT_BYTES: 'lots' })
    expect(await main(['stream'], a.io)).toBe(2)
    expect(a.err.join('')).toMatch(/STREAM_LAG_ALERT_BYTES: must be a number/)
  })

  it('names a bad STREAM_PUBLISHED_ROWS and exits 2', async () => {
    const a = io({ ...base, STREAM_PUBLISHED_ROWS: 'drop' })
    expect(await main(['stream'], a.io)).toBe(2)
    expect(a.err.join('')).toMatch(/STREAM_PUBLISHED_ROWS: must be mark or delete/)
  })

  it('takes RELAY_PUBLISHED_ROWS when STREAM_PUBLISHED_ROWS is unset, and mark when neither is', () => {
    expect(loadStreamConfig([], base).publishedRows).toBe('mark')
    expect(loadStreamConfig([], { ...base, RELAY_PUBLISHED_ROWS: 'delete' }).publishedRows).toBe('delete')
    expect(
      loadStreamConfig([], { ...base, RELAY_PUBLISHED_ROWS: 'delete', STREAM_PUBLISHED_ROWS: 'mark' })
        .publishedRows,
    ).toBe('mark')
    expect(() => loadStreamConfig([], { ...base, RELAY_PUBLISHED_ROWS: 'gone' })).toThrow(
      /RELAY_PUBLISHED_ROWS: must be mark or delete/,
    )
  })

  it('names missing shared variables and unknown flags', async () => {
    const a = io({})
    expect(await main(['stream'], a.io)).toBe(2)
    expect(a.err.join('')).toMatch(/DATABASE_URL: is required/)
    const b = io(base)
    expect(await main(['stream', '--drop-slots'], b.io)).toBe(2)
    expect(b.err.join('')).toMatch(/--drop-slots/)
  })
})

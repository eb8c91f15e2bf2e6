import { describe, expect, it } from 'vitest'
import type { PoolLike } from './db.js'
import { createEngine } from './engine.js'
import { RelayError } from './errors.js'
import type { Publisher } from './publisher.js'

const publisher: Publisher = { connect: async () => {}, disconnect: async () => {}, publish: async () => {} }

/** A fake pool that answers the claim with no rows and counts with 0. */
function fakePool(log: string[]): PoolLike {
  const query = async (text: string) => {
    log.push(text.split(/\s+/).slice(0, 2).join(' '))
    return { rows: text.startsWith('SELECT count(*)') ? [{ n: '0' }] : [], rowCount: 0 }
  }
  return { query, connect: async () => ({ query, release: () => {} }) }
}

describe('createEngine', () => {
  it('Should validate options when built and name the bad one', () => {
    expect(() => createEngine({ pool: fakePool([]), publisher, options: { maxAttempts: 0 } })).toThrowError(
      expect.objectContaining({
        code: 'RELAY_INVALID_OPTIONS',
        message: expect.stringMatching(/maxAttempts/),
      }),
    )
    expect(() =>
      createEngine({ pool: fakePool([]), publisher, options: { publishedRows: 'drop' as 'delete' } }),
    ).toThrowError(/invalid relay options: publishedRows: Invalid option: expected one of "mark"\|"delete"/)
  })

  it('Should run the claim in a transaction after the shared claim lock and stop when nothing is claimable', async () => {
    const log: string[] = []
    const engine = createEngine({ pool: fakePool(log), publisher, options: { relayId: 'r1' } })
    const result = await engine.drain()
    expect(result).toMatchObject({ published: 0, retried: 0, dead: 0, remaining: 0 })
    const drain = [
      'BEGIN',
      "SELECT set_config('lock_timeout',",
      'WITH snap',
      'COMMIT',
      'SELECT count(*)::bigint',
    ]
    // The table's gate indexes are looked up once, before the first claim (see gateIndexes).
    expect(log).toEqual(['SELECT coalesce(bool_or(pg_get_expr(i.indpred,', ...drain])
    expect(engine.counters()).toMatchObject({ drains: 1, batches: 0 })
    log.length = 0
    await engine.drain()
    expect(log).toEqual(drain)
  })

  it('Should reject bad drain options with RELAY_INVALID_OPTIONS', async () => {
    const engine = createEngine({ pool: fakePool([]), publisher })
    await expect(engine.drain({ budgetMs: 0 })).rejects.toBeInstanceOf(RelayError)
  })

  it('Should wrap database failures as RELAY_DATABASE', async () => {
    const pool: PoolLike = {
      query: async () => {
        throw new Error('connection refused')
      },
      connect: async () => {
        throw new Error('connection refused')
      },
    }
    const engine = createEngine({ pool, publisher })
    await expect(engine.drain()).rejects.toMatchObject({
      code: 'RELAY_DATABASE',
      message: /claim failed: connection refused/,
    })
  })
})

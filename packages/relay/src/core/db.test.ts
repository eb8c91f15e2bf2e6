import { EventEmitter } from 'node:events'
import { describe, expect, it } from 'vitest'
import { type PoolClientLike, type PoolLike, withTransaction } from './db.js'

/** A checked-out client that behaves like node-postgres: an EventEmitter with query/release. */
function fakePool() {
  const client = Object.assign(new EventEmitter(), {
    statements: [] as string[],
    released: undefined as Error | boolean | undefined,
    async query(text: string) {
      client.statements.push(text)
      return { rows: [], rowCount: 0 }
    },
    release(error?: Error | boolean) {
      client.released = error
    },
  })
  const pool: PoolLike = {
    query: async () => ({ rows: [], rowCount: 0 }),
    connect: async () => client as unknown as PoolClientLike,
  }
  return { pool, client }
}

describe('withTransaction', () => {
  it('survives the server cutting the connection mid-transaction, and discards that client', async () => {
    const { pool, client } = fakePool()
    const cut = new Error('Connection terminated unexpectedly')
    // Without a listener, EventEmitter throws on 'error': this is what used to kill the relay.
    await expect(
      withTransaction(pool, async () => {
        client.emit('error', cut)
        throw cut
      }),
    ).rejects.toThrow('Connection terminated unexpectedly')
    expect(client.released).toBe(cut)
    expect(client.listenerCount('error')).toBe(0)
  })

  it('commits and releases the client for reuse when all goes well', async () => {
    const { pool, client } = fakePool()
    await expect(withTransaction(pool, async () => 42)).resolves.toBe(42)
    expect(client.statements).toEqual(['BEGIN', 'COMMIT'])
    expect(client.released).toBeUndefined()
  })
})

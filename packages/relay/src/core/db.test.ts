import { EventEmitter } from 'node:events'
import { describe, expect, it } from 'vitest'
import {
  databaseCall,
  isNodePostgresPool,
  isStalePreparedStatement,
  type PoolClientLike,
  type PoolLike,
  run,
  runPooled,
  statementName,
  withTransaction,
} from './db.js'
import { RelayError } from './errors.js'

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

  it('Should discard the client after an error discardOn names, and reuse it after others', async () => {
    const stale = Object.assign(new Error('cached plan must not change result type'), { code: '0A000' })
    const other = Object.assign(new Error('duplicate key'), { code: '23505' })
    for (const [error, discarded] of [
      [stale, true],
      [other, false],
    ] as const) {
      const { pool, client } = fakePool()
      await expect(
        withTransaction(
          pool,
          async () => {
            throw error
          },
          isStalePreparedStatement,
        ),
      ).rejects.toBe(error)
      expect(client.statements).toEqual(['BEGIN', 'ROLLBACK'])
      expect(client.released).toBe(discarded ? error : undefined)
    }
    expect(isStalePreparedStatement(Object.assign(new Error('x'), { code: '26000' }))).toBe(true)
    expect(isStalePreparedStatement(Object.assign(new Error('x'), { code: '42P05' }))).toBe(true)
    expect(isStalePreparedStatement(new Error('x'))).toBe(false)
  })
})

describe('databaseCall', () => {
  it('Should name the operation and the reason of a failure, as RELAY_DATABASE', async () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' })
    const error = await databaseCall('stats', () => Promise.reject(refused)).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(RelayError)
    expect(error).toMatchObject({ code: 'RELAY_DATABASE', cause: refused })
    expect((error as Error).message).toMatch(/^stats failed \(connection refused\)/)
  })

  it('Should pass a RELAY_DATABASE error through unchanged', async () => {
    const inner = new RelayError('RELAY_DATABASE', 'claim failed (connection refused): x')
    await expect(databaseCall('drain', () => Promise.reject(inner))).rejects.toBe(inner)
  })

  it('Should give up after timeoutMs on a call that never answers', async () => {
    const error = await databaseCall('list dead', () => new Promise<never>(() => {}), 20).catch(
      (e: unknown) => e,
    )
    expect(error).toMatchObject({ code: 'RELAY_DATABASE' })
    expect((error as Error).message).toMatch(/^list dead failed \(no answer within 20 ms\)/)
  })
})

describe('run', () => {
  const calls: unknown[][] = []
  const db = {
    query: async (...args: unknown[]) => {
      calls.push(args)
      return { rows: [], rowCount: 0 }
    },
  }
  it('Should send a named statement as a prepared one only when asked to', async () => {
    calls.length = 0
    const statement = { text: 'SELECT $1::int', values: [1], name: statementName('t', 'SELECT $1::int') }
    await run(db, statement)
    await run(db, statement, true)
    await run(db, { text: 'SELECT 2', values: [] }, true)
    expect(calls).toEqual([
      ['SELECT $1::int', [1]],
      [{ name: statement.name, text: 'SELECT $1::int', values: [1] }],
      ['SELECT 2', []],
    ])
  })

  it('Should derive one stable name per text', () => {
    expect(statementName('p', 'SELECT 1')).toBe(statementName('p', 'SELECT 1'))
    expect(statementName('p', 'SELECT 1')).toMatch(/^p_[0-9a-f]{16}$/)
    expect(statementName('p', 'SELECT 1')).not.toBe(statementName('p', 'SELECT 2'))
    expect(statementName('p', 'ab')).not.toBe(statementName('p', 'ba'))
  })

  it('Should tell a node-postgres pool by the client class it keeps', () => {
    expect(isNodePostgresPool({ Client: class {} })).toBe(true)
    expect(isNodePostgresPool({ query: () => {} })).toBe(false)
    expect(isNodePostgresPool(null)).toBe(false)
  })
})

describe('runPooled', () => {
  /** A pool whose client answers the prepared statement with `fail` (if set) and records what ran where. */
  function preparingPool(fail?: Error) {
    const log: string[] = []
    const released: (Error | boolean | undefined)[] = []
    const client = Object.assign(new EventEmitter(), {
      async query(config: { name?: string } | string) {
        log.push(typeof config === 'string' ? 'client: unprepared' : `client: prepared ${config.name}`)
        if (fail) throw fail
        return { rows: [{ ok: 1 }], rowCount: 1 }
      },
      release(error?: Error | boolean) {
        released.push(error)
      },
    })
    const pool: PoolLike = {
      async query() {
        log.push('pool: unprepared')
        return { rows: [{ ok: 2 }], rowCount: 1 }
      },
      connect: async () => client as unknown as PoolClientLike,
    }
    return { pool, log, released, client }
  }
  const statement = { text: 'SELECT 1 AS ok', values: [], name: statementName('t', 'SELECT 1 AS ok') }

  it('Should prepare a named statement on a checked-out client and give the client back', async () => {
    const { pool, log, released, client } = preparingPool()
    expect((await runPooled(pool, statement, true)).rows).toEqual([{ ok: 1 }])
    expect(log).toEqual([`client: prepared ${statement.name}`])
    expect(released).toEqual([undefined])
    expect(client.listenerCount('error')).toBe(0)
  })

  it('Should run on the pool, unprepared, when not asked to prepare or the statement has no name', async () => {
    const { pool, log } = preparingPool()
    await runPooled(pool, statement, false)
    await runPooled(pool, { text: 'SELECT 1', values: [] }, true)
    expect(log).toEqual(['pool: unprepared', 'pool: unprepared'])
  })

  it('Should discard the connection and run unprepared when the server refuses the prepared statement', async () => {
    const stale = Object.assign(new Error('cached plan must not change result type'), { code: '0A000' })
    const { pool, log, released } = preparingPool(stale)
    expect((await runPooled(pool, statement, true)).rows).toEqual([{ ok: 2 }])
    expect(log).toEqual([`client: prepared ${statement.name}`, 'pool: unprepared'])
    expect(released).toEqual([stale])
  })

  it('Should discard the connection and pass on any other error', async () => {
    const broken = Object.assign(new Error('deadlock detected'), { code: '40P01' })
    const { pool, log, released } = preparingPool(broken)
    await expect(runPooled(pool, statement, true)).rejects.toBe(broken)
    expect(log).toEqual([`client: prepared ${statement.name}`])
    expect(released).toEqual([broken])
  })
})

import pg from 'pg'
import { describe, expect, it } from 'vitest'
import { startLogicalPostgres } from '../src/logical-postgres.js'

describe('startLogicalPostgres', () => {
  it('starts a private cluster with wal_level = logical on a free port, and stops it', async () => {
    const cluster = await startLogicalPostgres()
    try {
      expect(cluster.port).not.toBe(5432)
      const client = new pg.Client({ connectionString: cluster.url })
      await client.connect()
      try {
        const { rows } = await client.query<{ wal_level: string }>('SHOW wal_level')
        expect(rows[0]?.wal_level).toBe('logical')
      } finally {
        await client.end()
      }
    } finally {
      await cluster.stop()
    }
    const after = new pg.Client({ connectionString: cluster.url, connectionTimeoutMillis: 5_000 })
    await expect(after.connect()).rejects.toThrow(/ECONNREFUSED/)
  })
})

import { describe, expect, it } from 'vitest'
import { createTestDatabase } from '../src/index.js'

describe('createTestDatabase', () => {
  it('gives each caller its own database and drops it afterwards', async () => {
    const [a, b] = await Promise.all([
      createTestDatabase({ migrations: [] }),
      createTestDatabase({ migrations: [] }),
    ])
    try {
      expect(a.name).not.toBe(b.name)
      await a.pool.query('CREATE TABLE only_in_a (id int)')
      const inB = await b.pool.query("SELECT to_regclass('only_in_a') AS t")
      expect(inB.rows[0].t).toBeNull()
    } finally {
      await a.drop()
      await b.drop()
    }
    const admin = await createTestDatabase({ migrations: [] })
    try {
      const left = await admin.pool.query(
        'SELECT count(*)::int AS n FROM pg_database WHERE datname = ANY($1)',
        [[a.name, b.name]],
      )
      expect(left.rows[0].n).toBe(0)
    } finally {
      await admin.drop()
    }
  })
})

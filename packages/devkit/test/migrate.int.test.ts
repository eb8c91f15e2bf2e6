import { createHash } from 'node:crypto'
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { applyMigrations, createTestDatabase, type TestDatabase } from '../src/index.js'

const OUTBOX_MIGRATIONS = fileURLToPath(new URL('../../extension/prisma/migrations', import.meta.url))

async function migrationsDir(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'migrations-'))
  for (const [name, sql] of Object.entries(files)) {
    await mkdir(join(dir, name))
    await writeFile(join(dir, name, 'migration.sql'), sql)
  }
  return dir
}

describe('applyMigrations', () => {
  let db: TestDatabase | undefined
  afterEach(async () => {
    await db?.drop()
    db = undefined
  })

  it('applies each folder once and records it the way prisma migrate deploy does', async () => {
    db = await createTestDatabase({ migrations: [OUTBOX_MIGRATIONS] })
    const { rows } = await db.pool.query(
      'SELECT migration_name, checksum, finished_at, applied_steps_count, rolled_back_at FROM _prisma_migrations ORDER BY migration_name',
    )
    const folders = [
      '20261122000000_outbox_event',
      '20261202000000_outbox_dead_key_idx',
      '20261202120000_outbox_held_key_idx',
    ]
    const expected = []
    for (const folder of folders) {
      const sql = await readFile(join(OUTBOX_MIGRATIONS, folder, 'migration.sql'))
      expected.push({
        migration_name: folder,
        checksum: createHash('sha256').update(sql).digest('hex'),
        finished_at: expect.any(Date),
        applied_steps_count: 1,
        rolled_back_at: null,
      })
    }
    expect(rows).toEqual(expected)
    const again = await applyMigrations(db.url, [OUTBOX_MIGRATIONS])
    expect(again).toEqual({ applied: [], skipped: folders })
    const table = await db.pool.query("SELECT to_regclass('outbox_event') AS t")
    expect(table.rows[0].t).toBe('outbox_event')
  })

  it('stops at a failing migration, stores the error and refuses to go on until it is resolved', async () => {
    const dir = await migrationsDir({
      '001_ok': 'CREATE TABLE a (id int);',
      '002_broken': 'CREATE TABLE b (id int); SELECT * FROM missing_table;',
      '003_later': 'CREATE TABLE c (id int);',
    })
    db = await createTestDatabase({ migrations: [] })
    await expect(applyMigrations(db.url, [dir])).rejects.toThrow(
      /migration 002_broken failed: .*missing_table/,
    )
    const { rows } = await db.pool.query(
      'SELECT migration_name, finished_at IS NOT NULL AS finished, logs FROM _prisma_migrations ORDER BY migration_name',
    )
    expect(rows.map((r) => [r.migration_name, r.finished])).toEqual([
      ['001_ok', true],
      ['002_broken', false],
    ])
    expect(rows[1].logs).toMatch(/missing_table/)
    await expect(applyMigrations(db.url, [dir])).rejects.toThrow(
      /002_broken failed earlier and were never resolved/,
    )
    const later = await db.pool.query("SELECT to_regclass('c') AS t")
    expect(later.rows[0].t).toBeNull()
  })
})

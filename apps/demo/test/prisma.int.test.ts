import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { PrismaPg } from '@prisma/adapter-pg'
import { createTestDatabase, type TestDatabase } from '@prisma-outbox/devkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { PrismaClient } from '../src/generated/client/client.js'

const MIGRATIONS = fileURLToPath(new URL('../../../prisma/migrations', import.meta.url))

let db: TestDatabase
let prisma: PrismaClient
beforeAll(async () => {
  db = await createTestDatabase({ migrations: [MIGRATIONS], prefix: 'outbox_demo' })
  prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: db.url }) })
})
afterAll(async () => {
  await prisma?.$disconnect()
  await db?.drop()
})

describe('the generated Prisma client on the migrated schema', () => {
  it('reads back a row written in a transaction', async () => {
    const created = await prisma.$transaction(async (tx) =>
      tx.employee.create({ data: { email: 'ada@example.com', name: 'Ada' } }),
    )
    const read = await prisma.employee.findUniqueOrThrow({ where: { id: created.id } })
    expect(read).toMatchObject({ email: 'ada@example.com', name: 'Ada', title: null })
  })

  it('leaves nothing behind when the transaction rolls back', async () => {
    await expect(
      prisma.$transaction(async (tx) => {
        await tx.employee.create({ data: { email: 'gone@example.com', name: 'Gone' } })
        throw new Error('roll back')
      }),
    ).rejects.toThrow('roll back')
    expect(await prisma.employee.count({ where: { email: 'gone@example.com' } })).toBe(0)
  })
})

describe('prisma/migrations', () => {
  it.each([
    ['extension', '20261122000000_outbox_event'],
    ['extension', '20261202000000_outbox_dead_key_idx'],
    ['extension', '20261202120000_outbox_held_key_idx'],
    ['consumer', '20261122000200_outbox_inbox'],
    ['consumer', '20261201000200_inbox_failed'],
  ])('ships the %s package migration %s unchanged', async (pkg, folder) => {
    const file = `${folder}/migration.sql`
    const app = await readFile(new URL(`../../../prisma/migrations/${file}`, import.meta.url), 'utf8')
    const shipped = await readFile(
      new URL(`../../../packages/${pkg}/prisma/migrations/${file}`, import.meta.url),
      'utf8',
    )
    expect(app).toBe(shipped)
  })
})

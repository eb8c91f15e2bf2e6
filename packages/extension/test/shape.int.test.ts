/**
 * Behaves like plain Prisma for every option that shapes a query and every schema shape: result
 * extensions, select/omit (per call and client-wide), relation load strategies, named compound
 * ids, other extensions in any order, the client's schema; payloads keep every scalar type
 * losslessly; Prisma's own errors come back unchanged.
 */
import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { PrismaPg } from '@prisma/adapter-pg'
import { Prisma } from '@prisma/client/extension'
import type { TestDatabase } from '@prisma-outbox/devkit'
import { describe, expect, it } from 'vitest'
import { OutboxError } from '../src/index.js'
import { PrismaClient } from './generated/client/client.js'
import { outbox } from './generated/outbox/index.js'
import { OUTBOX_MIGRATIONS, outboxRows, TEST_MIGRATIONS, useCaptureDatabase } from './helpers.js'

let db: TestDatabase
let base: PrismaClient
const others: { $disconnect(): Promise<void> }[] = []

useCaptureDatabase({ db: (d) => (db = d), base: (c) => (base = c), prisma: () => undefined }, others)

function track<T extends { $disconnect(): Promise<void> }>(client: T): T {
  others.push(client)
  return client
}

const label = Prisma.defineExtension({
  result: {
    employee: {
      label: { needs: { name: true, email: true }, compute: (e) => `${e.name} (${e.email})` },
    },
  },
})

describe('what the caller gets is what plain Prisma gives', () => {
  it('a result extension computed field with select, before or after the outbox', async () => {
    const after = track(new PrismaClient({ adapter: new PrismaPg({ connectionString: db.url }) }))
      .$extends(outbox())
      .$extends(label)
    const before = track(new PrismaClient({ adapter: new PrismaPg({ connectionString: db.url }) }))
      .$extends(label)
      .$extends(outbox())
    const a = await after.employee.create({
      data: { email: 'a@corp.test', name: 'A' },
      select: { label: true },
    })
    const b = await before.employee.update({
      where: { email: 'a@corp.test' },
      data: { name: 'B' },
      select: { label: true },
    })
    // Computed fields are getters: compare their values and the keys returned.
    expect([Object.keys(a), a.label]).toEqual([['label'], 'A (a@corp.test)'])
    expect([Object.keys(b), b.label]).toEqual([['label'], 'B (a@corp.test)'])
    const rows = await outboxRows(db)
    expect(rows.map((r) => Object.keys(r.payload).length)).toEqual([8, 8])
  })

  it('client-wide omit, even of the key, shapes the result and never the payload', async () => {
    const client = track(
      new PrismaClient({
        adapter: new PrismaPg({ connectionString: db.url }),
        omit: { employee: { id: true, salary: true } },
      }),
    ).$extends(outbox())
    const created = await client.employee.create({
      data: { email: 'o@corp.test', name: 'O', salary: '5.50' },
    })
    expect(created).not.toHaveProperty('id')
    expect(created).not.toHaveProperty('salary')
    const many = await client.employee.createManyAndReturn({ data: [{ email: 'p@corp.test', name: 'P' }] })
    expect(many[0]).not.toHaveProperty('id')
    const rows = await outboxRows(db)
    expect(rows.map((r) => [r.payload.email, r.payload.salary, typeof r.payload.id])).toEqual([
      ['o@corp.test', '5.50', 'string'],
      ['p@corp.test', '0.00', 'string'],
    ])
  })

  it('include with relationLoadStrategy join and query returns what the plain client returns', async () => {
    const client = track(new PrismaClient({ adapter: new PrismaPg({ connectionString: db.url }) })).$extends(
      outbox(),
    )
    const { id } = await client.department.create({
      data: { name: 'R&D', employees: { create: [{ email: 'r@corp.test', name: 'R' }] } },
    })
    for (const relationLoadStrategy of ['join', 'query'] as const) {
      const through = await client.department.update({
        where: { id },
        data: { name: `R&D ${relationLoadStrategy}` },
        include: { employees: { select: { email: true } } },
        relationLoadStrategy,
      })
      const plain = await base.department.findUniqueOrThrow({
        where: { id },
        include: { employees: { select: { email: true } } },
        relationLoadStrategy,
      })
      expect(through).toEqual(plain)
    }
  })
})

describe('payloads keep every scalar type losslessly', () => {
  const bytes = new Uint8Array(Array.from({ length: 100 }, (_, i) => (i * 37) % 256))

  it('Decimal scale, non-finite floats, DateTime, Date, long Bytes, enums with @map, lists', async () => {
    const client = track(new PrismaClient({ adapter: new PrismaPg({ connectionString: db.url }) })).$extends(
      outbox(),
    )
    const probe = await client.probe.create({
      data: {
        text: 'x:y',
        n: -7,
        big: 9007199254740993n,
        ratio: Number.NaN,
        small: 0.1,
        price: '19.90',
        amount: '19.90',
        ok: true,
        at: new Date('2024-02-29T12:34:56.789Z'),
        atTz: new Date('2024-02-29T23:59:59.001Z'),
        day: new Date('2024-02-29T00:00:00.000Z'),
        data: bytes,
        doc: { a: [1, 'two', null], b: { c: true } },
        mood: 'sad',
        tags: ['a', 'b'],
        moods: ['sad', 'happy'],
        uid: '0190a0a0-0000-7000-8000-000000000001',
      },
    })
    // A row holding NaN can still be updated and deleted.
    await client.probe.update({ where: { id: probe.id }, data: { ratio: Number.POSITIVE_INFINITY } })
    await client.probe.update({ where: { id: probe.id }, data: { ratio: Number.NEGATIVE_INFINITY } })
    await client.probe.delete({ where: { id: probe.id } })
    const rows = await outboxRows(db)
    expect(rows.map((r) => r.type)).toEqual([
      'probe.created',
      'probe.updated',
      'probe.updated',
      'probe.deleted',
    ])
    expect(rows[0]?.payload).toEqual({
      id: probe.id,
      text: 'x:y',
      n: -7,
      big: '9007199254740993',
      ratio: 'NaN',
      small: 0.1, // real: its own shortest text, as Prisma reads it
      price: '19.900000000000000000000000000000',
      amount: '19.90',
      ok: true,
      at: '2024-02-29T12:34:56.789Z',
      atTz: '2024-02-29T23:59:59.001Z',
      day: '2024-02-29T00:00:00.000Z',
      data: Buffer.from(bytes).toString('base64'),
      doc: { a: [1, 'two', null], b: { c: true } },
      mood: 'sad',
      tags: ['a', 'b'],
      moods: ['sad', 'happy'],
      uid: '0190a0a0-0000-7000-8000-000000000001',
    })
    expect(rows.map((r) => r.payload.ratio)).toEqual(['NaN', 'Infinity', '-Infinity', '-Infinity'])
    expect(rows[0]?.payload.small).toBe(probe.small)
    // Every value is what Prisma itself returns, in the documented encoding.
    expect(rows[0]?.payload.at).toBe(probe.at.toISOString())
    expect(rows[0]?.payload.day).toBe(probe.day.toISOString())
    expect(rows[0]?.payload.data).toBe(Buffer.from(probe.data).toString('base64'))
  })
})

describe('wide models', () => {
  it('a model with 61 fields gets every field in its payload', async () => {
    const client = track(new PrismaClient({ adapter: new PrismaPg({ connectionString: db.url }) })).$extends(
      outbox(),
    )
    const created = await client.wide.create({ data: { id: 1, f59: -1 } })
    const [row] = await outboxRows(db)
    expect(Object.keys(row?.payload ?? {})).toHaveLength(61)
    expect(row?.payload).toEqual({ ...created })
  })
})

describe('named compound ids and uniques', () => {
  it('create, update, upsert and delete by @@id(name: "pk") and @@unique(name: "byNote")', async () => {
    const client = track(new PrismaClient({ adapter: new PrismaPg({ connectionString: db.url }) })).$extends(
      outbox(),
    )
    await client.pair.create({ data: { a: 'x:1', b: 2, note: 'n' } })
    const updated = await client.pair.update({
      where: { pk: { a: 'x:1', b: 2 } },
      data: { note: 'm' },
      select: { note: true },
    })
    expect(updated).toEqual({ note: 'm' })
    await client.pair.upsert({
      where: { pk: { a: 'x:1', b: 2 } },
      create: { a: 'x:1', b: 2 },
      update: { note: 'o' },
    })
    await client.pair.update({ where: { byNote: { note: 'o', b: 2 } }, data: { note: 'p' } })
    await client.pair.delete({ where: { pk: { a: 'x:1', b: 2 } } })
    const rows = await outboxRows(db)
    expect(rows.map((r) => [r.type, r.aggregateid, r.payload.note])).toEqual([
      ['pair.created', 'x%3A1:2', 'n'],
      ['pair.updated', 'x%3A1:2', 'm'],
      ['pair.updated', 'x%3A1:2', 'o'],
      ['pair.updated', 'x%3A1:2', 'p'],
      ['pair.deleted', 'x%3A1:2', 'p'],
    ])
  })
})

describe('other extensions, in any order', () => {
  /** Restricts employee writes and reads to one tenant's e-mail domain. */
  const tenant = (domain: string) =>
    Prisma.defineExtension({
      query: {
        employee: {
          $allOperations({ operation, args, query }) {
            const a = args as { where?: Record<string, unknown> }
            if (
              operation.startsWith('update') ||
              operation.startsWith('delete') ||
              operation.startsWith('find')
            ) {
              a.where = { AND: [a.where ?? {}, { email: { endsWith: `@${domain}` } }] }
            }
            return query(a as typeof args)
          },
        },
      },
    })
  const logging = (seen: string[]) =>
    Prisma.defineExtension({
      query: {
        $allModels: {
          $allOperations({ model, operation, args, query }) {
            seen.push(`${model}.${operation}`)
            return query(args)
          },
        },
      },
    })

  it.each(['before', 'after'])(
    'an args-altering extension applied %s the outbox changes only its rows',
    async (order) => {
      const plain = new PrismaClient({ adapter: new PrismaPg({ connectionString: db.url }) })
      track(plain)
      const client =
        order === 'before'
          ? plain.$extends(tenant('t1.test')).$extends(outbox())
          : plain.$extends(outbox()).$extends(tenant('t1.test'))
      await base.employee.createMany({
        data: [
          { email: 'a@t1.test', name: 'A' },
          { email: 'b@t2.test', name: 'B' },
        ],
      })
      await db.pool.query('TRUNCATE outbox_event')
      expect(await client.employee.updateMany({ data: { name: 'X' } })).toEqual({ count: 1 })
      expect(await client.employee.deleteMany({})).toEqual({ count: 1 })
      expect((await base.employee.findMany()).map((e) => [e.email, e.name])).toEqual([['b@t2.test', 'B']])
      const rows = await outboxRows(db)
      expect(rows.map((r) => [r.type, r.payload.email])).toEqual([
        ['employee.updated', 'a@t1.test'],
        ['employee.deleted', 'a@t1.test'],
      ])
    },
  )

  it.each(['before', 'after'])(
    'a logging extension applied %s the outbox sees exactly the calls made',
    async (order) => {
      const seen: string[] = []
      const plain = track(new PrismaClient({ adapter: new PrismaPg({ connectionString: db.url }) }))
      const client =
        order === 'before'
          ? plain.$extends(logging(seen)).$extends(outbox())
          : plain.$extends(outbox()).$extends(logging(seen))
      await client.employee.create({ data: { email: 'l@corp.test', name: 'L' } })
      await client.employee.updateMany({ data: { name: 'M' } })
      await client.employee.deleteMany({ where: { email: 'l@corp.test' } })
      expect(seen).toEqual(['Employee.create', 'Employee.updateMany', 'Employee.deleteMany'])
    },
  )
})

describe("the outbox table follows the client's schema", () => {
  async function schemaWithTables(schema: string, withOutbox: boolean) {
    const client = await db.pool.connect()
    try {
      await client.query(`CREATE SCHEMA "${schema}"`)
      await client.query(`SET search_path TO "${schema}"`)
      if (withOutbox) {
        await client.query(
          await readFile(join(OUTBOX_MIGRATIONS, '20261122000000_outbox_event/migration.sql'), 'utf8'),
        )
      }
      for (const migration of ['20261122000100_test_models', '20261201000000_capture_models']) {
        await client.query(await readFile(join(TEST_MIGRATIONS, migration, 'migration.sql'), 'utf8'))
      }
      await client.query('RESET search_path')
    } finally {
      client.release()
    }
  }

  it('new PrismaPg(url, { schema }): business rows and events both go to that schema', async () => {
    await schemaWithTables('app', true)
    const client = track(
      new PrismaClient({ adapter: new PrismaPg({ connectionString: db.url }, { schema: 'app' }) }),
    ).$extends(outbox())
    await client.employee.create({ data: { email: 's@corp.test', name: 'S' } })
    await client.$outbox.emit({ aggregateType: 'x', aggregateId: 1, type: 'x.done', payload: null })
    const { rows } = await db.pool.query<{ type: string }>('SELECT type FROM app.outbox_event ORDER BY seq')
    expect(rows.map((r) => r.type)).toEqual(['employee.created', 'x.done'])
    expect(await outboxRows(db)).toEqual([])
    expect(await base.employee.count()).toBe(0)
  })

  it('a schema without an outbox table fails before anything is written, naming the table', async () => {
    await schemaWithTables('bare', false)
    const client = track(
      new PrismaClient({ adapter: new PrismaPg({ connectionString: db.url }, { schema: 'bare' }) }),
    ).$extends(outbox())
    const error = await client.employee
      .create({ data: { email: 'b@corp.test', name: 'B' } })
      .catch((e: unknown) => e)
    expect(error).toBeInstanceOf(OutboxError)
    expect(error).toMatchObject({ code: 'OUTBOX_NOT_INSTALLED' })
    expect((error as Error).message).toContain('"bare"."outbox_event"')
    const { rows } = await db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM bare.employee')
    expect(rows[0]?.n).toBe(0)
    expect(await outboxRows(db)).toEqual([])
  })

  it("a schema option that contradicts the adapter's schema fails at $extends, naming both", () => {
    const client = track(
      new PrismaClient({ adapter: new PrismaPg({ connectionString: db.url }, { schema: 'app' }) }),
    )
    expect(() => client.$extends(outbox({ schema: 'other' }))).toThrow(/"other".*"app"/)
  })

  it("the schema option, equal to the adapter's, applies to the triggers and emit", async () => {
    const client = track(
      new PrismaClient({ adapter: new PrismaPg({ connectionString: db.url }, { schema: 'app' }) }),
    ).$extends(outbox({ schema: 'app' }))
    await client.$outbox.emit({ aggregateType: 'y', aggregateId: 2, type: 'y.done', payload: 1 })
    const { rows } = await db.pool.query<{ type: string }>(
      `SELECT type FROM app.outbox_event WHERE type = 'y.done'`,
    )
    expect(rows).toHaveLength(1)
  })
})

describe("Prisma's own errors come back", () => {
  it.each<[string, Parameters<typeof outbox>[0]]>([
    ['no options', {}],
    ['the headers option', { headers: () => ({ traceparent: 't' }) }],
  ])('a batch of a plain promise fails with the message plain Prisma gives (%s)', async (_name, options) => {
    const plain = track(new PrismaClient({ adapter: new PrismaPg({ connectionString: db.url }) }))
    const client = plain.$extends(outbox(options))
    const message = (run: () => Promise<unknown>) =>
      Promise.resolve()
        .then(run)
        .then(
          () => 'no error',
          (e: Error) => e.message,
        )
    const expected = await message(() => plain.$transaction([Promise.resolve(1) as never]))
    const actual = await message(() => client.$transaction([Promise.resolve(1) as never]))
    expect(actual).toBe(expected)
    expect(actual).not.toMatch(/prisma-outbox|@prisma\/client version/)
  })
})

describe('the generator warns about annotations it does not read', () => {
  it('/// @outbx, /// @Outbox and // @outbox each get a warning naming the line', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'outbox-gen-'))
    try {
      const generator = fileURLToPath(new URL('../bin/generator.mjs', import.meta.url))
      const schema = join(dir, 'schema.prisma')
      await writeFile(
        schema,
        `generator outbox {
  provider = "node ${generator}"
  output   = "${join(dir, 'out')}"
}

datasource db {
  provider = "postgresql"
}

/// @outbx
model A {
  id Int @id
}

/// @Outbox(topic: "b")
model B {
  id Int @id
}

// @outbox
model C {
  id Int @id
}

/// @outbox
model D {
  id Int @id
}
`,
      )
      const { stdout, stderr } = await promisify(execFile)(
        'npx',
        ['prisma', 'generate', '--schema', schema],
        {
          env: { ...process.env, PRISMA_SCHEMA_ENGINE_BINARY: '/bin/false' },
          cwd: fileURLToPath(new URL('..', import.meta.url)),
        },
      )
      const output = `${stdout}\n${stderr}`
      expect(output).toContain('line 10 ("/// @outbx")')
      expect(output).toContain('line 15 ("/// @Outbox(topic: "b")")')
      expect(output).toContain('line 20 ("// @outbox")')
      expect(output).not.toContain('line 25')
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  }, 60_000)
})

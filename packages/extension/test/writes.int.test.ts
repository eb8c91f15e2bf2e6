/**
 * Adversarial cases of the write path: headers that change from write to write, fail or are
 * huge; raw SQL in a transaction with extension writes; a fresh database whose first write comes
 * from many clients at once; a database user who may not create triggers.
 */
import { randomBytes } from 'node:crypto'
import { PrismaPg } from '@prisma/adapter-pg'
import type { TestDatabase } from '@prisma-outbox/devkit'
import { describe, expect, it } from 'vitest'
import { dropCaptureStatements, OutboxError } from '../src/index.js'
import { PrismaClient } from './generated/client/client.js'
import { outbox } from './generated/outbox/index.js'
import {
  dispose,
  type ExtendedPrisma,
  extendedPrisma,
  outboxRows,
  testDatabase,
  useCaptureDatabase,
} from './helpers.js'

let db: TestDatabase
let base: PrismaClient
let prisma: ExtendedPrisma

useCaptureDatabase({ db: (d) => (db = d), base: (c) => (base = c), prisma: (c) => (prisma = c) })

/** The error `write` throws or rejects with. */
/** The headers a row got from the writes, without the schemaVersion every captured row carries. */
const written = (headers: Record<string, string>) => {
  const { schemaVersion: _, ...rest } = headers
  return rest
}

async function failure(write: PromiseLike<unknown> | (() => unknown)): Promise<unknown> {
  return Promise.resolve()
    .then(() => (typeof write === 'function' ? write() : write))
    .then(
      () => undefined,
      (e: unknown) => e,
    )
}

/** An extended client whose pool has a single connection. */
const oneConnectionClient = (database: TestDatabase) =>
  new PrismaClient({ adapter: new PrismaPg({ connectionString: database.url, max: 1 }) }).$extends(outbox())

describe('headers', () => {
  it('each write of an interactive transaction carries its own headers, never the previous ones', async () => {
    const values: Record<string, string>[] = [{ step: '1' }, {}, { step: '3', extra: 'x' }]
    let call = 0
    const client = extendedPrisma(db, { headers: () => values[call++] ?? {} })
    try {
      await client.$transaction(async (tx) => {
        await tx.employee.create({ data: { email: 'a@corp.test', name: 'A' } })
        await tx.employee.create({ data: { email: 'b@corp.test', name: 'B' } })
        await tx.employee.update({ where: { email: 'a@corp.test' }, data: { name: 'A2' } })
      })
      const rows = await outboxRows(db)
      expect(rows.map((r) => [r.type, r.payload.name, written(r.headers)])).toEqual([
        ['employee.created', 'A', { step: '1' }],
        ['employee.created', 'B', {}],
        ['employee.updated', 'A2', { step: '3', extra: 'x' }],
      ])
    } finally {
      await client.$disconnect()
    }
  })

  it('a write the schema does not relate to captured rows, but the database does (a foreign key only in SQL), carries its own headers', async () => {
    await db.pool.query(
      'ALTER TABLE employee ADD COLUMN note_id int REFERENCES audit_note (id) ON DELETE CASCADE',
    )
    let call = 0
    const client = extendedPrisma(db, { headers: () => ({ write: String(++call) }) })
    try {
      await client.$transaction(async (tx) => {
        const note = await tx.auditNote.create({ data: { text: 'n' } })
        await tx.employee.create({ data: { email: 'a@corp.test', name: 'A' } })
        await tx.$executeRaw`UPDATE employee SET note_id = ${note.id}`
        await tx.auditNote.delete({ where: { id: note.id } })
      })
      const rows = await outboxRows(db)
      expect(rows.map((r) => [r.type, written(r.headers)])).toEqual([
        ['employee.created', { write: '2' }],
        ['employee.updated', { write: '2' }],
        ['employee.deleted', { write: '3' }],
      ])
    } finally {
      await client.$disconnect()
      await db.pool.query('ALTER TABLE employee DROP COLUMN note_id')
    }
  })

  it('raw SQL in a transaction gets the headers of the latest extension write before it, none before any', async () => {
    const client = extendedPrisma(db, { headers: () => ({ trace: 't1' }) })
    try {
      await client.$transaction(async (tx) => {
        await tx.$executeRaw`INSERT INTO department (name) VALUES ('before')`
        await tx.employee.create({ data: { email: 'a@corp.test', name: 'A' } })
        await tx.$executeRaw`INSERT INTO department (name) VALUES ('after')`
      })
      const rows = await outboxRows(db)
      expect(rows.map((r) => [r.type, written(r.headers)])).toEqual([
        ['department.created', {}],
        ['employee.created', { trace: 't1' }],
        ['department.created', { trace: 't1' }],
      ])
    } finally {
      await client.$disconnect()
    }
  })

  it('a headers() that throws fails the write with an OutboxError naming it, and changes nothing', async () => {
    const client = extendedPrisma(db, {
      headers: () => {
        throw new Error('no trace context')
      },
    })
    try {
      for (const write of [
        () => client.employee.create({ data: { email: 'a@corp.test', name: 'A' } }),
        () =>
          client.$transaction(async (tx) =>
            tx.employee.create({ data: { email: 'a@corp.test', name: 'A' } }),
          ),
        () => client.$outbox.emit({ aggregateType: 'x', aggregateId: 1, type: 'x.y', payload: null }),
      ]) {
        const error = await failure(write)
        expect(error).toBeInstanceOf(OutboxError)
        expect((error as OutboxError).code).toBe('OUTBOX_INVALID_EVENT')
        expect((error as OutboxError).message).toContain('options.headers() threw: no trace context')
        expect(((error as OutboxError).cause as Error).message).toBe('no trace context')
      }
      expect(await base.employee.count()).toBe(0)
      expect(await outboxRows(db)).toEqual([])
    } finally {
      await client.$disconnect()
    }
  })

  it('a headers() value that is not a string is named in the error', async () => {
    const client = extendedPrisma(db, { headers: () => ({ ok: 'x', count: 3 }) as never })
    try {
      const error = await failure(client.employee.create({ data: { email: 'a@corp.test', name: 'A' } }))
      expect((error as OutboxError).code).toBe('OUTBOX_INVALID_EVENT')
      expect((error as OutboxError).message).toContain('"count"')
    } finally {
      await client.$disconnect()
    }
  })

  it('a 1 MB header value reaches the event intact', async () => {
    const big = randomBytes(512 * 1024).toString('hex')
    const client = extendedPrisma(db, { headers: () => ({ big }) })
    try {
      await client.employee.create({ data: { email: 'a@corp.test', name: 'A' } })
      const [row] = await outboxRows(db)
      expect(row?.headers.big).toBe(big)
    } finally {
      await client.$disconnect()
    }
  })
})

describe('installing on a fresh database', () => {
  it('twenty new clients writing at once install the triggers once, and every write has its event', async () => {
    const fresh = await testDatabase()
    const clients = Array.from({ length: 20 }, () => extendedPrisma(fresh))
    try {
      await fresh.pool.query(`CREATE TABLE ddl_log (tag text NOT NULL);
        CREATE FUNCTION log_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO ddl_log VALUES (tg_tag); END $$;
        CREATE EVENT TRIGGER log_ddl ON ddl_command_end WHEN TAG IN ('CREATE TRIGGER') EXECUTE FUNCTION log_ddl()`)
      await Promise.all(
        clients.map((c, i) => c.employee.create({ data: { email: `c${i}@corp.test`, name: `C${i}` } })),
      )
      expect((await outboxRows(fresh)).length).toBe(20)
      const { rows } = await fresh.pool.query<{ created: number; installed: number }>(
        `SELECT (SELECT count(*)::int FROM ddl_log) AS created,
          (SELECT count(*)::int FROM pg_trigger WHERE tgname LIKE 'prisma_outbox_%' AND NOT tgisinternal
            AND tgfoid::regproc::text LIKE 'prisma_outbox_capture_%') AS installed`,
      )
      expect(rows[0]?.installed).toBeGreaterThan(0)
      expect(rows[0]?.created).toBe(rows[0]?.installed)
    } finally {
      await dispose(fresh, ...clients)
    }
  }, 120_000)

  it('a user who may not create triggers gets OUTBOX_NOT_INSTALLED naming why; once installed, its writes are captured', async () => {
    const fresh = await testDatabase()
    const role = `outbox_writer_${randomBytes(4).toString('hex')}`
    await fresh.pool.query(`CREATE ROLE ${role} LOGIN;
      GRANT USAGE ON SCHEMA public TO ${role};
      GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ${role};
      GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO ${role}`)
    const url = new URL(fresh.url)
    url.username = role
    const writer = new PrismaClient({ adapter: new PrismaPg({ connectionString: url.toString() }) }).$extends(
      outbox(),
    )
    const owner = extendedPrisma(fresh)
    try {
      const error = await failure(writer.employee.create({ data: { email: 'a@corp.test', name: 'A' } }))
      expect((error as OutboxError).code).toBe('OUTBOX_NOT_INSTALLED')
      expect((error as OutboxError).message).toMatch(/must be owner|permission denied/)
      expect((error as OutboxError).message).toContain('capture.sql')
      await owner.$outbox.ready()
      await writer.employee.create({ data: { email: 'a@corp.test', name: 'A' } })
      expect((await outboxRows(fresh)).map((r) => r.type)).toEqual(['employee.created'])
    } finally {
      await dispose(undefined, writer, owner)
      await fresh.pool.query(`DROP OWNED BY ${role}`)
      await dispose(fresh)
      const admin = new PrismaClient({ adapter: new PrismaPg({ connectionString: db.url }) })
      await admin.$executeRawUnsafe(`DROP ROLE ${role}`)
      await admin.$disconnect()
    }
  }, 120_000)
})

describe('transactions', () => {
  it('a deferred constraint failing at commit leaves neither the rows nor their events', async () => {
    await db.pool.query(
      'ALTER TABLE employee ADD CONSTRAINT employee_name_once UNIQUE (name) DEFERRABLE INITIALLY DEFERRED',
    )
    try {
      const error = await failure(
        prisma.$transaction(async (tx) => {
          await tx.employee.create({ data: { email: 'a@corp.test', name: 'Same' } })
          await tx.employee.create({ data: { email: 'b@corp.test', name: 'Same' } })
        }),
      )
      expect(String(error)).toContain('UniqueConstraintViolation')
      expect(await base.employee.count()).toBe(0)
      expect(await outboxRows(db)).toEqual([])
    } finally {
      await db.pool.query('ALTER TABLE employee DROP CONSTRAINT employee_name_once')
    }
  })

  it('serializable transactions: the one that fails leaves no event, its retry writes exactly its own', async () => {
    let arrived = 0
    let proceed: () => void = () => {}
    const bothRead = new Promise<void>((resolve) => {
      proceed = resolve
    })
    const attempt = (email: string, meet: boolean) =>
      prisma.$transaction(
        async (tx) => {
          await tx.employee.count()
          if (meet) {
            arrived += 1
            if (arrived === 2) proceed()
            await bothRead
          }
          await tx.employee.create({ data: { email, name: email } })
        },
        { isolationLevel: 'Serializable' },
      )
    const results = await Promise.allSettled([attempt('a@corp.test', true), attempt('b@corp.test', true)])
    const failed = results.flatMap((r, i) => (r.status === 'rejected' ? [i] : []))
    expect(failed.length).toBe(1)
    expect((await outboxRows(db)).length).toBe(1)
    await attempt(failed[0] === 0 ? 'a@corp.test' : 'b@corp.test', false)
    const rows = await outboxRows(db)
    expect(rows.map((r) => r.payload.email).sort()).toEqual(['a@corp.test', 'b@corp.test'])
    expect(rows.map((r) => r.type)).toEqual(['employee.created', 'employee.created'])
  })
})

describe('clients with other options on one database', () => {
  it("triggers: 'verify' refuses triggers installed for other settings, naming the model", async () => {
    const strict = extendedPrisma(db, { triggers: 'verify', models: { Employee: { topic: 'hr.staff' } } })
    try {
      const error = await failure(strict.employee.create({ data: { email: 'a@corp.test', name: 'A' } }))
      expect((error as OutboxError).code).toBe('OUTBOX_NOT_INSTALLED')
      expect((error as OutboxError).message).toContain('Employee ("employee")')
      expect((error as OutboxError).message).toContain("'hr.staff'")
      expect(await base.employee.count()).toBe(0)
    } finally {
      await strict.$disconnect()
    }
  })

  it('with install, the settings of the client that installed last apply to every writer', async () => {
    const other = extendedPrisma(db, { models: { Employee: { topic: 'hr.staff' } } })
    try {
      await prisma.employee.create({ data: { email: 'a@corp.test', name: 'A' } })
      await other.employee.create({ data: { email: 'b@corp.test', name: 'B' } })
      await prisma.employee.create({ data: { email: 'c@corp.test', name: 'C' } })
      expect((await outboxRows(db)).map((r) => `${r.payload.email} ${r.topic}`)).toEqual([
        'a@corp.test outbox.event.employee',
        'b@corp.test hr.staff',
        'c@corp.test hr.staff',
      ])
    } finally {
      await other.$disconnect()
    }
  })
})

describe("a client's first write inside a transaction, triggers not yet installed", () => {
  it('installs them in that transaction: no second connection needed, no wait on its own locks', async () => {
    const fresh = await testDatabase()
    const single = oneConnectionClient(fresh)
    const pooled = extendedPrisma(fresh)
    try {
      // One connection: the caller's transaction holds it.
      await single.$transaction(async (tx) => {
        await tx.employee.create({ data: { email: 'a@corp.test', name: 'A' } })
      })
      await fresh.pool.query(
        `DO $$ DECLARE t text; BEGIN FOR t IN SELECT DISTINCT tgrelid::regclass::text FROM pg_trigger WHERE tgname = 'prisma_outbox_insert' LOOP
           EXECUTE format('DROP TRIGGER prisma_outbox_insert ON %s', t); END LOOP; END $$`,
      )
      // The caller's transaction already holds a lock on the table the DDL must lock.
      await pooled.$transaction(async (tx) => {
        await tx.$executeRaw`UPDATE employee SET name = 'A2'`
        await tx.employee.create({ data: { email: 'b@corp.test', name: 'B' } })
      })
      expect((await outboxRows(fresh)).map((r) => `${r.type} ${r.payload.email}`)).toEqual([
        'employee.created a@corp.test',
        'employee.updated a@corp.test',
        'employee.created b@corp.test',
      ])
    } finally {
      await dispose(fresh, single, pooled)
    }
  }, 60_000)

  it('a batch $transaction as the first write of a one-connection client installs and captures', async () => {
    const fresh = await testDatabase()
    const single = oneConnectionClient(fresh)
    try {
      await single.$transaction([
        single.employee.create({ data: { email: 'a@corp.test', name: 'A' } }),
        single.employee.create({ data: { email: 'b@corp.test', name: 'B' } }),
      ])
      expect((await outboxRows(fresh)).map((r) => r.payload.email)).toEqual(['a@corp.test', 'b@corp.test'])
    } finally {
      await dispose(fresh, single)
    }
  }, 60_000)

  it('a transaction that rolls back takes the install with it; the next write installs again', async () => {
    const fresh = await testDatabase()
    const client = extendedPrisma(fresh)
    try {
      await failure(
        client.$transaction(async (tx) => {
          await tx.employee.create({ data: { email: 'a@corp.test', name: 'A' } })
          throw new Error('abort')
        }),
      )
      await client.employee.create({ data: { email: 'b@corp.test', name: 'B' } })
      expect((await outboxRows(fresh)).map((r) => `${r.type} ${r.payload.email}`)).toEqual([
        'employee.created b@corp.test',
      ])
    } finally {
      await dispose(fresh, client)
    }
  }, 60_000)
})

describe('what cannot be captured is named before any DDL runs', () => {
  it('a captured model whose table is a view fails the first write with OUTBOX_INVALID_OPTIONS naming it', async () => {
    const fresh = await testDatabase()
    await fresh.pool.query(
      'ALTER TABLE pair RENAME TO pair_data; CREATE VIEW pair AS SELECT * FROM pair_data',
    )
    const client = extendedPrisma(fresh)
    try {
      const error = await failure(client.employee.create({ data: { email: 'a@corp.test', name: 'A' } }))
      expect((error as OutboxError).code).toBe('OUTBOX_INVALID_OPTIONS')
      expect((error as OutboxError).message).toContain('Pair ("pair") is a view')
      const { rows } = await fresh.pool.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_trigger WHERE tgname LIKE 'prisma_outbox_%' AND NOT tgisinternal`,
      )
      expect(rows[0]?.n).toBe(0)
    } finally {
      await dispose(fresh, client)
    }
  }, 120_000)
})

describe('a captured model added later', () => {
  it('installs only its own triggers, without waiting for transactions writing the other tables', async () => {
    const later = extendedPrisma(db, { models: { AuditNote: true } })
    const other = await db.pool.connect()
    try {
      await other.query('BEGIN')
      await other.query(
        `INSERT INTO employee (id, email, name) VALUES (gen_random_uuid(), 'o@corp.test', 'O')`,
      )
      // Resolves while the other transaction still holds its lock on employee.
      await later.$outbox.ready()
      await Promise.all([
        later.auditNote.create({ data: { text: 'n' } }),
        prisma.employee.create({ data: { email: 'a@corp.test', name: 'A' } }),
        base.employee.create({ data: { email: 'b@corp.test', name: 'B' } }),
      ])
      await other.query('COMMIT')
      const rows = await outboxRows(db)
      expect(rows.map((r) => `${r.type} ${r.payload.email ?? r.payload.text}`).sort()).toEqual([
        'auditNote.created n',
        'employee.created a@corp.test',
        'employee.created b@corp.test',
        'employee.created o@corp.test',
      ])
    } finally {
      other.release()
      await later.$disconnect()
      for (const statement of dropCaptureStatements('audit_note')) await db.pool.query(statement)
    }
  })
})

it('the shared client is unaffected by the clients above', async () => {
  await prisma.employee.create({ data: { email: 'z@corp.test', name: 'Z' } })
  expect((await outboxRows(db)).map((r) => written(r.headers))).toEqual([{}])
})

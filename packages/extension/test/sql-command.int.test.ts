/**
 * `prisma-outbox sql`: the printed DDL is the shipped migration, and `--apply` installs the outbox
 * and inbox tables on a fresh database, is a no-op the second time, re-creates a partial index a
 * Prisma migration dropped, and refuses an index of the same name without its WHERE clause.
 */
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createTestDatabase, type TestDatabase } from '@prisma-outbox/devkit'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { sqlMain } from '../src/cli/sql-main.js'
import { outboxMigrationSql } from '../src/sql/index.js'

let db: TestDatabase
beforeEach(async () => {
  db = await createTestDatabase({ migrations: [], prefix: 'outbox_sql_cmd' })
})
afterEach(async () => {
  await db.drop()
})

async function run(argv: string[], env: Record<string, string> = {}) {
  const out: string[] = []
  const err: string[] = []
  const code = await sqlMain(argv, {
    env,
    stdout: { write: (t: string) => out.push(t) },
    stderr: { write: (t: string) => err.push(t) },
  })
  return { code, stdout: out.join(''), stderr: err.join('') }
}

const indexes = async () =>
  (
    await db.pool.query<{ indexname: string }>(
      "SELECT indexname FROM pg_indexes WHERE tablename IN ('outbox_event', 'outbox_inbox') ORDER BY 1",
    )
  ).rows.map((r) => r.indexname)

describe('prisma-outbox sql', () => {
  it('Should print the shipped outbox migration byte for byte, and its rerunnable form', async () => {
    expect((await run(['sql', 'outbox'])).stdout).toBe(outboxMigrationSql())
    expect((await run(['sql', 'outbox', '--rerunnable'])).stdout).toMatch(/CREATE INDEX IF NOT EXISTS/)
    expect((await run(['sql', 'inbox'])).stdout).toMatch(/CREATE TABLE "outbox_inbox"/)
  })

  it('Should apply outbox and inbox to a fresh database, then report everything present on a second run', async () => {
    const first = await run(['sql', 'outbox', '--apply', '--url', db.url])
    expect(first.stderr).toBe('')
    expect(first.code).toBe(0)
    expect(JSON.parse(first.stdout)).toEqual({
      target: 'outbox',
      created: [
        'outbox_event',
        'outbox_event_pending_seq_idx',
        'outbox_event_unfinished_key_idx',
        'outbox_event_published_at_idx',
        'outbox_event_dead_key_idx',
        'outbox_event_held_key_idx',
      ],
      present: [],
    })
    const inbox = await run(['sql', 'inbox', '--apply'], { DATABASE_URL: db.url })
    expect(inbox.stderr).toBe('')
    expect(JSON.parse(inbox.stdout)).toEqual({
      target: 'inbox',
      created: ['outbox_inbox', 'outbox_inbox_processed_at_idx', 'outbox_inbox_failed_idx'],
      present: [],
    })
    // Every inbox migration, the failed records' columns and constraint included; again a no-op.
    const inboxAgain = await run(['sql', 'inbox', '--apply'], { DATABASE_URL: db.url })
    expect(inboxAgain.stderr).toBe('')
    expect(JSON.parse(inboxAgain.stdout)).toMatchObject({ created: [] })
    const columns = await db.pool.query(
      "SELECT column_name FROM information_schema.columns WHERE table_name = 'outbox_inbox' AND column_name IN ('status', 'attempts', 'message_headers') ORDER BY 1",
    )
    expect(columns.rows.map((r) => r.column_name)).toEqual(['attempts', 'message_headers', 'status'])
    await expect(
      db.pool.query(
        "INSERT INTO outbox_inbox (consumer, event_id, status) VALUES ('c', gen_random_uuid(), 'lost')",
      ),
    ).rejects.toThrow(/outbox_inbox_status_check/)
    const again = await run(['sql', 'outbox', '--apply', '--url', db.url])
    expect(again.code).toBe(0)
    expect(JSON.parse(again.stdout)).toMatchObject({
      created: [],
      present: expect.arrayContaining(['outbox_event']),
    })
    // The table works: the NOTIFY trigger and the defaults are in place.
    await db.pool.query(
      "INSERT INTO outbox_event (id, aggregatetype, aggregateid, type, payload, topic) VALUES (gen_random_uuid(), 'a', '1', 'a.created', '{}', 't')",
    )
    const triggers = await db.pool.query("SELECT tgname FROM pg_trigger WHERE tgname = 'outbox_event_notify'")
    expect(triggers.rowCount).toBe(1)
  })

  it('Should re-create a partial index a Prisma migration dropped, and refuse one re-created without WHERE', async () => {
    await run(['sql', 'outbox', '--apply', '--url', db.url])
    await db.pool.query('DROP INDEX "outbox_event_published_at_idx"')
    const repaired = await run(['sql', 'outbox', '--apply', '--url', db.url])
    expect(JSON.parse(repaired.stdout).created).toEqual(['outbox_event_published_at_idx'])
    expect(await indexes()).toContain('outbox_event_published_at_idx')
    const def = await db.pool.query(
      "SELECT indexdef FROM pg_indexes WHERE indexname = 'outbox_event_published_at_idx'",
    )
    expect(def.rows[0].indexdef).toMatch(/WHERE \(status = 'published'::text\)/)

    await db.pool.query('DROP INDEX "outbox_event_pending_seq_idx"')
    await db.pool.query('CREATE INDEX "outbox_event_pending_seq_idx" ON "outbox_event" ("seq")')
    const refused = await run(['sql', 'outbox', '--apply', '--url', db.url])
    expect(refused.code).toBe(1)
    expect(refused.stderr).toMatch(/index outbox_event_pending_seq_idx exists without its WHERE clause/)
  })

  it('Should apply the capture.sql the generator wrote', async () => {
    await run(['sql', 'outbox', '--apply', '--url', db.url])
    const dir = mkdtempSync(join(tmpdir(), 'prisma-outbox-capture-'))
    writeFileSync(join(dir, 'capture.sql'), 'CREATE TABLE "captured_probe" ("id" int);\n')
    const r = await run(['sql', 'capture', '--dir', dir, '--apply', '--url', db.url])
    expect(r.code).toBe(0)
    expect(JSON.parse(r.stdout)).toMatchObject({ target: 'capture', created: ['captured_probe'] })
  })

  it.each([
    [['sql'], /missing target/],
    [['sql', 'outbx'], /unknown target "outbx"/],
    [['sql', 'capture'], /give --dir/],
    [['sql', 'outbox', '--apply'], /--apply needs --url/],
    [['sql', 'outbox', '--aply'], /Unknown option '--aply'/],
    [['migrate'], /unknown command "migrate"/],
  ])('Should exit 2 for %j naming the problem', async (argv, message) => {
    const r = await run(argv)
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(message)
  })

  it('Should exit 1 naming the cause when the database is unreachable', async () => {
    const r = await run(['sql', 'outbox', '--apply', '--url', 'postgresql://postgres@127.0.0.1:1/nope'])
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/ECONNREFUSED|connect/)
  })
})

/**
 * `prisma-outbox sql outbox|inbox|capture [--rerunnable] [--apply [--url <url>]]`: the DDL of
 * the outbox table, the consumer's inbox table and the capture triggers, printed for other
 * migration tools, or applied to a database.
 * @module
 */
import { readdirSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { parseArgs } from 'node:util'
import { outboxMigrationSql } from '../sql/index.js'
import { createdObjects, rerunnable } from './ddl.js'

/** Usage text of `prisma-outbox`. */
export const SQL_USAGE = `usage: prisma-outbox sql <outbox|inbox|capture> [--rerunnable] [--apply [--url <postgres url>]]

Prints the DDL of prisma-outbox, for teams that apply schema changes with another tool
(Flyway, Liquibase, dbmate, psql...), or applies it.

  outbox    the outbox_event table, its partial indexes and the NOTIFY trigger of watch mode
            (the migration of @prisma-outbox/extension, byte for byte)
  inbox     the outbox_inbox table of @prisma-outbox/consumer (installed next to this package),
            every one of its migrations in order
  capture   the capture triggers the generator wrote: --dir <the generator's output folder>

flags:
  --rerunnable   print the form that is safe to run again (IF NOT EXISTS, OR REPLACE): it
                 re-creates a partial index a Prisma migration dropped and leaves the rest alone
  --apply        run the rerunnable form in one transaction on --url (default DATABASE_URL) and
                 report what was created and what was already there
  --url <url>    the database for --apply
  --dir <path>   capture: the folder holding capture.sql (the generator's output)
  -h, --help     this text

exit codes: 0 printed or applied, 1 the database refused or an index of the same name has another
shape (named in the message), 2 bad usage
`

/** Where the command reads and writes. */
export interface SqlIO {
  env: Record<string, string | undefined>
  stdout: { write(text: string): unknown }
  stderr: { write(text: string): unknown }
}

class UsageError extends Error {}

const TARGETS = ['outbox', 'inbox', 'capture'] as const
type Target = (typeof TARGETS)[number]

/** The inbox migrations shipped in @prisma-outbox/consumer's `prisma/migrations/`, in order. */
function inboxSql(): string {
  let root: string
  try {
    root = dirname(createRequire(import.meta.url).resolve('@prisma-outbox/consumer/package.json'))
  } catch {
    throw new UsageError(
      'inbox: @prisma-outbox/consumer is not installed here (npm install @prisma-outbox/consumer)',
    )
  }
  const dir = join(root, 'prisma', 'migrations')
  // Every migration in order: the table, then what later versions added (e.g. failed records).
  const folders = readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort()
  if (folders.length === 0) throw new UsageError(`inbox: no migration folder in ${dir}`)
  return folders.map((name) => readFileSync(join(dir, name, 'migration.sql'), 'utf8')).join('\n')
}

function captureSql(dir: string | undefined): string {
  if (!dir) throw new UsageError('capture: give --dir <the output folder of prisma-outbox-generator>')
  try {
    return readFileSync(join(dir, 'capture.sql'), 'utf8')
  } catch {
    throw new UsageError(
      `capture: no capture.sql in ${dir} (run prisma generate; the generator writes it there)`,
    )
  }
}

function ddlOf(target: Target, dir: string | undefined): string {
  if (target === 'outbox') return outboxMigrationSql()
  if (target === 'inbox') return inboxSql()
  return captureSql(dir)
}

interface ApplyReport {
  created: string[]
  present: string[]
}

/**
 * Applies `sql` in one transaction, after checking that no index it creates exists with another
 * shape (a partial index Prisma re-created without its WHERE clause would be kept silently by
 * `IF NOT EXISTS`).
 */
async function apply(url: string, sql: string): Promise<ApplyReport> {
  let pg: typeof import('pg')
  try {
    pg = (await import('pg')).default as unknown as typeof import('pg')
  } catch {
    throw new UsageError('--apply needs the pg package (npm install pg; @prisma/adapter-pg brings it)')
  }
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 })
  await client.connect()
  try {
    const objects = createdObjects(sql)
    const names = objects.map((o) => o.name)
    const { rows } = await client.query<{ name: string; def: string | null }>(
      `SELECT c.relname AS name, pg_get_indexdef(c.oid) AS def FROM pg_class c
       WHERE c.relname = ANY($1::text[]) AND pg_table_is_visible(c.oid)`,
      [names],
    )
    const present = new Map(rows.map((r) => [r.name, r.def]))
    for (const o of objects) {
      const def = present.get(o.name)
      if (o.kind === 'index' && o.partial && def && !/\sWHERE\s/.test(def))
        throw new Error(
          `index ${o.name} exists without its WHERE clause (${def}); drop it (DROP INDEX "${o.name}") and apply again`,
        )
    }
    await client.query('BEGIN')
    try {
      await client.query(rerunnable(sql))
      await client.query('COMMIT')
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {})
      throw error
    }
    return { created: names.filter((n) => !present.has(n)), present: names.filter((n) => present.has(n)) }
  } finally {
    await client.end().catch(() => {})
  }
}

function parse(argv: string[]) {
  try {
    return parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        rerunnable: { type: 'boolean' },
        apply: { type: 'boolean' },
        url: { type: 'string' },
        dir: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    })
  } catch (error) {
    throw new UsageError((error as Error).message)
  }
}

/**
 * Runs `prisma-outbox <argv>`; returns the exit code (0 done, 1 the database refused, 2 usage).
 * @example
 * process.exitCode = await sqlMain(['sql', 'outbox'])
 */
export async function sqlMain(argv: string[], io: SqlIO = process): Promise<number> {
  try {
    const { values, positionals } = parse(argv)
    if (values.help || positionals.length === 0) {
      io.stdout.write(SQL_USAGE)
      return values.help ? 0 : 2
    }
    const [command, target, ...extra] = positionals
    if (command !== 'sql') throw new UsageError(`unknown command "${command}" (the command is sql)`)
    if (!target || !(TARGETS as readonly string[]).includes(target))
      throw new UsageError(
        `${target ? `unknown target "${target}"` : 'missing target'}: outbox, inbox or capture`,
      )
    if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`)
    const sql = ddlOf(target as Target, values.dir)
    if (!values.apply) {
      io.stdout.write(values.rerunnable ? rerunnable(sql) : sql)
      return 0
    }
    const url = values.url ?? io.env.DATABASE_URL
    if (!url) throw new UsageError('--apply needs --url <postgres url> or DATABASE_URL')
    const report = await apply(url, sql)
    io.stdout.write(`${JSON.stringify({ target, ...report })}\n`)
    return 0
  } catch (error) {
    io.stderr.write(
      `prisma-outbox: ${(error as Error).message}\n${error instanceof UsageError ? `\n${SQL_USAGE}` : ''}`,
    )
    return error instanceof UsageError ? 2 : 1
  }
}

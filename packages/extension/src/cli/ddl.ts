/**
 * The DDL of `prisma-outbox sql`: the shipped migrations as they are, their rerunnable form, and
 * the objects they create (to report what was there before applying).
 * @module
 */

/**
 * The migration made safe to run again: `CREATE TABLE/INDEX IF NOT EXISTS`, `CREATE OR REPLACE
 * FUNCTION/TRIGGER` (PostgreSQL 14+, as the capture triggers already need). A missing index
 * (e.g. one `prisma migrate dev` dropped) is created again; everything present is left alone.
 *
 * @example
 * rerunnable('CREATE INDEX "a" ON "t" ("c");') // 'CREATE INDEX IF NOT EXISTS "a" ON "t" ("c");'
 */
export function rerunnable(sql: string): string {
  return sql
    .replace(/^CREATE TABLE (?!IF NOT EXISTS)/gm, 'CREATE TABLE IF NOT EXISTS ')
    .replace(/^CREATE (UNIQUE )?INDEX (?!IF NOT EXISTS)/gm, 'CREATE $1INDEX IF NOT EXISTS ')
    .replace(/^CREATE FUNCTION /gm, 'CREATE OR REPLACE FUNCTION ')
    .replace(/^CREATE TRIGGER /gm, 'CREATE OR REPLACE TRIGGER ')
}

/** A table or index a migration creates. */
export interface DdlObject {
  kind: 'table' | 'index'
  name: string
  /** Indexes: the definition has a WHERE clause (a partial index). */
  partial: boolean
}

/**
 * The tables and indexes `CREATE` statements of `sql` name, in order.
 * @example
 * createdObjects(outboxMigrationSql()) // [{ kind: 'table', name: 'outbox_event', … }, { kind: 'index', … }]
 */
export function createdObjects(sql: string): DdlObject[] {
  const statements = sql.split(/;\s*\n/)
  const objects: DdlObject[] = []
  for (const statement of statements) {
    const text = statement.replace(/^\s*--.*$/gm, '').trim()
    const m = /^CREATE (TABLE|(?:UNIQUE )?INDEX)(?: IF NOT EXISTS)? "([^"]+)"/.exec(text)
    if (!m?.[2]) continue
    const kind = m[1] === 'TABLE' ? 'table' : 'index'
    objects.push({ kind, name: m[2], partial: kind === 'index' && /\)\s*WHERE\s/s.test(text) })
  }
  return objects
}

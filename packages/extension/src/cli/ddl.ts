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
    .replace(
      /^ALTER TABLE ("[^"]+"(?:\."[^"]+")?)\s+([\s\S]*?);[ \t]*$/gm,
      (_all, table: string, body: string) => rerunnableAlter(table, body),
    )
}

/** Splits `a, b (c, d), e` on the commas outside parentheses and quotes. */
function topLevelClauses(body: string): string[] {
  const clauses: string[] = []
  let depth = 0
  let quote: string | undefined
  let start = 0
  for (let i = 0; i < body.length; i++) {
    const c = body[i]
    if (quote) {
      if (c === quote) quote = undefined
    } else if (c === '"' || c === "'") quote = c
    else if (c === '(') depth++
    else if (c === ')') depth--
    else if (c === ',' && depth === 0) {
      clauses.push(body.slice(start, i).trim())
      start = i + 1
    }
  }
  clauses.push(body.slice(start).trim())
  return clauses.filter((c) => c.length > 0)
}

/**
 * `ALTER TABLE t ADD COLUMN …, ADD CONSTRAINT …` made rerunnable: columns get `IF NOT EXISTS`;
 * a constraint (which has no such clause) is added by a DO block only when the table lacks it.
 */
function rerunnableAlter(table: string, body: string): string {
  const columns: string[] = []
  const constraints: { name: string; clause: string }[] = []
  for (const clause of topLevelClauses(body)) {
    const constraint = /^ADD CONSTRAINT "([^"]+)"/.exec(clause)
    if (constraint?.[1]) constraints.push({ name: constraint[1], clause })
    else columns.push(clause.replace(/^ADD COLUMN (?!IF NOT EXISTS)/, 'ADD COLUMN IF NOT EXISTS '))
  }
  const parts: string[] = []
  if (columns.length > 0) parts.push(`ALTER TABLE ${table}\n    ${columns.join(',\n    ')};`)
  for (const { name, clause } of constraints) {
    const literal = (text: string) => `'${text.replaceAll("'", "''")}'`
    parts.push(
      [
        'DO $rerunnable$ BEGIN',
        `  IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = ${literal(name)} AND conrelid = ${literal(table)}::regclass) THEN`,
        `    ALTER TABLE ${table} ${clause};`,
        '  END IF;',
        'END $rerunnable$;',
      ].join('\n'),
    )
  }
  return parts.join('\n')
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

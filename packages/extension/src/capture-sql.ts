/**
 * The capture triggers: for each captured model, one PL/pgSQL function and three statement-level
 * AFTER triggers (INSERT, UPDATE, DELETE) with transition tables. They insert one outbox row per
 * row the statement changed, set-based, in the statement's transaction: whatever wrote the rows
 * (a Prisma call, a nested write, a referential action at any depth, raw SQL, another client).
 *
 * The payload is built in SQL with the same encoding the extension always used (field names, not
 * column names; BigInt and Decimal as strings, Decimal with its scale; DateTime as ISO-8601 UTC
 * with milliseconds; Bytes as base64; Json as JSON; enums by their Prisma names; lists as arrays;
 * non-finite floats as the strings "NaN", "Infinity", "-Infinity").
 * @module
 */
import { createHash } from 'node:crypto'
import type { OutboxDatamodel, OutboxFieldInfo, OutboxModelInfo } from './datamodel.js'
import type { CapturedModel } from './options.js'

/** What the SQL depends on besides the datamodel. */
export interface CaptureSqlOptions {
  captured: ReadonlyMap<string, CapturedModel>
  /** Table name of the outbox model. */
  outboxTable: string
  /**
   * Schema of the captured tables and the outbox table. Without it names are unqualified and
   * each function keeps the `search_path` it was created with.
   */
  schema?: string
}

/** The SQL installing the capture of one model, and how to recognise it once installed. */
export interface ModelCapture {
  model: string
  /** Table name as `to_regclass` reads it (schema-qualified when a schema is set). */
  table: string
  functionName: string
  /** Stored as the function's comment; a trigger whose function has another one is out of date. */
  fingerprint: string
  statements: string[]
}

/** Names of the three triggers on each captured table. */
export const TRIGGER_NAMES = ['prisma_outbox_insert', 'prisma_outbox_update', 'prisma_outbox_delete'] as const

export const FINGERPRINT_PREFIX = 'prisma-outbox capture '

const UUIDV7 = 'prisma_outbox_uuidv7'
/** Transaction-local setting carrying the per-write headers (`set_config(..., true)`). */
export const HEADERS_SETTING = 'prisma_outbox.headers'
const ISO_AFTER_YEAR = `'-MM-DD"T"HH24:MI:SS.MS"Z"'`
/** jsonb_build_object takes at most 100 arguments: 50 fields per call, calls joined with ||. */
const FIELDS_PER_OBJECT = 50

export const quoteIdent = (name: string) => `"${name.replaceAll('"', '""')}"`
const literal = (text: string) => `'${text.replaceAll("'", "''")}'`

/**
 * A name for SQL text, schema-qualified when a schema is known: each part a double-quoted
 * identifier with embedded quotes doubled (`app`, `outbox_event` → `"app"."outbox_event"`), the
 * rule of the relay's `quoteTable` and of the consumer's inbox table too.
 */
export function qualified(schema: string | undefined, name: string): string {
  return schema === undefined ? quoteIdent(name) : `${quoteIdent(schema)}.${quoteIdent(name)}`
}

/** A PostgreSQL identifier of at most 63 bytes, unique per table name. */
function functionNameFor(table: string): string {
  const name = `prisma_outbox_capture_${table}`
  if (Buffer.byteLength(name) <= 63) return name
  const hash = createHash('sha256').update(table).digest('hex').slice(0, 8)
  return `prisma_outbox_capture_${Buffer.from(table)
    .subarray(0, 30)
    .toString('utf8')
    .replace(/\uFFFD$/, '')}_${hash}`
}

/** `uuidv7()` for PostgreSQL before 18: a random v4 uuid with its first 48 bits set to the time in ms. */
export function uuidv7FunctionSql(schema?: string): string {
  return `CREATE OR REPLACE FUNCTION ${qualified(schema, UUIDV7)}() RETURNS uuid LANGUAGE sql VOLATILE PARALLEL SAFE AS $prisma_outbox$
  SELECT encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid())
    PLACING substring(int8send((extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
    FROM 1 FOR 6), 52, 1), 53, 1), 'hex')::uuid
$prisma_outbox$`
}

/** The capture SQL of every captured model, plus the shared `uuidv7` function first. */
export function captureStatements(datamodel: OutboxDatamodel, options: CaptureSqlOptions): ModelCapture[] {
  return [...options.captured.entries()].map(([model, captured]) =>
    modelCapture(datamodel, model, captured, options),
  )
}

/**
 * All statements, in order, as one script (e.g. for a migration). With `dropOthers`, the triggers
 * of the datamodel's other models are dropped, so a model that is no longer captured stops
 * producing events when the script is applied.
 */
export function captureScript(
  datamodel: OutboxDatamodel,
  options: CaptureSqlOptions,
  dropOthers = false,
): string {
  const parts = [uuidv7FunctionSql(options.schema)]
  for (const capture of captureStatements(datamodel, options)) parts.push(...capture.statements)
  if (dropOthers) {
    for (const [model, info] of Object.entries(datamodel.models)) {
      if (options.captured.has(model) || info.dbName === options.outboxTable) continue
      parts.push(...dropCaptureStatements(info.dbName, options.schema))
    }
  }
  return `-- prisma-outbox: capture triggers. Generated; apply as a migration or let the extension install them.\n${parts.map((p) => `${p};`).join('\n\n')}\n`
}

/** Removes the capture of one table (its triggers and function); a missing table is skipped. */
export function dropCaptureStatements(table: string, schema?: string): string[] {
  const name = qualified(schema, table)
  const drops = TRIGGER_NAMES.map((t) => `DROP TRIGGER IF EXISTS ${quoteIdent(t)} ON ${name};`).join(' ')
  return [
    `DO $prisma_outbox$ BEGIN IF to_regclass(${literal(name)}) IS NOT NULL THEN ${drops} END IF; END $prisma_outbox$`,
    `DROP FUNCTION IF EXISTS ${qualified(schema, functionNameFor(table))}()`,
  ]
}

function modelCapture(
  datamodel: OutboxDatamodel,
  model: string,
  captured: CapturedModel,
  options: CaptureSqlOptions,
): ModelCapture {
  const info = datamodel.models[model] as OutboxModelInfo
  const { schema } = options
  const table = qualified(schema, info.dbName)
  const fn = qualified(schema, functionNameFor(info.dbName))
  const outbox = qualified(schema, options.outboxTable)
  const payload = payloadSql(datamodel, info, 'r')
  const aggregateId = aggregateIdSql(datamodel, info, 'r')
  const version =
    info.version === undefined ? '' : ` || jsonb_build_object('schemaVersion', ${literal(info.version)})`
  const headers = `COALESCE(NULLIF(current_setting(${literal(HEADERS_SETTING)}, true), ''), '{}')::jsonb${version}`
  const insert = (kind: string, from: string) =>
    `INSERT INTO ${outbox} ("id", "aggregatetype", "aggregateid", "type", "payload", "topic", "headers")
    SELECT ${qualified(schema, UUIDV7)}(), ${literal(captured.aggregateType)}, ${aggregateId}, ${literal(`${captured.aggregateType}.${kind}`)},
      ${payload}, ${literal(captured.topic)}, ${headers}
    FROM ${from} AS r;`
  const body = `BEGIN
  IF TG_OP = 'INSERT' THEN
    ${insert('created', 'prisma_outbox_new')}
  ELSIF TG_OP = 'UPDATE' THEN
    ${insert('updated', 'prisma_outbox_new')}
  ELSE
    ${insert('deleted', 'prisma_outbox_old')}
  END IF;
  RETURN NULL;
END`
  const searchPath = schema === undefined ? ' SET search_path FROM CURRENT' : ''
  const create = `CREATE OR REPLACE FUNCTION ${fn}() RETURNS trigger LANGUAGE plpgsql${searchPath} AS $prisma_outbox$
${body}
$prisma_outbox$`
  const triggers = [
    `CREATE OR REPLACE TRIGGER "prisma_outbox_insert" AFTER INSERT ON ${table} REFERENCING NEW TABLE AS prisma_outbox_new FOR EACH STATEMENT EXECUTE FUNCTION ${fn}()`,
    `CREATE OR REPLACE TRIGGER "prisma_outbox_update" AFTER UPDATE ON ${table} REFERENCING OLD TABLE AS prisma_outbox_old NEW TABLE AS prisma_outbox_new FOR EACH STATEMENT EXECUTE FUNCTION ${fn}()`,
    `CREATE OR REPLACE TRIGGER "prisma_outbox_delete" AFTER DELETE ON ${table} REFERENCING OLD TABLE AS prisma_outbox_old FOR EACH STATEMENT EXECUTE FUNCTION ${fn}()`,
  ]
  const fingerprint = `${FINGERPRINT_PREFIX}${createHash('sha256')
    .update([create, ...triggers].join('\n'))
    .digest('hex')
    .slice(0, 16)}`
  return {
    model,
    table,
    functionName: fn,
    fingerprint,
    statements: [create, `COMMENT ON FUNCTION ${fn}() IS ${literal(fingerprint)}`, ...triggers],
  }
}

/** The record's scalar fields as one jsonb object, keyed by field name. */
export function payloadSql(datamodel: OutboxDatamodel, info: OutboxModelInfo, row: string): string {
  const pairs: string[] = []
  for (const [name, field] of Object.entries(info.fields)) {
    const json = fieldJsonSql(datamodel, field, `${row}.${quoteIdent(field.dbName ?? name)}`)
    if (json !== undefined) pairs.push(`${literal(name)}, ${json}`)
  }
  if (pairs.length === 0) return `'{}'::jsonb`
  const objects: string[] = []
  for (let i = 0; i < pairs.length; i += FIELDS_PER_OBJECT) {
    objects.push(`jsonb_build_object(${pairs.slice(i, i + FIELDS_PER_OBJECT).join(', ')})`)
  }
  return objects.join(' || ')
}

/** One field's value as jsonb, or undefined for fields that are not in a Prisma record. */
function fieldJsonSql(
  datamodel: OutboxDatamodel,
  field: OutboxFieldInfo,
  column: string,
): string | undefined {
  if (field.kind === 'object' || field.kind === 'unsupported') return undefined
  if (!field.isList) return scalarJsonSql(datamodel, field, column)
  if (
    field.kind === 'scalar' &&
    ['String', 'Int', 'Boolean', 'Float', 'Json'].includes(field.type) &&
    !(field.nativeType !== undefined && field.nativeType in NATIVE_CASTS)
  ) {
    return `to_jsonb(${column})`
  }
  const element = scalarJsonSql(datamodel, field, 'u.e')
  return `CASE WHEN ${column} IS NULL THEN NULL ELSE COALESCE((SELECT jsonb_agg(${element} ORDER BY u.o) FROM unnest(${column}) WITH ORDINALITY AS u(e, o)), '[]'::jsonb) END`
}

/**
 * Native types whose SQL text or JSON is not the value Prisma reads, cast to one that is:
 * `money` prints with a currency symbol and separators ("$1,234.50"), `oid` is no JSON number.
 */
const NATIVE_CASTS: Record<string, string> = { Money: 'numeric', Oid: 'bigint' }

/** The column as the SQL type whose text and JSON match the Prisma value. */
function asPrismaValue(field: OutboxFieldInfo, value: string): string {
  const cast =
    field.kind === 'scalar' && field.nativeType !== undefined ? NATIVE_CASTS[field.nativeType] : undefined
  return cast === undefined ? value : `${value}::${cast}`
}

function scalarJsonSql(datamodel: OutboxDatamodel, field: OutboxFieldInfo, column: string): string {
  const value = asPrismaValue(field, column)
  if (field.kind === 'enum') return `to_jsonb(${enumTextSql(datamodel, field.type, value)})`
  switch (field.type) {
    case 'BigInt':
    case 'Decimal':
      // numeric::text keeps the scale ("19.90") and writes NaN as "NaN".
      return `to_jsonb(${value}::text)`
    case 'DateTime':
    case 'Bytes':
      return `to_jsonb(${textSql(datamodel, field, column)})`
    default:
      // String, Int, Boolean, Json as they are; Float as a number, NaN/±Infinity as strings.
      return `to_jsonb(${value})`
  }
}

/** A value as text, the way the aggregate id and the payload write it. */
function textSql(datamodel: OutboxDatamodel, field: OutboxFieldInfo, column: string): string {
  const value = asPrismaValue(field, column)
  if (field.kind === 'enum') return enumTextSql(datamodel, field.type, value)
  switch (field.type) {
    case 'DateTime':
      return dateTimeSql(field.nativeType, value)
    case 'Bytes':
      return `translate(encode(${value}, 'base64'), E'\\n', '')`
    default:
      return `${value}::text`
  }
}

function dateTimeSql(nativeType: string | undefined, value: string): string {
  switch (nativeType) {
    case 'Date':
      return isoSql(value, `'-MM-DD"T00:00:00.000Z"'`)
    case 'Time':
      return `to_char(${value}, '"1970-01-01T"HH24:MI:SS.MS"Z"')`
    case 'Timetz':
      return `to_char((${value} AT TIME ZONE 'UTC')::time, '"1970-01-01T"HH24:MI:SS.MS"Z"')`
    case 'Timestamptz':
      return isoSql(`(${value} AT TIME ZONE 'UTC')`, ISO_AFTER_YEAR)
    default:
      // timestamp without time zone: Prisma reads and writes it as UTC.
      return isoSql(value, ISO_AFTER_YEAR)
  }
}

/**
 * A date or timestamp as JavaScript's `toISOString()` writes it: years 0 to 9999 with four
 * digits, others with a sign and six (`+010000`, `-000043` for 44 BC, as ISO-8601 counts 1 BC
 * as year 0); `infinity` and `-infinity` as those strings.
 */
function isoSql(value: string, afterYear: string): string {
  const year = `(CASE WHEN extract(year FROM ${value}) < 0 THEN extract(year FROM ${value}) + 1 ELSE extract(year FROM ${value}) END)::int`
  return `CASE WHEN NOT isfinite(${value}) THEN ${value}::text
    WHEN extract(year FROM ${value}) BETWEEN 1 AND 9999 THEN to_char(${value}, 'YYYY' || ${afterYear})
    ELSE (SELECT CASE WHEN y BETWEEN 0 AND 9999 THEN lpad(y::text, 4, '0') WHEN y < 0 THEN '-' || lpad((-y)::text, 6, '0')
      ELSE '+' || lpad(y::text, 6, '0') END FROM (SELECT ${year}) AS prisma_outbox_year(y)) || to_char(${value}, ${afterYear}) END`
}

function enumTextSql(datamodel: OutboxDatamodel, enumName: string, value: string): string {
  const mapped = datamodel.enums?.[enumName]?.values
  if (!mapped || Object.keys(mapped).length === 0) return `${value}::text`
  const cases = Object.entries(mapped)
    .map(([name, db]) => `WHEN ${literal(db)} THEN ${literal(name)}`)
    .join(' ')
  return `CASE ${value}::text ${cases} ELSE ${value}::text END`
}

/**
 * The aggregate id: the primary key as text; composite keys joined with ":" in declaration order,
 * "%" and ":" inside a part percent-encoded.
 */
export function aggregateIdSql(datamodel: OutboxDatamodel, info: OutboxModelInfo, row: string): string {
  const parts = info.primaryKey.map((name) => {
    const field = info.fields[name] as OutboxFieldInfo
    return textSql(datamodel, field, `${row}.${quoteIdent(field.dbName ?? name)}`)
  })
  if (parts.length === 1) return parts[0] as string
  return parts.map((p) => `replace(replace(${p}, '%', '%25'), ':', '%3A')`).join(` || ':' || `)
}

import { v7 as uuidv7 } from 'uuid'
import type { OutboxModelInfo } from './datamodel.js'
import { OutboxError } from './errors.js'
import { toJsonSafe } from './json.js'
import type { CapturedModel } from './options.js'

/** One outbox row, as the extension inserts it. */
export interface OutboxRow {
  id: string
  aggregatetype: string
  aggregateid: string
  type: string
  payload: string
  topic: string
  headers: string
}

export type ChangeKind = 'created' | 'updated' | 'deleted'

/**
 * The aggregate id of a record: its primary key as text. Composite keys join their parts with
 * ":" in declaration order; ":" and "%" inside a part are percent-encoded so the result is
 * unambiguous.
 */
export function aggregateIdOf(model: string, info: OutboxModelInfo, record: Record<string, unknown>): string {
  const parts = info.primaryKey.map((field) => {
    const value = record[field]
    if (value === undefined || value === null) {
      throw new OutboxError(
        'OUTBOX_INVALID_EVENT',
        `record of ${model} has no value for its primary key field ${field}`,
      )
    }
    return keyPartToString(value)
  })
  if (parts.length === 1) return parts[0] as string
  return parts.map((p) => p.replaceAll('%', '%25').replaceAll(':', '%3A')).join(':')
}

function keyPartToString(value: unknown): string {
  if (value instanceof Date) return value.toISOString()
  if (value instanceof Uint8Array) return Buffer.from(value).toString('base64')
  return String(value)
}

/** The primary key of a record as a Prisma `where` (compound keys use Prisma's `a_b` form). */
export function primaryKeyWhere(
  info: OutboxModelInfo,
  record: Record<string, unknown>,
): Record<string, unknown> {
  if (info.primaryKey.length === 1) {
    const field = info.primaryKey[0] as string
    return { [field]: record[field] }
  }
  const compound: Record<string, unknown> = {}
  for (const field of info.primaryKey) compound[field] = record[field]
  return { [info.primaryKey.join('_')]: compound }
}

/** Primary key fields only, for filters like `{ OR: [...] }`. */
export function primaryKeyFilter(
  info: OutboxModelInfo,
  record: Record<string, unknown>,
): Record<string, unknown> {
  const filter: Record<string, unknown> = {}
  for (const field of info.primaryKey) filter[field] = record[field]
  return filter
}

/** Keeps only the scalar fields of a record (drops relations a caller's `include` added). */
export function scalarsOf(info: OutboxModelInfo, record: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [name, field] of Object.entries(info.fields)) {
    if (field.kind !== 'object' && name in record) out[name] = record[name]
  }
  return out
}

export function rowForChange(
  model: string,
  info: OutboxModelInfo,
  captured: CapturedModel,
  kind: ChangeKind,
  record: Record<string, unknown>,
  headers: Record<string, string>,
): OutboxRow {
  return {
    id: uuidv7(),
    aggregatetype: captured.aggregateType,
    aggregateid: aggregateIdOf(model, info, record),
    type: `${captured.aggregateType}.${kind}`,
    payload: JSON.stringify(toJsonSafe(scalarsOf(info, record))),
    topic: captured.topic,
    headers: JSON.stringify(headers),
  }
}

/**
 * One INSERT for any number of rows: arrays unnested server-side, so a write of 1,000 records
 * costs one round trip, not 1,000.
 */
export function insertRowsStatement(table: string, rows: OutboxRow[]): [string, ...unknown[]] {
  const quoted = `"${table.replaceAll('"', '""')}"`
  return [
    `INSERT INTO ${quoted} ("id", "aggregatetype", "aggregateid", "type", "payload", "topic", "headers")
     SELECT u.id, u.aggregatetype, u.aggregateid, u.type, u.payload::jsonb, u.topic, u.headers::jsonb
     FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[])
       WITH ORDINALITY AS u(id, aggregatetype, aggregateid, type, payload, topic, headers, n)
     ORDER BY u.n`,
    rows.map((r) => r.id),
    rows.map((r) => r.aggregatetype),
    rows.map((r) => r.aggregateid),
    rows.map((r) => r.type),
    rows.map((r) => r.payload),
    rows.map((r) => r.topic),
    rows.map((r) => r.headers),
  ]
}

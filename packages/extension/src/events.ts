/** One outbox row, as `$outbox.emit` inserts it. */
export interface OutboxRow {
  id: string
  aggregatetype: string
  aggregateid: string
  type: string
  payload: string
  topic: string
  headers: string
}

/**
 * One INSERT for any number of rows: arrays unnested server-side, so a write of 1,000 records
 * costs one round trip, not 1,000.
 * @param table - the outbox table, already quoted (and schema-qualified when needed)
 */
export function insertRowsStatement(table: string, rows: OutboxRow[]): [string, ...unknown[]] {
  return [
    `INSERT INTO ${table} ("id", "aggregatetype", "aggregateid", "type", "payload", "topic", "headers")
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

/**
 * The SQL text of the inbox table: its name, quoted, and the statements recording and purging
 * events (those of failed records are in `failed.ts`).
 * @module
 */

const NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/

/**
 * `table` or `schema.table` for SQL text: each part a double-quoted identifier with embedded
 * quotes doubled (`app.outbox_inbox` → `"app"."outbox_inbox"`), the rule of the relay and the
 * extension; undefined when a part is not a plain identifier.
 */
export function quoteTable(name: string): string | undefined {
  const parts = name.split('.')
  if (parts.length > 2 || !parts.every((part) => NAME.test(part))) return undefined
  return parts.map((part) => `"${part.replaceAll('"', '""')}"`).join('.')
}

/**
 * Records an event for a consumer, or inserts nothing when it is recorded already.
 * ON CONFLICT DO NOTHING: a concurrent delivery of the same event waits on the unique key
 * until the first transaction ends, then sees the conflict and is skipped.
 */
export function recordSql(table: string): string {
  return `INSERT INTO ${table} ("consumer", "event_id", "event_type", "topic", "partition", "offset")
    VALUES ($1, $2::uuid, $3, $4, $5, $6::bigint) ON CONFLICT DO NOTHING`
}

/**
 * Deletes one batch of a consumer's records processed before a given age.
 * ctid batches: a bounded DELETE without a key of its own (the index on processed_at finds them).
 * The try-lock (per consumer and table) lets one instance purge at a time: the others delete
 * nothing and stop at once. The candidates are a MATERIALIZED CTE, run once, so the statement
 * never deletes more than $3 rows whatever plan it gets; SKIP LOCKED never waits on a row.
 */
export function purgeBatchSql(table: string): string {
  return `WITH lock AS (
      SELECT pg_try_advisory_xact_lock(hashtext('prisma-outbox inbox purge ' || $4 || ' ' || $1)) AS ok
    ), old AS MATERIALIZED (
      SELECT i.ctid FROM ${table} AS i, lock
      WHERE lock.ok AND i."consumer" = $1 AND i."status" = 'processed'
        AND i."processed_at" < now() - make_interval(secs => $2::double precision / 1000)
      LIMIT $3
      FOR UPDATE OF i SKIP LOCKED
    )
    DELETE FROM ${table} WHERE ctid IN (SELECT ctid FROM old)`
}

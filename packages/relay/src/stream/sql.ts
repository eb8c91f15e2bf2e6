/**
 * The SQL of the stream relay: publication and slot setup, the per-batch check and settle
 * statements, slot statistics and uninstall.
 * @module
 */
import { type SqlStatement, statementName } from '../core/db.js'
import type { PublishedRows } from '../core/options.js'
import type { GateIndexes } from '../core/sql/gate-indexes.js'
import { stillPending } from '../core/sql/pending.js'
import { quoteTable } from '../core/sql/table.js'

/**
 * Checks a slot or publication name: PostgreSQL allows lower-case letters, digits and
 * underscores in slot names; publications follow the same rule here so both can be typed
 * unquoted by an operator.
 */
export function checkStreamName(what: 'slot' | 'publication', name: string): string {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name))
    throw new Error(
      `${what} name "${name}" is invalid: use 1-63 lower-case letters, digits and underscores, not starting with a digit`,
    )
  return name
}

/** Does the publication exist? */
export function findPublication(publication: string): SqlStatement {
  return { text: 'SELECT 1 FROM pg_publication WHERE pubname = $1', values: [publication] }
}

/** A publication of the outbox table's INSERTs only (updates and deletes never reach the stream). */
export function createPublication(params: { publication: string; table: string }): SqlStatement {
  return {
    text: `CREATE PUBLICATION "${checkStreamName('publication', params.publication)}" FOR TABLE ${quoteTable(params.table)} WITH (publish = 'insert')`,
    values: [],
  }
}

/** Does the slot exist, and with which plugin? */
export function findSlot(slot: string): SqlStatement {
  return {
    text: 'SELECT plugin, slot_type FROM pg_replication_slots WHERE slot_name = $1 AND database = current_database()',
    values: [slot],
  }
}

/** A logical slot decoded by `pgoutput`: it keeps the WAL from its confirmed position on. */
export function createSlot(slot: string): SqlStatement {
  return {
    text: "SELECT lsn::text AS lsn FROM pg_create_logical_replication_slot($1, 'pgoutput')",
    values: [checkStreamName('slot', slot)],
  }
}

/** What {@link inspectStreamBatch} says of each row of a batch. */
export interface InspectedRow {
  id: string
  /** The row's status now; null when it is gone (deleted by retention or by hand). */
  status: 'pending' | 'published' | 'dead' | null
  /** An earlier row of its topic + key is dead or held back ('block-key' only). */
  blocked: boolean
  /** The row's transaction is visible to this statement (see above). */
  visible: boolean
  /** `active_pid` of the slot now: the walsender streaming it, null when none does. */
  slot_pid: number | null
}

/**
 * One statement per batch, before publishing it:
 * - the rows' current status, so rows already finished are skipped. A transaction is decoded
 *   again after a reconnect or a crash when the slot's confirmed position was not advanced past
 *   it yet; rows we (or a polling relay) already published are then not sent twice.
 * - under 'block-key', whether an EARLIER row of the same topic + key, outside this batch, is
 *   dead or is a pending row with `last_error` set (a row held back earlier, a failed polling
 *   attempt, or a dead row an operator revived): such a row must reach Kafka first, so this one is
 *   held back too. Fresh pending rows (no `last_error`) do not block: they belong to transactions
 *   that commit later, and the WAL's commit order is the order we keep.
 *
 * - whether the row's transaction is visible to this statement's snapshot yet. The walsender can
 *   send a commit before the committing backend has left the list of running transactions; until
 *   then its rows look absent (and an UPDATE would miss them), so the caller waits and asks again.
 * - which walsender streams the slot now: a streamer that is no longer the one (its connection
 *   was ended while it was frozen or cut off, and another streamer took over) must not publish.
 *
 * Probes go through the primary key and the small partial indexes of dead rows
 * (`outbox_event_dead_key_idx`) and of pending rows with `last_error` (`outbox_event_held_key_idx`),
 * so a row's check does not walk the earlier rows of its key: with one hot key, the index of
 * unfinished rows holds every row of the key not yet vacuumed, and a check through it grew with
 * the key's backlog (100 rows behind 50,000 of one key: 175,841 buffers, 380 ms).
 * Without the second index (its migration not applied) the check is correct, only slower.
 * With each index (`gates`, see `gateIndexes`), its probes run only when the table holds such a
 * row at all, which one look into the index answers once per statement: without dead or held
 * rows, the check of 500 rows went from 3.4 to 2.2 ms.
 *
 * Every lookup is a probe driven by the batch's rows (the status by primary key, not a join), so
 * the plan is the same whatever the table's statistics say: prepared while the table was empty,
 * a join's generic plan hashed a sequential scan of the whole table for every later batch.
 */
export function inspectStreamBatch(params: {
  table: string
  rows: Array<{ id: string; topic: string; key: string; seq: string; txid: string }>
  blockOnDead: boolean
  slot: string
  /** The table's gate indexes: with each, its probes run only when the table has such a row at all. */
  gates?: GateIndexes | undefined
}): SqlStatement {
  const t = quoteTable(params.table)
  const { rows } = params
  const gates = params.gates ?? { dead: false, held: false }
  return named('outbox_stream_check', {
    text: `SELECT b.id::text AS id, (SELECT o.status FROM ${t} AS o WHERE o.id = b.id) AS status,
  pg_visible_in_snapshot(b.txid, pg_current_snapshot()) AS visible,
  ($5::boolean AND (${gates.dead ? `EXISTS (SELECT 1 FROM ${t} AS x WHERE x.status = 'dead') AND ` : ''}EXISTS (
    SELECT 1 FROM ${t} AS e
    WHERE e.topic = b.topic AND e.aggregateid = b.key AND e.seq < b.seq
      AND e.status = 'dead' AND e.id <> ALL($1::uuid[])
  ) OR ${gates.held ? `EXISTS (SELECT 1 FROM ${t} AS x WHERE x.status = 'pending' AND x.last_error IS NOT NULL) AND ` : ''}EXISTS (
    SELECT 1 FROM ${t} AS e
    WHERE e.topic = b.topic AND e.aggregateid = b.key AND e.seq < b.seq
      AND e.status = 'pending' AND e.last_error IS NOT NULL AND e.id <> ALL($1::uuid[])
  ))) AS blocked,
  (SELECT s.active_pid FROM pg_replication_slots AS s
   WHERE s.slot_name = $7 AND s.database = current_database()) AS slot_pid
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bigint[], $6::xid8[]) AS b(id, topic, key, seq, txid)`,
    values: [
      rows.map((r) => r.id),
      rows.map((r) => r.topic),
      rows.map((r) => r.key),
      rows.map((r) => r.seq),
      params.blockOnDead,
      rows.map((r) => r.txid),
      params.slot,
    ],
  })
}

/** The outcome of one row of a batch. */
export interface SettledRow {
  id: string
  /** Published; dead (the event's fault); held (pending, behind an unfinished row of its key). */
  outcome: 'published' | 'dead' | 'held'
  /** Why, for dead and held rows. */
  error?: string | undefined
}

/** `status = 'pending'` of the settled rows, by primary key (see `stillPending`). */
const STILL_PENDING = stillPending('o')

/** What the streamer does with the rows it published (see `publishedRows`): as the polling relay. */
export type { PublishedRows }

/**
 * One statement for the whole batch, after Kafka acknowledged it. Published rows are marked
 * (`status` published, `published_at`, and `locked_by` = the stream's id, as a record of who
 * published them) or, under `publishedRows: 'delete'`, deleted; dead rows get `attempts + 1`,
 * `last_error` and `available_at` = now (when they died, for retention); held rows stay pending
 * with `last_error` saying why. Only pending rows change, so a row finished meanwhile is left
 * alone.
 *
 * A delete writes no new row version and no index entry: for 1,000 rows it logged 54 kB of WAL
 * against 324 kB for the mark (and the stream's walsender decodes every byte of it). A deleted
 * row reads as finished everywhere else: the polling relay's claim and order checks look at
 * unfinished rows only, and the check above skips a row that is gone.
 */
export function settleStreamBatch(params: {
  table: string
  streamId: string
  rows: SettledRow[]
  publishedRows?: PublishedRows | undefined
}): SqlStatement {
  const t = quoteTable(params.table)
  const { rows } = params
  const deleting = params.publishedRows === 'delete'
  // The common case, cheaper to plan and run: no join with the outcome arrays.
  if (rows.every((r) => r.outcome === 'published'))
    return deleting
      ? named('outbox_stream_delete', {
          text: `DELETE FROM ${t} AS o WHERE o.id = ANY($1::uuid[]) AND ${STILL_PENDING}`,
          values: [rows.map((r) => r.id)],
        })
      : named('outbox_stream_mark', {
          text: `UPDATE ${t} AS o SET status = 'published', published_at = statement_timestamp(), locked_by = $2, locked_until = NULL
WHERE o.id = ANY($1::uuid[]) AND ${STILL_PENDING}`,
          values: [rows.map((r) => r.id), params.streamId],
        })
  const outcomes = [rows.map((r) => r.id), rows.map((r) => r.outcome), rows.map((r) => r.error ?? null)]
  const update = (from: string, where: string) => `UPDATE ${t} AS o
SET status = CASE WHEN s.outcome = 'held' THEN 'pending' ELSE s.outcome END,
    published_at = CASE WHEN s.outcome = 'published' THEN statement_timestamp() ELSE o.published_at END,
    attempts = CASE WHEN s.outcome = 'dead' THEN o.attempts + 1 ELSE o.attempts END,
    available_at = CASE WHEN s.outcome = 'dead' THEN statement_timestamp() ELSE o.available_at END,
    last_error = CASE WHEN s.outcome = 'published' THEN o.last_error ELSE s.error END,
    locked_by = CASE WHEN s.outcome = 'published' THEN $4 ELSE o.locked_by END,
    locked_until = NULL
FROM ${from}
WHERE o.id = s.id AND ${STILL_PENDING}${where}`
  if (!deleting)
    return named('outbox_stream_settle', {
      text: update('unnest($1::uuid[], $2::text[], $3::text[]) AS s(id, outcome, error)', ''),
      values: [...outcomes, params.streamId],
    })
  // Both data-modifying parts see the same snapshot and touch different rows.
  return named('outbox_stream_settle_delete', {
    text: `WITH s AS (SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[]) AS s(id, outcome, error)),
gone AS (
  DELETE FROM ${t} AS o USING s WHERE o.id = s.id AND s.outcome = 'published' AND ${STILL_PENDING}
)
${update('s', " AND s.outcome <> 'published'")}`,
    values: [...outcomes, params.streamId],
  })
}

/**
 * `statement` with a name derived from its text: the per-batch statements are prepared once per
 * connection when the streamer prepares statements (see `preparedStatements`).
 */
const named = (prefix: string, statement: SqlStatement): SqlStatement => ({
  ...statement,
  name: statementName(prefix, statement.text),
})

/** The slot as `pg_replication_slots` reports it, with its lag in bytes. */
export interface SlotStatsRow {
  slot_name: string
  active: boolean
  active_pid: number | null
  /** `pg_current_wal_lsn() - confirmed_flush_lsn` in bytes, as text (numeric). */
  lag_bytes: string | null
  confirmed_flush_lsn: string | null
  /** reserved / extended / unreserved / lost. */
  wal_status: string | null
  /** Bytes the slot may still fall behind before `max_slot_wal_keep_size` invalidates it. */
  safe_wal_size: string | null
  /** The server's `max_slot_wal_keep_size`, e.g. '-1' (unlimited) or '10240' (MB). */
  max_slot_wal_keep_size: string | null
}

/** Slot health: lag, activity, and how close `max_slot_wal_keep_size` is. */
export function slotStats(slot: string): SqlStatement {
  return {
    text: `SELECT s.slot_name, s.active, s.active_pid,
  (pg_current_wal_lsn() - s.confirmed_flush_lsn)::text AS lag_bytes,
  s.confirmed_flush_lsn::text AS confirmed_flush_lsn, s.wal_status, s.safe_wal_size::text AS safe_wal_size,
  current_setting('max_slot_wal_keep_size') AS max_slot_wal_keep_size
FROM pg_replication_slots AS s
WHERE s.slot_name = $1 AND s.database = current_database()`,
    values: [slot],
  }
}

/** Which server process streams the slot now (`active_pid`; no row or null: none). */
export function slotOwner(slot: string): SqlStatement<{ pid: number | null }> {
  return {
    text: 'SELECT active_pid AS pid FROM pg_replication_slots WHERE slot_name = $1 AND database = current_database()',
    values: [slot],
  }
}

/** The server's `wal_sender_timeout` in ms (0: disabled): how long a silent streamer keeps its slot. */
export function walSenderTimeout(): SqlStatement<{ ms: number }> {
  return {
    text: "SELECT setting::int AS ms FROM pg_settings WHERE name = 'wal_sender_timeout'",
    values: [],
  }
}

/** Drops the slot (fails while a streamer is connected to it: stop the streamers first). */
export function dropSlot(slot: string): SqlStatement {
  return {
    text: 'SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND database = current_database()',
    values: [slot],
  }
}

/** Drops the publication, if it exists. */
export function dropPublication(publication: string): SqlStatement {
  return { text: `DROP PUBLICATION IF EXISTS "${checkStreamName('publication', publication)}"`, values: [] }
}

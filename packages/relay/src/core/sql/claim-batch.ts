/**
 * Claims the next batch of rows to publish.
 * @module
 */
import type { SqlStatement } from '../db.js'
import { quoteTable } from './table.js'

/** A row as the claim returns it (only the columns the relay needs). */
export interface ClaimedRow {
  id: string
  aggregatetype: string
  aggregateid: string
  type: string
  topic: string
  /** The payload's JSON text exactly as Postgres renders the jsonb (never re-encoded in JS). */
  payload: string
  headers: Record<string, unknown> | null
  /** Attempts before this claim. */
  attempts: number
  /** bigint as a decimal string. */
  seq: string
}

export interface ClaimBatchParams {
  table: string
  relayId: string
  limit: number
  leaseMs: number
  /** When true, a dead row holds back every later row of its topic+key ('block-key' policy). */
  blockOnDead: boolean
  /** Only claim rows of these topics (all topics when undefined or empty). */
  topics?: string[] | undefined
  /**
   * Look only at rows after this `seq` (decimal string): the `window_end` of a previous claim
   * whose whole window was held back. Every pending row up to it then holds its key.
   */
  after?: string | undefined
}

/** How many eligible rows, per row of `limit`, one claim looks at (its window). */
export const CLAIM_WINDOW_FACTOR = 2

/**
 * A row of the claim's result: a claimed row, or (`id` null) the sign that the claim's whole
 * window was full and held back, so claimable rows may lie after `window_end`.
 */
export type ClaimResultRow =
  | (ClaimedRow & { window_end: null })
  | ({ [K in keyof ClaimedRow]: null } & { window_end: string })

/**
 * The claim UPDATE. Run it in a transaction right after {@link lockClaims}.
 *
 * What we guarantee: for one topic + key, Kafka receives events in `seq` order, and for writes
 * that conflict (the second transaction touches the same aggregate row, so it waits for the first
 * one's row lock before inserting its outbox row) `seq` order is commit order. The relay keeps it
 * with many relays, retries and crashes like this:
 *
 * 1. **One claimer at a time.** Every relay takes the same transaction-scoped advisory lock before
 *    this statement, so claims never interleave and each claim sees the outcome of the previous
 *    ones (the lock is taken in a separate statement, so this statement's snapshot is newer than
 *    the lock). Claims are a few indexed scans over a bounded window, so the lock is held for
 *    milliseconds; the slow part, publishing, runs outside it and in parallel across relays.
 *
 * 2. **The window (`seen`).** A row is *eligible* when it is pending, due (`available_at`), not
 *    leased and old enough (see 3). The claim looks at the first `limit × CLAIM_WINDOW_FACTOR`
 *    eligible rows in `seq` order after `after` (all rows when unset); the window ends at the
 *    largest `seq` it holds (`edge`).
 *
 * 3. **Head-of-line per key.** A row `s` of the window is claimable only if no EARLIER row `e` of
 *    the same topic + aggregateid is unfinished and out of our hands. Every such `e` is found
 *    without scanning the key's backlog:
 *      - `e` pending but not eligible (leased elsewhere or by an earlier batch of ours, waiting
 *        for a retry, too young): `e.seq < s.seq <= edge`, so the `held` scan of pending rows
 *        below `edge` finds it (per key, its smallest seq);
 *      - `e` pending, eligible, at or before `after` (a row of an earlier window): `held` counts
 *        every pending row up to `after` as holding its key (it may have become claimable since
 *        that window was looked at);
 *      - `e` pending, eligible, after `after`: then `e` is in the window too (the window is a
 *        prefix of the eligible rows in `seq` order), and is not itself held back (whatever holds
 *        `e` is earlier than `s` and holds `s` as well); it is claimed in this batch ahead of
 *        `s`, since the lock takes rows in `seq` order under the LIMIT. The only rows SKIP LOCKED
 *        passes over are being marked published (5): already in Kafka;
 *      - `e` dead and the policy is 'block-key': the `dead` probe walks, per key of the window,
 *        the key's unfinished rows below the key's last windowed `seq` (index
 *        `(topic, aggregateid, seq) WHERE status <> 'published'`): rows in or before the window,
 *        never the key's backlog after it.
 *    The relay sends a batch with one awaited, idempotent `sendBatch`, and a key always maps to
 *    one partition, so in-batch order is kept; on failure every row of the batch counts as
 *    unpublished (see `settle.ts`). The cost of a claim grows with the window and the rows
 *    before it that are in flight or waiting, not with any key's backlog.
 *
 * 4. **Open transactions are never overtaken (`txid < xmin`).** `seq` is taken at INSERT, not at
 *    commit, so a slow transaction can hold seq 5 while seq 6 commits. Rows of transactions still
 *    running are invisible, so the checks of 3 cannot see them. We therefore only claim rows
 *    whose transaction id is below `xmin`, the oldest transaction that was running when this
 *    statement's snapshot was taken and may belong to THIS database: every transaction that got
 *    its id earlier has ended, so its rows are either visible now or rolled back. A visible row
 *    that is still too young holds back the later rows of its key (3, `held`).
 *    `xmin` is computed from the snapshot's in-progress list (`pg_snapshot_xip`), skipping the
 *    xids that `pg_stat_activity` positively shows running in ANOTHER database (a transaction
 *    can only write its own database, and an xid's database never changes, so this is safe even
 *    though pg_stat_activity is read a moment after the snapshot; xids we cannot attribute —
 *    finished since, prepared transactions, hidden by privileges — still count). Without that
 *    filter (`pg_snapshot_xmin`) any long write transaction anywhere in the cluster would stall
 *    the relay. With none running, `xmin` is the snapshot's `xmax`.
 *    Cost: a transaction of this database that writes and stays open delays all outbox rows
 *    written after it got its id, until it ends. Read-only transactions have no xid and delay
 *    nothing. Known gap: two NON-conflicting transactions writing the same key, where the one
 *    that got its xid first inserts its outbox row last and commits first, are published in
 *    commit order rather than seq order — which is still commit order.
 *
 * 5. **Leases and crashes.** A claimed row gets `locked_by` + `locked_until`; a crashed relay's
 *    rows become claimable again when the lease expires (no separate sweeper is needed), and
 *    until then they hold back later rows of their keys (3). Mark statements check
 *    `locked_by = me`, so a relay whose lease expired and was reclaimed cannot clobber the new
 *    owner. Lease expiry while a relay is still publishing is indistinguishable from a crash:
 *    keep `leaseMs` well above the producer's send timeout. `FOR UPDATE SKIP LOCKED` locks the
 *    chosen rows without waiting; because of (1), the only other writers that can hold row locks
 *    on pending rows are mark-published statements (rows already in Kafka, so skipping them
 *    cannot reorder anything); failure marks, which make rows claimable again, take the claim
 *    lock too. The locking subquery repeats the eligibility test, so a row changed between the
 *    snapshot and its lock is re-checked on its newest version.
 *
 * 6. **A window held back entirely.** When the window was full and nothing in it was claimed,
 *    the result is one row with `id` null and `window_end`: the caller claims again with
 *    `after = window_end` (by 3, the rows up to it then hold their keys), so a long key held
 *    behind a leased or failed row never hides other keys' rows from the relay.
 *
 * Times use `statement_timestamp()`, not `now()`: `now()` is the transaction start, which is
 * before the (possibly waited-for) advisory lock. `id = ANY(ARRAY(subquery))` rather than
 * `id IN (subquery)`: with IN the planner may hash the picked ids and seq-scan the whole table
 * to find them again; an array is looked up through the primary key.
 *
 * @param params.limit - batch size (LIMIT)
 * @param params.leaseMs - lease length in milliseconds
 * @example
 * const { text, values } = claimBatch({ table: 'outbox_event', relayId: 'r1', limit: 500, leaseMs: 30_000, blockOnDead: true })
 */
export function claimBatch(params: ClaimBatchParams): SqlStatement<ClaimResultRow> {
  const t = quoteTable(params.table)
  const topics = params.topics && params.topics.length > 0 ? params.topics : null
  const eligible = (r: string) =>
    `${r}.available_at <= snap.ts AND (${r}.locked_until IS NULL OR ${r}.locked_until < snap.ts) AND ${r}.txid < snap.xmin`
  const text = `WITH snap AS MATERIALIZED (
  SELECT statement_timestamp() AS ts, coalesce(
    (SELECT min(x) FROM pg_snapshot_xip(pg_current_snapshot()) AS x
     WHERE NOT EXISTS (
       SELECT 1 FROM pg_stat_activity AS a
       WHERE a.backend_xid = xid(x) AND a.datname IS NOT NULL AND a.datname <> current_database()
     )),
    pg_snapshot_xmax(pg_current_snapshot())
  ) AS xmin
),
seen AS MATERIALIZED (
  SELECT o.id, o.seq, o.topic, o.aggregateid
  FROM ${t} AS o, snap
  WHERE o.status = 'pending'
    AND ($6::bigint IS NULL OR o.seq > $6::bigint)
    AND ${eligible('o')}
    AND ($4::text[] IS NULL OR o.topic = ANY($4::text[]))
  ORDER BY o.seq
  LIMIT $7
),
edge AS MATERIALIZED (SELECT max(seq) AS seq, count(*) AS n FROM seen),
held AS MATERIALIZED (
  SELECT h.topic, h.aggregateid, min(h.seq) AS seq
  FROM ${t} AS h, snap, edge
  WHERE h.status = 'pending'
    AND h.seq < edge.seq
    AND ($4::text[] IS NULL OR h.topic = ANY($4::text[]))
    AND (($6::bigint IS NOT NULL AND h.seq <= $6::bigint) OR NOT (${eligible('h')}))
  GROUP BY h.topic, h.aggregateid
),
dead AS MATERIALIZED (
  SELECT k.topic, k.aggregateid, d.seq
  FROM (SELECT topic, aggregateid, max(seq) AS last FROM seen WHERE $5::boolean GROUP BY topic, aggregateid) AS k
  CROSS JOIN LATERAL (
    SELECT e.seq FROM ${t} AS e
    WHERE e.topic = k.topic AND e.aggregateid = k.aggregateid AND e.seq < k.last
      AND e.status <> 'published' AND e.status = 'dead'
    ORDER BY e.seq
    LIMIT 1
  ) AS d
),
cand AS (
  SELECT s.id FROM seen AS s
  WHERE NOT EXISTS (
      SELECT 1 FROM held AS h WHERE h.topic = s.topic AND h.aggregateid = s.aggregateid AND h.seq < s.seq)
    AND NOT EXISTS (
      SELECT 1 FROM dead AS d WHERE d.topic = s.topic AND d.aggregateid = s.aggregateid AND d.seq < s.seq)
),
claimed AS (
  UPDATE ${t} AS c
  SET locked_by = $1, locked_until = (SELECT ts FROM snap) + $2::integer * interval '1 millisecond'
  WHERE c.id = ANY(ARRAY(
    SELECT o.id
    FROM ${t} AS o, snap
    WHERE o.id = ANY(ARRAY(SELECT id FROM cand))
      AND o.status = 'pending'
      AND ${eligible('o')}
    ORDER BY o.seq
    LIMIT $3
    FOR UPDATE OF o SKIP LOCKED
  ))
  RETURNING c.id, c.aggregatetype, c.aggregateid, c.type, c.topic, c.payload::text AS payload, c.headers,
    c.attempts, c.seq::text AS seq
)
SELECT id, aggregatetype, aggregateid, type, topic, payload, headers, attempts, seq, NULL::text AS window_end
FROM claimed
UNION ALL
SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, edge.seq::text
FROM edge
WHERE edge.n >= $7 AND NOT EXISTS (SELECT 1 FROM claimed)`
  return {
    text,
    values: [
      params.relayId,
      params.leaseMs,
      params.limit,
      topics,
      params.blockOnDead,
      params.after ?? null,
      params.limit * CLAIM_WINDOW_FACTOR,
    ],
  }
}

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
}

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
 *    the lock). Claims are a single indexed UPDATE, so the lock is held for milliseconds; the slow
 *    part, publishing, runs outside it and in parallel across relays.
 *
 * 2. **Head-of-line per key (`NOT EXISTS`).** A row `o` is claimable only if no EARLIER row `e` of
 *    the same topic + aggregateid is unfinished and out of our hands:
 *      - `e` is leased by a relay (`locked_until >= now`): in flight elsewhere (or in an earlier
 *        batch of ours) — publishing `o` now could overtake it;
 *      - `e` waits for a retry (`available_at > now`): it failed, `o` must wait behind it;
 *      - `e` was written by a transaction that is not older than every running one
 *        (`txid >= xmin`): see 3;
 *      - `e` is dead and the policy is 'block-key'.
 *    An earlier row that is itself claimable is NOT a blocker: since we claim in `seq` order it
 *    is in this same batch, ahead of `o` (if `o` fits under the LIMIT, so does `e`; and whatever
 *    blocks `e` also blocks `o`, because it is earlier than both). The relay sends a batch with
 *    one awaited, idempotent `sendBatch`, and a key always maps to one partition, so in-batch order
 *    is kept; on failure every row of the batch counts as unpublished (see `settle.ts`).
 *
 * 3. **Open transactions are never overtaken (`txid < xmin`).** `seq` is taken at INSERT, not at
 *    commit, so a slow transaction can hold seq 5 while seq 6 commits. Rows of transactions still
 *    running are invisible, so `NOT EXISTS` cannot see them. We therefore only claim rows whose
 *    transaction id is below `xmin`, the oldest transaction that was running when this
 *    statement's snapshot was taken and may belong to THIS database: every transaction that got
 *    its id earlier has ended, so its rows are either visible now or rolled back. The same test
 *    in `NOT EXISTS` holds back later rows behind a visible earlier row that is still too young.
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
 * 4. **Leases and crashes.** A claimed row gets `locked_by` + `locked_until`; a crashed relay's
 *    rows become claimable again when the lease expires (no separate sweeper is needed), and
 *    until then they hold back later rows of their keys (2). Mark statements check
 *    `locked_by = me`, so a relay whose lease expired and was reclaimed cannot clobber the new
 *    owner. Lease expiry while a relay is still publishing is indistinguishable from a crash:
 *    keep `leaseMs` well above the producer's send timeout.
 *
 * 5. **`FOR UPDATE SKIP LOCKED`** locks the chosen rows for the UPDATE without waiting. Because of
 *    (1), the only other writers that can hold row locks on pending rows are mark-published
 *    statements (rows already in Kafka, so skipping them cannot reorder anything); failure marks,
 *    which make rows claimable again, take the claim lock too.
 *
 * Times use `statement_timestamp()`, not `now()`: `now()` is the transaction start, which is
 * before the (possibly waited-for) advisory lock.
 *
 * The subquery walks the partial index on `seq WHERE status = 'pending'` in order and probes
 * `(topic, aggregateid, seq) WHERE status <> 'published'` for each candidate (about 10 ms for 500
 * rows). `id = ANY(ARRAY(subquery))` rather than `id IN (subquery)`: with IN the planner may hash
 * the picked ids and seq-scan the whole table to find them again; an array is looked up through
 * the primary key.
 *
 * @param params.limit - batch size (LIMIT)
 * @param params.leaseMs - lease length in milliseconds
 * @example
 * const { text, values } = claimBatch({ table: 'outbox_event', relayId: 'r1', limit: 500, leaseMs: 30_000, blockOnDead: true })
 */
export function claimBatch(params: ClaimBatchParams): SqlStatement<ClaimedRow> {
  const t = quoteTable(params.table)
  const topics = params.topics && params.topics.length > 0 ? params.topics : null
  const text = `WITH snap AS MATERIALIZED (
  SELECT statement_timestamp() AS ts, coalesce(
    (SELECT min(x) FROM pg_snapshot_xip(pg_current_snapshot()) AS x
     WHERE NOT EXISTS (
       SELECT 1 FROM pg_stat_activity AS a
       WHERE a.backend_xid = xid(x) AND a.datname IS NOT NULL AND a.datname <> current_database()
     )),
    pg_snapshot_xmax(pg_current_snapshot())
  ) AS xmin
)
UPDATE ${t} AS c
SET locked_by = $1, locked_until = (SELECT ts FROM snap) + $2::integer * interval '1 millisecond'
WHERE c.id = ANY(ARRAY(
  SELECT o.id
  FROM ${t} AS o, snap
  WHERE o.status = 'pending'
    AND o.available_at <= snap.ts
    AND (o.locked_until IS NULL OR o.locked_until < snap.ts)
    AND o.txid < snap.xmin
    AND ($4::text[] IS NULL OR o.topic = ANY($4::text[]))
    AND NOT EXISTS (
      SELECT 1 FROM ${t} AS e
      WHERE e.topic = o.topic
        AND e.aggregateid = o.aggregateid
        AND e.seq < o.seq
        AND e.status <> 'published'
        AND (
          (e.status = 'pending' AND (e.locked_until >= snap.ts OR e.available_at > snap.ts OR e.txid >= snap.xmin))
          OR (e.status = 'dead' AND $5::boolean)
        )
    )
  ORDER BY o.seq
  LIMIT $3
  FOR UPDATE OF o SKIP LOCKED
))
RETURNING c.id, c.aggregatetype, c.aggregateid, c.type, c.topic, c.payload::text AS payload, c.headers,
  c.attempts, c.seq::text AS seq`
  return { text, values: [params.relayId, params.leaseMs, params.limit, topics, params.blockOnDead] }
}

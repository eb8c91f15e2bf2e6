/**
 * Claims the next batch of rows to publish.
 * @module
 */
import { type SqlStatement, statementName } from '../db.js'
import { quoteTable, topicFilter } from './table.js'

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
  /**
   * The table has an index of dead rows (see `gateIndexes`): the per-key dead probes run only
   * when it holds a row at all.
   */
  deadIndex?: boolean | undefined
  /** Only claim rows of these topics (all topics when undefined or empty). */
  topics?: string[] | undefined
  /**
   * Look only at rows after this `seq` (decimal string): the `window_end` of a previous claim
   * whose whole window was held back. Every pending row up to it then holds its key.
   */
  after?: string | undefined
  /**
   * The window is this many times its usual size (default 1), its candidates are not: a claim
   * that moves past windows held back entirely looks at larger ones, see 6.
   */
  windowScale?: number | undefined
}

/** How many eligible rows, per row of `limit`, one claim looks at (its window) and takes as candidates. */
export const CLAIM_WINDOW_FACTOR = 2

/** The largest `windowScale` a claim uses. */
export const MAX_WINDOW_SCALE = 64

/**
 * A row of the claim's result: a claimed row, or (`id` null) why nothing was: the claim's whole
 * window was full and held back, so claimable rows may lie after `window_end`; or concurrent
 * claims took every candidate (`contended`).
 */
export type ClaimResultRow =
  | (ClaimedRow & { window_end: null; contended: false })
  | ({ [K in keyof ClaimedRow]: null } & { window_end: string; contended: false })
  | ({ [K in keyof ClaimedRow]: null } & { window_end: null; contended: true })

/**
 * The claim UPDATE. Run it in a transaction of its own, right after `lockClaimsBounded` (lock.ts;
 * shared: claims of many relays run at once).
 *
 * What we guarantee: for one topic + key, Kafka receives events in `seq` order, and for writes
 * that conflict (the second transaction touches the same aggregate row, so it waits for the first
 * one's row lock before inserting its outbox row) `seq` order is commit order. The relay keeps it
 * with many relays claiming at once, retries and crashes like this:
 *
 * 1. **The window (`seen`).** A row is *eligible* when it is pending, due (`available_at`), not
 *    leased and old enough (see 4). The claim looks at the first `limit × CLAIM_WINDOW_FACTOR`
 *    eligible rows in `seq` order after `after` (all rows when unset), as this statement's
 *    snapshot shows them; the window ends at the largest `seq` it holds (`edge`).
 *
 * 2. **Head-of-line per key, in the snapshot (`cand`).** A row `s` of the window is a candidate
 *    only if no EARLIER row `e` of the same topic + aggregateid is unfinished and out of our
 *    hands in the snapshot. Every such `e` is found without scanning the key's backlog:
 *      - `e` pending but not eligible (leased, waiting for a retry, too young), after `after`:
 *        `e.seq < s.seq <= edge`, so the `held` scan of the pending rows between `after` and
 *        `edge` finds it (per key, its smallest seq);
 *      - `e` pending, at or before `after` (a row of an earlier window, held back then or since
 *        become claimable): every such row holds its key; `held` probes, per key of the window,
 *        the key's first pending row up to `after` (index `(topic, aggregateid, seq) WHERE
 *        status <> 'published'`), so a claim far into a held backlog never rescans the rows it
 *        has passed;
 *      - `e` pending, eligible, after `after`: then `e` is in the window too (the window is a
 *        prefix of the eligible rows in `seq` order) and a candidate itself (whatever holds `e`
 *        is earlier than `s` and holds `s` as well); 3 decides whether we get it;
 *      - `e` dead and the policy is 'block-key': the `dead` probe looks, per key of the window,
 *        for the key's first dead row below its last windowed `seq`, in the index of dead rows
 *        (`outbox_event_dead_key_idx`, `(topic, aggregateid, seq) WHERE status = 'dead'`; on a
 *        table without it, PostgreSQL walks the key's unfinished rows instead: same answer).
 *    The cost of a claim grows with the window and the rows before it that are in flight or
 *    waiting, not with any key's backlog.
 *
 * 3. **Concurrent claims (`locked`, `lost`, `more`).** The snapshot is a moment old: another
 *    relay's claim may hold candidates row-locked (still running) or may have leased them since
 *    (committed after our snapshot). So the candidates are locked in `seq` order (the sort runs
 *    below the row locking, then the LIMIT) with `FOR UPDATE SKIP LOCKED`, and the lock re-checks
 *    eligibility on each row's newest version. A candidate below the last row we locked that we
 *    did not lock was skipped (row-locked by someone else) or failed the re-check (leased, marked
 *    or released by someone else since): it is *lost*, and it holds back every later row of its
 *    key, which we then leave alone even though we locked them (`kept` is the rest).
 *    Rows of lost keys may have used up the LIMIT, so when fewer than `limit` were kept a second
 *    round (`more`) locks, the same way, the candidates after the first round's last row whose
 *    keys lost nothing, and drops the rows behind its own lost ones (`lost_more`). The batch is
 *    the first `limit` rows kept by either round. Everything that can make a held row
 *    claimable again (a failure mark, a release, an expired lease) is an UPDATE of that row or a
 *    time, so a claim either sees it in its snapshot (2) or meets it at the lock; no row turns
 *    from unfinished to published except by a mark-published of rows already in Kafka. Rows
 *    locked and left alone are free again at COMMIT.
 *    The relay sends a batch with one awaited, idempotent `sendBatch`, and a key always maps to
 *    one partition, so in-batch order is kept; on failure every row of the batch counts as
 *    unpublished (see `settle.ts`).
 *
 * 4. **Open transactions are never overtaken (`txid < xmin`).** `seq` is taken at INSERT, not at
 *    commit, so a slow transaction can hold seq 5 while seq 6 commits. Rows of transactions still
 *    running are invisible, so the checks of 2 cannot see them. We therefore only claim rows
 *    whose transaction id is below `xmin`, the oldest transaction that was running when this
 *    statement's snapshot was taken and may belong to THIS database: every transaction that got
 *    its id earlier has ended, so its rows are either visible now or rolled back. A visible row
 *    that is still too young holds back the later rows of its key (2, `held`).
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
 *    until then they hold back later rows of their keys (2). Mark statements check
 *    `locked_by = me`, so a relay whose lease expired and was reclaimed cannot clobber the new
 *    owner. Lease expiry while a relay is still publishing is indistinguishable from a crash:
 *    keep `leaseMs` well above the producer's send timeout.
 *
 * 6. **Nothing claimed.** When the window was full and nothing in it was claimed, the result is
 *    one row with `id` null and `window_end`: the caller claims again with `after = window_end`
 *    (by 2, the rows up to it then hold their keys), so a long key held behind a leased or
 *    failed row never hides other keys' rows from the relay. Each such step doubles the window
 *    (`windowScale`, up to {@link MAX_WINDOW_SCALE}), not the candidates (`cand` keeps the first
 *    `limit × CLAIM_WINDOW_FACTOR` in `seq` order, so the row locks stay as few): a backlog
 *    whose keys are all held (a few keys, each with a batch in flight at another relay) is walked
 *    in a few statements instead of one per window, and the per-key probes of 2 run once per key
 *    of each window, however large (150k rows on 1,000 keys: 2.3 s → 0.3 s per claim that
 *    finds nothing). When the window was not full but
 *    concurrent claims took every candidate, the row says `contended`: the caller waits a few
 *    milliseconds for them to commit and claims again.
 *
 * Times use `statement_timestamp()`, not `now()`: `now()` is the transaction start, which is
 * before the (possibly waited-for) advisory lock. `id = ANY(ARRAY(subquery))` rather than
 * `id IN (subquery)`: with IN the planner may hash the picked ids and seq-scan the whole table
 * to find them again; an array is looked up through the primary key.
 *
 * The text leaves out what a claim does not need (the `after` probes, the topic filter, the dead
 * probe), so that one generic plan serves each variant whatever its values (the tests of
 * `claim.int.test.ts` measure the generic plan as well as the custom one), and it carries a
 * `name`: a driver that prepares named statements (node-postgres) plans it once per connection
 * instead of per claim, which on a small backlog is most of the claim's time.
 *
 * @param params.limit - batch size (LIMIT)
 * @param params.leaseMs - lease length in milliseconds
 * @example
 * const { text, values } = claimBatch({ table: 'outbox_event', relayId: 'r1', limit: 500, leaseMs: 30_000, blockOnDead: true })
 */
export function claimBatch(params: ClaimBatchParams): SqlStatement<ClaimResultRow> {
  const values: unknown[] = []
  const param = (value: unknown, type: string) => {
    values.push(value)
    return `$${values.length}::${type}`
  }
  const topics = topicFilter(params.topics) ?? undefined
  const q: ClaimQuery = {
    t: quoteTable(params.table),
    relayId: param(params.relayId, 'text'),
    leaseMs: param(params.leaseMs, 'integer'),
    limit: param(params.limit, 'integer'),
    window: param(params.limit * CLAIM_WINDOW_FACTOR * (params.windowScale ?? 1), 'integer'),
    candidates: param(params.limit * CLAIM_WINDOW_FACTOR, 'integer'),
    topics: topics === undefined ? undefined : param(topics, 'text[]'),
    after: params.after === undefined ? undefined : param(params.after, 'bigint'),
    blockOnDead: params.blockOnDead,
    deadIndex: params.deadIndex === true,
  }
  const text = `WITH ${[snapCte, seenCte, heldCte, deadCte, candCte, lockCtes, claimedCte]
    .map((part) => part(q))
    .filter((part) => part !== '')
    .join(',\n')}
${resultSelect(q)}`
  return { text, values, name: statementName('outbox_claim', text) }
}

/** The parts of one claim statement: SQL text and `$n` placeholders (with their casts). */
interface ClaimQuery {
  t: string
  relayId: string
  leaseMs: string
  limit: string
  window: string
  /** The most candidates taken from the window, the first in `seq` order. */
  candidates: string
  /** Absent: every topic. */
  topics: string | undefined
  /** Absent: from the first row. */
  after: string | undefined
  blockOnDead: boolean
  deadIndex: boolean
}

/** The condition that row `r` is eligible: due, not leased, written by an ended transaction. */
const eligible = (r: string) =>
  `${r}.available_at <= snap.ts AND (${r}.locked_until IS NULL OR ${r}.locked_until < snap.ts) AND ${r}.txid < snap.xmin`

/** `AND …` conditions on row `r` for the claim's topics and the rows after `after`. */
const scope = (q: ClaimQuery, r: string) =>
  `${q.after === undefined ? '' : ` AND ${r}.seq > ${q.after}`}${q.topics === undefined ? '' : ` AND ${r}.topic = ANY(${q.topics})`}`

/** The statement's time and `xmin` (see 4). */
const snapCte = () => `snap AS MATERIALIZED (
  SELECT statement_timestamp() AS ts, coalesce(
    (SELECT min(x) FROM pg_snapshot_xip(pg_current_snapshot()) AS x
     WHERE NOT EXISTS (
       SELECT 1 FROM pg_stat_activity AS a
       WHERE a.backend_xid = xid(x) AND a.datname IS NOT NULL AND a.datname <> current_database()
     )),
    pg_snapshot_xmax(pg_current_snapshot())
  ) AS xmin
)`

/** The window (1) and where it ends. */
const seenCte = (q: ClaimQuery) => `seen AS MATERIALIZED (
  SELECT o.id, o.seq, o.topic, o.aggregateid
  FROM ${q.t} AS o, snap
  WHERE o.status = 'pending'${scope(q, 'o')}
    AND ${eligible('o')}
  ORDER BY o.seq
  LIMIT ${q.window}
),
edge AS MATERIALIZED (SELECT max(seq) AS seq, count(*) AS n FROM seen)`

/** Per key, the first row that holds it back (2): not eligible before the edge, or up to `after`. */
const heldCte = (q: ClaimQuery) => `held AS MATERIALIZED (
  SELECT h.topic, h.aggregateid, min(h.seq) AS seq
  FROM ${q.t} AS h, snap, edge
  WHERE h.status = 'pending'
    AND h.seq < edge.seq${scope(q, 'h')}
    AND NOT (${eligible('h')})
  GROUP BY h.topic, h.aggregateid${
    q.after === undefined
      ? ''
      : `
  UNION ALL
  SELECT k.topic, k.aggregateid, b.seq
  FROM (SELECT DISTINCT topic, aggregateid FROM seen) AS k
  CROSS JOIN LATERAL (
    SELECT e.seq FROM ${q.t} AS e
    WHERE e.topic = k.topic AND e.aggregateid = k.aggregateid AND e.seq <= ${q.after}
      AND e.status <> 'published' AND e.status = 'pending'
    ORDER BY e.seq
    LIMIT 1
  ) AS b`
  }
)`

/**
 * Per key of the window, its first dead row before its last windowed row ('block-key' only).
 * With an index of dead rows (`deadIndex`) the probes run only when the table has a dead row at
 * all, which one look into that index answers: on a table without dead rows they were a fifth of
 * a claim of 500 rows (1,000 probes, 3.5 of 18.7 ms). Without the index that look would walk
 * every unfinished row, so the probes then always run.
 */
const deadCte = (q: ClaimQuery) =>
  q.blockOnDead
    ? `dead AS MATERIALIZED (
  SELECT k.topic, k.aggregateid, d.seq
  FROM (SELECT topic, aggregateid, max(seq) AS last FROM seen GROUP BY topic, aggregateid) AS k
  CROSS JOIN LATERAL (
    SELECT e.seq FROM ${q.t} AS e
    WHERE e.topic = k.topic AND e.aggregateid = k.aggregateid AND e.seq < k.last AND e.status = 'dead'
    ORDER BY e.seq
    LIMIT 1
  ) AS d${
    q.deadIndex
      ? `
  WHERE EXISTS (SELECT 1 FROM ${q.t} AS x WHERE x.status = 'dead')`
      : ''
  }
)`
    : ''

/** The window's rows that nothing earlier of their key holds back, in the snapshot (2). */
const candCte = (q: ClaimQuery) => `cand AS MATERIALIZED (
  SELECT s.id, s.seq, s.topic, s.aggregateid FROM seen AS s
  WHERE NOT EXISTS (
      SELECT 1 FROM held AS h WHERE h.topic = s.topic AND h.aggregateid = s.aggregateid AND h.seq < s.seq)${
        q.blockOnDead
          ? `
    AND NOT EXISTS (
      SELECT 1 FROM dead AS d WHERE d.topic = s.topic AND d.aggregateid = s.aggregateid AND d.seq < s.seq)`
          : ''
      }
  ORDER BY s.seq
  LIMIT ${q.candidates}
)`

/** Up to `limit` of the rows `ids` selects that are still eligible, row-locked in `seq` order. */
const lockInSeqOrder = (q: ClaimQuery, ids: string) => `
  SELECT o.id, o.seq, o.topic, o.aggregateid
  FROM ${q.t} AS o, snap
  WHERE o.id = ANY(ARRAY(${ids}))
    AND o.status = 'pending'
    AND ${eligible('o')}
  ORDER BY o.seq
  LIMIT ${q.limit}
  FOR UPDATE OF o SKIP LOCKED
`

/** The two rounds of row locks and the rows each loses to concurrent claims (3). */
const lockCtes = (q: ClaimQuery) => `locked AS MATERIALIZED (${lockInSeqOrder(q, 'SELECT id FROM cand')}),
lost AS MATERIALIZED (
  SELECT c.topic, c.aggregateid, min(c.seq) AS seq
  FROM cand AS c
  WHERE c.seq < (SELECT max(seq) FROM locked)
    AND NOT EXISTS (SELECT 1 FROM locked AS l WHERE l.id = c.id)
  GROUP BY c.topic, c.aggregateid
),
kept AS MATERIALIZED (
  SELECT l.id, l.seq FROM locked AS l
  WHERE NOT EXISTS (
    SELECT 1 FROM lost AS x WHERE x.topic = l.topic AND x.aggregateid = l.aggregateid AND x.seq < l.seq)
),
more AS MATERIALIZED (${lockInSeqOrder(
  q,
  `SELECT c.id FROM cand AS c
      WHERE c.seq > (SELECT max(seq) FROM locked) AND (SELECT count(*) FROM kept) < ${q.limit}
        AND NOT EXISTS (SELECT 1 FROM lost AS x WHERE x.topic = c.topic AND x.aggregateid = c.aggregateid)`,
)}),
lost_more AS MATERIALIZED (
  SELECT c.topic, c.aggregateid, min(c.seq) AS seq
  FROM cand AS c
  WHERE c.seq > (SELECT max(seq) FROM locked) AND c.seq < (SELECT max(seq) FROM more)
    AND NOT EXISTS (SELECT 1 FROM more AS m WHERE m.id = c.id)
  GROUP BY c.topic, c.aggregateid
)`

/** The lease of the first `limit` rows either round kept (5). */
const claimedCte = (q: ClaimQuery) => `claimed AS (
  UPDATE ${q.t} AS c
  SET locked_by = ${q.relayId}, locked_until = (SELECT ts FROM snap) + ${q.leaseMs} * interval '1 millisecond'
  WHERE c.id = ANY(ARRAY(
    SELECT id FROM (
      SELECT id, seq FROM kept
      UNION ALL
      SELECT m.id, m.seq FROM more AS m
      WHERE NOT EXISTS (
        SELECT 1 FROM lost_more AS x WHERE x.topic = m.topic AND x.aggregateid = m.aggregateid AND x.seq < m.seq)
    ) AS k
    ORDER BY seq
    LIMIT ${q.limit}
  ))
  RETURNING c.id, c.aggregatetype, c.aggregateid, c.type, c.topic, c.payload::text AS payload, c.headers,
    c.attempts, c.seq::text AS seq
)`

/** The claimed rows, or one row saying why there are none (6). */
const resultSelect = (
  q: ClaimQuery,
) => `SELECT id, aggregatetype, aggregateid, type, topic, payload, headers, attempts, seq,
  NULL::text AS window_end, false AS contended
FROM claimed
UNION ALL
SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  CASE WHEN edge.n >= ${q.window} THEN edge.seq::text END, edge.n < ${q.window}
FROM edge
WHERE NOT EXISTS (SELECT 1 FROM claimed) AND (edge.n >= ${q.window} OR EXISTS (SELECT 1 FROM cand))`

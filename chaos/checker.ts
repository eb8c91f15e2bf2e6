/**
 * The checker: reads the chaos topics from the beginning and compares them with the database's
 * ground truth (the committed outbox rows). Pure comparison in {@link check}, so it can be
 * self-tested with a lost, a reordered and a duplicated event (`--self-test`).
 *
 * Rules:
 * - lost: a committed row that is not `dead` and whose id never reached Kafka (whatever its
 *   status: `published` rows missing from Kafka are the worst case, `pending` rows left at the end
 *   of the run count too).
 * - phantom: a Kafka message whose `id` header is no committed row (an invented event).
 * - duplicate: every copy of an id after the first. It is "in a killed relay's in-flight batch"
 *   when a SIGKILLed relay held that row's lease at its death.
 * - order: for each topic + key, walking the partition in offset order, the FIRST copy of each id
 *   must carry a larger per-key counter than every earlier first copy. A later copy of an id
 *   already seen is a duplicate (consumers drop it by `id`), not an order violation. A key found
 *   in two partitions is a violation too.
 */
import { type Kafka, logLevel } from 'kafkajs'

export interface DbRow {
  id: string
  topic: string
  key: string
  status: 'pending' | 'published' | 'dead'
  attempts: number
  lastError: string | null
  seq: bigint
  /** The per-key counter in the payload (null for poison). */
  n: number | null
  poison: string | null
}

export interface KafkaMessage {
  id: string
  topic: string
  partition: number
  offset: bigint
  key: string
  n: number | null
}

export interface CheckReport {
  written: number
  writtenByTopic: Record<string, number>
  poisonWritten: number
  db: { published: number; dead: number; pending: number }
  kafka: { messages: number; distinctIds: number }
  lost: number
  lostPublishedInDb: number
  lostPending: number
  lostSamples: string[]
  phantom: number
  deadButInKafka: number
  duplicates: {
    extraCopies: number
    ids: number
    /** Ids a killed or crashed relay held (its in-flight batch) before the copy that counted. */
    inKilledInFlight: number
    notInKilledInFlight: number
    /** Why the others repeated, from the claim log (one entry per lease a relay took on the row). */
    why: {
      /** Claimed by another relay after the lease of a LIVE relay expired (it could not mark in time). */
      reclaimedFromLiveRelay: number
      /** ...of which the first claim was taken during a fault window (database or broker down). */
      reclaimedDuringFault: number
      /** Claimed again by the same relay (a failed send retried after its backoff). */
      retriedBySameRelay: number
      /** One claim only: the relay itself sent it twice in one batch (bisection after a permanent error). */
      resentWithinOneClaim: number
      /** ...of which within 2 batch sizes (by seq) of an oversized poison row. */
      resentWithinOneClaimNearOversized: number
      /** No claim log for the row. */
      unknown: number
    }
    samples: { id: string; copies: number; claims: string[]; attempts: number }[]
  }
  orderViolations: number
  orderSamples: string[]
  keysSplitAcrossPartitions: number
  /** Keys whose committed rows, in seq order, do not carry increasing counters (writer side). */
  dbSeqOrderAnomalies: number
  dead: { total: number; poison: number; nonPoison: number; reasons: { reason: string; count: number }[] }
  keysChecked: number
}

/** One lease taken on a row (from the harness's claim-log trigger). */
export interface Claim {
  relayId: string
  at: number
}

export interface CheckContext {
  /** Rows each killed or crashed relay held right after its death. */
  inFlight: Map<string, string[]>
  /** Every lease taken on each (duplicated) row, in time order. */
  claims?: Map<string, Claim[]>
  /** Relay ids that were killed or crashed. */
  deadRelays?: Set<string>
  /** Fault windows (ms since epoch). */
  faults?: { name: string; from: number; to: number }[]
  batchSize?: number
}

export function check(rows: DbRow[], messages: KafkaMessage[], ctx: CheckContext): CheckReport {
  const byId = new Map(rows.map((r) => [r.id, r]))
  const writtenByTopic: Record<string, number> = {}
  for (const r of rows) writtenByTopic[r.topic] = (writtenByTopic[r.topic] ?? 0) + 1

  const copies = new Map<string, number>()
  for (const m of messages) copies.set(m.id, (copies.get(m.id) ?? 0) + 1)

  const lost = findLost(rows, copies)
  let phantom = 0
  for (const id of copies.keys()) if (!byId.has(id)) phantom++
  const order = checkOrder(messages)
  const dead = rows.filter((r) => r.status === 'dead')

  return {
    written: rows.length,
    writtenByTopic,
    poisonWritten: rows.filter((r) => r.poison).length,
    db: {
      published: rows.filter((r) => r.status === 'published').length,
      dead: dead.length,
      pending: rows.filter((r) => r.status === 'pending').length,
    },
    kafka: { messages: messages.length, distinctIds: copies.size },
    lost: lost.lostPublishedInDb + lost.lostPending,
    lostPublishedInDb: lost.lostPublishedInDb,
    lostPending: lost.lostPending,
    lostSamples: lost.lostSamples,
    phantom,
    deadButInKafka: lost.deadButInKafka,
    duplicates: explainDuplicates(rows, byId, copies, ctx),
    orderViolations: order.orderViolations,
    orderSamples: order.orderSamples,
    keysSplitAcrossPartitions: order.split,
    dbSeqOrderAnomalies: countDbSeqOrderAnomalies(rows),
    dead: {
      total: dead.length,
      poison: dead.filter((r) => r.poison).length,
      nonPoison: dead.filter((r) => !r.poison).length,
      reasons: deadReasons(dead),
    },
    keysChecked: order.keysChecked,
  }
}

/** Committed rows that never reached Kafka (dead rows aside), and dead rows that did. */
function findLost(rows: DbRow[], copies: Map<string, number>) {
  let lostPublishedInDb = 0
  let lostPending = 0
  const lostSamples: string[] = []
  let deadButInKafka = 0
  for (const r of rows) {
    const inKafka = copies.has(r.id)
    if (r.status === 'dead') {
      if (inKafka) deadButInKafka++
      continue
    }
    if (inKafka) continue
    if (r.status === 'published') lostPublishedInDb++
    else lostPending++
    if (lostSamples.length < 10) lostSamples.push(`${r.id} (${r.status}, ${r.topic}/${r.key}, n=${r.n})`)
  }
  return { lostPublishedInDb, lostPending, lostSamples, deadButInKafka }
}

/** Counts the extra copies of each id and why they repeated (see the rules at the top). */
function explainDuplicates(
  rows: DbRow[],
  byId: Map<string, DbRow>,
  copies: Map<string, number>,
  ctx: CheckContext,
): CheckReport['duplicates'] {
  const { inFlight, claims = new Map(), deadRelays = new Set(), faults = [], batchSize = 500 } = ctx
  const dup: CheckReport['duplicates'] = {
    extraCopies: 0,
    ids: 0,
    inKilledInFlight: 0,
    notInKilledInFlight: 0,
    why: {
      reclaimedFromLiveRelay: 0,
      reclaimedDuringFault: 0,
      retriedBySameRelay: 0,
      resentWithinOneClaim: 0,
      resentWithinOneClaimNearOversized: 0,
      unknown: 0,
    },
    samples: [],
  }
  const oversized = rows.filter((r) => r.poison === 'oversized').map((r) => r.seq)
  const nearOversized = (seq: bigint | undefined) =>
    seq !== undefined && oversized.some((p) => (p > seq ? p - seq : seq - p) <= BigInt(2 * batchSize))
  for (const [id, n] of copies) {
    if (n < 2) continue
    dup.ids++
    dup.extraCopies += n - 1
    const row = byId.get(id)
    const list: Claim[] = claims.get(id) ?? []
    const earlier = list.slice(0, -1)
    if ((inFlight.get(id)?.length ?? 0) > 0 || earlier.some((c) => deadRelays.has(c.relayId))) {
      dup.inKilledInFlight++
      continue
    }
    dup.notInKilledInFlight++
    if (list.length === 0) dup.why.unknown++
    else if (list.length === 1) {
      dup.why.resentWithinOneClaim++
      if (nearOversized(row?.seq)) dup.why.resentWithinOneClaimNearOversized++
    } else if (new Set(list.map((c) => c.relayId)).size === 1) dup.why.retriedBySameRelay++
    else {
      dup.why.reclaimedFromLiveRelay++
      if (earlier.some((c) => faults.some((f) => c.at >= f.from && c.at <= f.to)))
        dup.why.reclaimedDuringFault++
    }
    if (dup.samples.length < 10)
      dup.samples.push({
        id,
        copies: n,
        claims: list.map((c) => `${c.relayId}@${new Date(c.at).toISOString().slice(11, 23)}`),
        attempts: row?.attempts ?? 0,
      })
  }
  return dup
}

/** Kafka's order: by topic, then partition, then offset. */
function byPartitionOffset(a: KafkaMessage, b: KafkaMessage): number {
  return a.topic !== b.topic
    ? a.topic < b.topic
      ? -1
      : 1
    : a.partition !== b.partition
      ? a.partition - b.partition
      : a.offset < b.offset
        ? -1
        : a.offset > b.offset
          ? 1
          : 0
}

/**
 * Per topic + key, in partition order: first copies whose counter does not exceed every earlier
 * one's (order violations), and keys met in another partition than before.
 */
function checkOrder(messages: KafkaMessage[]) {
  const sorted = [...messages].sort(byPartitionOffset)
  const perKey = new Map<string, { last: number; partition: number; seen: Set<string> }>()
  let orderViolations = 0
  let split = 0
  const orderSamples: string[] = []
  for (const m of sorted) {
    const k = `${m.topic}\u0000${m.key}`
    let s = perKey.get(k)
    if (!s) {
      s = { last: Number.NEGATIVE_INFINITY, partition: m.partition, seen: new Set() }
      perKey.set(k, s)
    }
    if (s.partition !== m.partition) {
      split++
      s.partition = m.partition
    }
    if (s.seen.has(m.id)) continue // duplicate, not an order violation
    s.seen.add(m.id)
    if (m.n === null) continue
    if (m.n <= s.last) {
      orderViolations++
      if (orderSamples.length < 10)
        orderSamples.push(
          `${m.topic}/${m.key}: n=${m.n} after n=${s.last} (partition ${m.partition}, offset ${m.offset})`,
        )
    }
    s.last = Math.max(s.last, m.n)
  }
  return { orderViolations, orderSamples, split, keysChecked: perKey.size }
}

/** Writer side: keys whose committed rows, in seq order, do not carry increasing counters. */
function countDbSeqOrderAnomalies(rows: DbRow[]): number {
  const dbKeys = new Map<string, DbRow[]>()
  for (const r of rows) {
    if (r.n === null) continue
    const k = `${r.topic}\u0000${r.key}`
    const list = dbKeys.get(k) ?? []
    list.push(r)
    dbKeys.set(k, list)
  }
  let dbSeqOrderAnomalies = 0
  for (const list of dbKeys.values()) {
    list.sort((a, b) => (a.seq < b.seq ? -1 : a.seq > b.seq ? 1 : 0))
    for (let i = 1; i < list.length; i++) {
      const prev = list[i - 1]?.n ?? 0
      if ((list[i]?.n ?? 0) <= prev) {
        dbSeqOrderAnomalies++
        break
      }
    }
  }
  return dbSeqOrderAnomalies
}

/** Dead rows grouped by poison kind and last error (ids masked), most frequent first. */
function deadReasons(dead: DbRow[]): { reason: string; count: number }[] {
  const reasons = new Map<string, number>()
  for (const r of dead) {
    const reason = `${r.poison ? `[${r.poison}] ` : '[NOT poison] '}${(r.lastError ?? '(no reason)').replace(/[0-9a-f]{8}-[0-9a-f-]{27}/g, '<id>').slice(0, 160)}`
    reasons.set(reason, (reasons.get(reason) ?? 0) + 1)
  }
  return [...reasons].map(([reason, count]) => ({ reason, count })).sort((a, b) => b.count - a.count)
}

/** The per-key counter of a message value: `n` (payroll) or `title: 'v<n>'` (employee). */
export function counterOf(value: string | null | undefined): number | null {
  if (!value) return null
  try {
    const v = JSON.parse(value) as { n?: unknown; title?: unknown }
    if (typeof v.n === 'number') return v.n
    if (typeof v.title === 'string' && /^v\d+$/.test(v.title)) return Number(v.title.slice(1))
  } catch {
    // not JSON
  }
  return null
}

/** Every message of `topics`, from the beginning to the current end (high watermarks). */
export async function consumeAll(kafka: Kafka, topics: string[], timeoutMs: number): Promise<KafkaMessage[]> {
  const admin = kafka.admin()
  await admin.connect()
  const ends = new Map<string, bigint>()
  try {
    for (const topic of topics) {
      for (const p of await admin.fetchTopicOffsets(topic))
        ends.set(`${topic}:${p.partition}`, BigInt(p.high))
    }
  } finally {
    await admin.disconnect()
  }
  const remaining = new Set([...ends].filter(([, high]) => high > 0n).map(([k]) => k))
  const messages: KafkaMessage[] = []
  if (remaining.size === 0) return messages
  const consumer = kafka.consumer({
    groupId: `chaos-check-${Date.now()}-${process.pid}`,
    maxBytes: 20 * 1024 * 1024,
  })
  await consumer.connect()
  let done: () => void = () => {}
  const finished = new Promise<void>((resolve) => {
    done = resolve
  })
  try {
    await consumer.subscribe({ topics, fromBeginning: true })
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        for (const m of batch.messages) {
          const id = m.headers?.id?.toString() ?? ''
          messages.push({
            id,
            topic: batch.topic,
            partition: batch.partition,
            offset: BigInt(m.offset),
            key: m.key?.toString() ?? '',
            n: counterOf(m.value?.toString()),
          })
        }
        const k = `${batch.topic}:${batch.partition}`
        const high = ends.get(k) ?? 0n
        if (batch.messages.length > 0 && BigInt(batch.lastOffset()) >= high - 1n) remaining.delete(k)
        if (remaining.size === 0) done()
      },
    })
    const timer = setTimeout(done, timeoutMs)
    await finished
    clearTimeout(timer)
    if (remaining.size > 0) throw new Error(`checker: timed out reading ${[...remaining].join(', ')}`)
  } finally {
    await consumer.disconnect()
  }
  // messages beyond the watermark read at the start (none expected: relays are stopped)
  return messages.filter((m) => m.offset < (ends.get(`${m.topic}:${m.partition}`) ?? 0n))
}

export const quietLog = logLevel.ERROR

/** Feeds {@link check} a lost, a reordered and duplicated events; throws if it misses one. */
export function selfTest(): string[] {
  const row = (id: string, key: string, n: number, status: DbRow['status'] = 'published'): DbRow => ({
    id,
    topic: 't',
    key,
    status,
    attempts: 0,
    lastError: status === 'dead' ? 'MESSAGE_TOO_LARGE' : null,
    seq: BigInt(rows.length + 1),
    n,
    poison: status === 'dead' ? 'oversized' : null,
  })
  const rows: DbRow[] = []
  for (const [id, key, n] of [
    ['a1', 'A', 0],
    ['a2', 'A', 1],
    ['a3', 'A', 2],
    ['b1', 'B', 0],
    ['b2', 'B', 1], // lost
    ['c1', 'C', 0],
    ['c2', 'C', 1], // arrives before c1: reordered
  ] as const)
    rows.push(row(id, key, n))
  rows.push(row('p1', 'P', 0, 'dead'))
  let offset = 0n
  const msg = (id: string, key: string, n: number): KafkaMessage => ({
    id,
    topic: 't',
    partition: key === 'A' ? 0 : 1,
    offset: offset++,
    key,
    n,
  })
  const messages = [
    msg('a1', 'A', 0),
    msg('a2', 'A', 1),
    msg('a1', 'A', 0), // duplicate of a killed relay's in-flight row: not an order violation
    msg('a3', 'A', 2),
    msg('a3', 'A', 2), // duplicate with no crash to explain it
    msg('b1', 'B', 0),
    msg('c2', 'C', 1),
    msg('c1', 'C', 0),
  ]
  const r = check(rows, messages, { inFlight: new Map([['a1', ['r1']]]) })
  const expect = (what: string, actual: unknown, wanted: unknown) => {
    if (actual !== wanted) throw new Error(`checker self-test: ${what} = ${actual}, expected ${wanted}`)
    return `${what} = ${actual} (expected ${wanted})`
  }
  return [
    expect('lost', r.lost, 1),
    expect('lostSamples[0] names b2', r.lostSamples[0]?.startsWith('b2'), true),
    expect('orderViolations', r.orderViolations, 1),
    expect('duplicates.extraCopies', r.duplicates.extraCopies, 2),
    expect('duplicates.inKilledInFlight', r.duplicates.inKilledInFlight, 1),
    expect('duplicates.notInKilledInFlight', r.duplicates.notInKilledInFlight, 1),
    expect('dead.poison', r.dead.poison, 1),
    expect('phantom', r.phantom, 0),
  ]
}

/**
 * Part 1: drain throughput. Our relay (1 and N concurrent relays), the naive loop of the seed
 * articles, and a bare kafkajs `sendBatch` of the same messages (the ceiling).
 */
import { performance } from 'node:perf_hooks'
import { PrismaPg } from '@prisma/adapter-pg'
import {
  type BatchInfo,
  createEngine,
  type Engine,
  KafkaPublisher,
  type Publisher,
} from '@prisma-outbox/relay'
import { CompressionTypes, Partitioners } from 'kafkajs'
import pg from 'pg'
// The claim statement itself, for EXPLAIN: internal SQL, not part of the package's exports.
import { claimBatch } from '../packages/relay/src/core/sql/claim-batch.js'
import { lockClaims } from '../packages/relay/src/core/sql/lock.js'
import { PrismaClient } from './generated/client/client.js'
import {
  benchKafka,
  type CpuSplit,
  cpuMeter,
  fillBacklog,
  freshDatabase,
  freshTopic,
  keyOf,
  log,
  payloadOf,
  progress,
  sleep,
  summarize,
  topicMessageCount,
} from './lib.js'

export interface BatchProfile {
  batches: number
  avgSize: number
  claimMs: ReturnType<typeof summarize>
  publishMs: ReturnType<typeof summarize>
  markMs: ReturnType<typeof summarize>
  /** Share of the summed batch time spent in claim / publish / mark (per relay, so overlapping). */
  share: { claim: number; publish: number; mark: number }
  /** Mean claim ms of the first and last tenth of the batches (does claiming slow down?). */
  claimFirstTenthMs: number
  claimLastTenthMs: number
}

export interface RelayDrainResult {
  rows: number
  relays: number
  batchSize: number
  ms: number
  eventsPerSec: number
  published: number
  inKafka: number
  fill: { ms: number; avgPayloadBytes: number; tableMB: number }
  profile: BatchProfile
  cpu: CpuSplit
  explain?: string
  variant?: string
  /** events/s of every repetition (this result is the median one). */
  repeats?: number[]
}

function profileOf(batches: BatchInfo[]): BatchProfile {
  const claim = batches.map((b) => b.claimMs)
  const publish = batches.map((b) => b.publishMs)
  const mark = batches.map((b) => b.markMs)
  const c = summarize(claim)
  const p = summarize(publish)
  const m = summarize(mark)
  const total = c.sum + p.sum + m.sum || 1
  const tenth = Math.max(1, Math.floor(batches.length / 10))
  const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : Number.NaN)
  return {
    batches: batches.length,
    avgSize: batches.length ? batches.reduce((n, b) => n + b.size, 0) / batches.length : 0,
    claimMs: c,
    publishMs: p,
    markMs: m,
    share: { claim: c.sum / total, publish: p.sum / total, mark: m.sum / total },
    claimFirstTenthMs: mean(claim.slice(0, tenth)),
    claimLastTenthMs: mean(claim.slice(-tenth)),
  }
}

/** What {@link relayDrain} drains, and how. */
interface RelayDrainOptions {
  rows: number
  keys: number
  relays: number
  batchSize: number
  explain?: boolean
  /** SQL run on the fresh database before the fill (tuning experiments). */
  setupSql?: string[]
  variant?: string
  /** Extra connection options of the relay's pool, e.g. `-c synchronous_commit=off`. */
  pgOptions?: string
  /** Run the concurrent drains on ONE engine (one relay id, one producer) instead of one engine each. */
  sharedEngine?: boolean
  /** Each engine's publisher (default: a `KafkaPublisher`), not connected yet. */
  createPublisher?: () => Publisher
  /** Mark published rows (default) or delete them. */
  publishedRows?: 'mark' | 'delete'
}

/**
 * Drains a fresh backlog of `rows` rows over `keys` keys with `relays` engines running at once
 * (each its own engine, relay id and idempotent producer, all on one pg pool), until every row
 * is published. Times from the first claim to the last mark.
 */
export async function relayDrain(options: RelayDrainOptions): Promise<RelayDrainResult> {
  const { rows, keys, relays, batchSize } = options
  const db = await freshDatabase()
  const kafka = benchKafka()
  const publishers: Publisher[] = []
  const relayPool = options.pgOptions
    ? new pg.Pool({ connectionString: db.url, max: 10, options: options.pgOptions })
    : db.pool
  try {
    for (const sql of options.setupSql ?? []) await db.pool.query(sql)
    const topic = await freshTopic(kafka, 'drain')
    const fill = await fillBacklog(db, { rows, keys, topic, label: 'backlog' })
    let explain: string | undefined
    if (options.explain) explain = await explainClaim(db.pool, batchSize)

    const batches: BatchInfo[] = []
    let published = 0
    const engines: Engine[] = []
    for (let i = 0; i < (options.sharedEngine ? 1 : relays); i++) {
      const publisher = options.createPublisher?.() ?? new KafkaPublisher({ kafka, createTopics: false })
      await publisher.connect()
      publishers.push(publisher)
      engines.push(
        createEngine({
          pool: relayPool,
          publisher,
          options: { batchSize, relayId: `bench-relay-${i}`, publishedRows: options.publishedRows ?? 'mark' },
          hooks: {
            onBatch: (info) => {
              batches.push(info)
              published += info.published
            },
          },
        }),
      )
    }
    const report = progress(`relay ×${relays} batch ${batchSize}`, rows)
    const ticker = setInterval(() => report(published), 500)
    const meter = cpuMeter()
    const t0 = performance.now()
    await drainConcurrently(
      options.sharedEngine ? Array.from({ length: relays }, () => engines[0] as Engine) : engines,
    )
    const ms = performance.now() - t0
    const cpu = meter()
    clearInterval(ticker)
    report(published)
    await assertAllPublished(db.pool)
    const inKafka = await topicMessageCount(kafka, topic)
    const result: RelayDrainResult = {
      rows,
      relays,
      batchSize,
      ms,
      eventsPerSec: rows / (ms / 1000),
      published,
      inKafka,
      fill,
      profile: profileOf(batches),
      cpu,
    }
    if (explain !== undefined) result.explain = explain
    if (options.variant !== undefined) result.variant = options.variant
    return result
  } finally {
    for (const p of publishers) await p.disconnect()
    if (relayPool !== db.pool) await relayPool.end()
    await db.drop()
  }
}

/**
 * Drains with every engine of `drainers` at once (an engine listed twice drains twice
 * concurrently) until none finds anything left.
 */
async function drainConcurrently(drainers: Engine[]): Promise<void> {
  await Promise.all(
    drainers.map(async (engine) => {
      for (;;) {
        const result = await engine.drain()
        if (result.remaining === 0 && result.published === 0) return
        // Everything left is leased by the other relays (or held behind their keys): retry soon.
        if (result.published === 0) await sleep(2)
      }
    }),
  )
}

/** Throws when a row of the backlog is not published. */
async function assertAllPublished(pool: import('pg').Pool): Promise<void> {
  const { rows: left } = await pool.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM outbox_event WHERE status <> 'published'`,
  )
  if ((left[0]?.n ?? 0) > 0) throw new Error(`relay drain left ${left[0]?.n} rows unpublished`)
}

/** EXPLAIN (ANALYZE, BUFFERS) of the relay's claim statement on the full backlog, rolled back. */
async function explainClaim(pool: import('pg').Pool, limit: number): Promise<string> {
  const client = await pool.connect()
  try {
    await client.query('BEGIN')
    const lock = lockClaims()
    await client.query(lock.text, lock.values)
    const claim = claimBatch({
      table: 'outbox_event',
      relayId: 'explain',
      limit,
      leaseMs: 30_000,
      blockOnDead: true,
    })
    const { rows } = await client.query(`EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) ${claim.text}`, claim.values)
    return rows.map((r: Record<string, string>) => r['QUERY PLAN']).join('\n')
  } finally {
    await client.query('ROLLBACK')
    client.release()
  }
}

/**
 * The naive loop of the seed articles, through Prisma: `findMany` 10 pending rows in order, then
 * for each one `send` one message and `update` one row. Same producer settings as the relay
 * (idempotent, acks = all).
 */
export async function naiveLoop(options: { rows: number; keys: number }) {
  const { rows, keys } = options
  const db = await freshDatabase()
  const kafka = benchKafka()
  const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: db.url }) })
  const producer = kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    createPartitioner: Partitioners.DefaultPartitioner,
  })
  try {
    const topic = await freshTopic(kafka, 'naive')
    const fill = await fillBacklog(db, { rows, keys, topic, label: 'backlog' })
    await producer.connect()
    await prisma.$connect()
    const report = progress('naive loop', rows)
    let done = 0
    const meter = cpuMeter()
    const t0 = performance.now()
    for (;;) {
      const batch = await prisma.outboxEvent.findMany({
        where: { status: 'pending' },
        orderBy: { seq: 'asc' },
        take: 10,
      })
      if (batch.length === 0) break
      for (const row of batch) {
        await producer.send({
          topic: row.topic,
          acks: -1,
          messages: [
            {
              key: row.aggregateid,
              value: JSON.stringify(row.payload),
              headers: { id: row.id, eventType: row.type, aggregateType: row.aggregatetype },
            },
          ],
        })
        await prisma.outboxEvent.update({
          where: { id: row.id },
          data: { status: 'published', publishedAt: new Date() },
        })
        done++
      }
      report(done)
    }
    const ms = performance.now() - t0
    const cpu = meter()
    const inKafka = await topicMessageCount(kafka, topic)
    return { rows, ms, eventsPerSec: rows / (ms / 1000), inKafka, fill, cpu }
  } finally {
    await producer.disconnect()
    await prisma.$disconnect()
    await sleep(100)
    await db.drop()
  }
}

/**
 * The ceiling: the same messages (key, ~200-byte JSON value, the relay's three headers), built
 * in memory, sent by one idempotent producer (acks = all) with one awaited `sendBatch` per
 * `batchSize` messages: what the relay does minus the database.
 */
export async function bareSendBatch(options: { rows: number; keys: number; batchSize: number }) {
  const { rows, keys, batchSize } = options
  const kafka = benchKafka()
  const topic = await freshTopic(kafka, 'ceiling')
  const producer = kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    createPartitioner: Partitioners.DefaultPartitioner,
  })
  await producer.connect()
  try {
    const report = progress(`bare sendBatch ${batchSize}`, rows)
    // Build all messages first: the ceiling should not pay for building them either.
    const all = []
    for (let g = 1; g <= rows; g++) {
      all.push({
        key: keyOf(g, keys),
        value: payloadOf(g, keys),
        headers: { id: crypto.randomUUID(), eventType: 'item.updated', aggregateType: 'item' },
      })
    }
    const meter = cpuMeter()
    const t0 = performance.now()
    for (let i = 0; i < rows; i += batchSize) {
      await producer.sendBatch({
        topicMessages: [{ topic, messages: all.slice(i, i + batchSize) }],
        acks: -1,
        timeout: 30_000,
        compression: CompressionTypes.None,
      })
      report(Math.min(rows, i + batchSize))
    }
    const ms = performance.now() - t0
    const cpu = meter()
    const inKafka = await topicMessageCount(kafka, topic)
    return { rows, batchSize, ms, eventsPerSec: rows / (ms / 1000), inKafka, cpu }
  } finally {
    await producer.disconnect()
  }
}

export function logDrain(r: RelayDrainResult): void {
  const p = r.profile
  log(
    `  → ${Math.round(r.eventsPerSec).toLocaleString('en')} events/s (${(r.ms / 1000).toFixed(1)} s); per batch: claim ${p.claimMs.mean.toFixed(1)} ms, publish ${p.publishMs.mean.toFixed(1)} ms, mark ${p.markMs.mean.toFixed(1)} ms (${p.batches} batches)`,
  )
}

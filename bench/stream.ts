/**
 * The stream relay next to the polling relay, on one private PostgreSQL cluster with
 * `wal_level = logical` (the shared server has `replica`) and the shared broker:
 *  1. backlog: N rows written while no relay runs (for the stream: with its slot in place), then
 *     drained; events/s from start to the last mark, CPU per event of this process (the relay)
 *     and of the cluster's processes (its backends, walsender, WAL writer…).
 *  2. steady state: writers insert R rows per transaction for S seconds; writers alone, then with
 *     the stream relay running. Writers' events/s and the relay's events/s (first commit → last
 *     acknowledgement).
 *  3. latency: a paced writer at about 1,000 events/s (10 rows per transaction every 10 ms);
 *     commit → Kafka acknowledgement p50/p99 per event.
 *
 * Run: `npm run build -w @prisma-outbox/devkit -w @prisma-outbox/relay && npx tsx bench/stream.ts`
 * (env BENCH_STREAM_ROWS, default 100000; BENCH_STREAM_SECONDS, default 10; BENCH_STREAM_LINGER_MS,
 * default the streamer's; BENCH_STREAM_ONLY=backlog,steady,latency).
 */
import { readdirSync, readFileSync } from 'node:fs'
import { performance } from 'node:perf_hooks'
import { startLogicalPostgres } from '@prisma-outbox/devkit'
import {
  createEngine,
  createStreamer,
  dropStreamSetup,
  ensureStreamSetup,
  KafkaPublisher,
  type OutboxMessage,
  type Publisher,
} from '@prisma-outbox/relay'
import type pg from 'pg'
import { benchKafka, fillBacklog, freshDatabase, freshTopic, log, sleep, summarize } from './lib.js'

const ROWS = Number(process.env.BENCH_STREAM_ROWS ?? 100_000)
const SECONDS = Number(process.env.BENCH_STREAM_SECONDS ?? 10)
const LINGER_MS = process.env.BENCH_STREAM_LINGER_MS ? Number(process.env.BENCH_STREAM_LINGER_MS) : undefined
/** Comma-separated parts to run: backlog, steady, latency (default all). */
const ONLY = new Set((process.env.BENCH_STREAM_ONLY ?? 'backlog,steady,latency').split(','))
const KEYS = 1_000
const BATCH = 500

function ticks(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return Number(fields[11]) + Number(fields[12])
  } catch {
    return 0
  }
}

/** CPU seconds of the cluster: the postmaster and its children (ended children are missed). */
function clusterCpu(postmaster: number): number {
  let sum = ticks(postmaster)
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      if (ppid === postmaster) sum += ticks(Number(entry))
    } catch {
      // gone
    }
  }
  return sum / 100
}

async function postmasterPid(pool: pg.Pool): Promise<number> {
  const { rows } = await pool.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')
  const stat = readFileSync(`/proc/${rows[0]?.pid}/stat`, 'utf8')
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
}

/** A publisher recording when each message was acknowledged. */
function timedPublisher(inner: Publisher, acks: Map<string, number>): Publisher {
  return {
    connect: () => inner.connect(),
    disconnect: () => inner.disconnect(),
    async publish(messages: OutboxMessage[]) {
      await inner.publish(messages)
      const now = performance.now()
      for (const m of messages) if (!acks.has(m.id)) acks.set(m.id, now)
    },
  }
}

async function published(pool: pg.Pool): Promise<number> {
  const { rows } = await pool.query<{ n: string }>(
    "SELECT count(*) AS n FROM outbox_event WHERE status = 'published'",
  )
  return Number(rows[0]?.n)
}

async function backlog(mode: 'stream' | 'polling') {
  const db = await freshDatabase()
  db.pool.on('error', () => {})
  const kafka = benchKafka()
  const publisher = new KafkaPublisher({ kafka, createTopics: false })
  await publisher.connect()
  try {
    const topic = await freshTopic(kafka, `backlog-${mode}`)
    if (mode === 'stream') await ensureStreamSetup(db.pool, { slot: 'bench' })
    await fillBacklog(db, { rows: ROWS, keys: KEYS, topic, label: `backlog (${mode})` })
    const postmaster = await postmasterPid(db.pool)
    const db0 = clusterCpu(postmaster)
    const node0 = process.cpuUsage()
    const t0 = performance.now()
    if (mode === 'stream') {
      let done = 0
      let resolve!: () => void
      const finished = new Promise<void>((r) => {
        resolve = r
      })
      const streamer = createStreamer({
        connectionString: db.url,
        pool: db.pool,
        publisher,
        slot: 'bench',
        batchSize: BATCH,
        onBatch: (info) => {
          done += info.published
          if (done >= ROWS) resolve()
        },
      })
      await streamer.start()
      await finished
      await streamer.stop()
      await dropStreamSetup(db.pool, { slot: 'bench' })
    } else {
      const engine = createEngine({
        pool: db.pool,
        publisher,
        options: { batchSize: BATCH, relayId: 'bench' },
      })
      for (;;) {
        const r = await engine.drain()
        if (r.remaining === 0 && (await published(db.pool)) >= ROWS) break
      }
    }
    const seconds = (performance.now() - t0) / 1000
    const node = process.cpuUsage(node0)
    const dbCpu = clusterCpu(postmaster) - db0
    const result = {
      mode,
      rows: ROWS,
      eventsPerSec: Math.round(ROWS / seconds),
      relayCpuUsPerEvent: Math.round((node.user + node.system) / ROWS),
      dbCpuUsPerEvent: Math.round((dbCpu * 1e6) / ROWS),
    }
    log(`backlog ${JSON.stringify(result)}`)
    return result
  } finally {
    await publisher.disconnect()
    await db.drop()
  }
}

/** Writers inserting `rowsPerTx` rows per transaction for `seconds`; returns commit times per row id. */
async function writers(
  pool: pg.Pool,
  options: { topic: string; rowsPerTx: number; seconds: number; connections: number; paceMs?: number },
): Promise<{ commits: Map<string, number>; firstCommit: number; events: number; seconds: number }> {
  const commits = new Map<string, number>()
  let firstCommit = Number.POSITIVE_INFINITY
  const t0 = performance.now()
  const end = t0 + options.seconds * 1000
  let n = 0
  await Promise.all(
    Array.from({ length: options.connections }, async () => {
      while (performance.now() < end) {
        const started = performance.now()
        const { rows } = await pool.query<{ id: string }>(
          `INSERT INTO outbox_event (id, aggregatetype, aggregateid, type, payload, topic)
SELECT gen_random_uuid(), 'item', 'item-' || ((g + $3::int) % ${KEYS}), 'item.updated',
  jsonb_build_object('n', g, 'note', repeat('x', 96)), $2
FROM generate_series(1, $1::int) AS g RETURNING id::text`,
          [options.rowsPerTx, options.topic, n++],
        )
        const now = performance.now()
        firstCommit = Math.min(firstCommit, now)
        for (const r of rows) commits.set(r.id, now)
        if (options.paceMs) await sleep(Math.max(0, options.paceMs - (now - started)))
      }
    }),
  )
  return { commits, firstCommit, events: commits.size, seconds: (performance.now() - t0) / 1000 }
}

async function steady(rowsPerTx: number, withRelay: boolean, paceMs?: number) {
  const db = await freshDatabase()
  db.pool.on('error', () => {})
  const kafka = benchKafka()
  const inner = new KafkaPublisher({ kafka, createTopics: false })
  await inner.connect()
  const acks = new Map<string, number>()
  const streamer = withRelay
    ? createStreamer({
        connectionString: db.url,
        pool: db.pool,
        publisher: timedPublisher(inner, acks),
        slot: 'bench',
        batchSize: BATCH,
        lingerMs: LINGER_MS,
      })
    : undefined
  try {
    const topic = await freshTopic(kafka, `steady-${rowsPerTx}`)
    await streamer?.start()
    const postmaster = await postmasterPid(db.pool)
    const db0 = clusterCpu(postmaster)
    const node0 = process.cpuUsage()
    const w = await writers(db.pool, {
      topic,
      rowsPerTx,
      seconds: SECONDS,
      connections: paceMs ? 1 : 2,
      ...(paceMs ? { paceMs } : {}),
    })
    let relayPerSec: number | undefined
    let latency: ReturnType<typeof summarize> | undefined
    let relayCpu: number | undefined
    let dbCpu: number | undefined
    if (streamer) {
      const deadline = performance.now() + 120_000
      while (acks.size < w.events && performance.now() < deadline) await sleep(20)
      const node = process.cpuUsage(node0)
      dbCpu = Math.round(((clusterCpu(postmaster) - db0) * 1e6) / w.events)
      relayCpu = Math.round((node.user + node.system) / w.events)
      let lastAck = 0
      for (const at of acks.values()) lastAck = Math.max(lastAck, at)
      relayPerSec = Math.round(w.events / ((lastAck - w.firstCommit) / 1000))
      latency = summarize([...w.commits].map(([id, at]) => (acks.get(id) ?? Number.NaN) - at))
    }
    const result = {
      rowsPerTx,
      relay: withRelay ? 'stream' : 'none',
      writersEventsPerSec: Math.round(w.events / w.seconds),
      ...(relayPerSec ? { relayEventsPerSec: relayPerSec } : {}),
      ...(latency ? { ackP50Ms: +latency.p50.toFixed(1), ackP99Ms: +latency.p99.toFixed(1) } : {}),
      ...(relayCpu !== undefined
        ? { cpuUsPerEventNodeIncludingWriters: relayCpu, dbCpuUsPerEvent: dbCpu }
        : {}),
      acked: acks.size,
      events: w.events,
    }
    log(`steady ${JSON.stringify(result)}`)
    return result
  } finally {
    await streamer?.stop()
    if (streamer) await dropStreamSetup(db.pool, { slot: 'bench' })
    await inner.disconnect()
    await db.drop()
  }
}

async function main() {
  const cluster = await startLogicalPostgres()
  process.env.DATABASE_URL = cluster.url
  try {
    const results: unknown[] = []
    if (ONLY.has('backlog')) results.push(await backlog('stream'), await backlog('polling'))
    if (ONLY.has('steady'))
      for (const rowsPerTx of [100, 1])
        results.push(await steady(rowsPerTx, false), await steady(rowsPerTx, true))
    if (ONLY.has('latency')) results.push(await steady(10, true, 10))
    console.log(JSON.stringify(results, null, 2))
  } finally {
    await cluster.stop()
  }
}

await main()

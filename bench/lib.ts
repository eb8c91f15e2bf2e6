/**
 * Shared helpers of the benchmark: progress on stderr, fresh databases and topics, a fast backlog
 * fill, percentiles and machine/version facts.
 */
import { execFileSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { cpus, totalmem } from 'node:os'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import {
  createTestDatabase,
  createTopics,
  type TestDatabase,
  testKafka,
  uniqueTopic,
} from '@prisma-outbox/devkit'
import type { Kafka } from 'kafkajs'

export const ROOT = fileURLToPath(new URL('..', import.meta.url))
export const OUTBOX_MIGRATIONS = `${ROOT}packages/extension/prisma/migrations`
export const BENCH_MIGRATIONS = `${ROOT}bench/prisma/migrations`

const started = performance.now()

/** A progress/log line on stderr, prefixed with the seconds since the benchmark started. */
export function log(message: string): void {
  const t = ((performance.now() - started) / 1000).toFixed(1).padStart(6)
  process.stderr.write(`[${t}s] ${message}\n`)
}

/** A throttled progress reporter: at most one line every `everyMs`. */
export function progress(label: string, total: number, everyMs = 2_000) {
  let last = 0
  const t0 = performance.now()
  return (done: number, extra = '') => {
    const now = performance.now()
    if (now - last < everyMs && done < total) return
    last = now
    const s = (now - t0) / 1000
    const rate = s > 0 ? Math.round(done / s) : 0
    const pct = total > 0 ? ((100 * done) / total).toFixed(0) : '?'
    log(
      `  ${label}: ${done.toLocaleString('en')}/${total.toLocaleString('en')} (${pct}%), ${rate.toLocaleString('en')}/s${extra ? `, ${extra}` : ''}`,
    )
  }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** A fresh database with the outbox table (extension migration) and the bench model. */
export function freshDatabase(): Promise<TestDatabase> {
  return createTestDatabase({ migrations: [OUTBOX_MIGRATIONS, BENCH_MIGRATIONS], prefix: 'outbox_bench' })
}

export function benchKafka(clientId = 'outbox-bench'): Kafka {
  return testKafka(clientId)
}

/** A fresh topic with `partitions` partitions, created up front (leaders elected). */
export async function freshTopic(kafka: Kafka, prefix: string, partitions = 3): Promise<string> {
  const topic = uniqueTopic(`bench.${prefix}`)
  await createTopics(kafka, [topic], partitions)
  return topic
}

/** Sum of the high watermarks of a topic: how many messages it holds. */
export async function topicMessageCount(kafka: Kafka, topic: string): Promise<number> {
  const admin = kafka.admin()
  await admin.connect()
  try {
    const offsets = await admin.fetchTopicOffsets(topic)
    return offsets.reduce((n, o) => n + Number(o.high) - Number(o.low), 0)
  } finally {
    await admin.disconnect()
  }
}

/**
 * The payload of backlog row `g` (about 200 bytes of JSON text). The SQL fill below builds the
 * very same object, so the bare-Kafka ceiling can send identical messages without a database.
 */
export function payloadOf(g: number, keys: number): string {
  const k = g % keys
  return JSON.stringify({
    id: k,
    sku: `SKU-${String(k).padStart(6, '0')}`,
    name: `Item number ${k}`,
    quantity: g % 100,
    note: 'x'.repeat(96),
    updatedAt: '2026-11-22T12:00:00.000Z',
  })
}

export const keyOf = (g: number, keys: number) => `item-${g % keys}`

/**
 * Fills the outbox with `rows` pending rows over `keys` aggregate ids, in chunks of one
 * `INSERT … SELECT generate_series` each (each chunk is one transaction). Ids are time-ordered
 * like the extension's UUIDv7 (48-bit millisecond-ish prefix, then random bits), so the primary
 * key index sees the same append-mostly pattern as in production. Row g goes to key g % keys:
 * consecutive rows have different keys (the common case of many independent aggregates).
 * Ends with VACUUM ANALYZE (autovacuum would have done it for a backlog that grew over time) and
 * a CHECKPOINT.
 */
export async function fillBacklog(
  db: TestDatabase,
  options: { rows: number; keys: number; topic: string; chunk?: number; label?: string },
): Promise<{ ms: number; avgPayloadBytes: number; tableMB: number }> {
  const { rows, keys, topic } = options
  const chunk = options.chunk ?? 100_000
  const t0 = performance.now()
  const report = progress(options.label ?? 'fill', rows)
  const base = Date.now() * 16
  for (let from = 1; from <= rows; from += chunk) {
    const to = Math.min(rows, from + chunk - 1)
    await db.pool.query(
      `INSERT INTO outbox_event (id, aggregatetype, aggregateid, type, payload, topic)
SELECT (lpad(to_hex($4::bigint + g), 12, '0') || '7' || substr(h, 1, 3) || '8' || substr(h, 4, 15))::uuid,
  'item', 'item-' || (g % $3), 'item.updated',
  jsonb_build_object('id', g % $3, 'sku', 'SKU-' || lpad((g % $3)::text, 6, '0'), 'name', 'Item number ' || (g % $3),
    'quantity', g % 100, 'note', repeat('x', 96), 'updatedAt', '2026-11-22T12:00:00.000Z'),
  $5
FROM generate_series($1::bigint, $2::bigint) AS g, md5(g::text || random()::text) AS h`,
      [from, to, keys, base, topic],
    )
    report(to)
  }
  await db.pool.query('VACUUM ANALYZE outbox_event')
  // Start every measurement right after a checkpoint: otherwise whether one falls inside the timed
  // part (and makes the next write of every page log a full page image) is luck.
  if (process.env.BENCH_NO_CHECKPOINT !== '1') await db.pool.query('CHECKPOINT')
  const { rows: info } = await db.pool.query<{ avg: string; mb: string }>(
    `SELECT (SELECT avg(octet_length(payload::text)) FROM (SELECT payload FROM outbox_event LIMIT 1000) s) AS avg,
            pg_total_relation_size('outbox_event') / 1048576.0 AS mb`,
  )
  return {
    ms: performance.now() - t0,
    avgPayloadBytes: Math.round(Number(info[0]?.avg ?? 0)),
    tableMB: Math.round(Number(info[0]?.mb ?? 0)),
  }
}

/** `p` in [0, 100] of an ascending array (nearest rank). */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN
  const rank = Math.ceil((p / 100) * sorted.length)
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))] as number
}

export function summarize(values: number[]) {
  const sorted = [...values].sort((a, b) => a - b)
  const sum = sorted.reduce((a, b) => a + b, 0)
  return {
    n: sorted.length,
    mean: sorted.length ? sum / sorted.length : Number.NaN,
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    max: sorted.length ? (sorted[sorted.length - 1] as number) : Number.NaN,
    sum,
  }
}

/**
 * Other work on this machine makes the numbers meaningless: test runs (vitest), installs, other
 * tsx scripts (e.g. the chaos suite), relay processes and extra Kafka brokers. Our own process,
 * the benchmark's children and the project's shared broker are not counted.
 */
export function busyProcesses(): string[] {
  let lines: string[]
  try {
    lines = execFileSync(
      'pgrep',
      ['-fa', 'vitest|npm (install|ci)( |$)|npm-cli.js (install|ci)|tsx|outbox-relay|kafka\\.Kafka'],
      { encoding: 'utf8' },
    ).split('\n')
  } catch {
    return [] // pgrep exits 1 when nothing matches
  }
  const mine = new Set([process.pid, process.ppid])
  const broker = kafkaPid()
  return lines.filter((line) => {
    if (line.trim() === '') return false
    const pid = Number(line.split(' ')[0])
    if (mine.has(pid) || pid === broker) return false
    if (line.includes('bench/run.ts') || line.includes('bench/rss-child.mjs')) return false
    return true
  })
}

function packageVersion(name: string): string {
  try {
    return JSON.parse(readFileSync(`${ROOT}node_modules/${name}/package.json`, 'utf8')).version
  } catch {
    return '?'
  }
}

function kafkaVersion(): string {
  try {
    const log = readFileSync(`${ROOT}.kafka/kafka.log`, 'utf8')
    const m = /Kafka version: ([\w.-]+)/.exec(log)
    if (m) return m[1] as string
  } catch {
    // fall through
  }
  try {
    const pom = readFileSync(`${ROOT}scripts/kafka/pom.xml`, 'utf8')
    return /<kafka.version>([^<]+)</.exec(pom)?.[1] ?? '?'
  } catch {
    return '?'
  }
}

function diskOf(): string {
  try {
    const dev = readdirSync('/sys/block').filter((d) => !d.startsWith('loop'))
    return dev
      .map((d) => {
        const rot = readFileSync(`/sys/block/${d}/queue/rotational`, 'utf8').trim()
        return `${d} (${rot === '0' ? 'non-rotational' : 'rotational'})`
      })
      .join(', ')
  } catch {
    return '?'
  }
}

export async function machineInfo(db: TestDatabase) {
  const { rows } = await db.pool.query<{ v: string; sc: string; sb: string; fs: string }>(
    `SELECT current_setting('server_version') AS v, current_setting('synchronous_commit') AS sc,
            current_setting('shared_buffers') AS sb, current_setting('fsync') AS fs`,
  )
  const cpu = cpus()
  return {
    cpu: `${cpu.length} × ${cpu[0]?.model ?? '?'}`,
    memory: `${(totalmem() / 1024 ** 3).toFixed(1)} GiB`,
    disk: diskOf(),
    node: process.version,
    postgres: `${rows[0]?.v} (synchronous_commit=${rows[0]?.sc}, fsync=${rows[0]?.fs}, shared_buffers=${rows[0]?.sb})`,
    kafka: `${kafkaVersion()} (single node, KRaft, local)`,
    kafkajs: packageVersion('kafkajs'),
    pg: packageVersion('pg'),
    prismaClient: packageVersion('@prisma/client'),
    adapterPg: packageVersion('@prisma/adapter-pg'),
    prismaCli: packageVersion('prisma'),
  }
}

/** CPU seconds (user + system) used by a process so far, from /proc/<pid>/stat. */
export function cpuSecondsOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) / 100 // utime, stime in clock ticks (CLK_TCK = 100)
  } catch {
    return undefined
  }
}

function pidsNamed(comm: string): number[] {
  const pids: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() === comm) pids.push(Number(entry))
    } catch {
      // gone
    }
  }
  return pids
}

function kafkaPid(): number | undefined {
  try {
    return Number(readFileSync(`${ROOT}.kafka/kafka.pid`, 'utf8').trim()) || undefined
  } catch {
    return undefined
  }
}

export interface CpuSplit {
  /** This Node process (the relay / benchmark). */
  node: number
  /** All postgres processes (backends, walwriter, checkpointer, autovacuum…). */
  postgres: number
  /** The Kafka broker JVM. */
  kafka: number
  wallS: number
}

/**
 * Starts CPU accounting; the returned function gives the CPU seconds each component used since.
 * Postgres processes that started meanwhile count from zero; ones that ended are missed.
 */
export function cpuMeter(): () => CpuSplit {
  const t0 = performance.now()
  const node0 = process.cpuUsage()
  const pg0 = new Map(pidsNamed('postgres').map((pid) => [pid, cpuSecondsOf(pid) ?? 0]))
  const kpid = kafkaPid()
  const k0 = kpid ? (cpuSecondsOf(kpid) ?? 0) : 0
  return () => {
    const n = process.cpuUsage(node0)
    let pg = 0
    for (const pid of pidsNamed('postgres')) pg += (cpuSecondsOf(pid) ?? 0) - (pg0.get(pid) ?? 0)
    return {
      node: (n.user + n.system) / 1e6,
      postgres: pg,
      kafka: kpid ? (cpuSecondsOf(kpid) ?? 0) - k0 : Number.NaN,
      wallS: (performance.now() - t0) / 1000,
    }
  }
}

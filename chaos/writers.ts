/**
 * Concurrent writers through the Prisma extension (the demo's generated client): every event of
 * the stream is written by an extended-client call, in the transaction of the write.
 *
 * - `employee.created`: `createMany` of the keys (title `v0`), topic `<prefix>.employee`.
 * - then transactions that lock 1-3 random employees (`SELECT … FOR UPDATE`), set each one's
 *   `title` to `v<n+1>` (→ `employee.updated`) and `$outbox.emit` a `payroll.recalculated`
 *   event `{ key, n }` for the same key to `<prefix>.payroll`. Writers pick keys at random, so two
 *   writers often contend for one key; the row lock makes the counter follow commit order, so
 *   for every topic + key the counter must arrive strictly increasing.
 * - poison events, mixed in at even intervals: an oversized payload (through the extension, on
 *   the payroll topic) and rows for a topic name the broker rejects (raw SQL: the extension
 *   itself refuses such names). Each poison event has a key of its own.
 */
import { randomUUID } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import type pg from 'pg'
import { createPrisma, type DemoPrisma } from '../apps/demo/src/db.ts'
import { log, sleep } from './util.ts'

export interface WriterConfig {
  url: string
  topics: { employee: string; payroll: string }
  keys: number
  /** Events to write in total (creates + updates + emits + poison). */
  events: number
  writers: number
  /** Spread the writes over about this many seconds (a rate cap; slower when the DB is slower). */
  seconds: number
  poison: number
  /** Payload size of the oversized poison, bytes (the broker's default limit is ~1 MiB). */
  oversizedBytes: number
  /** Topic names the broker refuses. */
  rejectedTopics: string[]
}

export interface WriterStats {
  transactions: number
  failedTransactions: number
  errors: Record<string, number>
  poison: { id: string; kind: string; topic: string }[]
  durationMs: number
  keys: string[]
}

const errorKind = (e: unknown) =>
  String((e as Error)?.message ?? e)
    .replace(/[0-9a-f]{8}-[0-9a-f-]{27}/g, '<id>')
    .replace(/\s+/g, ' ')
    .slice(0, 120)

/** The state the writers share while they run. */
interface WriterRun {
  cfg: WriterConfig
  pool: pg.Pool
  prisma: DemoPrisma
  signal: AbortSignal
  stats: WriterStats
  keys: string[]
  onProgress: ((written: number) => void) | undefined
  /** `performance.now()` at the start, for pacing. */
  t0: number
  /** Events written or reserved by a transaction in progress. */
  written: number
  poisonWritten: number
}

export async function runWriters(
  cfg: WriterConfig,
  pool: pg.Pool,
  signal: AbortSignal,
  onProgress?: (written: number) => void,
): Promise<WriterStats> {
  const prisma: DemoPrisma = createPrisma(cfg.url, cfg.topics.employee)
  const stats: WriterStats = {
    transactions: 0,
    failedTransactions: 0,
    errors: {},
    poison: [],
    durationMs: 0,
    keys: [],
  }
  const t0 = performance.now()
  const keys: string[] = Array.from({ length: cfg.keys }, () => randomUUID())
  stats.keys = keys
  const run: WriterRun = {
    cfg,
    pool,
    prisma,
    signal,
    stats,
    keys,
    onProgress,
    t0,
    written: 0,
    poisonWritten: 0,
  }

  await createEmployees(run)
  await Promise.all(Array.from({ length: cfg.writers }, () => writeUpdates(run)))
  // poison not yet written (tiny runs): write the rest now
  while (run.poisonWritten < cfg.poison && !signal.aborted) {
    const i = run.poisonWritten++
    await withRetry(run, () => writePoison(run, i))
  }
  stats.durationMs = Math.round(performance.now() - t0)
  await prisma.$disconnect()
  log(
    `writers done: ${stats.transactions} transactions, ${stats.failedTransactions} failed attempts (retried) in ${(stats.durationMs / 1000).toFixed(1)} s`,
  )
  return stats
}

/** Runs `what` until it succeeds or the run is aborted, counting each failure; backs off between tries. */
async function withRetry(run: WriterRun, what: () => Promise<void>): Promise<void> {
  for (let attempt = 0; !run.signal.aborted; attempt++) {
    try {
      await what()
      run.stats.transactions++
      return
    } catch (e) {
      run.stats.failedTransactions++
      const k = errorKind(e)
      run.stats.errors[k] = (run.stats.errors[k] ?? 0) + 1
      await sleep(Math.min(2000, 100 * 2 ** Math.min(attempt, 5)))
    }
  }
}

/** Poison event `i`: an oversized payload or a row for a rejected topic, in turn. */
async function writePoison(run: WriterRun, i: number): Promise<void> {
  const { cfg, pool, stats } = run
  const kinds = ['oversized', ...cfg.rejectedTopics.map(() => 'rejected-topic')]
  const k = i % kinds.length
  const kind = kinds[k] ?? 'oversized'
  if (kind === 'oversized') {
    const id = `poison-oversized-${i}`
    await run.prisma.$transaction(async (tx) => {
      await tx.$outbox.emit({
        aggregateType: 'poison',
        aggregateId: id,
        type: 'poison.oversized',
        payload: { key: id, blob: 'x'.repeat(cfg.oversizedBytes) },
        topic: cfg.topics.payroll,
      })
    })
    const { rows } = await pool.query('SELECT id FROM outbox_event WHERE aggregateid = $1', [id])
    stats.poison.push({ id: rows[0]?.id, kind, topic: cfg.topics.payroll })
  } else {
    const topic = cfg.rejectedTopics[(k - 1) % cfg.rejectedTopics.length] as string
    const id = randomUUID()
    await pool.query(
      `INSERT INTO outbox_event (id, aggregatetype, aggregateid, type, payload, topic)
         VALUES ($1, 'poison', $2, 'poison.rejected_topic', $3, $4)`,
      [id, `poison-topic-${i}`, JSON.stringify({ key: `poison-topic-${i}` }), topic],
    )
    stats.poison.push({ id, kind, topic })
  }
  run.written++
}

/** 1. employee.created for every key (the per-key counter starts at v0). */
async function createEmployees(run: WriterRun): Promise<void> {
  const { keys, pool, prisma, signal } = run
  for (let i = 0; i < keys.length && !signal.aborted; i += 500) {
    const chunk = keys.slice(i, i + 500)
    await withRetry(run, async () => {
      // Idempotent retry: a chunk whose commit was lost in a restart may have gone through.
      const { rows } = await pool.query('SELECT id::text FROM employee WHERE id = ANY($1::uuid[])', [chunk])
      const have = new Set(rows.map((r: { id: string }) => r.id))
      const data = chunk
        .filter((id) => !have.has(id))
        .map((id) => ({ id, email: `${id}@chaos.test`, name: `key ${id.slice(0, 8)}`, title: 'v0' }))
      if (data.length > 0) await prisma.employee.createMany({ data })
    })
    run.written += chunk.length
    run.onProgress?.(run.written)
  }
}

/** 2. One writer: update + emit transactions (poison mixed in) until the target or an abort. */
async function writeUpdates(run: WriterRun): Promise<void> {
  const { cfg, signal } = run
  const rate = cfg.events / cfg.seconds
  const poisonEvery = cfg.poison > 0 ? Math.floor(cfg.events / (cfg.poison + 1)) : Number.POSITIVE_INFINITY
  while (!signal.aborted && run.written < cfg.events) {
    // pacing: never ahead of the planned rate
    const due = ((performance.now() - run.t0) / 1000) * rate
    if (run.written > due) {
      await sleep(Math.min(200, ((run.written - due) / rate) * 1000))
      continue
    }
    if (run.poisonWritten < cfg.poison && run.written >= (run.poisonWritten + 1) * poisonEvery) {
      const i = run.poisonWritten++
      await withRetry(run, () => writePoison(run, i))
      continue
    }
    const picked = pickKeys(run.keys)
    const events = picked.length * 2
    run.written += events // reserve, so the writers stop near the target
    let ok = false
    await withRetry(run, async () => {
      await bumpAndEmit(run, picked)
      ok = true
    })
    if (!ok) run.written -= events
    run.onProgress?.(run.written)
  }
}

/** 1 to 3 distinct random keys, sorted (the order the transaction locks them in). */
function pickKeys(keys: string[]): string[] {
  const n = 1 + Math.floor(Math.random() * 3)
  return [...new Set(Array.from({ length: n }, () => keys[Math.floor(Math.random() * keys.length)]))]
    .filter((k): k is string => k !== undefined)
    .sort()
}

/**
 * One transaction: locks the `picked` employees, sets each one's title to `v<n+1>` and emits a
 * `payroll.recalculated` event `{ key, n: n+1 }` for it.
 */
async function bumpAndEmit(run: WriterRun, picked: string[]): Promise<void> {
  await run.prisma.$transaction(
    async (tx) => {
      const rows = await tx.$queryRaw<{ id: string; title: string }[]>`
        SELECT id::text AS id, title FROM employee WHERE id = ANY(${picked}::uuid[]) ORDER BY id FOR UPDATE`
      for (const row of rows) {
        const next = Number(row.title.slice(1)) + 1
        await tx.employee.update({ where: { id: row.id }, data: { title: `v${next}` } })
        await tx.$outbox.emit({
          aggregateType: 'payroll',
          aggregateId: row.id,
          type: 'payroll.recalculated',
          payload: { key: row.id, n: next },
          topic: run.cfg.topics.payroll,
        })
      }
    },
    { maxWait: 15_000, timeout: 30_000 },
  )
}

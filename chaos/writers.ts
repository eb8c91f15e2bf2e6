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
  const fail = (e: unknown) => {
    stats.failedTransactions++
    const k = errorKind(e)
    stats.errors[k] = (stats.errors[k] ?? 0) + 1
  }
  const keys: string[] = Array.from({ length: cfg.keys }, () => randomUUID())
  stats.keys = keys
  let written = 0
  const rate = cfg.events / cfg.seconds
  const poisonEvery = cfg.poison > 0 ? Math.floor(cfg.events / (cfg.poison + 1)) : Number.POSITIVE_INFINITY
  let poisonWritten = 0

  const writePoison = async (i: number) => {
    const kinds = ['oversized', ...cfg.rejectedTopics.map(() => 'rejected-topic')]
    const k = i % kinds.length
    const kind = kinds[k] ?? 'oversized'
    if (kind === 'oversized') {
      const id = `poison-oversized-${i}`
      await prisma.$transaction(async (tx) => {
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
    written++
  }

  const withRetry = async (what: () => Promise<void>) => {
    for (let attempt = 0; !signal.aborted; attempt++) {
      try {
        await what()
        stats.transactions++
        return
      } catch (e) {
        fail(e)
        await sleep(Math.min(2000, 100 * 2 ** Math.min(attempt, 5)))
      }
    }
  }

  // 1. employee.created for every key (the per-key counter starts at v0).
  for (let i = 0; i < keys.length && !signal.aborted; i += 500) {
    const chunk = keys.slice(i, i + 500)
    await withRetry(async () => {
      // Idempotent retry: a chunk whose commit was lost in a restart may have gone through.
      const { rows } = await pool.query('SELECT id::text FROM employee WHERE id = ANY($1::uuid[])', [chunk])
      const have = new Set(rows.map((r: { id: string }) => r.id))
      const data = chunk
        .filter((id) => !have.has(id))
        .map((id) => ({ id, email: `${id}@chaos.test`, name: `key ${id.slice(0, 8)}`, title: 'v0' }))
      if (data.length > 0) await prisma.employee.createMany({ data })
    })
    written += chunk.length
    onProgress?.(written)
  }

  // 2. concurrent update + emit transactions.
  const worker = async () => {
    while (!signal.aborted && written < cfg.events) {
      // pacing: never ahead of the planned rate
      const due = ((performance.now() - t0) / 1000) * rate
      if (written > due) {
        await sleep(Math.min(200, ((written - due) / rate) * 1000))
        continue
      }
      if (poisonWritten < cfg.poison && written >= (poisonWritten + 1) * poisonEvery) {
        const i = poisonWritten++
        await withRetry(() => writePoison(i))
        continue
      }
      const n = 1 + Math.floor(Math.random() * 3)
      const picked = [
        ...new Set(Array.from({ length: n }, () => keys[Math.floor(Math.random() * keys.length)])),
      ]
        .filter((k): k is string => k !== undefined)
        .sort()
      const events = picked.length * 2
      written += events // reserve, so the writers stop near the target
      let ok = false
      await withRetry(async () => {
        await prisma.$transaction(
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
                topic: cfg.topics.payroll,
              })
            }
          },
          { maxWait: 15_000, timeout: 30_000 },
        )
        ok = true
      })
      if (!ok) written -= events
      onProgress?.(written)
    }
  }
  await Promise.all(Array.from({ length: cfg.writers }, worker))
  // poison not yet written (tiny runs): write the rest now
  while (poisonWritten < cfg.poison && !signal.aborted) {
    const i = poisonWritten++
    await withRetry(() => writePoison(i))
  }
  stats.durationMs = Math.round(performance.now() - t0)
  await prisma.$disconnect()
  log(
    `writers done: ${stats.transactions} transactions, ${stats.failedTransactions} failed attempts (retried) in ${(stats.durationMs / 1000).toFixed(1)} s`,
  )
  return stats
}

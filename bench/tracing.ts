/**
 * Part 6: the cost of tracing. On writes: N standalone creates of the annotated model `Item` through
 *  - `outbox()` (no tracing),
 *  - `outbox({ headers: traceHeaders })` with no span active (an SDK registered, nothing to record),
 *  - `outbox({ headers: traceHeaders })` inside an active span (each row gets the span's traceparent),
 * with the OpenTelemetry SDK registered (in-memory exporter, so export costs nothing measurable).
 * On the relay: drain throughput with and without `tracedPublisher` + `tracingHooks`.
 */
import { performance } from 'node:perf_hooks'
import { trace } from '@opentelemetry/api'
import { PrismaPg } from '@prisma/adapter-pg'
import { inMemoryTracing } from '@prisma-outbox/devkit/otel'
import { traceHeaders } from '@prisma-outbox/extension/otel'
import { createEngine, type Engine, KafkaPublisher } from '@prisma-outbox/relay'
import { tracedPublisher, tracingHooks } from '@prisma-outbox/relay/otel'
import { PrismaClient } from './generated/client/client.js'
import { outbox } from './generated/outbox/index.js'
import { benchKafka, fillBacklog, freshDatabase, freshTopic, log, sleep } from './lib.js'

type Variant = 'untraced' | 'noSpan' | 'activeSpan'

export interface TracingResult {
  writes: number
  rounds: number
  /** µs per standalone write, by variant. */
  us: Record<Variant, number>
  /** Rows that carry a traceparent (must equal the active-span writes, warm-up included). */
  tracedRows: number
}

const data = (i: number) => ({ sku: `T-${i}`, name: `Item ${i}`, quantity: i % 100 })

export async function tracingOverhead(options: {
  writes: number
  rounds: number
  warmup: number
}): Promise<TracingResult> {
  const { writes, rounds, warmup } = options
  const db = await freshDatabase()
  const tracing = inMemoryTracing()
  const tracer = trace.getTracer('bench')
  const client = (traced: boolean) =>
    new PrismaClient({ adapter: new PrismaPg({ connectionString: db.url }) }).$extends(
      outbox(traced ? { headers: traceHeaders } : {}),
    )
  const untraced = client(false)
  const withHeaders = client(true)
  let n = 0
  const ops: Record<Variant, () => Promise<unknown>> = {
    untraced: () => untraced.item.create({ data: data(n++) }),
    noSpan: () => withHeaders.item.create({ data: data(n++) }),
    activeSpan: () =>
      tracer.startActiveSpan('request', async (span) => {
        await withHeaders.item.create({ data: data(n++) })
        span.end()
      }),
  }
  const variants: Variant[] = ['untraced', 'noSpan', 'activeSpan']
  const totals: Record<Variant, number> = { untraced: 0, noSpan: 0, activeSpan: 0 }
  const perRound = Math.ceil(writes / rounds)
  try {
    await untraced.$outbox.ready()
    for (const v of variants) for (let i = 0; i < warmup; i++) await ops[v]()
    for (let r = 0; r < rounds; r++) {
      for (const v of variants.map((_, i) => variants[(i + r) % variants.length] as Variant)) {
        const t0 = performance.now()
        for (let i = 0; i < perRound; i++) await ops[v]()
        totals[v] += performance.now() - t0
        tracing.exporter.reset()
      }
      log(`  tracing overhead: round ${r + 1}/${rounds} done`)
    }
    const { rows } = await db.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM outbox_event WHERE headers ? 'traceparent'`,
    )
    const us = { untraced: 0, noSpan: 0, activeSpan: 0 }
    for (const v of variants) us[v] = (totals[v] * 1000) / (perRound * rounds)
    return { writes: perRound * rounds, rounds, us, tracedRows: rows[0]?.n ?? 0 }
  } finally {
    tracing.stop()
    await untraced.$disconnect()
    await withHeaders.$disconnect()
    await sleep(200)
    await db.drop()
  }
}

type RelayVariant = 'untraced' | 'traced'

export interface RelayTracingResult {
  rows: number
  rounds: number
  batchSize: number
  /** Events/s of one engine draining `rows` rows, the median of the rounds, by variant. */
  eventsPerSec: Record<RelayVariant, number>
  /** Every round's events/s, in run order, by variant. */
  rounds_eps: Record<RelayVariant, number[]>
  /** Spans the traced rounds ended (create + send + batch), all rounds. */
  spans: number
}

/**
 * The relay's tracing cost: one engine drains a backlog of `rows` rows, each carrying a writer's
 * `traceparent`, either as it is (untraced) or with `tracedPublisher` + `tracingHooks` and the
 * SDK registered (in-memory exporter, so the cost is the spans' and the headers', not an export's).
 * Rounds alternate the order of the variants; each round fills a fresh backlog (not timed).
 */
export async function relayTracingOverhead(options: {
  rows: number
  keys: number
  batchSize: number
  rounds: number
}): Promise<RelayTracingResult> {
  const { rows, keys, batchSize, rounds } = options
  const db = await freshDatabase()
  const kafka = benchKafka()
  const publisher = new KafkaPublisher({ kafka, createTopics: false })
  const tracing = inMemoryTracing()
  const eps: Record<RelayVariant, number[]> = { untraced: [], traced: [] }
  let spans = 0
  try {
    await publisher.connect()
    const engines: Record<RelayVariant, Engine> = {
      untraced: createEngine({ pool: db.pool, publisher, options: { batchSize } }),
      traced: createEngine({
        pool: db.pool,
        publisher: tracedPublisher(publisher),
        options: { batchSize },
        hooks: tracingHooks(),
      }),
    }
    const variants: RelayVariant[] = ['untraced', 'traced']
    for (let r = 0; r < rounds; r++) {
      for (const v of r % 2 === 0 ? variants : [...variants].reverse()) {
        const topic = await freshTopic(kafka, 'tracing')
        await fillBacklog(db, { rows, keys, topic, label: `backlog (${v})` })
        // A writer's context on every row, as `traceHeaders` leaves it.
        await db.pool.query(
          `UPDATE outbox_event SET headers = headers || jsonb_build_object('traceparent',
             '00-' || md5(id::text) || '-' || substr(md5(aggregateid), 1, 16) || '-01')
           WHERE status = 'pending'`,
        )
        await db.pool.query('VACUUM ANALYZE outbox_event')
        tracing.exporter.reset()
        const t0 = performance.now()
        for (;;) {
          const result = await engines[v].drain()
          if (result.remaining === 0) break
        }
        eps[v].push(rows / ((performance.now() - t0) / 1000))
        if (v === 'traced') spans += tracing.exporter.getFinishedSpans().length
        await db.pool.query(`DELETE FROM outbox_event`)
      }
      log(`  relay tracing: round ${r + 1}/${rounds} done`)
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0
    return {
      rows,
      rounds,
      batchSize,
      eventsPerSec: { untraced: median(eps.untraced), traced: median(eps.traced) },
      rounds_eps: eps,
      spans,
    }
  } finally {
    tracing.stop()
    await publisher.disconnect()
    await db.drop()
  }
}

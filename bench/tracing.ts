/**
 * Part 6: the cost of tracing on writes. N standalone creates of the annotated model `Item` through
 *  - `outbox()` (no tracing),
 *  - `outbox({ headers: traceHeaders })` with no span active (an SDK registered, nothing to record),
 *  - `outbox({ headers: traceHeaders })` inside an active span (each row gets the span's traceparent),
 * with the OpenTelemetry SDK registered (in-memory exporter, so export costs nothing measurable).
 */
import { performance } from 'node:perf_hooks'
import { trace } from '@opentelemetry/api'
import { PrismaPg } from '@prisma/adapter-pg'
import { inMemoryTracing } from '@prisma-outbox/devkit/otel'
import { traceHeaders } from '@prisma-outbox/extension/otel'
import { PrismaClient } from './generated/client/client.js'
import { outbox } from './generated/outbox/index.js'
import { freshDatabase, log, sleep } from './lib.js'

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

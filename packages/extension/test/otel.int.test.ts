/**
 * `@prisma-outbox/extension/otel`: with an OpenTelemetry SDK registered, each write made inside a
 * span carries that span's W3C `traceparent` (and `tracestate`) on its outbox rows; writes
 * outside a span carry none. Checked with the SDK's in-memory exporter against real PostgreSQL.
 */
import { context, type Span, trace } from '@opentelemetry/api'
import { TraceState } from '@opentelemetry/core'
import type { TestDatabase } from '@prisma-outbox/devkit'
import { type InMemoryTracing, inMemoryTracing } from '@prisma-outbox/devkit/otel'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { captureSpans, traceHeaders } from '../src/otel/index.js'
import { datamodel, outbox } from './generated/outbox/index.js'
import { basePrisma, type ExtendedPrisma, extendedPrisma, outboxRows, useCaptureDatabase } from './helpers.js'

let db: TestDatabase
let prisma: ExtendedPrisma
const others: { $disconnect(): Promise<void> }[] = []
useCaptureDatabase({ db: (d) => (db = d), base: () => undefined, prisma: () => undefined }, others)

let tracing: InMemoryTracing
const exporter = () => tracing.exporter
beforeAll(() => {
  tracing = inMemoryTracing()
  prisma = extendedPrisma(db, { headers: traceHeaders })
  others.push(prisma)
})
afterAll(() => tracing.stop())

const traceparentOf = (span: Span) => {
  const { traceId, spanId } = span.spanContext()
  return `00-${traceId}-${spanId}-01`
}

describe('trace headers on outbox rows', () => {
  it('a write inside a span carries its traceparent and tracestate; one outside a span carries none', async () => {
    const tracer = trace.getTracer('test')
    // A parent from an incoming request with vendor state: the write's span inherits it.
    const incoming = trace.setSpanContext(context.active(), {
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
      spanId: '00f067aa0ba902b7',
      traceFlags: 1,
      traceState: new TraceState('vendor=abc'),
      isRemote: true,
    })
    const [created, updated] = await context
      .with(incoming, () =>
        tracer.startActiveSpan('POST /employees', async (span) => {
          await prisma.employee.create({ data: { email: 'a@corp.test', name: 'A' } })
          span.end()
          return [traceparentOf(span)]
        }),
      )
      .then(async ([first]) => {
        const second = await tracer.startActiveSpan('PATCH /employees', async (span) => {
          await prisma.$transaction(async (tx) => {
            await tx.employee.update({ where: { email: 'a@corp.test' }, data: { name: 'B' } })
          })
          span.end()
          return traceparentOf(span)
        })
        return [first, second]
      })
    await prisma.employee.delete({ where: { email: 'a@corp.test' } })

    const schemaVersion = datamodel.models.Employee.version
    expect((await outboxRows(db)).map((r) => [r.type, r.headers])).toEqual([
      ['employee.created', { traceparent: created, tracestate: 'vendor=abc', schemaVersion }],
      ['employee.updated', { traceparent: updated, schemaVersion }],
      ['employee.deleted', { schemaVersion }],
    ])
    expect(created).toMatch(/^00-4bf92f3577b34da6a3ce929d0e0e4736-[0-9a-f]{16}-01$/)
    expect(
      exporter()
        .getFinishedSpans()
        .map((s) => s.name),
    ).toEqual(['POST /employees', 'PATCH /employees'])
  })

  it('without a span there are no trace headers', () => {
    expect(traceHeaders()).toEqual({})
  })

  it('captureSpans: each write runs in a span of its own, whose context its rows carry', async () => {
    tracing.exporter.reset()
    const traced = basePrisma(db)
      .$extends(captureSpans({ models: ['Employee'] }))
      .$extends(outbox({ headers: traceHeaders }))
    others.push(traced)
    const tracer = trace.getTracer('test')
    const request = await tracer.startActiveSpan('POST /employees', async (span) => {
      await traced.employee.create({ data: { email: 'c@corp.test', name: 'C' } })
      span.end()
      return span
    })
    await expect(traced.employee.create({ data: { email: 'c@corp.test', name: 'again' } })).rejects.toThrow()
    await traced.employee.findMany()

    const spans = tracing.exporter.getFinishedSpans()
    const [write, failed] = spans.filter((s) => s.name === 'outbox capture Employee.create')
    expect(write?.parentSpanContext?.spanId).toBe(request.spanContext().spanId)
    expect(write?.attributes).toMatchObject({ 'db.operation.name': 'create', 'outbox.model': 'Employee' })
    expect(failed?.status.code).toBe(2)
    expect(spans.map((s) => s.name)).not.toContain('outbox capture Employee.findMany')
    const rows = (await outboxRows(db)).filter((r) => r.type === 'employee.created')
    expect(rows.at(-1)?.headers.traceparent).toBe(
      `00-${write?.spanContext().traceId}-${write?.spanContext().spanId}-01`,
    )
  })
})

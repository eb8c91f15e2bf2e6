/**
 * One trace from the request that wrote a row to the handler that applied it, on the demo schema:
 * a request span → the write (its outbox row carries the span's traceparent via `traceHeaders`)
 * → the relay library → Kafka → the inbox's `traced` typed handler, whose consumer span is the
 * request span's child in the same trace (real PostgreSQL and Kafka, in-memory exporter).
 */
import { randomUUID } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { SpanKind, trace } from '@opentelemetry/api'
import { PrismaPg } from '@prisma/adapter-pg'
import { createInbox, subscribe, typedHandler } from '@prisma-outbox/consumer'
import { traced } from '@prisma-outbox/consumer/otel'
import {
  createTestDatabase,
  createTopics,
  type TestDatabase,
  testKafka,
  uniqueTopic,
} from '@prisma-outbox/devkit'
import { type InMemoryTracing, inMemoryTracing } from '@prisma-outbox/devkit/otel'
import { traceHeaders } from '@prisma-outbox/extension/otel'
import { createEngine, KafkaPublisher } from '@prisma-outbox/relay'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { PrismaClient } from '../src/generated/client/client.js'
import { events, outbox } from '../src/generated/outbox/index.js'

const MIGRATIONS = fileURLToPath(new URL('../../../prisma/migrations', import.meta.url))

describe('tracing from the write to the consumer', () => {
  let db: TestDatabase
  let pool: pg.Pool
  let tracing: InMemoryTracing
  const kafka = testKafka()
  const topic = uniqueTopic('demo.traced')
  const publisher = new KafkaPublisher({ kafka })
  const clients: { $disconnect(): Promise<void> }[] = []

  beforeAll(async () => {
    tracing = inMemoryTracing()
    db = await createTestDatabase({ migrations: [MIGRATIONS], prefix: 'outbox_demo_traced' })
    pool = new pg.Pool({ connectionString: db.url, max: 2 })
    await createTopics(kafka, [topic], 1)
    await publisher.connect()
  })
  afterAll(async () => {
    tracing?.stop()
    await publisher.disconnect?.()
    for (const client of clients) await client.$disconnect()
    await pool?.end()
    await db?.drop()
  })

  it('the consumer span is a child of the request span that wrote the row', async () => {
    const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: db.url }) }).$extends(
      outbox({ models: { Employee: { topic } }, headers: traceHeaders }),
    )
    clients.push(prisma)
    const tracer = trace.getTracer('demo-test')
    const request = await tracer.startActiveSpan(
      'POST /employees',
      { kind: SpanKind.SERVER },
      async (span) => {
        await prisma.employee.create({ data: { email: 'ada@example.com', name: 'Ada' } })
        span.end()
        return span.spanContext()
      },
    )

    const result = await createEngine({ pool, publisher }).drain({ budgetMs: 5_000 })
    expect(result.published).toBe(1)

    let handled: (spanId: string | undefined) => void = () => undefined
    const handledIn = new Promise<string | undefined>((resolve) => (handled = resolve))
    const inbox = createInbox(prisma, { consumer: `traced-${randomUUID()}` })
    const consumer = kafka.consumer({ groupId: `traced-${randomUUID()}` })
    await consumer.connect()
    await subscribe(consumer, { topics: [topic], fromBeginning: true })
    await consumer.run({
      eachMessage: inbox.eachMessage(
        traced(
          typedHandler(events, {
            'employee.created': async () => handled(trace.getActiveSpan()?.spanContext().spanId),
          }),
        ),
      ),
    })
    const handlerSpanId = await handledIn
    await consumer.disconnect()

    const spans = tracing.exporter.getFinishedSpans()
    const process = spans.find((s) => s.name === `process ${topic}`)
    expect(process?.kind).toBe(SpanKind.CONSUMER)
    expect(process?.spanContext().traceId).toBe(request.traceId)
    expect(process?.parentSpanContext?.spanId).toBe(request.spanId)
    expect(handlerSpanId).toBe(process?.spanContext().spanId)
  })
})

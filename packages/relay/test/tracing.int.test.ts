/**
 * Relay tracing on the real engine, PostgreSQL and Kafka: a span per batch, a create span per
 * message continuing its writer's trace, and that span's context in the Kafka message's headers.
 */
import { SpanKind, SpanStatusCode } from '@opentelemetry/api'
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base'
import {
  collectMessages,
  createTopics,
  type TestDatabase,
  testKafka,
  uniqueTopic,
} from '@prisma-outbox/devkit'
import { type InMemoryTracing, inMemoryTracing } from '@prisma-outbox/devkit/otel'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { createEngine, type KafkaPublisher, RelayError } from '../src/index.js'
import { BATCH_SPAN_NAME, tracedPublisher, tracingHooks } from '../src/otel/index.js'
import { insertRows, useRelayServices, wrapPublisher } from './helpers.js'

const kafka = testKafka('relay-tracing-test')
let publisher: KafkaPublisher
let db: TestDatabase
useRelayServices(kafka, { publisher: (p) => (publisher = p), db: (d) => (db = d) })

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736'
const writerSpan = (i: number) => `00f067aa0ba902${String(i).padStart(2, '0')}`
const spanId = (s: ReadableSpan | undefined) => s?.spanContext().spanId

describe('relay tracing', () => {
  let tracing: InMemoryTracing
  beforeAll(() => {
    tracing = inMemoryTracing()
  })
  afterAll(() => tracing.stop())
  beforeEach(() => tracing.exporter.reset())
  const finished = (name: string) => tracing.exporter.getFinishedSpans().filter((s) => s.name === name)

  it('Should trace each batch and message, and send each message with its create span as traceparent', async () => {
    const topic = uniqueTopic('relay.traced')
    await createTopics(kafka, [topic], 1)
    const ids = await insertRows(db.pool, [
      ...[1, 2, 3].map((i) => ({
        topic,
        key: `emp-${i}`,
        type: 'employee.created',
        headers: { traceparent: `00-${TRACE}-${writerSpan(i)}-01` },
      })),
      { topic, key: 'emp-4', type: 'employee.created' },
    ])
    const engine = createEngine({
      pool: db.pool,
      publisher: tracedPublisher(publisher),
      options: { batchSize: 2 },
      hooks: tracingHooks(),
    })
    expect(await engine.drain()).toMatchObject({ published: 4, remaining: 0 })

    const batches = finished(BATCH_SPAN_NAME)
    // Two batches of two; the drain's last, empty claim makes no span.
    expect(batches.map((b) => b.attributes['outbox.batch.size'])).toEqual([2, 2])
    expect(batches.map((b) => b.attributes['outbox.batch.outcome'])).toEqual(['published', 'published'])
    expect(batches[0]?.links.map((l) => l.context.spanId)).toEqual([writerSpan(1), writerSpan(2)])
    const sends = finished(`send ${topic}`)
    expect(sends.map((s) => s.parentSpanContext?.spanId)).toEqual(batches.map(spanId))

    const creates = new Map(finished(`create ${topic}`).map((s) => [s.attributes['messaging.message.id'], s]))
    const messages = await collectMessages(kafka, [topic], { count: 4, settleMs: 500 })
    expect(messages).toHaveLength(4)
    for (const [i, id] of ids.entries()) {
      const create = creates.get(id)
      const sent = messages.find((m) => m.headers.id === id)
      expect(create?.kind).toBe(SpanKind.PRODUCER)
      expect(sent?.headers.traceparent).toBe(`00-${create?.spanContext().traceId}-${spanId(create)}-01`)
      if (i < 3) {
        expect(create?.spanContext().traceId).toBe(TRACE)
        expect(create?.parentSpanContext?.spanId).toBe(writerSpan(i + 1))
      } else {
        // No writer context: the message continues the batch's trace.
        expect(create?.parentSpanContext?.spanId).toBe(spanId(batches[1]))
      }
    }
  })

  it('Should record a poison message on the sends that failed and the dead row on its batch span', async () => {
    const topic = uniqueTopic('relay.traced')
    await createTopics(kafka, [topic], 1)
    const [good, poison] = await insertRows(db.pool, [
      { topic, key: 'a' },
      { topic, key: 'b' },
    ])
    const failing = wrapPublisher(publisher, {
      before: (messages) => {
        if (messages.some((m) => m.id === poison))
          throw new RelayError('RELAY_PUBLISH_PERMANENT', 'MESSAGE_TOO_LARGE')
      },
    })
    const engine = createEngine({
      pool: db.pool,
      publisher: tracedPublisher(failing),
      options: { deadLetterPolicy: 'continue' },
      hooks: tracingHooks(),
    })
    expect(await engine.drain()).toMatchObject({ published: 1, dead: 1 })

    const [batch] = finished(BATCH_SPAN_NAME)
    expect(batch?.attributes).toMatchObject({
      'outbox.batch.size': 2,
      'outbox.batch.published': 1,
      'outbox.batch.dead': 1,
      'outbox.batch.outcome': 'partial',
    })
    expect((batch?.attributes['outbox.batch.sends'] as number) > 1).toBe(true)
    expect(batch?.status.code).toBe(SpanStatusCode.ERROR)
    const sends = finished(`send ${topic}`)
    const failed = sends.filter((s) => s.status.code === SpanStatusCode.ERROR)
    expect(failed.length).toBeGreaterThan(0)
    for (const s of failed) expect(s.attributes['outbox.publish.failure']).toBe('permanent')
    const delivered = sends.filter((s) => s.status.code !== SpanStatusCode.ERROR)
    expect(delivered.map((s) => s.links.length)).toEqual([1])
    const creates = finished(`create ${topic}`).filter((s) => s.attributes['messaging.message.id'] === good)
    expect(delivered[0]?.links[0]?.context.spanId).toBe(spanId(creates.at(-1)))
  })
})

/**
 * `traced` (`@prisma-outbox/consumer/otel`) with the OpenTelemetry SDK's in-memory exporter and
 * real PostgreSQL: the handler runs inside a consumer span, child of the context the event's
 * `traceparent` carries, with the messaging attributes; a failing handler's error is on its span;
 * a typed handler's parsing still happens before the inbox's transaction.
 */
import { randomUUID } from 'node:crypto'
import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api'
import { type InMemoryTracing, inMemoryTracing } from '@prisma-outbox/devkit/otel'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { createInbox, type OutboxEvent, typedHandler } from '../src/index.js'
import { traced } from '../src/otel/index.js'
import { type Tx, useTestDatabase } from './helpers.js'

const t = useTestDatabase('outbox_inbox_otel')
let tracing: InMemoryTracing
const exporter = () => tracing.exporter
beforeAll(() => {
  tracing = inMemoryTracing()
})
afterAll(() => tracing.stop())

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736'
const WRITER_SPAN = '00f067aa0ba902b7'
const event = (payload: unknown, headers: Record<string, string> = {}): OutboxEvent => {
  const id = randomUUID()
  return {
    id,
    type: 'thing.created',
    aggregateType: 'thing',
    aggregateId: 'k-1',
    payload,
    headers: { id, eventType: 'thing.created', traceparent: `00-${TRACE_ID}-${WRITER_SPAN}-01`, ...headers },
    topic: 'outbox.event.thing',
    partition: 2,
    offset: '17',
  }
}

describe('traced handlers', () => {
  it("run in a consumer span, child of the writer's context, with the handler's work inside it", async () => {
    exporter().reset()
    const inbox = createInbox(t.prisma, { consumer: 'otel' })
    let activeInHandler: string | undefined
    const e = event({ n: 1 }, { tracestate: 'vendor=abc' })
    const result = await inbox.handle(
      e,
      traced(
        async (_event: OutboxEvent, tx: Tx) => {
          activeInHandler = trace.getActiveSpan()?.spanContext().spanId
          await tx.tally.create({ data: { aggregateId: e.id, applied: 1 } })
        },
        { consumerGroup: 'otel' },
      ),
    )
    expect(result).toBe('processed')
    const [span] = exporter().getFinishedSpans()
    expect(span?.name).toBe('process outbox.event.thing')
    expect(span?.kind).toBe(SpanKind.CONSUMER)
    expect(span?.spanContext().traceId).toBe(TRACE_ID)
    expect(span?.parentSpanContext?.spanId).toBe(WRITER_SPAN)
    expect(span?.spanContext().traceState?.serialize()).toBe('vendor=abc')
    expect(activeInHandler).toBe(span?.spanContext().spanId)
    expect(span?.attributes).toEqual({
      'messaging.system': 'kafka',
      'messaging.operation.type': 'process',
      'messaging.operation.name': 'process',
      'messaging.destination.name': 'outbox.event.thing',
      'messaging.destination.partition.id': '2',
      'messaging.message.id': e.id,
      'messaging.kafka.offset': 17,
      'messaging.kafka.message.key': 'k-1',
      'messaging.consumer.group.name': 'otel',
      'outbox.event.type': 'thing.created',
    })
    expect(await t.prisma.tally.count({ where: { aggregateId: e.id } })).toBe(1)
  })

  it('record a failing handler on its span and rethrow; the typed parsing stays ahead of the transaction', async () => {
    exporter().reset()
    const inbox = createInbox(t.prisma, { consumer: 'otel-fail' })
    const catalogue = { 'thing.created': { schema: z.object({ n: z.number() }) } }
    const handler = traced(
      typedHandler(catalogue, {
        'thing.created': async () => {
          throw new Error('cannot apply')
        },
      }),
    )
    expect(typeof handler.prepare).toBe('function')
    expect(() => handler.prepare?.(event({ n: 'x' }))).toThrow(/payload does not match its schema/)
    await expect(inbox.handle(event({ n: 1 }), handler)).rejects.toThrow('cannot apply')
    const [span] = exporter().getFinishedSpans()
    expect(span?.status).toEqual({ code: SpanStatusCode.ERROR, message: 'cannot apply' })
    expect(span?.events.map((e) => [e.name, e.attributes?.['exception.message']])).toEqual([
      ['exception', 'cannot apply'],
    ])
    // No span without a trace header: the handler still runs, in a new trace.
    exporter().reset()
    const plain = event({ n: 1 })
    delete (plain.headers as Record<string, string | undefined>).traceparent
    await inbox.handle(
      plain,
      traced(async () => undefined),
    )
    expect(exporter().getFinishedSpans()[0]?.parentSpanContext).toBeUndefined()
  })
})

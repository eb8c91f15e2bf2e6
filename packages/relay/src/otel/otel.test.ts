import { context, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api'
import { type InMemoryTracing, inMemoryTracing } from '@prisma-outbox/devkit/otel'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import type { BatchInfo } from '../core/engine.js'
import { RelayError } from '../core/errors.js'
import { combineHooks } from '../core/hooks.js'
import type { OutboxMessage } from '../core/message.js'
import type { Publisher } from '../core/publisher.js'
import { BATCH_SPAN_NAME, flushTracing, tracedPublisher, tracerRegistered, tracingHooks } from './index.js'

const WRITER_TRACE = '0af7651916cd43dd8448eb211c80319c'
const WRITER_SPAN = 'b7ad6b7169203331'

function message(i: number, headers: Record<string, string> = {}): OutboxMessage {
  return {
    id: `id-${i}`,
    topic: 'outbox.event.employee',
    key: `emp-${i}`,
    value: '{}',
    headers: { id: `id-${i}`, eventType: 'employee.created', aggregateType: 'employee', ...headers },
  }
}

const writerHeaders = { traceparent: `00-${WRITER_TRACE}-${WRITER_SPAN}-01`, tracestate: 'vendor=1' }

/** A publisher that keeps what it was given, or throws `fail`. */
function recordingPublisher(fail?: unknown): Publisher & { sent: OutboxMessage[]; activeSpanIds: string[] } {
  const sent: OutboxMessage[] = []
  const activeSpanIds: string[] = []
  return {
    sent,
    activeSpanIds,
    connect: async () => {},
    disconnect: async () => {},
    async publish(messages) {
      activeSpanIds.push(trace.getActiveSpan()?.spanContext().spanId ?? '')
      if (fail !== undefined) throw fail
      sent.push(...messages)
    },
  }
}

const info = (over: Partial<BatchInfo> = {}): BatchInfo => ({
  relayId: 'relay-1',
  size: 2,
  claimMs: 3,
  publishMs: 5,
  markMs: 2,
  sends: 1,
  published: 2,
  retried: 0,
  dead: 0,
  held: 0,
  deferred: 0,
  unsettled: 0,
  lostLeases: 0,
  maxAttempts: 0,
  outcome: 'published',
  ...over,
})

describe('relay tracing', () => {
  let tracing: InMemoryTracing
  beforeAll(() => {
    tracing = inMemoryTracing()
  })
  afterAll(() => tracing.stop())
  beforeEach(() => tracing.exporter.reset())
  const spans = (name: string) => tracing.exporter.getFinishedSpans().filter((s) => s.name === name)

  it('Should give each message a create span, child of its writer, and send that span as its traceparent', async () => {
    const inner = recordingPublisher()
    const original = message(1, writerHeaders)
    await tracedPublisher(inner, { clientId: 'relay' }).publish([original, message(2)])

    const [create1, create2] = spans('create outbox.event.employee')
    expect(create1?.kind).toBe(SpanKind.PRODUCER)
    expect(create1?.spanContext().traceId).toBe(WRITER_TRACE)
    expect(create1?.parentSpanContext?.spanId).toBe(WRITER_SPAN)
    expect(create1?.attributes).toMatchObject({
      'messaging.system': 'kafka',
      'messaging.operation.type': 'create',
      'messaging.destination.name': 'outbox.event.employee',
      'messaging.message.id': 'id-1',
      'messaging.kafka.message.key': 'emp-1',
      'messaging.client.id': 'relay',
      'outbox.event.type': 'employee.created',
    })
    // A row written outside a trace gets a trace of its own.
    expect(create2?.parentSpanContext).toBeUndefined()

    const sent = inner.sent[0]
    expect(sent?.headers.traceparent).toBe(`00-${WRITER_TRACE}-${create1?.spanContext().spanId}-01`)
    expect(sent?.headers.tracestate).toBe('vendor=1')
    expect(sent?.headers).toMatchObject({ id: 'id-1', eventType: 'employee.created' })
    expect(inner.sent[1]?.headers.traceparent).toContain(create2?.spanContext().spanId)
    expect(original.headers.traceparent).toBe(writerHeaders.traceparent)

    const [send] = spans('send outbox.event.employee')
    expect(send?.kind).toBe(SpanKind.CLIENT)
    expect(send?.attributes).toMatchObject({
      'messaging.operation.type': 'send',
      'messaging.batch.message_count': 2,
      'messaging.destination.name': 'outbox.event.employee',
    })
    expect(send?.links.map((l) => l.context.spanId)).toEqual([
      create1?.spanContext().spanId,
      create2?.spanContext().spanId,
    ])
    expect(inner.activeSpanIds).toEqual([send?.spanContext().spanId])
  })

  it('Should name a send of several topics "send" and record a failure on it, rethrown as it was', async () => {
    const failure = new RelayError('RELAY_PUBLISH_PERMANENT', 'message too large')
    const publisher = tracedPublisher(recordingPublisher(failure))
    const other = { ...message(2), topic: 'other' }
    await expect(publisher.publish([message(1), other])).rejects.toBe(failure)
    const [send] = spans('send')
    expect(send?.status).toEqual({ code: SpanStatusCode.ERROR, message: 'message too large' })
    expect(send?.attributes).toMatchObject({
      'error.type': 'RELAY_PUBLISH_PERMANENT',
      'outbox.publish.failure': 'permanent',
    })
    expect(send?.attributes['messaging.destination.name']).toBeUndefined()
    expect(send?.events.map((e) => e.name)).toEqual(['exception'])
  })

  it('Should open a batch span on the first send, linked to the writers, parent of the send', async () => {
    const hooks = tracingHooks()
    const publisher = tracedPublisher(recordingPublisher())
    await hooks.wrapBatch?.(async () => {
      await publisher.publish([message(1, writerHeaders), message(2)])
      hooks.onBatch?.(info())
    })
    const [batch] = spans(BATCH_SPAN_NAME)
    expect(batch?.attributes).toMatchObject({
      'outbox.relay.id': 'relay-1',
      'outbox.batch.size': 2,
      'outbox.batch.sends': 1,
      'outbox.batch.published': 2,
      'outbox.batch.max_attempts': 0,
      'outbox.batch.outcome': 'published',
    })
    expect(batch?.status.code).toBe(SpanStatusCode.UNSET)
    expect(batch?.events.map((e) => e.name)).toEqual(['claimed', 'sent'])
    expect(batch?.links.map((l) => l.context.spanId)).toEqual([WRITER_SPAN])
    const batchId = batch?.spanContext().spanId
    expect(spans('send outbox.event.employee')[0]?.parentSpanContext?.spanId).toBe(batchId)
    const [fromWriter, fromBatch] = spans('create outbox.event.employee')
    expect(fromWriter?.links.map((l) => l.context.spanId)).toEqual([batchId])
    expect(fromBatch?.parentSpanContext?.spanId).toBe(batchId)
  })

  it('Should make no span for a batch that claimed nothing, and one with the error for a batch that threw', async () => {
    const hooks = tracingHooks()
    expect(await hooks.wrapBatch?.(async () => undefined)).toBeUndefined()
    expect(tracing.exporter.getFinishedSpans()).toEqual([])

    const failure = new RelayError('RELAY_DATABASE', 'claim failed: connection lost')
    await expect(hooks.wrapBatch?.(() => Promise.reject(failure))).rejects.toBe(failure)
    const [batch] = spans(BATCH_SPAN_NAME)
    expect(batch?.status).toEqual({ code: SpanStatusCode.ERROR, message: failure.message })

    await hooks.wrapBatch?.(async () =>
      hooks.onBatch?.(
        info({ published: 0, retried: 2, maxAttempts: 3, outcome: 'failed', error: 'no leader' }),
      ),
    )
    const failed = spans(BATCH_SPAN_NAME)[1]
    expect(failed?.status).toEqual({ code: SpanStatusCode.ERROR, message: 'no leader' })
    expect(failed?.attributes).toMatchObject({
      'outbox.batch.retried': 2,
      'outbox.batch.max_attempts': 3,
      'outbox.batch.outcome': 'failed',
    })
  })

  it('Should keep the batch scope through combined hooks, the first set outermost', async () => {
    const order: string[] = []
    const outer = {
      wrapBatch: async <T>(run: () => Promise<T>) => {
        order.push('outer')
        return run()
      },
    }
    const hooks = combineHooks(outer, tracingHooks(), { onBatch: () => order.push('onBatch') })
    const publisher = tracedPublisher(recordingPublisher())
    const result = await hooks.wrapBatch?.(async () => {
      await publisher.publish([message(1)])
      hooks.onBatch?.(info({ size: 1 }))
      return 'done'
    })
    expect(result).toBe('done')
    expect(order).toEqual(['outer', 'onBatch'])
    expect(spans(BATCH_SPAN_NAME)[0]?.attributes['outbox.batch.size']).toBe(1)
  })

  it('Should tell a registered SDK and flush it', async () => {
    expect(tracerRegistered()).toBe(true)
    await expect(flushTracing()).resolves.toBeUndefined()
    expect(context.active()).toBeDefined()
  })
})

/**
 * OpenTelemetry for the inbox (`@prisma-outbox/consumer/otel`; needs the optional peer dependency
 * `@opentelemetry/api`): each handler runs inside a consumer span whose parent is the context the
 * event carries in its Kafka headers (`traceparent`/`tracestate`, written by the extension's
 * `traceHeaders`), so one trace runs from the write to the handler that applied it.
 * @module
 */
import {
  defaultTextMapGetter,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type TextMapPropagator,
  type Tracer,
  trace,
} from '@opentelemetry/api'
import type { OutboxEvent } from '../event.js'
import type { InboxHandler } from '../inbox.js'
import type { TypedInboxHandler } from '../typed.js'

export interface TracedOptions {
  /** Default: `trace.getTracer('@prisma-outbox/consumer')`. */
  tracer?: Tracer
  /** Default: the globally registered propagator. */
  propagator?: TextMapPropagator
  /** The consumer group, recorded as `messaging.consumer.group.name`. */
  consumerGroup?: string
}

/**
 * Wraps an inbox handler (a function or a `typedHandler`) so it runs in a consumer span named
 * `process <topic>`, child of the writer's context from the event's headers, with OpenTelemetry's
 * messaging attributes; an error thrown by the handler is recorded on the span (status ERROR)
 * and rethrown to the inbox's failure policy. Each attempt of a retried event is its own span.
 *
 * @example
 * import { traced } from '@prisma-outbox/consumer/otel'
 * await consumer.run({ eachMessage: inbox.eachMessage(traced(typedHandler(events, handlers))) })
 */
export function traced<Tx, Payload = unknown>(
  handler: InboxHandler<Tx, Payload>,
  options: TracedOptions = {},
): InboxHandler<Tx, Payload> & { prepare?: TypedInboxHandler<Tx>['prepare'] } {
  const tracer = () => options.tracer ?? trace.getTracer('@prisma-outbox/consumer')
  const wrapped = async (event: OutboxEvent<Payload>, tx: Tx) => {
    const parent = (options.propagator ?? propagation).extract(
      ROOT_CONTEXT,
      event.headers,
      defaultTextMapGetter,
    )
    const attributes = {
      'messaging.system': 'kafka',
      'messaging.operation.type': 'process',
      'messaging.operation.name': 'process',
      'messaging.destination.name': event.topic,
      'messaging.destination.partition.id': String(event.partition),
      'messaging.message.id': event.id,
      'messaging.kafka.offset': Number(event.offset),
      ...(event.aggregateId === null ? {} : { 'messaging.kafka.message.key': event.aggregateId }),
      ...(event.type === undefined ? {} : { 'outbox.event.type': event.type }),
      ...(options.consumerGroup === undefined
        ? {}
        : { 'messaging.consumer.group.name': options.consumerGroup }),
    }
    return tracer().startActiveSpan(
      `process ${event.topic}`,
      { kind: SpanKind.CONSUMER, attributes },
      parent,
      async (span: Span) => {
        try {
          await handler(event, tx)
        } catch (error) {
          span.recordException(error as Error)
          span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error)?.message })
          throw error
        } finally {
          span.end()
        }
      },
    )
  }
  // A typed handler's parsing runs before the inbox's transaction; keep it.
  const prepare = (handler as { prepare?: unknown }).prepare
  return typeof prepare === 'function'
    ? Object.assign(wrapped, { prepare: prepare as TypedInboxHandler<Tx>['prepare'] })
    : wrapped
}

/**
 * OpenTelemetry for the outbox extension (`@prisma-outbox/extension/otel`; needs the optional
 * peer dependency `@opentelemetry/api`): the active span context of each write, as W3C
 * `traceparent`/`tracestate` headers on its outbox rows, so the relay and the consumer continue the
 * writer's trace.
 * @module
 */
import { context, defaultTextMapSetter, propagation, type TextMapPropagator, trace } from '@opentelemetry/api'

export { type CaptureSpansOptions, captureSpans } from './capture-span.js'

/**
 * The active context's trace headers (`traceparent`, `tracestate`, and whatever else the
 * registered propagator writes), for the `headers` option. Empty when no span is active or no
 * SDK is registered, so writes outside a trace carry no trace headers.
 *
 * @param [propagator] - default: the globally registered one (`propagation`); the W3C trace
 *   context propagator is what the relay and consumer read
 * @example
 * import { traceHeaders } from '@prisma-outbox/extension/otel'
 * prisma.$extends(outbox({ headers: traceHeaders }))
 * prisma.$extends(outbox({ headers: () => ({ ...traceHeaders(), tenant }) }))
 */
export function traceHeaders(propagator?: TextMapPropagator): Record<string, string> {
  const active = context.active()
  if (!trace.getSpanContext(active)) return {}
  const carrier: Record<string, string> = {}
  ;(propagator ?? propagation).inject(active, carrier, defaultTextMapSetter)
  return carrier
}

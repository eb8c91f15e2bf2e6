/**
 * The registered SDK, seen through the API only: is one there, and flush what it buffered.
 * @module
 */
import { isSpanContextValid, trace } from '@opentelemetry/api'

/**
 * True when an OpenTelemetry SDK is registered: without one the API's spans are no-ops and
 * tracing records nothing.
 */
export function tracerRegistered(): boolean {
  const probe = trace.getTracer('@prisma-outbox/relay').startSpan('probe', { root: true })
  return isSpanContextValid(probe.spanContext())
}

/**
 * Exports the spans the registered SDK still buffers (its `forceFlush`), so a process that
 * exits right after a drain loses none. Does nothing without an SDK.
 */
export async function flushTracing(): Promise<void> {
  const registered = trace.getTracerProvider() as { getDelegate?(): unknown }
  const provider = (registered.getDelegate?.() ?? registered) as { forceFlush?(): Promise<void> }
  await provider.forceFlush?.()
}

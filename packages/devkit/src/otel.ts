/**
 * OpenTelemetry for tests: an SDK with an in-memory exporter, the async-hooks context manager and
 * the W3C trace context propagator, registered globally for one test file.
 * @module
 */
import { context, propagation, trace } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { W3CTraceContextPropagator } from '@opentelemetry/core'
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base'

/**
 * Registers the SDK now and returns its exporter and `stop()`, which unregisters it.
 * @example
 * let tracing: InMemoryTracing
 * beforeAll(() => { tracing = inMemoryTracing() })
 * afterAll(() => tracing.stop())
 */
export function inMemoryTracing(): InMemoryTracing {
  const exporter = new InMemorySpanExporter()
  const contextManager = new AsyncLocalStorageContextManager().enable()
  context.setGlobalContextManager(contextManager)
  propagation.setGlobalPropagator(new W3CTraceContextPropagator())
  trace.setGlobalTracerProvider(
    new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }),
  )
  return {
    exporter,
    stop: () => {
      trace.disable()
      propagation.disable()
      context.disable()
    },
  }
}

export interface InMemoryTracing {
  exporter: InMemorySpanExporter
  stop(): void
}

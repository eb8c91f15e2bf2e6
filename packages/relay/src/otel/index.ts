/**
 * OpenTelemetry for the relay (`@prisma-outbox/relay/otel`; needs the optional peer dependency
 * `@opentelemetry/api`, and an SDK registered by the application): a traced publisher that
 * continues each writer's trace into Kafka, and engine hooks that give each batch a span.
 * Runs wherever the engine does (the API only, no Node built-ins).
 * @module
 */
export type { TracingHooksOptions } from './batch.js'
export { BATCH_SPAN_NAME, tracingHooks } from './batch.js'
export { flushTracing, tracerRegistered } from './flush.js'
export type { TracedPublisherOptions } from './publisher.js'
export { tracedPublisher } from './publisher.js'

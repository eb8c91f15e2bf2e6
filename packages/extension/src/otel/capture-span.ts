/**
 * A span around each write, so the outbox rows it captures carry a context of their own.
 * @module
 */
import { SpanKind, SpanStatusCode, type Tracer, trace } from '@opentelemetry/api'
import { Prisma } from '@prisma/client/extension'
import { WRITE_OPERATIONS } from '../operations.js'

/** Options of {@link captureSpans}. */
export interface CaptureSpansOptions {
  /** Only writes of these models (default: every model's writes, nested ones included). */
  models?: readonly string[]
  /** Default: `trace.getTracer('@prisma-outbox/extension')`. */
  tracer?: Tracer
}

/**
 * A Prisma extension that runs each write in a span `outbox capture <Model>.<operation>`
 * (attributes `db.system.name`, `db.operation.name`, `outbox.model`; a failure recorded), child
 * of the active span or the root of a new trace. Apply it BEFORE `outbox({ headers: traceHeaders })`
 * (the first extension's query hook runs first), so the span is active when the outbox reads the
 * headers: each row then carries its write's span.
 *
 * @example
 * const prisma = base.$extends(captureSpans()).$extends(outbox({ headers: traceHeaders }))
 */
export function captureSpans(options: CaptureSpansOptions = {}) {
  const tracer = options.tracer ?? trace.getTracer('@prisma-outbox/extension')
  const models = options.models === undefined ? undefined : new Set(options.models)
  return Prisma.defineExtension({
    name: 'prisma-outbox-capture-spans',
    query: {
      $allModels: {
        $allOperations({ model, operation, args, query }) {
          if (!WRITE_OPERATIONS.has(operation) || (models && !models.has(model))) return query(args)
          const attributes = {
            'db.system.name': 'postgresql',
            'db.operation.name': operation,
            'outbox.model': model,
          }
          return tracer.startActiveSpan(
            `outbox capture ${model}.${operation}`,
            { kind: SpanKind.INTERNAL, attributes },
            async (span) => {
              try {
                return await query(args)
              } catch (error) {
                span.recordException(error as Error)
                span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error)?.message })
                throw error
              } finally {
                span.end()
              }
            },
          )
        },
      },
    },
  })
}

/**
 * The span of one relay batch (claim → publish → mark), opened through the engine's
 * `wrapBatch` hook and finished with what `onBatch` reported.
 * @module
 */
import {
  type Context,
  context,
  createContextKey,
  type Link,
  type Span,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  trace,
} from '@opentelemetry/api'
import type { BatchInfo, EngineHooks } from '../core/engine.js'

/** Name of the batch span. */
export const BATCH_SPAN_NAME = 'relay batch'

/** What a batch in flight knows about its span; kept in the batch's context. @internal */
export interface BatchScope {
  /** The batch span, started on first need (empty polls make no span). */
  span: Span | undefined
  /** Starts the span if it is not yet, with these links (the messages' contexts). */
  open(links: Link[]): Span
  info: BatchInfo | undefined
}

const BATCH_SCOPE = createContextKey('@prisma-outbox/relay batch scope')

/** The scope of the batch running in `ctx`, if the engine runs with {@link tracingHooks}. @internal */
export function batchScope(ctx: Context): BatchScope | undefined {
  return ctx.getValue(BATCH_SCOPE) as BatchScope | undefined
}

/** Options of {@link tracingHooks}. */
export interface TracingHooksOptions {
  /** Default: `trace.getTracer('@prisma-outbox/relay')`. */
  tracer?: Tracer
}

function describe(span: Span, info: BatchInfo, startTime: number): void {
  span.setAttributes({
    'outbox.relay.id': info.relayId,
    'outbox.batch.size': info.size,
    'outbox.batch.sends': info.sends,
    'outbox.batch.published': info.published,
    'outbox.batch.retried': info.retried,
    'outbox.batch.dead': info.dead,
    'outbox.batch.held': info.held,
    'outbox.batch.deferred': info.deferred,
    'outbox.batch.unsettled': info.unsettled,
    'outbox.batch.lost_leases': info.lostLeases,
    'outbox.batch.max_attempts': info.maxAttempts,
    'outbox.batch.outcome': info.outcome,
  })
  span.addEvent('claimed', { 'outbox.batch.size': info.size }, startTime + info.claimMs)
  span.addEvent('sent', { 'outbox.batch.sends': info.sends }, startTime + info.claimMs + info.publishMs)
  if (info.error !== undefined) {
    span.setAttribute('error.type', info.outcome === 'partial' ? 'partial' : 'failed')
    span.setStatus({ code: SpanStatusCode.ERROR, message: info.error })
  }
}

/**
 * Engine hooks that give each batch that claimed rows (or failed) a span named `relay batch`:
 * attributes `outbox.batch.size`, `.sends` (publish calls, more than one when a failure was
 * bisected), `.published`, `.retried`, `.dead`, `.held`, `.deferred`, `.unsettled`,
 * `.lost_leases`, `.max_attempts` (the most failed attempts a claimed row had before) and
 * `.outcome`; events `claimed` and `sent`; status ERROR with the batch's first
 * publish error; links to the contexts the messages' rows carry (their writers). The send spans
 * of a {@link tracedPublisher} are its children. A batch that found nothing to claim makes no span.
 * Needs a context manager (an SDK's `register()` installs one).
 *
 * @example
 * createEngine({ pool, publisher: tracedPublisher(publisher), hooks: tracingHooks() })
 */
export function tracingHooks(options: TracingHooksOptions = {}): EngineHooks {
  const tracer = options.tracer ?? trace.getTracer('@prisma-outbox/relay')
  return {
    wrapBatch<T>(run: () => Promise<T>): Promise<T> {
      const parent = context.active()
      const startTime = Date.now()
      const scope: BatchScope = {
        span: undefined,
        info: undefined,
        open(links) {
          scope.span ??= tracer.startSpan(
            BATCH_SPAN_NAME,
            { kind: SpanKind.INTERNAL, startTime, links, attributes: { 'messaging.system': 'kafka' } },
            parent,
          )
          return scope.span
        },
      }
      return context.with(parent.setValue(BATCH_SCOPE, scope), async () => {
        try {
          const result = await run()
          const { info } = scope
          if (info !== undefined) describe(scope.open([]), info, startTime)
          scope.span?.end()
          return result
        } catch (error) {
          const span = scope.open([])
          if (scope.info !== undefined) describe(span, scope.info, startTime)
          span.recordException(error as Error)
          span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error)?.message })
          span.end()
          throw error
        }
      })
    },
    onBatch(info) {
      const scope = batchScope(context.active())
      if (scope) scope.info = info
    },
  }
}

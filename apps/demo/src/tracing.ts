/**
 * OpenTelemetry in the demo: the process's SDK (`startTracing`, for `main.ts`) and a Hono
 * middleware giving each request a server span whose trace id it prints. The write carries that
 * span's context on its outbox row (`traceHeaders`), the relay continues it into Kafka and the
 * directory consumer's span closes it: one trace per request.
 * @module
 */
import {
  defaultTextMapGetter,
  isSpanContextValid,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
} from '@opentelemetry/api'
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http'
import { resourceFromAttributes } from '@opentelemetry/resources'
import {
  BatchSpanProcessor,
  ConsoleSpanExporter,
  NodeTracerProvider,
  SimpleSpanProcessor,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-node'
import type { MiddlewareHandler } from 'hono'
import { routePath } from 'hono/route'

/** The demo's SDK, registered globally. */
export interface DemoTracing {
  /** Where spans go: `OTLP <endpoint>`, `console`, or undefined (recorded, not exported). */
  exportsTo: string | undefined
  /** Exports what is buffered and unregisters. */
  stop(): Promise<void>
}

/**
 * Registers an SDK for the process: spans exported over OTLP/HTTP when
 * `OTEL_EXPORTER_OTLP_ENDPOINT` is set (e.g. `http://localhost:4318`, a collector or Jaeger),
 * printed with `OTEL_TRACES_EXPORTER=console`, else only recorded, so trace ids still flow.
 */
export function startTracing(env: NodeJS.ProcessEnv = process.env): DemoTracing {
  const spanProcessors: SpanProcessor[] = []
  let exportsTo: string | undefined
  if (env.OTEL_EXPORTER_OTLP_ENDPOINT) {
    spanProcessors.push(new BatchSpanProcessor(new OTLPTraceExporter()))
    exportsTo = `OTLP ${env.OTEL_EXPORTER_OTLP_ENDPOINT}`
  } else if (env.OTEL_TRACES_EXPORTER === 'console') {
    spanProcessors.push(new SimpleSpanProcessor(new ConsoleSpanExporter()))
    exportsTo = 'console'
  }
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ 'service.name': env.OTEL_SERVICE_NAME || 'prisma-outbox-demo' }),
    spanProcessors,
  })
  provider.register()
  return {
    exportsTo,
    stop: async () => {
      await provider.shutdown()
      trace.disable()
      propagation.disable()
    },
  }
}

/** What {@link traceRequests} reports of each request. */
export interface TracedRequest {
  method: string
  route: string
  status: number
  traceId: string
}

/**
 * A server span per request (`<METHOD> <route>`, parent: the request's own `traceparent` if it
 * has one), active while the route runs, so the writes it makes carry it; `report` is told each
 * request's trace id. With no SDK registered the spans are no-ops and nothing is reported.
 */
export function traceRequests(report: (request: TracedRequest) => void = () => {}): MiddlewareHandler {
  const tracer = trace.getTracer('prisma-outbox-demo')
  return async function traceRequests(c, next) {
    const headers = Object.fromEntries(c.req.raw.headers)
    const parent = propagation.extract(ROOT_CONTEXT, headers, defaultTextMapGetter)
    const method = c.req.method
    const attributes = { 'http.request.method': method, 'url.path': c.req.path }
    await tracer.startActiveSpan(method, { kind: SpanKind.SERVER, attributes }, parent, async (span) => {
      try {
        await next()
      } finally {
        const route = routePath(c, -1)
        const status = c.res.status
        span.updateName(`${method} ${route}`)
        span.setAttributes({ 'http.route': route, 'http.response.status_code': status })
        if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR })
        span.end()
        if (isSpanContextValid(span.spanContext()))
          report({ method, route, status, traceId: span.spanContext().traceId })
      }
    })
  }
}

/**
 * A {@link Publisher} that traces what it sends, after OpenTelemetry's messaging conventions: a
 * `create` span per message, child of the writer's context from the row's headers, whose context
 * replaces the message's `traceparent`; a `send` span per publish call, linked to them.
 * @module
 */
import {
  type Attributes,
  type Context,
  context,
  defaultTextMapGetter,
  defaultTextMapSetter,
  isSpanContextValid,
  type Link,
  propagation,
  ROOT_CONTEXT,
  type SpanContext,
  SpanKind,
  SpanStatusCode,
  type TextMapPropagator,
  type Tracer,
  trace,
} from '@opentelemetry/api'
import { isRelayError } from '../core/errors.js'
import type { OutboxMessage } from '../core/message.js'
import { classifyPublishFailure, type Publisher, type PublishOptions } from '../core/publisher.js'
import { batchScope } from './batch.js'

/** Options of {@link tracedPublisher}. */
export interface TracedPublisherOptions {
  /** Default: `trace.getTracer('@prisma-outbox/relay')`. */
  tracer?: Tracer
  /** Default: the globally registered propagator (W3C trace context is what the consumer reads). */
  propagator?: TextMapPropagator
  /** Recorded as `messaging.client.id`, e.g. the Kafka client id. */
  clientId?: string
}

/** The headers a propagator writes for a span context; replaced on every message. */
const TRACE_HEADERS: ReadonlySet<string> = new Set(['traceparent', 'tracestate'])

function createAttributes(message: OutboxMessage, clientId: string | undefined): Attributes {
  const attributes: Attributes = {
    'messaging.system': 'kafka',
    'messaging.operation.type': 'create',
    'messaging.operation.name': 'create',
    'messaging.destination.name': message.topic,
    'messaging.message.id': message.id,
    'messaging.kafka.message.key': message.key,
  }
  if (message.headers.eventType !== undefined) attributes['outbox.event.type'] = message.headers.eventType
  if (clientId !== undefined) attributes['messaging.client.id'] = clientId
  return attributes
}

function errorType(error: unknown): string {
  if (isRelayError(error)) return error.code
  const name = (error as { name?: unknown } | null)?.name
  return typeof name === 'string' && name !== '' ? name : '_OTHER'
}

/** A traced publisher's tracer and options (read when used: the propagator may be registered later). */
interface Tracing {
  tracer: Tracer
  options: TracedPublisherOptions
}

const propagatorOf = ({ options }: Tracing) => options.propagator ?? propagation

/**
 * Opens a message's create span, child of its writer's context (or of `ambient`), and returns the
 * message carrying the span's context with the span's link for the send span.
 */
function createSpan(
  t: Tracing,
  message: OutboxMessage,
  writer: Context,
  ambient: Context,
  batch: SpanContext | undefined,
): { message: OutboxMessage; link: Link } {
  const parent = trace.getSpanContext(writer) ? writer : ambient
  const span = t.tracer.startSpan(
    `create ${message.topic}`,
    {
      kind: SpanKind.PRODUCER,
      attributes: createAttributes(message, t.options.clientId),
      // From the writer's trace to the relay's batch that sent the message.
      ...(parent === writer && batch ? { links: [{ context: batch }] } : {}),
    },
    parent,
  )
  span.end()
  const created = span.spanContext()
  const link = { context: created }
  // No SDK: the API's span is the parent's own context or none; the message stays as it was.
  if (
    !span.isRecording() &&
    (!isSpanContextValid(created) || created.spanId === trace.getSpanContext(parent)?.spanId)
  )
    return { message, link }
  const headers: Record<string, string> = {}
  for (const name in message.headers)
    if (!TRACE_HEADERS.has(name)) headers[name] = message.headers[name] as string
  propagatorOf(t).inject(trace.setSpan(parent, span), headers, defaultTextMapSetter)
  return { message: { ...message, headers }, link }
}

/** Name and attributes of the send span of `messages`. */
function describeSend(
  messages: OutboxMessage[],
  clientId: string | undefined,
): { name: string; attributes: Attributes } {
  const topics = new Set(messages.map((m) => m.topic))
  const [topic] = topics
  const attributes: Attributes = {
    'messaging.system': 'kafka',
    'messaging.operation.type': 'send',
    'messaging.operation.name': 'send',
  }
  if (topics.size === 1 && topic !== undefined) attributes['messaging.destination.name'] = topic
  if (messages.length !== 1) attributes['messaging.batch.message_count'] = messages.length
  if (clientId !== undefined) attributes['messaging.client.id'] = clientId
  return { name: topics.size === 1 ? `send ${topic}` : 'send', attributes }
}

/**
 * The context the spans of a publish start in: the batch span's when the engine runs with
 * {@link tracingHooks} (opened here, linked to the writers, if the batch has none yet), else the active one.
 */
function batchContext(
  active: Context,
  writers: Context[],
): { ambient: Context; batch: SpanContext | undefined } {
  const scope = batchScope(active)
  if (scope && !scope.span) {
    const contexts = writers.map((w) => trace.getSpanContext(w))
    scope.open(contexts.filter((c): c is SpanContext => c !== undefined).map((c) => ({ context: c })))
  }
  const ambient = scope?.span ? trace.setSpan(active, scope.span) : active
  return { ambient, batch: scope?.span?.spanContext() }
}

/**
 * One publish call: a create span per message, then the send span around the inner publisher's
 * call; a failure is recorded on the send span and rethrown.
 */
async function tracedPublish(
  t: Tracing,
  publisher: Publisher,
  messages: OutboxMessage[],
  publishOptions: PublishOptions | undefined,
): Promise<void> {
  const writers = messages.map((m) => propagatorOf(t).extract(ROOT_CONTEXT, m.headers, defaultTextMapGetter))
  const { ambient, batch } = batchContext(context.active(), writers)
  const created = messages.map((message, i) => createSpan(t, message, writers[i] as Context, ambient, batch))
  const { name, attributes } = describeSend(messages, t.options.clientId)
  const links = created.map((c) => c.link)
  const span = t.tracer.startSpan(name, { kind: SpanKind.CLIENT, attributes, links }, ambient)
  try {
    const sent = created.map((c) => c.message)
    await context.with(trace.setSpan(ambient, span), () => publisher.publish(sent, publishOptions))
  } catch (error) {
    span.recordException(error as Error)
    span.setAttributes({
      'error.type': errorType(error),
      'outbox.publish.failure': classifyPublishFailure(error),
    })
    span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error)?.message })
    throw error
  } finally {
    span.end()
  }
}

/**
 * Wraps a publisher so each message gets a PRODUCER span `create <topic>` (attributes
 * `messaging.system=kafka`, `messaging.destination.name`, `messaging.message.id`,
 * `messaging.kafka.message.key`, `outbox.event.type`), child of the context in the row's
 * `traceparent` (the writer's span) or else of the batch, and its context injected into the
 * message's headers in place of the writer's: the consumer's span becomes its child. Each publish
 * call is a CLIENT span `send <topic>` (`send` when it spans topics) with
 * `messaging.batch.message_count`, linked to the create spans, a child of the batch span when the
 * engine runs with {@link tracingHooks}; a failure is recorded on it (status ERROR, `error.type`,
 * `outbox.publish.failure`) and rethrown unchanged. Each retry is a span of its own.
 *
 * @example
 * import { tracedPublisher, tracingHooks } from '@prisma-outbox/relay/otel'
 * const engine = createEngine({ pool, publisher: tracedPublisher(publisher), hooks: tracingHooks() })
 */
export function tracedPublisher(publisher: Publisher, options: TracedPublisherOptions = {}): Publisher {
  const tracing: Tracing = { tracer: options.tracer ?? trace.getTracer('@prisma-outbox/relay'), options }
  return {
    connect: () => publisher.connect(),
    disconnect: () => publisher.disconnect(),
    ...(publisher.ensureTopics
      ? { ensureTopics: (topics: string[]) => publisher.ensureTopics?.(topics) ?? Promise.resolve() }
      : {}),
    publish: (messages: OutboxMessage[], publishOptions?: PublishOptions): Promise<void> =>
      tracedPublish(tracing, publisher, messages, publishOptions),
  }
}

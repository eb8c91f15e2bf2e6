/**
 * Typed handlers: a map from event type to handler, each handed the event with its payload parsed
 * by the catalogue's schema (the generated `events` of `prisma-outbox-generator`, or
 * `defineEvents(...)`). A payload that fails its schema never reaches a handler: it goes to the
 * inbox's failure policy (dead letter, or rethrown) at once, as no retry can fix it.
 * @module
 */
import { InboxError } from './errors.js'
import type { OutboxEvent } from './event.js'
import type { InboxHandler } from './inbox.js'

/** What the consumer needs of a schema: zod's `safeParse` (any zod 3 or 4 schema has it). */
export interface PayloadSchema<P = unknown> {
  safeParse(value: unknown): { success: true; data: P } | { success: false; error: unknown }
}

/** One event type of a catalogue. */
export interface CatalogueEntry<P = unknown> {
  schema: PayloadSchema<P>
  /** The payload's version, as the `schemaVersion` header of events written with it carries. */
  version?: string
}

/** Event type → its schema (and version): the generated `events`, `defineEvents(...)`, or both spread together. */
export type EventCatalogue = Record<string, CatalogueEntry>

/** The payload type of a catalogue entry. */
export type PayloadOf<Entry> = Entry extends { schema: { safeParse(value: unknown): infer R } }
  ? Extract<R, { success: true }> extends { data: infer P }
    ? P
    : never
  : never

/** The event a typed handler receives: its type narrowed, its payload parsed. */
export type TypedEvent<C extends EventCatalogue, T extends keyof C & string> = OutboxEvent<
  PayloadOf<C[T]>
> & {
  type: T
  /** The `schemaVersion` header, when the event has one. */
  schemaVersion: string | undefined
}

export type TypedHandlers<C extends EventCatalogue, Tx> = {
  [T in keyof C & string]?: (event: TypedEvent<C, T>, tx: Tx) => Promise<void>
}

export interface TypedHandlerOptions {
  /**
   * Events whose type has no handler in the map (other types on the same topic): `skip` records
   * them in the inbox and does nothing else; `fail` sends them to the failure policy.
   * @default 'skip'
   */
  unhandled?: 'skip' | 'fail'
}

/** An inbox handler that also parses events before the inbox runs them (see `Inbox.eachMessage`). */
export interface TypedInboxHandler<Tx> extends InboxHandler<Tx> {
  /**
   * The event with its payload parsed, or undefined when the map has no handler for its type
   * (and `unhandled` is `skip`).
   * @throws InboxError `INBOX_INVALID_PAYLOAD` when the payload fails its schema, or
   *   `INBOX_UNHANDLED_EVENT` (with `unhandled: 'fail'`)
   */
  prepare(event: OutboxEvent): OutboxEvent | undefined
}

/**
 * One inbox handler from a map of handlers keyed by event type.
 *
 * @param catalogue - event type → `{ schema }`; e.g. the generated `events`
 * @param handlers - event type → handler receiving the parsed, typed event
 * @param [options.unhandled='skip'] - what to do with events of types the map does not handle
 * @throws InboxError `INBOX_INVALID_OPTIONS` when a handler's type is not in the catalogue
 * @example
 * await consumer.run({
 *   eachMessage: inbox.eachMessage(
 *     typedHandler(events, {
 *       'employee.created': async (event, tx) => { event.payload.email },
 *     }),
 *   ),
 * })
 */
export function typedHandler<C extends EventCatalogue, Tx>(
  catalogue: C,
  handlers: TypedHandlers<C, Tx>,
  options: TypedHandlerOptions = {},
): TypedInboxHandler<Tx> {
  if (typeof catalogue !== 'object' || catalogue === null) {
    throw new InboxError(
      'INBOX_INVALID_OPTIONS',
      'typedHandler: the catalogue must be an object of event types',
    )
  }
  for (const [type, handler] of Object.entries(handlers ?? {})) {
    if (!Object.hasOwn(catalogue, type)) {
      throw new InboxError(
        'INBOX_INVALID_OPTIONS',
        `typedHandler: there is a handler for "${type}", which is not in the catalogue (known: ${Object.keys(catalogue).join(', ')})`,
      )
    }
    if (typeof handler !== 'function') {
      throw new InboxError(
        'INBOX_INVALID_OPTIONS',
        `typedHandler: the handler for "${type}" must be a function`,
      )
    }
  }
  const unhandled = options.unhandled ?? 'skip'
  if (unhandled !== 'skip' && unhandled !== 'fail') {
    throw new InboxError('INBOX_INVALID_OPTIONS', `typedHandler: options.unhandled must be 'skip' or 'fail'`)
  }
  const prepared = new WeakSet<OutboxEvent>()
  const map = handlers as Record<string, ((event: OutboxEvent, tx: Tx) => Promise<void>) | undefined>

  const prepare = (event: OutboxEvent): OutboxEvent | undefined => {
    if (prepared.has(event)) return event
    const where = `event ${event.id} (${event.type ?? 'no eventType header'}) at ${event.topic}[${event.partition}]@${event.offset}`
    const type = event.type
    if (type === undefined || !Object.hasOwn(map, type) || map[type] === undefined) {
      if (unhandled === 'skip') return undefined
      throw new InboxError('INBOX_UNHANDLED_EVENT', `${where}: no handler for this event type`)
    }
    const entry = catalogue[type] as CatalogueEntry
    const parsed = entry.schema.safeParse(event.payload)
    if (!parsed.success) {
      const version = event.headers.schemaVersion
      const versions =
        version === entry.version
          ? ''
          : ` (event schemaVersion ${version ?? 'absent'}, catalogue version ${entry.version ?? 'absent'})`
      throw new InboxError(
        'INBOX_INVALID_PAYLOAD',
        `${where}: the payload does not match its schema${versions}: ${describe(parsed.error)}`,
        { cause: parsed.error },
      )
    }
    const typed = { ...event, payload: parsed.data, schemaVersion: event.headers.schemaVersion }
    prepared.add(typed)
    return typed
  }

  const handler = async (event: OutboxEvent, tx: Tx) => {
    const typed = prepare(event)
    if (typed) await (map[typed.type as string] as (event: OutboxEvent, tx: Tx) => Promise<void>)(typed, tx)
  }
  return Object.assign(handler, { prepare })
}

/**
 * The event the inbox hands to `handler`: a typed handler's `prepare` parses it first (and throws
 * when its payload fails the schema); other handlers get it as it is.
 * @internal
 */
export function prepareEvent<Payload>(handler: unknown, event: OutboxEvent<Payload>): OutboxEvent<Payload> {
  const prepare = (handler as { prepare?: (event: OutboxEvent) => OutboxEvent | undefined }).prepare
  if (typeof prepare !== 'function') return event
  return (prepare(event as OutboxEvent) ?? event) as OutboxEvent<Payload>
}

function describe(error: unknown): string {
  const issues = (error as { issues?: { path?: PropertyKey[]; message?: string }[] })?.issues
  if (!Array.isArray(issues)) return String(error)
  return issues
    .map((i) => `${i.path?.length ? i.path.map(String).join('.') : '(payload)'}: ${i.message}`)
    .join('; ')
}

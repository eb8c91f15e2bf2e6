export { InboxError, type InboxErrorCode } from './errors.js'
export { decodeHeaders, eventFromMessage, type OutboxEvent } from './event.js'
export type { FailedEvent, RetryFailedResult } from './failed.js'
export type {
  DeadLetterInfo,
  DeadLetterOptions,
  DeadLetterProducer,
  InboxCounters,
  InboxHooks,
  RetryOptions,
} from './failure.js'
export {
  createInbox,
  type HandleResult,
  type Inbox,
  type InboxHandler,
  type InboxOptions,
  type InboxPrismaClient,
  type InboxTransactionClient,
  type PurgeOptions,
} from './inbox.js'
export { type PromRegistryLike, registerInboxMetrics } from './metrics.js'
export type { Purging, StartPurgingOptions } from './retention.js'
export { type SubscribeOptions, subscribe } from './subscribe.js'
export {
  type CatalogueEntry,
  type EventCatalogue,
  type PayloadOf,
  type PayloadSchema,
  type TypedEvent,
  type TypedHandlerOptions,
  type TypedHandlers,
  type TypedInboxHandler,
  typedHandler,
} from './typed.js'

export { InboxError, type InboxErrorCode } from './errors.js'
export { decodeHeaders, eventFromMessage, type OutboxEvent } from './event.js'
export {
  createInbox,
  type HandleResult,
  type Inbox,
  type InboxHandler,
  type InboxOptions,
  type InboxPrismaClient,
  type InboxTransactionClient,
} from './inbox.js'

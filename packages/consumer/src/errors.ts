export type InboxErrorCode =
  | 'INBOX_INVALID_OPTIONS'
  | 'INBOX_INVALID_EVENT'
  /** A payload its catalogue schema rejects (typed handlers). */
  | 'INBOX_INVALID_PAYLOAD'
  /** An event type the handler map does not handle, with `unhandled: 'fail'`. */
  | 'INBOX_UNHANDLED_EVENT'

/** Errors of the inbox helper; `code` says what kind, `message` names the message or option. */
export class InboxError extends Error {
  override readonly name = 'InboxError'
  constructor(
    readonly code: InboxErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options)
  }
}

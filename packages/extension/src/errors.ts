/** What went wrong, as a stable code callers can branch on. */
export type OutboxErrorCode =
  | 'OUTBOX_INVALID_OPTIONS'
  | 'OUTBOX_INVALID_EVENT'
  | 'OUTBOX_UNSERIALISABLE_PAYLOAD'
  | 'OUTBOX_NOT_INSTALLED'
  | 'OUTBOX_PRISMA_INTERNALS'

/**
 * The one error class of the extension. `code` says what kind of problem it is; `message` names
 * the model, field or option involved.
 */
export class OutboxError extends Error {
  override readonly name = 'OutboxError'
  constructor(
    readonly code: OutboxErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options)
  }
}

export function isOutboxError(error: unknown): error is OutboxError {
  return error instanceof OutboxError
}

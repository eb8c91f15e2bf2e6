/**
 * The relay's one error class and the helper that turns anything thrown into text for
 * `last_error`.
 * @module
 */

/** What went wrong, as a stable code callers (HTTP layer, CLI) can branch on. */
export type RelayErrorCode =
  /** An option passed to `createEngine` / `drain` is invalid; the message names it. */
  | 'RELAY_INVALID_OPTIONS'
  /**
   * The broker or the path to it failed (unreachable, no leader, timed out, refused the
   * credentials): not the event's fault. The rows cost no attempt; the relay pauses.
   */
  | 'RELAY_PUBLISH_RETRIABLE'
  /**
   * The broker refused this event for a reason that may pass (e.g. the topic is not authorised
   * yet): the event's fault, so each such failure counts an attempt.
   */
  | 'RELAY_PUBLISH_REJECTED'
  /** Publishing failed because of the message itself (too large, invalid topic, invalid record). */
  | 'RELAY_PUBLISH_PERMANENT'
  /**
   * No acknowledgement within the publish deadline: the messages may still land. The rows keep
   * their lease (so nothing overtakes them) and cost no attempt.
   */
  | 'RELAY_PUBLISH_TIMEOUT'
  /** The publish call gave up before sending anything (no time left): the rows go back as they were. */
  | 'RELAY_PUBLISH_NOT_SENT'
  /** A database statement of the relay failed. */
  | 'RELAY_DATABASE'

/**
 * The one error class of the relay. `code` says what kind of problem it is, `cause` keeps the
 * original error (kafkajs, pg, zod).
 *
 * @example
 * throw new RelayError('RELAY_PUBLISH_PERMANENT', 'message too large', { cause: error })
 */
export class RelayError extends Error {
  override readonly name = 'RelayError'
  constructor(
    readonly code: RelayErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options)
  }

  /** True for publish failures worth retrying; false for permanent ones (and non-publish codes). */
  get retriable(): boolean {
    return (
      this.code === 'RELAY_PUBLISH_RETRIABLE' ||
      this.code === 'RELAY_PUBLISH_REJECTED' ||
      this.code === 'RELAY_PUBLISH_TIMEOUT'
    )
  }
}

/** True when `error` is a {@link RelayError}, optionally with the given code. */
export function isRelayError(error: unknown, code?: RelayErrorCode): error is RelayError {
  return error instanceof RelayError && (code === undefined || error.code === code)
}

/** Default upper bound of `last_error`, in characters. */
export const MAX_ERROR_LENGTH = 4096

/**
 * Normalises anything thrown into a bounded string for `last_error`: `name: message`, followed
 * by the chain of `cause`s, truncated to `maxLength` characters (graphile-worker's `coerceError`).
 *
 * @param error - anything that was thrown
 * @param [maxLength=4096] - upper bound of the result
 * @example
 * coerceError(new Error('boom', { cause: new Error('socket closed') }))
 * // 'Error: boom <- Error: socket closed'
 */
export function coerceError(error: unknown, maxLength = MAX_ERROR_LENGTH): string {
  const parts: string[] = []
  const seen = new Set<unknown>()
  let current: unknown = error
  while (current !== undefined && current !== null && !seen.has(current) && parts.length < 5) {
    seen.add(current)
    parts.push(describe(current))
    current = current instanceof Error ? current.cause : undefined
  }
  const text = parts.join(' <- ') || String(error)
  return text.length <= maxLength ? text : `${text.slice(0, Math.max(0, maxLength - 1))}…`
}

function describe(value: unknown): string {
  if (value instanceof Error) {
    const type = (value as { type?: unknown }).type
    const name = typeof type === 'string' ? `${value.name}[${type}]` : value.name
    return `${name}: ${value.message}`
  }
  if (typeof value === 'string') return value
  try {
    return JSON.stringify(value) ?? String(value)
  } catch {
    return String(value)
  }
}

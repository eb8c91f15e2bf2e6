/**
 * HTTP errors of the relay app: one class with a stable `code`, and the one error handler that
 * turns anything thrown into `{ error: { code, message } }`.
 * @module
 */
import type { Context } from 'hono'
import { HTTPException } from 'hono/http-exception'
import type { ContentfulStatusCode } from 'hono/utils/http-status'
import { coerceError, isRelayError, type RelayError } from '../core/errors.js'

/** Codes of the HTTP layer (in addition to the engine's `RELAY_*` codes). */
export type HttpErrorCode =
  | 'UNAUTHORIZED'
  | 'INVALID_JSON'
  | 'INVALID_BODY'
  | 'INVALID_QUERY'
  | 'PAYLOAD_TOO_LARGE'
  | 'NOT_FOUND'
  | 'UNHEALTHY'
  | 'INTERNAL'

/** The body of every error response. */
export interface ErrorBody {
  error: { code: string; message: string }
}

/**
 * A 4xx/5xx with a stable `code`; thrown by middleware and handlers, rendered by
 * {@link handleError}. The message is shown to the client, so it must never hold a secret.
 *
 * @example
 * throw new HttpError(401, 'UNAUTHORIZED', 'missing credentials')
 */
export class HttpError extends HTTPException {
  override readonly name = 'HttpError'
  constructor(
    status: ContentfulStatusCode,
    readonly code: HttpErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(status, { message, cause: options?.cause })
  }
}

/**
 * Where the app reports errors it hides from the client (5xx). A pino-compatible `Logger` (see
 * `core/log.ts`) or `console` fits.
 */
export interface RelayLogger {
  error(message: string): void
  warn?(message: string): void
}

/** Renders `{ error: { code, message } }`. */
export function errorResponse(
  c: Context,
  status: ContentfulStatusCode,
  code: string,
  message: string,
): Response {
  return c.json({ error: { code, message } } satisfies ErrorBody, status)
}

/**
 * The part of a `RELAY_DATABASE` message safe to show: `<operation> failed (<reason>)`, as built
 * by the engine (`databaseError`); the server's own text after it stays in the logs.
 */
function publicReason(error: RelayError): string {
  const match = /^([\w ]+ failed \([^)]*\))/.exec(error.message)
  return match?.[1] ?? 'the database call failed'
}

/**
 * The app's `onError`: {@link HttpError} → its status and code; Hono's own `HTTPException`
 * (e.g. malformed JSON) → its status; `RelayError` → 400 for invalid options, 503 for the
 * database; anything else → 500 `INTERNAL` with a generic message. 5xx details go to the
 * logger only, never to the client; no stack trace is ever rendered.
 * @internal
 */
export function handleError(logger: RelayLogger) {
  return function onError(error: unknown, c: Context): Response {
    if (error instanceof HttpError)
      return errorResponse(c, error.status as ContentfulStatusCode, error.code, error.message)
    if (error instanceof HTTPException) {
      const status = error.status as ContentfulStatusCode
      const code =
        status === 413
          ? 'PAYLOAD_TOO_LARGE'
          : status === 401
            ? 'UNAUTHORIZED'
            : status < 500
              ? 'BAD_REQUEST'
              : 'INTERNAL'
      const message =
        status < 500 && error.message
          ? error.message
          : status === 413
            ? 'payload too large'
            : 'request failed'
      if (status >= 500) logger.error(`relay: ${c.req.method} ${c.req.path}: ${coerceError(error)}`)
      return errorResponse(c, status, code, message)
    }
    if (isRelayError(error)) {
      if (error.code === 'RELAY_INVALID_OPTIONS') return errorResponse(c, 400, error.code, error.message)
      logger.error(`relay: ${c.req.method} ${c.req.path}: ${coerceError(error)}`)
      if (error.code === 'RELAY_DATABASE')
        return errorResponse(c, 503, error.code, `the database is unavailable: ${publicReason(error)}`)
      return errorResponse(c, 503, error.code, 'the broker is unavailable')
    }
    logger.error(`relay: ${c.req.method} ${c.req.path}: ${coerceError(error)}`)
    return errorResponse(c, 500, 'INTERNAL', 'internal error')
  }
}

/** The app's `notFound`. @internal */
export function handleNotFound(c: Context): Response {
  return errorResponse(c, 404, 'NOT_FOUND', `no route for ${c.req.method} ${c.req.path}`)
}

/**
 * Logging: the relay accepts any pino-compatible logger (`debug`, `info`, `warn`, `error` taking
 * `(fields, msg)` or `(msg)`, and optionally `child`), and brings a small JSON-lines logger of its
 * own for the CLI. No Node built-ins here: it runs wherever the engine does.
 * @module
 */
import type { EngineHooks } from './engine.js'

/** Severity, lowest first. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error'

/** The levels in order; `silent` logs nothing. */
export const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'silent'] as const

/** One logging method: pino's call shapes, `(fields, msg)` and `(msg)`. */
export interface LogFn {
  (fields: Record<string, unknown>, msg?: string): void
  (msg: string): void
}

/**
 * What the relay logs to. A pino logger fits as it is; so does `console` (without `child`).
 *
 * @example
 * // with pino: const logger = pino()
 * const engine = createEngine({ pool, publisher, logger })
 */
export interface Logger {
  debug: LogFn
  info: LogFn
  warn: LogFn
  error: LogFn
  /** A logger that adds `bindings` to every line (pino's `child`). */
  child?(bindings: Record<string, unknown>): Logger
}

/** Logs `msg` with `fields` at `level`, in pino's argument order (fields first, when there are any). */
export function log(logger: Logger, level: LogLevel, msg: string, fields?: Record<string, unknown>): void {
  try {
    if (fields && Object.keys(fields).length > 0) logger[level](fields, msg)
    else logger[level](msg)
  } catch {
    // a broken logger must not break the relay
  }
}

/** `logger.child(bindings)` when the logger has it, else a wrapper adding the fields to each line. */
export function childLogger(logger: Logger, bindings: Record<string, unknown>): Logger {
  if (typeof logger.child === 'function') return logger.child(bindings)
  const at =
    (level: LogLevel): LogFn =>
    (first: Record<string, unknown> | string, msg?: string) => {
      if (typeof first === 'string') logger[level]({ ...bindings }, first)
      else logger[level]({ ...bindings, ...first }, msg)
    }
  return {
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    child: (more) => childLogger(logger, { ...bindings, ...more }),
  }
}

/** Options of {@link createJsonLogger}. */
export interface JsonLoggerOptions {
  /** Where each line goes (one call per line, newline included), e.g. `(l) => process.stderr.write(l)`. */
  write(line: string): unknown
  /** Lowest level written (default `'info'`); `'silent'` writes nothing. */
  level?: (typeof LOG_LEVELS)[number] | undefined
  /** `'json'` (default): one JSON object per line. `'text'`: `time LEVEL msg key=value` for terminals. */
  format?: 'json' | 'text' | undefined
  /** Fields on every line, e.g. `{ name: 'outbox-relay' }`. */
  base?: Record<string, unknown> | undefined
  /** Clock (tests). @internal */
  now?: () => Date
}

/**
 * A minimal logger writing one line per call: `{"level":"info","time":"…","msg":"…",…fields}`,
 * field names as pino's (with string levels). Errors in fields are written as their message.
 *
 * @example
 * const logger = createJsonLogger({ write: (line) => process.stderr.write(line), level: 'debug' })
 * logger.info({ published: 3 }, 'drained')
 */
export function createJsonLogger(options: JsonLoggerOptions): Logger {
  const threshold = LOG_LEVELS.indexOf(options.level ?? 'info')
  const now = options.now ?? (() => new Date())
  const make = (bindings: Record<string, unknown>): Logger => {
    const at =
      (level: LogLevel): LogFn =>
      (first: Record<string, unknown> | string, msg?: string) => {
        if (LOG_LEVELS.indexOf(level) < threshold) return
        const fields = typeof first === 'string' ? {} : first
        const text = typeof first === 'string' ? first : (msg ?? '')
        const entry = { ...bindings, ...plain(fields) }
        options.write(
          options.format === 'text'
            ? textLine(now(), level, text, entry)
            : `${JSON.stringify({ level, time: now().toISOString(), ...entry, msg: text })}\n`,
        )
      }
    return {
      debug: at('debug'),
      info: at('info'),
      warn: at('warn'),
      error: at('error'),
      child: (more) => make({ ...bindings, ...plain(more) }),
    }
  }
  return make(plain(options.base ?? {}))
}

/** Errors become their message (JSON.stringify would write `{}`); bigints become strings. */
function plain(fields: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(fields)) {
    if (value instanceof Error) out[key] = value.message
    else if (typeof value === 'bigint') out[key] = String(value)
    else out[key] = value
  }
  return out
}

function textLine(time: Date, level: LogLevel, msg: string, fields: Record<string, unknown>): string {
  const extra = Object.entries(fields)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? JSON.stringify(v) : (JSON.stringify(v) ?? String(v))}`)
    .join(' ')
  return `${time.toISOString()} ${level.toUpperCase().padEnd(5)} ${msg}${extra ? ` ${extra}` : ''}\n`
}

/**
 * Engine hooks that log what an operator acts on: a batch whose publish failed (warn, with the
 * error and what happened to its rows, dead ones included), leases lost (warn); every batch and
 * drain at debug.
 *
 * @example
 * createEngine({ pool, publisher, hooks: engineLogHooks(logger) })
 */
export function engineLogHooks(logger: Logger): EngineHooks {
  return {
    onBatch(info) {
      const { relayId, size, published, retried, dead, deferred, unsettled, held, lostLeases } = info
      const counts = { relayId, size, published, retried, dead, deferred, unsettled, held }
      if (info.outcome !== 'published')
        log(logger, 'warn', `batch ${info.outcome}: ${info.error ?? 'publish failed'}`, counts)
      else log(logger, 'debug', 'batch published', { ...counts, publishMs: info.publishMs })
      if (lostLeases > 0)
        log(
          logger,
          'warn',
          `${lostLeases} row(s) published after their lease was taken over (they may be published twice)`,
          {
            relayId,
            lostLeases,
          },
        )
    },
    onDrain(result) {
      log(logger, 'debug', 'drain done', { ...result })
    },
  }
}

/**
 * The streamer's callbacks, each preceded by a log line when a logger is given.
 * @module
 */
import { coerceError } from '../core/errors.js'
import { log } from '../core/log.js'
import type { StreamerOptions } from './streamer.js'

/**
 * Role changes at info, failures at error (they are retried: the streamer carries on), batches
 * with dead events at warn, every batch at debug.
 * @internal
 */
export function withStreamLogging(options: StreamerOptions, slot: string): StreamerOptions {
  const logger = options.logger
  if (!logger) return options
  return {
    ...options,
    onRoleChange(role) {
      log(logger, 'info', `stream ${role} (slot ${slot})`, { role, slot })
      options.onRoleChange?.(role)
    },
    onError(error, where) {
      log(logger, 'error', `stream ${where}: ${coerceError(error, 500)}`, { where, slot })
      options.onError?.(error, where)
    },
    onBatch(info) {
      if (info.dead > 0) log(logger, 'warn', `stream: ${info.dead} event(s) marked dead`, { ...info, slot })
      else log(logger, 'debug', 'stream batch published', { ...info, slot })
      options.onBatch?.(info)
    },
  }
}

/**
 * kafkajs' log lines routed to a pino-compatible logger, with the noise of a normal start-up
 * demoted to debug.
 * @module
 */
import { type LogEntry, type logCreator, logLevel } from 'kafkajs'
import { type Logger, type LogLevel, log } from '../core/log.js'

/**
 * Warnings kafkajs gives for settings chosen on purpose. `KafkaPublisher` bounds the idempotent
 * producer's retries so that a broker outage surfaces as a failure the engine backs off from
 * (kafkajs warns about any bound below `Number.MAX_SAFE_INTEGER`).
 */
const EXPECTED_WARNINGS = [/^Limiting retries for the idempotent producer/]

/**
 * Broker answers that are part of a normal start: a topic just created has no leader yet, the
 * transaction coordinator of a fresh broker is still loading. kafkajs logs each at ERROR and then
 * retries; when the retries run out the send itself fails and that failure is reported (the
 * engine's batch warning, the command's error), so nothing real is hidden.
 */
const TRANSIENT_ANSWERS = [
  'There is no leader for this topic-partition as we are in the middle of a leadership election',
  'This server is not the leader for that topic-partition',
  'This server does not host this topic-partition',
  'The group coordinator is not available',
  "The coordinator is loading and hence can't process requests for this group",
  'This is not the correct coordinator for this group',
  'This is not the correct controller for this cluster',
]

const LEVELS: Record<number, LogLevel> = {
  [logLevel.ERROR]: 'error',
  [logLevel.WARN]: 'warn',
  [logLevel.INFO]: 'info',
  [logLevel.DEBUG]: 'debug',
}

/** The level a kafkajs entry is logged at: its own, or debug for the expected noise above. */
export function kafkaEntryLevel(entry: Pick<LogEntry, 'namespace' | 'level' | 'log'>): LogLevel {
  const level = LEVELS[entry.level] ?? 'info'
  const { message, error } = entry.log as { message: string; error?: unknown }
  if (level === 'warn' && EXPECTED_WARNINGS.some((re) => re.test(message))) return 'debug'
  if (level === 'error') {
    const text = `${message} ${typeof error === 'string' ? error : ''}`
    const retried = entry.namespace === 'Connection' || 'retryCount' in entry.log
    if (retried && TRANSIENT_ANSWERS.some((answer) => text.includes(answer))) return 'debug'
  }
  return level
}

/**
 * A kafkajs `logCreator` writing to `logger` (pino, or anything with `debug/info/warn/error`):
 * each line at its level with `namespace`, `broker`, `error` and kafkajs' other fields, under
 * `{ component: 'kafkajs' }`. Expected start-up noise goes to debug (see {@link kafkaEntryLevel}).
 * Set the client's `logLevel` to `logLevel.DEBUG` for the logger to see everything; the
 * logger's own level filters.
 *
 * @example
 * const kafka = new Kafka({ clientId: 'relay', brokers, logLevel: logLevel.INFO, logCreator: kafkaLogCreator(pino()) })
 */
export function kafkaLogCreator(logger: Logger): logCreator {
  return () => (entry) => {
    // kafkajs' stack says where kafkajs noticed, not what went wrong: left out
    const {
      message,
      timestamp: _time,
      logger: _name,
      stack: _stack,
      ...fields
    } = entry.log as LogEntry['log'] & {
      stack?: unknown
    }
    log(logger, kafkaEntryLevel(entry), message, {
      component: 'kafkajs',
      namespace: entry.namespace,
      ...fields,
    })
  }
}

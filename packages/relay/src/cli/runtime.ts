/**
 * Node wiring of the CLI: a pg pool, a kafkajs client and publisher, the engine and its metrics.
 * @module
 */
import { Kafka, logLevel, type SASLOptions } from 'kafkajs'
import type pg from 'pg'
import { createEngine, type Engine, type EngineHooks } from '../core/engine.js'
import { RelayError } from '../core/errors.js'
import { combineHooks } from '../core/hooks.js'
import { createJsonLogger, type Logger, log } from '../core/log.js'
import type { Publisher } from '../core/publisher.js'
import { createRelayMetrics, type RelayMetrics } from '../http/metrics.js'
import { kafkaLogCreator } from '../publishers/kafka-log.js'
import type { RelayConfig } from './config.js'
import { createRelayPool } from './pool.js'
import { createPublisher } from './publisher.js'

/** What a command works with. */
export interface Runtime {
  pool: pg.Pool
  /** The kafkajs client (broker health checks), whichever client publishes. */
  kafka: Kafka
  /** On the client `RELAY_KAFKA_CLIENT` names (kafkajs by default), traced when `RELAY_TRACING` is on. */
  publisher: Publisher
  engine: Engine
  metrics: RelayMetrics
  close(): Promise<void>
}

/**
 * The CLI's logger: JSON lines (or text) on `stream` at the configured level, under
 * `{ name: 'outbox-relay' }`.
 */
export function cliLogger(
  config: Pick<RelayConfig, 'log'>,
  stream: { write(text: string): unknown },
): Logger {
  return createJsonLogger({
    write: (line) => stream.write(line),
    level: config.log.level,
    format: config.log.format,
    base: { name: 'outbox-relay' },
  })
}

/** `pg_stat_activity.application_name` of the relay's sessions: `outbox-relay <RELAY_ID>`. */
export function applicationName(config: RelayConfig): string {
  const id = config.engine?.relayId
  return id ? `outbox-relay ${id}` : 'outbox-relay'
}

export { combineHooks }

/**
 * The relay's OpenTelemetry module, loaded only when `RELAY_TRACING` asks for it:
 * `@opentelemetry/api` is an optional peer dependency.
 */
async function loadTracing(logger: Logger) {
  let otel: typeof import('../otel/index.js')
  try {
    otel = await import('../otel/index.js')
  } catch (error) {
    throw new RelayError(
      'RELAY_INVALID_OPTIONS',
      `RELAY_TRACING: needs the package @opentelemetry/api (npm install @opentelemetry/api) and an OpenTelemetry SDK registered before the relay starts (${(error as Error).message})`,
      { cause: error },
    )
  }
  if (!otel.tracerRegistered())
    log(
      logger,
      'warn',
      'RELAY_TRACING is on, but no OpenTelemetry SDK is registered, so spans go nowhere: start node with --import of your tracing set-up (see the README, Tracing)',
    )
  return otel
}

/**
 * Connects everything. Rejects when the broker cannot be reached (after kafkajs' retries).
 * @internal
 */
export async function createRuntime(
  config: RelayConfig,
  options: { hooks?: EngineHooks; logger: Logger },
): Promise<Runtime> {
  // Every connection bounded in time, and no client without an 'error' listener: a lost
  // connection is logged and replaced, never fatal.
  const pool = createRelayPool(config.databaseUrl, {
    applicationName: applicationName(config),
    onError: (error) => log(options.logger, 'warn', `database connection lost: ${error.message}`),
  })
  const kafka = new Kafka({
    clientId: config.kafka.clientId,
    brokers: config.kafka.brokers,
    ssl: config.kafka.ssl,
    ...(config.kafka.sasl ? { sasl: config.kafka.sasl as SASLOptions } : {}),
    // kafkajs filters before its logCreator: at debug the logger sees everything (noise included)
    logLevel: config.log.level === 'debug' ? logLevel.DEBUG : logLevel.WARN,
    logCreator: kafkaLogCreator(options.logger),
  })
  let kafkaPublisher: Publisher
  try {
    kafkaPublisher = await createPublisher(config, kafka, (line) =>
      log(options.logger, 'warn', line.trim().replace(/^outbox-relay: /, '')),
    )
  } catch (error) {
    await pool.end().catch(() => {})
    throw error
  }
  const metrics = createRelayMetrics()
  let engine: Engine
  let publisher: Publisher = kafkaPublisher
  let flush = async () => {}
  try {
    let tracingHooks: EngineHooks | undefined
    if (config.tracing) {
      const otel = await loadTracing(options.logger)
      publisher = otel.tracedPublisher(kafkaPublisher, { clientId: config.kafka.clientId })
      tracingHooks = otel.tracingHooks()
      flush = otel.flushTracing
    }
    engine = createEngine({
      pool,
      publisher,
      options: config.engine,
      // Tracing outermost: the other hooks' work belongs to the batch's span.
      hooks: combineHooks(tracingHooks, metrics.hooks, options.hooks),
      logger: options.logger,
    })
    await publisher.connect()
  } catch (error) {
    await publisher.disconnect().catch(() => {})
    await pool.end().catch(() => {})
    throw error
  }
  return {
    pool,
    kafka,
    publisher,
    engine,
    metrics,
    async close() {
      await publisher.disconnect().catch(() => {})
      await pool.end().catch(() => {})
      // A process that exits right after (drain from cron) must not lose buffered spans.
      await flush().catch((error: unknown) =>
        log(options.logger, 'warn', `flushing spans failed: ${(error as Error).message}`),
      )
    },
  }
}

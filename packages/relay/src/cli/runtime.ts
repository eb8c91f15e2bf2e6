/**
 * Node wiring of the CLI: a pg pool, a kafkajs client and publisher, the engine and its metrics.
 * @module
 */
import { Kafka, type logCreator, logLevel, type SASLOptions } from 'kafkajs'
import type pg from 'pg'
import { createEngine, type Engine, type EngineHooks } from '../core/engine.js'
import type { Publisher } from '../core/publisher.js'
import { createRelayMetrics, type RelayMetrics } from '../http/metrics.js'
import type { RelayConfig } from './config.js'
import { createRelayPool } from './pool.js'
import { createPublisher } from './publisher.js'

/** What a command works with. */
export interface Runtime {
  pool: pg.Pool
  /** The kafkajs client (broker health checks), whichever client publishes. */
  kafka: Kafka
  /** On the client `RELAY_KAFKA_CLIENT` names (kafkajs by default). */
  publisher: Publisher
  engine: Engine
  metrics: RelayMetrics
  close(): Promise<void>
}

/**
 * A warning KafkaPublisher triggers on purpose: it bounds the idempotent producer's retries so a
 * broker outage surfaces as a retriable failure (see publisher.ts); the warning is noise here.
 */
const EXPECTED_WARNINGS = [/^Limiting retries for the idempotent producer/]

/** kafkajs logs warnings and errors to stderr as one line each (stdout stays clean for results). */
function stderrLogCreator(write: (line: string) => void): logCreator {
  return () =>
    ({ namespace, level, log }) => {
      if (level === logLevel.WARN && EXPECTED_WARNINGS.some((re) => re.test(log.message))) return
      const label = level === logLevel.ERROR ? 'error' : level === logLevel.WARN ? 'warn' : 'info'
      write(`kafkajs ${label} [${namespace}] ${log.message}${log.broker ? ` (broker ${log.broker})` : ''}\n`)
    }
}

/** `pg_stat_activity.application_name` of the relay's sessions: `outbox-relay <RELAY_ID>`. */
export function applicationName(config: RelayConfig): string {
  const id = config.engine?.relayId
  return id ? `outbox-relay ${id}` : 'outbox-relay'
}

/** Merges hook sets (each called in order). */
export function combineHooks(...sets: Array<EngineHooks | undefined>): EngineHooks {
  const list = sets.filter((s): s is EngineHooks => s !== undefined)
  return {
    onBatch: (info) => {
      for (const h of list) h.onBatch?.(info)
    },
    onDrain: (result) => {
      for (const h of list) h.onDrain?.(result)
    },
  }
}

/**
 * Connects everything. Rejects when the broker cannot be reached (after kafkajs' retries).
 * @internal
 */
export async function createRuntime(
  config: RelayConfig,
  options: { hooks?: EngineHooks; log: (line: string) => void },
): Promise<Runtime> {
  // Every connection bounded in time, and no client without an 'error' listener: a lost
  // connection is logged and replaced, never fatal.
  const pool = createRelayPool(config.databaseUrl, {
    applicationName: applicationName(config),
    onError: (error) => options.log(`outbox-relay: database connection lost: ${error.message}\n`),
  })
  const kafka = new Kafka({
    clientId: config.kafka.clientId,
    brokers: config.kafka.brokers,
    ssl: config.kafka.ssl,
    ...(config.kafka.sasl ? { sasl: config.kafka.sasl as SASLOptions } : {}),
    logLevel: logLevel.WARN,
    logCreator: stderrLogCreator(options.log),
  })
  let publisher: Publisher
  try {
    publisher = await createPublisher(config, kafka, options.log)
  } catch (error) {
    await pool.end().catch(() => {})
    throw error
  }
  const metrics = createRelayMetrics()
  let engine: Engine
  try {
    engine = createEngine({
      pool,
      publisher,
      options: config.engine,
      hooks: combineHooks(metrics.hooks, options.hooks),
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
    },
  }
}

/**
 * The CLI's publisher on the Kafka client `RELAY_KAFKA_CLIENT` names. The optional clients are
 * imported only when chosen, and a missing one is a configuration error that says how to install
 * it.
 * @module
 */
import type { Kafka } from 'kafkajs'
import { RelayError } from '../core/errors.js'
import type { Publisher } from '../core/publisher.js'
import { KafkaPublisher } from '../publishers/kafkajs.js'
import type { KafkaClientName, RelayConfig } from './config.js'

/** How to install each optional client. */
const INSTALL: Record<Exclude<KafkaClientName, 'kafkajs'>, string> = {
  platformatic: 'npm install @platformatic/kafka@^1 (1.x runs on Node 20; 2.x needs Node 22.22+)',
  confluent:
    'CKJS_LINKING=dynamic npm install @confluentinc/kafka-javascript (native: needs librdkafka-dev and a C++ toolchain)',
}

/** The SASL mechanism names both clients use. */
const SASL_MECHANISMS = {
  plain: 'PLAIN',
  'scram-sha-256': 'SCRAM-SHA-256',
  'scram-sha-512': 'SCRAM-SHA-512',
} as const

function notInstalled(client: Exclude<KafkaClientName, 'kafkajs'>, error: unknown): RelayError {
  const root = error instanceof Error && error.cause instanceof Error ? error.cause : error
  const reason = root instanceof Error ? root.message.split('\n')[0] : String(root)
  return new RelayError(
    'RELAY_INVALID_OPTIONS',
    `RELAY_KAFKA_CLIENT=${client}: the client cannot be loaded (${reason}); install it beside @prisma-outbox/relay: ${INSTALL[client]}`,
    { cause: error },
  )
}

/** librdkafka's security properties for the CLI's SSL/SASL settings. @internal */
export function rdkafkaSecurity(kafka: RelayConfig['kafka']): Record<string, string> {
  const protocol = `${kafka.sasl ? 'sasl_' : ''}${kafka.ssl ? 'ssl' : 'plaintext'}`
  if (!kafka.sasl) return { 'security.protocol': protocol }
  return {
    'security.protocol': protocol,
    'sasl.mechanisms': SASL_MECHANISMS[kafka.sasl.mechanism],
    'sasl.username': kafka.sasl.username,
    'sasl.password': kafka.sasl.password,
  }
}

/**
 * A publisher (not connected) on the configured client. kafkajs is always there; the others
 * are loaded here.
 * @throws RelayError('RELAY_INVALID_OPTIONS') when the chosen client is not installed
 */
export async function createPublisher(
  config: RelayConfig,
  kafka: Kafka,
  log: (line: string) => void,
): Promise<Publisher> {
  const k = config.kafka
  if (k.client === 'platformatic') {
    const loaded = await import('../publishers/platformatic.js').catch((error: unknown) => {
      throw notInstalled('platformatic', error)
    })
    return new loaded.PlatformaticPublisher({
      brokers: k.brokers,
      clientId: k.clientId,
      numPartitions: k.numPartitions,
      connection: {
        ...(k.ssl ? { tls: {} } : {}),
        ...(k.sasl
          ? {
              sasl: {
                mechanism: SASL_MECHANISMS[k.sasl.mechanism],
                username: k.sasl.username,
                password: k.sasl.password,
              },
            }
          : {}),
      },
    })
  }
  if (k.client === 'confluent') {
    const { ConfluentPublisher, loadConfluentModule } = await import('../publishers/confluent.js')
    const module = await loadConfluentModule().catch((error: unknown) => {
      throw notInstalled('confluent', error)
    })
    return new ConfluentPublisher({
      module,
      brokers: k.brokers,
      clientId: k.clientId,
      numPartitions: k.numPartitions,
      config: rdkafkaSecurity(k),
      log: (line) => log(`${line}\n`),
    })
  }
  return new KafkaPublisher({ kafka, numPartitions: k.numPartitions })
}

/**
 * The Kafka clients the publisher contract runs on: kafkajs and `@platformatic/kafka` always;
 * `@confluentinc/kafka-javascript` when `RELAY_CONFLUENT_DIR` names a folder it is installed in
 * (`npm run test:confluent` installs it there), and then it must load.
 */
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { Kafka, logLevel } from 'kafkajs'
import type { Publisher } from '../src/core/publisher.js'
import { CONFLUENT_MODULE, type ConfluentModule, ConfluentPublisher } from '../src/publishers/confluent.js'
import { KafkaPublisher } from '../src/publishers/kafkajs.js'
import { PlatformaticPublisher } from '../src/publishers/platformatic.js'

/** Options every client takes alike. */
export interface ClientOptions {
  brokers: string[]
  numPartitions?: number
  sendTimeoutMs?: number
}

export interface PublisherClient {
  name: 'kafkajs' | 'platformatic' | 'confluent'
  /** A publisher, not connected yet. */
  create(options: ClientOptions): Publisher
}

/** `@confluentinc/kafka-javascript` from `dir`; throws when it is not there or does not load. */
export function confluentFrom(dir: string): ConfluentModule {
  return createRequire(join(dir, 'package.json'))(CONFLUENT_MODULE) as ConfluentModule
}

const kafkajs: PublisherClient = {
  name: 'kafkajs',
  create: (o) =>
    new KafkaPublisher({
      kafka: new Kafka({
        clientId: 'publisher-contract',
        brokers: o.brokers,
        connectionTimeout: 1_000,
        requestTimeout: 2_000,
        retry: { retries: 2, maxRetryTime: 200 },
        logLevel: logLevel.NOTHING,
      }),
      numPartitions: o.numPartitions,
      sendTimeoutMs: o.sendTimeoutMs,
      retry: { retries: 2, initialRetryTime: 50, maxRetryTime: 200 },
    }),
}

const platformatic: PublisherClient = {
  name: 'platformatic',
  create: (o) =>
    new PlatformaticPublisher({
      brokers: o.brokers,
      clientId: 'publisher-contract',
      numPartitions: o.numPartitions,
      sendTimeoutMs: o.sendTimeoutMs,
      retries: 2,
      retryDelayMs: 50,
      connection: { connectTimeout: 1_000 },
    }),
}

function confluent(module: ConfluentModule): PublisherClient {
  return {
    name: 'confluent',
    create: (o) =>
      new ConfluentPublisher({
        module,
        brokers: o.brokers,
        clientId: 'publisher-contract',
        numPartitions: o.numPartitions,
        sendTimeoutMs: o.sendTimeoutMs,
        log: () => {},
      }),
  }
}

/** The clients of this run. */
export function publisherClients(env: NodeJS.ProcessEnv = process.env): PublisherClient[] {
  const dir = env.RELAY_CONFLUENT_DIR?.trim()
  return dir ? [kafkajs, platformatic, confluent(confluentFrom(dir))] : [kafkajs, platformatic]
}

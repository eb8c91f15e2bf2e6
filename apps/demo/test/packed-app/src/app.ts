/**
 * An application outside the monorepo, as a user writes it: it imports every public entry point of
 * the installed tarballs. The packed-tarball test compiles it under the strictest common flags.
 */
import { PrismaPg } from '@prisma/adapter-pg'
import { createInbox, type InboxCounters, type OutboxEvent, subscribe } from '@prisma-outbox/consumer'
import { OutboxError } from '@prisma-outbox/extension'
import { outboxMigrationSql } from '@prisma-outbox/extension/sql'
import { createEngine, createRelayApp, KafkaPublisher } from '@prisma-outbox/relay'
import { relayConnectionConfig } from '@prisma-outbox/relay/cli'
import { createEngine as createEdgeEngine, type Publisher } from '@prisma-outbox/relay/core'
import { FetchPublisher } from '@prisma-outbox/relay/fetch'
import { FetchPublisher as LegacyFetchPublisher } from '@prisma-outbox/relay/fetch-publisher'
import { createRelayApp as createEdgeRelayApp } from '@prisma-outbox/relay/http'
import { kafkaHealthCheck } from '@prisma-outbox/relay/kafkajs'
import { Kafka } from 'kafkajs'
import pg from 'pg'
import { PrismaClient } from './generated/client/client.js'
import { outbox } from './generated/outbox/index.js'

interface EmployeePayload {
  id: string
  name: string
}

export async function main(connectionString: string, brokers: string[]): Promise<void> {
  const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString }) }).$extends(outbox())
  const created = await prisma.employee.create({ data: { email: 'ada@example.com', name: 'Ada' } })
  await prisma.$transaction(async (tx) => {
    await tx.employee.update({ where: { id: created.id }, data: { name: 'Ada L.' } })
    await tx.$outbox.emit({
      aggregateType: 'payroll',
      aggregateId: created.id,
      type: 'payroll.recalculated',
      payload: { id: created.id },
    })
  })

  const pool = new pg.Pool(relayConnectionConfig(connectionString))
  const kafka = new Kafka({ clientId: 'packed-app', brokers })
  const publisher = new KafkaPublisher({ kafka })
  await publisher.connect()
  const engine = createEngine({ pool, publisher, options: { batchSize: 50 } })
  const drained = await engine.drain({ budgetMs: 5_000 })
  const relay = createRelayApp({ engine, pool, auth: { token: 'x'.repeat(32) } })
  const restPublisher: Publisher = new FetchPublisher({
    baseUrl: 'http://127.0.0.1:8082',
    clusterId: 'local',
  })
  const legacy: Publisher = new LegacyFetchPublisher({ baseUrl: 'http://127.0.0.1:8082', clusterId: 'local' })
  const kafkaReady = kafkaHealthCheck(kafka)
  const edge = createEdgeRelayApp({
    engine: createEdgeEngine({ pool, publisher: restPublisher }),
    pool,
    auth: { token: 'y'.repeat(32) },
  })

  const deadLetters = kafka.producer({ idempotent: true })
  await deadLetters.connect()
  const inbox = createInbox(prisma, {
    consumer: 'directory',
    retry: { maxAttempts: 5, initialDelayMs: 200, maxDelayMs: 10_000 },
    deadLetter: { producer: deadLetters, topic: (source) => `${source}.dlq` },
    hooks: {
      onDuplicate: (event) => console.info('duplicate', event.id),
      onRetry: ({ event, attempt, delayMs }) => console.warn('retry', event.id, attempt, delayMs),
      onDeadLetter: ({ topic, offset, deadLetterTopic }) => console.error(topic, offset, deadLetterTopic),
    },
  })
  const consumer = kafka.consumer({ groupId: 'directory' })
  await consumer.connect()
  await subscribe(consumer, {
    topics: ['outbox.event.employee'],
    fromBeginning: true,
    signal: AbortSignal.timeout(60_000),
    onWaiting: ({ attempt }) => console.warn('waiting for the topic', attempt),
  })
  await consumer.run({
    eachMessage: inbox.eachMessage<EmployeePayload>(async (event: OutboxEvent<EmployeePayload>, tx) => {
      await tx.employee.findUnique({ where: { id: event.payload.id } })
    }),
  })
  const purged: number = await inbox.purge({ olderThanMs: 14 * 24 * 3600_000, batchSize: 500 })
  const counters: InboxCounters = inbox.counters()
  console.log(purged, counters.deadLettered)
  const health = (await relay.request('/health')).status + (await edge.request('/health')).status
  const ddl: string = outboxMigrationSql()
  const error = new OutboxError('OUTBOX_INVALID_OPTIONS', 'example')
  console.log(drained.published, health, ddl.length, error.code, legacy !== restPublisher)
  await kafkaReady.check()
  await kafkaReady.close()
}

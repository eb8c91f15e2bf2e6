/**
 * The directory service: reads employee events from Kafka through the inbox and keeps the
 * `directory_entry` projection. Handlers are typed by the generated catalogue (each payload
 * parsed by its schema) and traced (each runs in a span continuing the writer's trace). A
 * redelivered event is skipped by the inbox, so it has no second effect.
 * @module
 */
import { createInbox, type OutboxEvent, subscribe, typedHandler } from '@prisma-outbox/consumer'
import { traced } from '@prisma-outbox/consumer/otel'
import type { Kafka } from 'kafkajs'
import type { DemoPrisma } from './db.js'
import { type EmployeePayload, events } from './generated/outbox/index.js'

export const DIRECTORY_CONSUMER = 'directory'

type Tx = Parameters<Parameters<DemoPrisma['$transaction']>[0]>[0]

/** Applies one employee event to the projection. */
export async function applyEmployeeEvent(event: OutboxEvent<EmployeePayload>, tx: Tx): Promise<void> {
  const employee = event.payload
  if (event.type === 'employee.deleted') {
    await tx.directoryEntry.deleteMany({ where: { employeeId: employee.id } })
    return
  }
  const entry = {
    name: employee.name,
    email: employee.email,
    title: employee.title,
    department: employee.department,
    lastEventId: event.id,
  }
  await tx.directoryEntry.upsert({
    where: { employeeId: employee.id },
    create: { employeeId: employee.id, ...entry },
    update: entry,
  })
}

/** Starts the directory consumer; resolves once it has joined its group. */
export async function startDirectoryConsumer(
  kafka: Kafka,
  prisma: DemoPrisma,
  topic: string,
  groupId = DIRECTORY_CONSUMER,
) {
  const inbox = createInbox(prisma, { consumer: groupId })
  // Fetches wait at most a second for new messages (kafkajs: 5 s), so stopping does not wait longer.
  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 1_000 })
  await consumer.connect()
  // Waits for the topic when the relay has not created it yet, instead of failing.
  await subscribe(consumer, { topics: [topic], fromBeginning: true })
  const joined = new Promise<void>((resolve) => consumer.on(consumer.events.GROUP_JOIN, () => resolve()))
  await consumer.run({
    eachMessage: inbox.eachMessage(
      traced(
        typedHandler(events, {
          'employee.created': applyEmployeeEvent,
          'employee.updated': applyEmployeeEvent,
          'employee.deleted': applyEmployeeEvent,
        }),
        { consumerGroup: groupId },
      ),
    ),
  })
  await joined
  return { inbox, consumer, stop: () => consumer.disconnect() }
}

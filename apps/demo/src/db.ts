import { PrismaPg } from '@prisma/adapter-pg'
import { captureSpans, traceHeaders } from '@prisma-outbox/extension/otel'
import { PrismaClient } from './generated/client/client.js'
import { outbox } from './generated/outbox/index.js'

/** Where employee events go (the annotation's topic; tests use one of their own). */
export const EMPLOYEE_TOPIC = 'outbox.event.employee'

/**
 * The demo's Prisma client. `Employee` is annotated `/// @outbox` in prisma/schema.prisma, so
 * every employee write also commits its outbox event. Each write runs in a span of its own
 * (`captureSpans`, applied first so it is active when the outbox reads the headers), and its
 * outbox row carries that span's trace context (`traceHeaders`).
 */
export function createPrisma(databaseUrl: string, employeeTopic = EMPLOYEE_TOPIC) {
  return new PrismaClient({ adapter: new PrismaPg({ connectionString: databaseUrl }) })
    .$extends(captureSpans())
    .$extends(outbox({ models: { Employee: { topic: employeeTopic } }, headers: traceHeaders }))
}

export type DemoPrisma = ReturnType<typeof createPrisma>

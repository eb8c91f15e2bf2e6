import { PrismaPg } from '@prisma/adapter-pg'
import { traceHeaders } from '@prisma-outbox/extension/otel'
import { PrismaClient } from './generated/client/client.js'
import { outbox } from './generated/outbox/index.js'

/** Where employee events go (the annotation's topic; tests use one of their own). */
export const EMPLOYEE_TOPIC = 'outbox.event.employee'

/**
 * The demo's Prisma client. `Employee` is annotated `/// @outbox` in prisma/schema.prisma, so
 * every employee write also commits its outbox event, carrying the request's trace context.
 */
export function createPrisma(databaseUrl: string, employeeTopic = EMPLOYEE_TOPIC) {
  return new PrismaClient({ adapter: new PrismaPg({ connectionString: databaseUrl }) }).$extends(
    outbox({ models: { Employee: { topic: employeeTopic } }, headers: traceHeaders }),
  )
}

export type DemoPrisma = ReturnType<typeof createPrisma>

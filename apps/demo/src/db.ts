import { PrismaPg } from '@prisma/adapter-pg'
import { PrismaClient } from './generated/client/client.js'
import { outbox } from './generated/outbox/index.js'

/** Where employee events go (the annotation's topic; tests use one of their own). */
export const EMPLOYEE_TOPIC = 'outbox.event.employee'

/**
 * The demo's Prisma client. `Employee` is annotated `/// @outbox` in prisma/schema.prisma, so
 * every employee write also commits its outbox event.
 */
export function createPrisma(databaseUrl: string, employeeTopic = EMPLOYEE_TOPIC) {
  return new PrismaClient({ adapter: new PrismaPg({ connectionString: databaseUrl }) }).$extends(
    outbox({ models: { Employee: { topic: employeeTopic } } }),
  )
}

export type DemoPrisma = ReturnType<typeof createPrisma>

import { PrismaPg } from '@prisma/adapter-pg'
import { PrismaClient } from './generated/client/client.js'
import { outbox } from './generated/outbox/index.js'

/**
 * The demo's Prisma client. `Employee` is annotated `/// @outbox` in prisma/schema.prisma, so
 * every employee write also commits its outbox event.
 */
export function createPrisma(databaseUrl: string) {
  return new PrismaClient({ adapter: new PrismaPg({ connectionString: databaseUrl }) }).$extends(outbox())
}

export type DemoPrisma = ReturnType<typeof createPrisma>

// For the Prisma CLI (`prisma migrate deploy`, `prisma studio`) where its engines can be installed.
// The project's own scripts apply the same migrations without it: `npm run db:migrate`.
import { defineConfig } from 'prisma/config'

export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
  datasource: { url: process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres' },
})

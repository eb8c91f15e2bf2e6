/**
 * The outbox table as text, for users who apply DDL with their own tools.
 * @module
 */
import { readFileSync } from 'node:fs'

/** Name of the migration folder shipped in `prisma/migrations/`. */
export const OUTBOX_MIGRATION_NAME = '20261122000000_outbox_event'

// src/sql and dist/sql are both two levels below the package root.
const packageFile = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8')

/**
 * The migration SQL: `outbox_event`, its partial indexes and the NOTIFY trigger.
 * @example await pool.query(outboxMigrationSql())
 */
export function outboxMigrationSql(): string {
  return packageFile(`prisma/migrations/${OUTBOX_MIGRATION_NAME}/migration.sql`)
}

/** The `OutboxEvent` model to paste into schema.prisma. */
export function outboxModelPrisma(): string {
  return packageFile('prisma/outbox.prisma')
}

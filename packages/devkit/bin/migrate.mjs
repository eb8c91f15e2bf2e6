#!/usr/bin/env node
// Usage: outbox-migrate <migrations-dir> [more dirs...]   (DATABASE_URL names the database)
import { applyMigrations } from '../dist/migrate.js'

const dirs = process.argv.slice(2)
const url = process.env.DATABASE_URL
if (dirs.length === 0) {
  console.error('usage: outbox-migrate <migrations-dir> [more dirs...]  (DATABASE_URL names the database)')
  process.exit(2)
}
if (!url) {
  console.error('DATABASE_URL is not set: give the PostgreSQL URL of the database to migrate')
  process.exit(2)
}
try {
  const { applied, skipped } = await applyMigrations(url, dirs)
  for (const name of applied) console.log(`applied ${name}`)
  console.log(`${applied.length} applied, ${skipped.length} already applied`)
} catch (error) {
  console.error(error instanceof Error ? error.message : error)
  process.exit(1)
}

import { describe, expect, it } from 'vitest'
import { outboxMigrationSql } from '../sql/index.js'
import { createdObjects, rerunnable } from './ddl.js'

describe('rerunnable', () => {
  it('Should make every CREATE of the outbox migration safe to run again, and nothing else', () => {
    const sql = rerunnable(outboxMigrationSql())
    expect(sql).toMatch(/^CREATE TABLE IF NOT EXISTS "outbox_event"/m)
    expect(sql.match(/^CREATE INDEX IF NOT EXISTS "/gm)).toHaveLength(5)
    expect(sql).toMatch(/^CREATE OR REPLACE FUNCTION "outbox_event_notify"/m)
    expect(sql).toMatch(/^CREATE OR REPLACE TRIGGER "outbox_event_notify"/m)
    expect(sql).not.toMatch(/^CREATE (TABLE|INDEX|FUNCTION|TRIGGER) "/m)
    expect(rerunnable(sql)).toBe(sql)
  })

  it('Should keep UNIQUE on unique indexes', () => {
    expect(rerunnable('CREATE UNIQUE INDEX "u" ON "t" ("c");')).toBe(
      'CREATE UNIQUE INDEX IF NOT EXISTS "u" ON "t" ("c");',
    )
  })
})

describe('rerunnable ALTER TABLE', () => {
  const alter = `ALTER TABLE "outbox_inbox"
    ADD COLUMN "status" TEXT NOT NULL DEFAULT 'processed',
    ADD COLUMN "attempts" INTEGER,
    ADD CONSTRAINT "outbox_inbox_status_check" CHECK ("status" IN ('processed', 'failed'));
`

  it('Should add columns only when missing, and a constraint only when the table lacks it', () => {
    const sql = rerunnable(alter)
    expect(sql).toMatch(/ADD COLUMN IF NOT EXISTS "status" TEXT NOT NULL DEFAULT 'processed',/)
    expect(sql).toMatch(/ADD COLUMN IF NOT EXISTS "attempts" INTEGER;/)
    expect(sql).toMatch(
      /IF NOT EXISTS \(SELECT 1 FROM pg_constraint WHERE conname = 'outbox_inbox_status_check' AND conrelid = '"outbox_inbox"'::regclass\)/,
    )
    expect(sql).toMatch(
      / {4}ALTER TABLE "outbox_inbox" ADD CONSTRAINT "outbox_inbox_status_check" CHECK \("status" IN \('processed', 'failed'\)\);/,
    )
    expect(rerunnable(sql)).toBe(sql)
  })

  it('Should leave other ALTER TABLE clauses as they are', () => {
    expect(rerunnable('ALTER TABLE "t" SET (fillfactor = 50);')).toBe(
      'ALTER TABLE "t"\n    SET (fillfactor = 50);',
    )
  })
})

describe('createdObjects', () => {
  it('Should list the outbox table and its five partial indexes', () => {
    expect(createdObjects(outboxMigrationSql())).toEqual([
      { kind: 'table', name: 'outbox_event', partial: false },
      { kind: 'index', name: 'outbox_event_pending_seq_idx', partial: true },
      { kind: 'index', name: 'outbox_event_unfinished_key_idx', partial: true },
      { kind: 'index', name: 'outbox_event_published_at_idx', partial: true },
      { kind: 'index', name: 'outbox_event_dead_key_idx', partial: true },
      { kind: 'index', name: 'outbox_event_held_key_idx', partial: true },
    ])
  })
})

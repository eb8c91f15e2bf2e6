/**
 * The outbox table as text, for users who apply DDL with their own tools. Shipped as constants
 * (no file is read at run time), so bundled deployments work; test/package.test.ts checks they
 * equal the files in prisma/.
 * @module
 */

/** Name of the first migration folder shipped in `prisma/migrations/` (the table). */
export const OUTBOX_MIGRATION_NAME = '20261122000000_outbox_event'

/** Every migration folder shipped in `prisma/migrations/`, in the order they apply. */
export const OUTBOX_MIGRATION_NAMES = [
  OUTBOX_MIGRATION_NAME,
  '20261202000000_outbox_dead_key_idx',
  '20261202120000_outbox_held_key_idx',
] as const

const MIGRATION_SQL =
  '-- prisma-outbox: the outbox table, its partial indexes and the NOTIFY trigger used by watch mode.\n-- Matches the `OutboxEvent` model in @prisma-outbox/extension/prisma/outbox.prisma.\n\nCREATE TABLE "outbox_event" (\n    "id" UUID NOT NULL,\n    "aggregatetype" TEXT NOT NULL,\n    "aggregateid" TEXT NOT NULL,\n    "type" TEXT NOT NULL,\n    "payload" JSONB NOT NULL,\n    "topic" TEXT NOT NULL,\n    "headers" JSONB NOT NULL DEFAULT \'{}\',\n    "status" TEXT NOT NULL DEFAULT \'pending\',\n    "attempts" INTEGER NOT NULL DEFAULT 0,\n    "available_at" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,\n    "locked_by" TEXT,\n    "locked_until" TIMESTAMPTZ(6),\n    "last_error" TEXT,\n    "created_at" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,\n    "published_at" TIMESTAMPTZ(6),\n    "seq" BIGSERIAL NOT NULL,\n    "txid" xid8 NOT NULL DEFAULT pg_current_xact_id(),\n\n    CONSTRAINT "outbox_event_pkey" PRIMARY KEY ("id"),\n    CONSTRAINT "outbox_event_status_check" CHECK ("status" IN (\'pending\', \'published\', \'dead\'))\n) WITH (fillfactor = 50);\n-- fillfactor 50: the relay updates each row twice (leased, then published). Free space on the\n-- page lets the lease update, which changes no indexed column, be an in-place (HOT) update with\n-- no new index entries. Measured in bench/RESULTS.md: about twice the drain throughput of 100.\n\n-- The relay claims due pending rows in insertion order.\nCREATE INDEX "outbox_event_pending_seq_idx" ON "outbox_event" ("seq") WHERE "status" = \'pending\';\n\n-- Head-of-line check: is there an earlier unfinished row for the same topic and key?\nCREATE INDEX "outbox_event_unfinished_key_idx" ON "outbox_event" ("topic", "aggregateid", "seq")\n    WHERE "status" <> \'published\';\n\n-- Retention deletes published rows by age.\nCREATE INDEX "outbox_event_published_at_idx" ON "outbox_event" ("published_at") WHERE "status" = \'published\';\n\n-- Watch mode LISTENs on this channel. One notification per writing statement, delivered at commit.\nCREATE FUNCTION "outbox_event_notify"() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n    PERFORM pg_notify(\'outbox_event\', \'\');\n    RETURN NULL;\nEND;\n$$;\n\nCREATE TRIGGER "outbox_event_notify"\n    AFTER INSERT ON "outbox_event"\n    FOR EACH STATEMENT EXECUTE FUNCTION "outbox_event_notify"();\n'

const DEAD_KEY_INDEX_SQL =
  '-- prisma-outbox: head-of-line check for dead rows (\'block-key\' policy): is there a dead row of\n-- this topic and key before a given seq? Dead rows are few, so this index stays small, and the\n-- check does not walk the key\'s other unfinished rows.\nCREATE INDEX "outbox_event_dead_key_idx" ON "outbox_event" ("topic", "aggregateid", "seq")\n    WHERE "status" = \'dead\';\n'

const HELD_KEY_INDEX_SQL =
  '-- prisma-outbox: head-of-line check for held rows (\'block-key\' policy): is there a pending row\n-- with `last_error` set (held back behind a dead row, or failed an attempt) of this topic and\n-- key before a given seq? Such rows are few, so this index stays small, and the stream relay\'s\n-- check does not walk the key\'s other rows (published ones included until a vacuum).\nCREATE INDEX "outbox_event_held_key_idx" ON "outbox_event" ("topic", "aggregateid", "seq")\n    WHERE "status" = \'pending\' AND "last_error" IS NOT NULL;\n'

const OUTBOX_MODEL =
  '/// One row per event to publish. Written by @prisma-outbox/extension in the same transaction as\n/// the change it describes; drained to Kafka by @prisma-outbox/relay.\nmodel OutboxEvent {\n  /// Event id and idempotency key (UUIDv7, time ordered); sent as the Kafka header `id`.\n  id            String                 @id @db.Uuid\n  aggregatetype String\n  aggregateid   String\n  type          String\n  payload       Json\n  topic         String\n  headers       Json                   @default("{}")\n  /// pending | published | dead\n  status        String                 @default("pending")\n  attempts      Int                    @default(0)\n  availableAt   DateTime               @default(now()) @map("available_at") @db.Timestamptz(6)\n  lockedBy      String?                @map("locked_by")\n  lockedUntil   DateTime?              @map("locked_until") @db.Timestamptz(6)\n  lastError     String?                @map("last_error")\n  createdAt     DateTime               @default(now()) @map("created_at") @db.Timestamptz(6)\n  publishedAt   DateTime?              @map("published_at") @db.Timestamptz(6)\n  /// Insertion order; with `txid` it gives per-key commit order to the relay.\n  seq           BigInt                 @default(autoincrement())\n  /// Id of the writing transaction (pg_current_xact_id()); rows of open transactions are never overtaken.\n  txid          Unsupported("xid8")    @default(dbgenerated("pg_current_xact_id()"))\n\n  @@map("outbox_event")\n}\n'

/**
 * The migrations' SQL, every folder of {@link OUTBOX_MIGRATION_NAMES} in order, joined by a
 * newline: `outbox_event`, its partial indexes and the NOTIFY trigger.
 * @example await pool.query(outboxMigrationSql())
 */
export function outboxMigrationSql(): string {
  return [MIGRATION_SQL, DEAD_KEY_INDEX_SQL, HELD_KEY_INDEX_SQL].join('\n')
}

/** The `OutboxEvent` model to paste into schema.prisma. */
export function outboxModelPrisma(): string {
  return OUTBOX_MODEL
}

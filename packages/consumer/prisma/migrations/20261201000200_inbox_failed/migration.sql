-- prisma-outbox: events a consumer gave up on, kept in its inbox as 'failed' (instead of a
-- dead-letter topic) with the message, so they are not redelivered forever and can be retried.
ALTER TABLE "outbox_inbox"
    ADD COLUMN "status" TEXT NOT NULL DEFAULT 'processed',
    ADD COLUMN "attempts" INTEGER,
    ADD COLUMN "last_error" TEXT,
    ADD COLUMN "message_key" TEXT,
    ADD COLUMN "message_value" TEXT,
    ADD COLUMN "message_headers" JSONB,
    ADD CONSTRAINT "outbox_inbox_status_check" CHECK ("status" IN ('processed', 'failed'));

-- Lists a consumer's failed events, oldest first.
CREATE INDEX "outbox_inbox_failed_idx" ON "outbox_inbox" ("consumer", "processed_at") WHERE "status" = 'failed';

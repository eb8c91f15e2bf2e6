-- prisma-outbox: the consumer-side inbox. One row per (consumer, event id) handled.
CREATE TABLE "outbox_inbox" (
    "consumer" TEXT NOT NULL,
    "event_id" UUID NOT NULL,
    "event_type" TEXT,
    "topic" TEXT,
    "partition" INTEGER,
    "offset" BIGINT,
    "processed_at" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "outbox_inbox_pkey" PRIMARY KEY ("consumer", "event_id")
);

-- Lets retention delete old entries by age.
CREATE INDEX "outbox_inbox_processed_at_idx" ON "outbox_inbox" ("processed_at");

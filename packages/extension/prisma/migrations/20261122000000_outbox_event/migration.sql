-- prisma-outbox: the outbox table, its partial indexes and the NOTIFY trigger used by watch mode.
-- Matches the `OutboxEvent` model in @prisma-outbox/extension/prisma/outbox.prisma.

CREATE TABLE "outbox_event" (
    "id" UUID NOT NULL,
    "aggregatetype" TEXT NOT NULL,
    "aggregateid" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "payload" JSONB NOT NULL,
    "topic" TEXT NOT NULL,
    "headers" JSONB NOT NULL DEFAULT '{}',
    "status" TEXT NOT NULL DEFAULT 'pending',
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "available_at" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "locked_by" TEXT,
    "locked_until" TIMESTAMPTZ(6),
    "last_error" TEXT,
    "created_at" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "published_at" TIMESTAMPTZ(6),
    "seq" BIGSERIAL NOT NULL,
    "txid" xid8 NOT NULL DEFAULT pg_current_xact_id(),

    CONSTRAINT "outbox_event_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "outbox_event_status_check" CHECK ("status" IN ('pending', 'published', 'dead'))
) WITH (fillfactor = 50);
-- fillfactor 50: the relay updates each row twice (leased, then published). Free space on the
-- page lets the lease update, which changes no indexed column, be an in-place (HOT) update with
-- no new index entries. Measured in bench/RESULTS.md: about twice the drain throughput of 100.

-- The relay claims due pending rows in insertion order.
CREATE INDEX "outbox_event_pending_seq_idx" ON "outbox_event" ("seq") WHERE "status" = 'pending';

-- Head-of-line check: is there an earlier unfinished row for the same topic and key?
CREATE INDEX "outbox_event_unfinished_key_idx" ON "outbox_event" ("topic", "aggregateid", "seq")
    WHERE "status" <> 'published';

-- Retention deletes published rows by age.
CREATE INDEX "outbox_event_published_at_idx" ON "outbox_event" ("published_at") WHERE "status" = 'published';

-- Watch mode LISTENs on this channel. One notification per writing statement, delivered at commit.
CREATE FUNCTION "outbox_event_notify"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('outbox_event', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER "outbox_event_notify"
    AFTER INSERT ON "outbox_event"
    FOR EACH STATEMENT EXECUTE FUNCTION "outbox_event_notify"();

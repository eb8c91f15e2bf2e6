-- prisma-outbox: head-of-line check for held rows ('block-key' policy): is there a pending row
-- with `last_error` set (held back behind a dead row, or failed an attempt) of this topic and
-- key before a given seq? Such rows are few, so this index stays small, and the stream relay's
-- check does not walk the key's other rows (published ones included until a vacuum).
CREATE INDEX "outbox_event_held_key_idx" ON "outbox_event" ("topic", "aggregateid", "seq")
    WHERE "status" = 'pending' AND "last_error" IS NOT NULL;

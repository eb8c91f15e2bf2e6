-- prisma-outbox: head-of-line check for dead rows ('block-key' policy): is there a dead row of
-- this topic and key before a given seq? Dead rows are few, so this index stays small, and the
-- check does not walk the key's other unfinished rows.
CREATE INDEX "outbox_event_dead_key_idx" ON "outbox_event" ("topic", "aggregateid", "seq")
    WHERE "status" = 'dead';

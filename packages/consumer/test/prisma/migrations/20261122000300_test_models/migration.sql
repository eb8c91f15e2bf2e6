CREATE TABLE "tally" (
    "aggregate_id" TEXT NOT NULL,
    "applied" INTEGER NOT NULL DEFAULT 0,
    CONSTRAINT "tally_pkey" PRIMARY KEY ("aggregate_id")
);

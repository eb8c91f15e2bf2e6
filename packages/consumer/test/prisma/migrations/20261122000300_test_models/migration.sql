CREATE TABLE "tally" (
    "aggregate_id" TEXT NOT NULL,
    "applied" INTEGER NOT NULL DEFAULT 0,
    CONSTRAINT "tally_pkey" PRIMARY KEY ("aggregate_id")
);

CREATE TABLE "directory_entry" (
    "employee_id" UUID NOT NULL,
    "name" TEXT NOT NULL,
    CONSTRAINT "directory_entry_pkey" PRIMARY KEY ("employee_id")
);

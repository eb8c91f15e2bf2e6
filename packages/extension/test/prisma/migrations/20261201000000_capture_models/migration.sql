-- Models of the extension's integration tests added for exact capture (test/prisma/schema.prisma).
CREATE TABLE "parent" (
    "id" INTEGER NOT NULL,
    "code" TEXT NOT NULL,
    CONSTRAINT "parent_pkey" PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "parent_code_key" ON "parent"("code");

CREATE TABLE "mid" (
    "id" INTEGER NOT NULL,
    "parent_code" TEXT NOT NULL,
    CONSTRAINT "mid_pkey" PRIMARY KEY ("id")
);
ALTER TABLE "mid" ADD CONSTRAINT "mid_parent_code_fkey" FOREIGN KEY ("parent_code")
    REFERENCES "parent"("code") ON DELETE CASCADE ON UPDATE CASCADE;

CREATE TABLE "leaf" (
    "id" INTEGER NOT NULL,
    "mid_id" INTEGER NOT NULL,
    "label" TEXT NOT NULL DEFAULT '',
    CONSTRAINT "leaf_pkey" PRIMARY KEY ("id")
);
ALTER TABLE "leaf" ADD CONSTRAINT "leaf_mid_id_fkey" FOREIGN KEY ("mid_id")
    REFERENCES "mid"("id") ON DELETE CASCADE ON UPDATE CASCADE;

CREATE TYPE "mood" AS ENUM ('happy', 'SAD');

CREATE TABLE "probe" (
    "id" TEXT NOT NULL,
    "text" TEXT NOT NULL DEFAULT '',
    "n" INTEGER NOT NULL DEFAULT 0,
    "big" BIGINT NOT NULL DEFAULT 0,
    "ratio" DOUBLE PRECISION NOT NULL DEFAULT 0,
    "small" REAL NOT NULL DEFAULT 0,
    "price" DECIMAL(65,30) NOT NULL DEFAULT 0,
    "amount" DECIMAL(10,2) NOT NULL DEFAULT 0,
    "ok" BOOLEAN NOT NULL DEFAULT false,
    "at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "at_tz" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "day" DATE NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "data" BYTEA NOT NULL DEFAULT '\x',
    "doc" JSONB NOT NULL DEFAULT '{}',
    "mood" "mood" NOT NULL DEFAULT 'happy',
    "tags" TEXT[] DEFAULT ARRAY[]::TEXT[],
    "moods" "mood"[] DEFAULT ARRAY[]::"mood"[],
    "uid" UUID,
    CONSTRAINT "probe_pkey" PRIMARY KEY ("id")
);

CREATE TABLE "pair" (
    "a" TEXT NOT NULL,
    "b" INTEGER NOT NULL,
    "note" TEXT NOT NULL DEFAULT '',
    CONSTRAINT "pair_pkey" PRIMARY KEY ("a", "b")
);
CREATE UNIQUE INDEX "pair_note_b_key" ON "pair"("note", "b");

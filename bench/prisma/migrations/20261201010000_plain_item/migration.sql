-- The benchmark's uncaptured twin of "item": the hand-written and plain variants write it, so the
-- capture triggers the extension installs on "item" never fire for them.
CREATE TABLE "plain_item" (
    "id" SERIAL NOT NULL,
    "sku" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "quantity" INTEGER NOT NULL,
    "created_at" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "plain_item_pkey" PRIMARY KEY ("id")
);

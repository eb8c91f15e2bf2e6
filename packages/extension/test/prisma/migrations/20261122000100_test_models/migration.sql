-- Models of the extension's integration tests (test/prisma/schema.prisma).
CREATE TABLE "department" (
    "id" SERIAL NOT NULL,
    "name" TEXT NOT NULL,
    CONSTRAINT "department_pkey" PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "department_name_key" ON "department"("name");

CREATE TABLE "employee" (
    "id" UUID NOT NULL,
    "email" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "salary" DECIMAL(12,2) NOT NULL DEFAULT 0,
    "active" BOOLEAN NOT NULL DEFAULT true,
    "hired_at" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "profile" JSONB,
    "department_id" INTEGER,
    CONSTRAINT "employee_pkey" PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "employee_email_key" ON "employee"("email");
ALTER TABLE "employee" ADD CONSTRAINT "employee_department_id_fkey" FOREIGN KEY ("department_id")
    REFERENCES "department"("id") ON DELETE SET NULL ON UPDATE CASCADE;

CREATE TABLE "membership" (
    "user_id" INTEGER NOT NULL,
    "group_id" TEXT NOT NULL,
    "role" TEXT NOT NULL,
    CONSTRAINT "membership_pkey" PRIMARY KEY ("user_id", "group_id")
);

CREATE TABLE "blob" (
    "id" BIGINT NOT NULL,
    "data" BYTEA NOT NULL,
    "meta" JSONB NOT NULL DEFAULT '{}',
    CONSTRAINT "blob_pkey" PRIMARY KEY ("id")
);

CREATE TABLE "audit_note" (
    "id" SERIAL NOT NULL,
    "text" TEXT NOT NULL,
    CONSTRAINT "audit_note_pkey" PRIMARY KEY ("id")
);

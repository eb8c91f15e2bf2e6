-- Demo models: the HR service's employees and the directory service's projection.
CREATE TABLE "employee" (
    "id" UUID NOT NULL,
    "email" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "title" TEXT,
    "department" TEXT,
    "created_at" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(6) NOT NULL,
    CONSTRAINT "employee_pkey" PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "employee_email_key" ON "employee"("email");

CREATE TABLE "directory_entry" (
    "employee_id" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "email" TEXT NOT NULL,
    "title" TEXT,
    "department" TEXT,
    "last_event_id" UUID NOT NULL,
    "updated_at" TIMESTAMPTZ(6) NOT NULL,
    CONSTRAINT "directory_entry_pkey" PRIMARY KEY ("employee_id")
);

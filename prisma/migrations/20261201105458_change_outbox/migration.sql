-- CreateTable
CREATE TABLE "changes" (
    "id" BIGINT NOT NULL,
    "origin" TEXT NOT NULL,
    "payload" JSONB NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "changes_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "change_seq" (
    "id" INTEGER NOT NULL,
    "last" BIGINT NOT NULL,

    CONSTRAINT "change_seq_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "changes_created_at_idx" ON "changes"("created_at");

-- The counter's single row; every writer updates it, never inserts.
INSERT INTO "change_seq" ("id", "last") VALUES (1, 0);

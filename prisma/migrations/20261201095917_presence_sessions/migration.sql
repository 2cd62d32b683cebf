-- AlterTable
ALTER TABLE "nodes" ADD COLUMN     "presence_seq" INTEGER NOT NULL DEFAULT 0;

-- CreateTable
CREATE TABLE "replicas" (
    "id" TEXT NOT NULL,
    "host" TEXT NOT NULL,
    "started_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "heartbeat_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "replicas_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "node_sessions" (
    "node_id" INTEGER NOT NULL,
    "replica_id" TEXT NOT NULL,
    "connected_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "node_sessions_pkey" PRIMARY KEY ("node_id","replica_id")
);

-- CreateIndex
CREATE INDEX "node_sessions_replica_id_idx" ON "node_sessions"("replica_id");

-- AddForeignKey
ALTER TABLE "node_sessions" ADD CONSTRAINT "node_sessions_node_id_fkey" FOREIGN KEY ("node_id") REFERENCES "nodes"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "node_sessions" ADD CONSTRAINT "node_sessions_replica_id_fkey" FOREIGN KEY ("replica_id") REFERENCES "replicas"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- No replica holds a session yet, so no node is online (a crash could have left some marked online).
UPDATE "nodes" SET "online" = false WHERE "online";

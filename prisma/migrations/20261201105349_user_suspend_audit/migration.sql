-- AlterTable
ALTER TABLE "audit_events" ADD COLUMN     "actor_id" TEXT,
ADD COLUMN     "actor_name" TEXT,
ADD COLUMN     "actor_type" TEXT,
ADD COLUMN     "after" JSONB,
ADD COLUMN     "before" JSONB,
ADD COLUMN     "group_id" TEXT,
ADD COLUMN     "ip" TEXT,
ADD COLUMN     "origin" TEXT;

-- AlterTable
ALTER TABLE "users" ADD COLUMN     "offboarded_at" TIMESTAMP(3),
ADD COLUMN     "suspended_at" TIMESTAMP(3);

-- CreateIndex
CREATE INDEX "audit_events_action_idx" ON "audit_events"("action");

-- CreateIndex
CREATE INDEX "audit_events_group_id_idx" ON "audit_events"("group_id");

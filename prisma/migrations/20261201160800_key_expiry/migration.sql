-- AlterTable
ALTER TABLE "auth_keys" ADD COLUMN     "pre_approved" BOOLEAN NOT NULL DEFAULT false;

-- AlterTable
ALTER TABLE "nodes" ADD COLUMN     "approval_pending" BOOLEAN NOT NULL DEFAULT false,
ADD COLUMN     "expiry_handled_at" TIMESTAMP(3);

-- AlterTable
ALTER TABLE "pending_logins" ADD COLUMN     "os" TEXT;

-- CreateIndex
CREATE INDEX "nodes_expires_at_idx" ON "nodes"("expires_at");

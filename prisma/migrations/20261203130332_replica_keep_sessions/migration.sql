-- AlterTable
ALTER TABLE "replicas" ADD COLUMN     "keep_sessions_until" TIMESTAMPTZ(3);

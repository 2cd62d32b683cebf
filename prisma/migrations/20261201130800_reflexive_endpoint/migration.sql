-- AlterTable
ALTER TABLE "nodes" ADD COLUMN     "reflexive_endpoint" TEXT;

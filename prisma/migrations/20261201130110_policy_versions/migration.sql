-- policy_versions existed since init but nothing ever wrote to it (always empty), so its columns
-- are reshaped in place: the version is the key, and author, diff and rollback source are kept.
-- AlterTable
ALTER TABLE "policy_versions" DROP CONSTRAINT "policy_versions_pkey",
DROP COLUMN "id",
ADD COLUMN     "author_id" TEXT,
ADD COLUMN     "author_name" TEXT,
ADD COLUMN     "author_type" TEXT NOT NULL,
ADD COLUMN     "diff" TEXT NOT NULL,
ADD COLUMN     "origin" TEXT NOT NULL,
ADD COLUMN     "restored_from" INTEGER,
ADD COLUMN     "version" INTEGER NOT NULL,
ADD CONSTRAINT "policy_versions_pkey" PRIMARY KEY ("version");

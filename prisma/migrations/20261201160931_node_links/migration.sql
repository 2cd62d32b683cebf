-- CreateTable
CREATE TABLE "node_links" (
    "node_id" INTEGER NOT NULL,
    "links" JSONB NOT NULL,
    "direct" INTEGER NOT NULL,
    "relay" INTEGER NOT NULL,
    "none" INTEGER NOT NULL,
    "stale" INTEGER NOT NULL,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "node_links_pkey" PRIMARY KEY ("node_id")
);

-- CreateIndex
CREATE INDEX "node_links_stale_idx" ON "node_links"("stale");

-- AddForeignKey
ALTER TABLE "node_links" ADD CONSTRAINT "node_links_node_id_fkey" FOREIGN KEY ("node_id") REFERENCES "nodes"("id") ON DELETE CASCADE ON UPDATE CASCADE;

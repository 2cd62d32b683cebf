import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The repository's prisma/ directory, found by walking up from this file rather than from the
 * working directory, so the server finds its migrations whichever directory it was started in and
 * whether it runs from source (packages/db/src) or from its bundle (apps/server/dist).
 */
function findPrismaDir(): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'prisma', 'schema.prisma'))) return join(dir, 'prisma');
    if (dirname(dir) === dir) throw new Error(`no prisma/schema.prisma above ${fileURLToPath(import.meta.url)}`);
  }
}

export const prismaDir = findPrismaDir();
/** The repository (workspace) root. */
export const repoRoot = dirname(prismaDir);
export const schemaPath = join(prismaDir, 'schema.prisma');
export const migrationsDir = join(prismaDir, 'migrations');

import { fileURLToPath } from 'node:url';

/**
 * The repository's prisma/ directory, found from this file rather than from the working directory, so
 * the server finds its migrations whichever directory it was started in.
 */
export const prismaDir = fileURLToPath(new URL('../../../prisma/', import.meta.url));
export const schemaPath = fileURLToPath(new URL('../../../prisma/schema.prisma', import.meta.url));
export const migrationsDir = fileURLToPath(new URL('../../../prisma/migrations/', import.meta.url));

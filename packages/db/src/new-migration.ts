/**
 * `npm run db:migration -- NAME`: writes prisma/migrations/<timestamp>_NAME/migration.sql with the SQL
 * that takes the committed migrations to prisma/schema.prisma, as `prisma migrate dev --create-only`
 * would. Migrations are append-only: never edit one that has been committed, add another.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { createMigration } from './schema-engine.js';
import { MIGRATION_LOCK } from './migration-files.js';
import { migrationsDir } from './paths.js';

const name = process.argv[2];
if (!name || !/^[A-Za-z0-9_]+$/.test(name)) {
  console.error('usage: npm run db:migration -- NAME   (NAME: letters, digits, underscores, e.g. add_routes)');
  process.exit(2);
}

const migration = await createMigration(name);
if (!migration) {
  console.log('prisma/schema.prisma and prisma/migrations agree; no migration needed.');
  process.exit(0);
}
mkdirSync(join(migrationsDir, migration.directory), { recursive: true });
const file = join(migrationsDir, migration.directory, 'migration.sql');
writeFileSync(file, migration.sql);
const lock = join(migrationsDir, 'migration_lock.toml');
if (!existsSync(lock)) writeFileSync(lock, MIGRATION_LOCK);
console.log(`wrote ${relative(process.cwd(), file)}`);

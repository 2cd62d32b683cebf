import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MIGRATION_LOCK } from '../src/migration-files.js';
import { migrationsDir, schemaPath } from '../src/paths.js';
import { createMigration, migrationDrift } from '../src/schema-engine.js';

/** Each check boots Prisma's schema engine (Wasm) and replays the migrations into in-memory PGlites. */
const ENGINE_TIMEOUT_MS = 180_000;

const tmp = mkdtempSync(join(tmpdir(), 'weft-schema-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('prisma/migrations', () => {
  // Guards against editing schema.prisma without `npm run db:migration -- NAME`.
  it('build exactly the schema in prisma/schema.prisma', async () => {
    expect(await migrationDrift()).toBe('');
  }, ENGINE_TIMEOUT_MS);

  it('carry the lock file Prisma expects', () => {
    expect(readFileSync(join(migrationsDir, 'migration_lock.toml'), 'utf8')).toBe(MIGRATION_LOCK);
  });

  it('get a new migration from the generator when the schema changes', async () => {
    const changed = join(tmp, 'schema.prisma');
    const schema = readFileSync(schemaPath, 'utf8').replace('model Setting {\n  key   String @id', 'model Setting {\n  key   String @id\n  note  String?');
    writeFileSync(changed, schema);
    const m = await createMigration('add_setting_note', { schemaPath: changed }, new Date('2030-01-02T03:04:05Z'));
    expect(m?.directory).toBe('20300102030405_add_setting_note');
    expect(m?.sql).toContain('ALTER TABLE "Setting" ADD COLUMN     "note" TEXT;');
  }, ENGINE_TIMEOUT_MS);
});

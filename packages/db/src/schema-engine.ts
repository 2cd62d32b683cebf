/**
 * Prisma's schema engine (the part of `prisma migrate` that diffs schemas and writes migration SQL),
 * run as WebAssembly against an in-memory PGlite. Development tooling only: `npm run db:migration` and
 * the drift test use it; the server never loads it (migrations are applied by migrate.ts).
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { bindMigrationAwareSqlAdapterFactory } from '@prisma/driver-adapter-utils';
import type { MigrationList, SchemaEngine } from '@prisma/schema-engine-wasm';
import { PrismaPGlite } from 'pglite-prisma-adapter';
import { MIGRATION_LOCK, readMigrations } from './migration-files.js';
import { migrationsDir as defaultMigrationsDir, schemaPath as defaultSchemaPath } from './paths.js';

const NO_FILTERS = { externalTables: [], externalEnums: [] };

interface WasmApi {
  instantiate(bytes: Uint8Array, imports: Record<string, unknown>): Promise<{ instance: { exports: Record<string, unknown> } }>;
}

/**
 * The package's entry point does `import * as wasm from "./schema_engine_bg.wasm"`, which Node 20 cannot
 * load without a flag; instantiate the module by hand with the same glue instead.
 */
let loaded: Promise<typeof import('@prisma/schema-engine-wasm')> | null = null;

/** The glue module keeps per-instance state, so instantiate the Wasm once per process. */
function loadSchemaEngine(): Promise<typeof import('@prisma/schema-engine-wasm')> {
  loaded ??= instantiateSchemaEngine();
  return loaded;
}

/** Where the engine reports a Rust panic's message before it dies (it expects this global). */
let lastPanic: string | null = null;
(globalThis as unknown as { PRISMA_WASM_PANIC_REGISTRY: unknown }).PRISMA_WASM_PANIC_REGISTRY = {
  set_message(message: string) {
    lastPanic = message;
  },
};

async function instantiateSchemaEngine(): Promise<typeof import('@prisma/schema-engine-wasm')> {
  const require = createRequire(import.meta.url);
  const pkgDir = dirname(require.resolve('@prisma/schema-engine-wasm'));
  const glue = (await import('@prisma/schema-engine-wasm/schema_engine_bg')) as typeof import('@prisma/schema-engine-wasm') & {
    __wbg_set_wasm(exports: unknown): void;
  };
  // lib ES2023 declares no WebAssembly; the runtime has it.
  const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
  const { instance } = await wasm.instantiate(readFileSync(join(pkgDir, 'schema_engine_bg.wasm')), { './schema_engine_bg.js': glue });
  glue.__wbg_set_wasm(instance.exports);
  (instance.exports.__wbindgen_start as (() => void) | undefined)?.();
  return glue;
}

export interface SchemaSources {
  schemaPath?: string;
  migrationsDir?: string;
}

/** Runs `fn` with a schema engine whose main and shadow databases are throwaway in-memory PGlites. */
async function withEngine<T>(fn: (engine: SchemaEngine, schema: string) => Promise<T>, schemaPath: string): Promise<T> {
  const { SchemaEngine } = await loadSchemaEngine();
  const pglite = new PGlite();
  const schema = readFileSync(schemaPath, 'utf8');
  const errors: string[] = [];
  const engine = await SchemaEngine.new(
    { datamodels: [[schemaPath, schema]] },
    (line: string) => {
      if (line.includes('"level":"ERROR"')) errors.push(line);
    },
    // The adapter is typed against the PGlite its own package pulls in; the API it uses is the same.
    bindMigrationAwareSqlAdapterFactory(new PrismaPGlite(pglite as unknown as ConstructorParameters<typeof PrismaPGlite>[0])),
  );
  try {
    return await fn(engine, schema);
  } catch (err) {
    const detail = [...errors, ...(lastPanic ? [`panic: ${lastPanic}`] : [])];
    throw new Error(`schema engine failed${detail.length ? `:\n${detail.join('\n')}` : ''}`, { cause: err });
  } finally {
    engine.free();
    await pglite.close();
  }
}

function migrationList(dir: string): MigrationList {
  const lockPath = join(dir, 'migration_lock.toml');
  // A fresh checkout before the first migration has no lock file yet; the engine needs the provider.
  const lock = existsSync(lockPath) ? readFileSync(lockPath, 'utf8') : MIGRATION_LOCK;
  return {
    baseDir: dir,
    lockfile: { path: 'migration_lock.toml', content: lock },
    shadowDbInitScript: '',
    migrationDirectories: readMigrations(dir).map((m) => ({
      path: m.name,
      migrationFile: { path: 'migration.sql', content: { tag: 'ok', value: m.sql } },
    })),
  };
}

export interface NewMigration {
  /** Directory name as Prisma forms it: "<yyyymmddhhmmss UTC>_<name>". */
  directory: string;
  sql: string;
}

/**
 * What `prisma migrate dev --create-only --name NAME` would write: the SQL that takes a database built
 * from the committed migrations to the schema. Null when they already agree.
 *
 * The engine's own createMigration cannot reach a shadow database in its Wasm build (it is not handed
 * the adapter factory), so this replays the history through `diff`, which is, and names the directory
 * the way createMigration would.
 */
export async function createMigration(name: string, src: SchemaSources = {}, now = new Date()): Promise<NewMigration | null> {
  const sql = await migrationDrift(src);
  if (!sql) return null;
  const stamp = now.toISOString().replace(/[-:T]/g, '').slice(0, 14);
  return { directory: `${stamp}_${name}`, sql };
}

/**
 * The SQL that would take a database built from the committed migrations to the schema; empty string
 * when none is needed. A non-empty answer means someone edited schema.prisma without a migration.
 */
export async function migrationDrift(src: SchemaSources = {}): Promise<string> {
  const dir = src.migrationsDir ?? defaultMigrationsDir;
  const schemaPath = src.schemaPath ?? defaultSchemaPath;
  return withEngine(async (engine, schema) => {
    const out = await engine.diff({
      from: { tag: 'migrations', ...migrationList(dir) },
      to: { tag: 'schemaDatamodel', files: [{ path: schemaPath, content: schema }] },
      script: true,
      exitCode: true,
      filters: NO_FILTERS,
    });
    return out.exitCode === 2 ? (out.stdout ?? '') : '';
  }, schemaPath);
}

import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { countEntries, notOwnerOnly } from '../../../test-support/modes.js';
import { createTestDatabase } from '../../../test-support/test-database.js';
import { type Database, DbError, MAX_PAYLOAD_BYTES, openDatabase, type OpenOptions } from '../src/index.js';
import type { Log } from '../src/log.js';
import { readMigrations } from '../src/migration-files.js';
import { migrationsDir } from '../src/paths.js';
import { PGLITE_TEMPLATE_ENV } from '../src/pglite-init.js';

type Backend = 'pglite' | 'postgres';

const tempDirs: string[] = [];
afterAll(() => {
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
});

/** Where a fresh, empty database of this backend lives. */
async function freshTarget(backend: Backend): Promise<OpenOptions> {
  if (backend === 'postgres') return { databaseUrl: await createTestDatabase() };
  const dir = mkdtempSync(join(tmpdir(), 'weft-db-test-'));
  tempDirs.push(dir);
  return { dataDir: dir };
}

interface MigrationRow {
  id: string;
  checksum: string;
  finished_at: Date | null;
  migration_name: string;
  logs: string | null;
  rolled_back_at: Date | null;
  started_at: Date;
  applied_steps_count: number;
}

function migrationRows(db: Database): Promise<MigrationRow[]> {
  return db.prisma.$queryRawUnsafe<MigrationRow[]>('SELECT * FROM "_prisma_migrations" ORDER BY migration_name');
}

/** Resolves with the first payload `db.bus` delivers that satisfies `match`. */
function nextPayload(db: Database, match: (p: string) => boolean = () => true, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error('no change-bus delivery within timeout'));
    }, timeoutMs);
    const off = db.bus.subscribe((p) => {
      if (!match(p)) return;
      clearTimeout(timer);
      off();
      resolve(p);
    });
  });
}

const files = readMigrations(migrationsDir);

describe.each<Backend>(['pglite', 'postgres'])('openDatabase on %s', (backend) => {
  it('applies every migration on a fresh database and records it as Prisma does', async () => {
    const db = await openDatabase(await freshTarget(backend));
    try {
      expect(db.backend).toBe(backend);
      expect(db.appliedMigrations).toEqual(files.map((f) => f.name));
      const rows = await migrationRows(db);
      expect(rows.map((r) => r.migration_name)).toEqual(files.map((f) => f.name));
      for (const [i, row] of rows.entries()) {
        expect(row.checksum).toBe(files[i]!.checksum);
        expect(row.id).toMatch(/^[0-9a-f-]{36}$/);
        expect(row.finished_at).toBeInstanceOf(Date);
        expect(row.rolled_back_at).toBeNull();
        expect(row.logs).toBeNull();
        expect(row.applied_steps_count).toBe(1);
      }
      const columns = await db.prisma.$queryRawUnsafe<{ column_name: string; data_type: string; character_maximum_length: number | null; is_nullable: string }[]>(
        `SELECT column_name, data_type, character_maximum_length, is_nullable FROM information_schema.columns
         WHERE table_name = '_prisma_migrations' ORDER BY ordinal_position`,
      );
      expect(columns).toEqual([
        { column_name: 'id', data_type: 'character varying', character_maximum_length: 36, is_nullable: 'NO' },
        { column_name: 'checksum', data_type: 'character varying', character_maximum_length: 64, is_nullable: 'NO' },
        { column_name: 'finished_at', data_type: 'timestamp with time zone', character_maximum_length: null, is_nullable: 'YES' },
        { column_name: 'migration_name', data_type: 'character varying', character_maximum_length: 255, is_nullable: 'NO' },
        { column_name: 'logs', data_type: 'text', character_maximum_length: null, is_nullable: 'YES' },
        { column_name: 'rolled_back_at', data_type: 'timestamp with time zone', character_maximum_length: null, is_nullable: 'YES' },
        { column_name: 'started_at', data_type: 'timestamp with time zone', character_maximum_length: null, is_nullable: 'NO' },
        { column_name: 'applied_steps_count', data_type: 'integer', character_maximum_length: null, is_nullable: 'NO' },
      ]);
    } finally {
      await db.close();
    }
  });

  it('applies nothing when reopened', async () => {
    const target = await freshTarget(backend);
    const first = await openDatabase(target);
    const before = await migrationRows(first);
    await first.close();
    const again = await openDatabase(target);
    try {
      expect(again.appliedMigrations).toEqual([]);
      expect(await migrationRows(again)).toEqual(before);
    } finally {
      await again.close();
    }
  });

  it('refuses to open when an applied migration no longer matches its file', async () => {
    const target = await freshTarget(backend);
    const db = await openDatabase(target);
    const name = files[0]!.name;
    await db.prisma.$executeRawUnsafe(`UPDATE "_prisma_migrations" SET checksum = repeat('0', 64) WHERE migration_name = $1`, name);
    await db.close();
    const err = await openDatabase(target).then(
      (d) => d.close().then(() => null),
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(DbError);
    expect((err as DbError).code).toBe('MIGRATION_CHECKSUM_MISMATCH');
    expect((err as DbError).message).toContain(name);
    expect((err as DbError).message).toMatch(/append-only/);
  });

  it('rolls back a failing migration and records nothing of it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'weft-migrations-'));
    tempDirs.push(dir);
    cpSync(migrationsDir, dir, { recursive: true });
    mkdirSync(join(dir, '29991231000000_broken'));
    writeFileSync(join(dir, '29991231000000_broken', 'migration.sql'), 'CREATE TABLE "half_done" ("id" INTEGER);\nSELECT no_such_function();\n');
    const target = { ...(await freshTarget(backend)), migrationsDir: dir };
    const err = await openDatabase(target).then(
      (d) => d.close().then(() => null),
      (e: unknown) => e,
    );
    expect((err as DbError).code).toBe('MIGRATION_FAILED');
    expect((err as DbError).message).toContain('29991231000000_broken');
    // The good migrations before it stay applied; the broken one left neither table nor record.
    const db = await openDatabase({ ...target, migrationsDir });
    try {
      expect(db.appliedMigrations).toEqual([]);
      expect((await migrationRows(db)).map((r) => r.migration_name)).toEqual(files.map((f) => f.name));
      const tables = await db.prisma.$queryRawUnsafe<unknown[]>(`SELECT 1 FROM information_schema.tables WHERE table_name = 'half_done'`);
      expect(tables).toEqual([]);
    } finally {
      await db.close();
    }
  });

  it('creates and reads a user and a node (array columns included)', async () => {
    const db = await openDatabase(await freshTarget(backend));
    try {
      const user = await db.prisma.user.create({ data: { name: 'alice', email: 'alice@example.com' } });
      await db.prisma.node.create({
        data: { userId: user.id, name: 'laptop', hostname: 'Alice-Laptop', nodeKey: 'nodekey:01', ipv4Int: 1, ipv4: '100.64.0.1', ipv6: 'fd7a::1', tags: ['tag:a', 'tag:b'] },
      });
      const read = await db.prisma.user.findUnique({ where: { name: 'alice' }, include: { nodes: true } });
      expect(read?.email).toBe('alice@example.com');
      expect(read?.createdAt).toBeInstanceOf(Date);
      expect(read?.nodes.map((n) => [n.name, n.tags, n.endpoints, n.online])).toEqual([['laptop', ['tag:a', 'tag:b'], [], false]]);
    } finally {
      await db.close();
    }
  });

  it('delivers a published payload to a subscriber, the publisher included', async () => {
    const db = await openDatabase(await freshTarget(backend));
    try {
      const got = nextPayload(db);
      await db.bus.publish('{"hello":"ünïcode"}');
      expect(await got).toBe('{"hello":"ünïcode"}');
    } finally {
      await db.close();
    }
  });

  it('rejects a payload over the NOTIFY limit with a clear error', async () => {
    const db = await openDatabase(await freshTarget(backend));
    try {
      await expect(db.bus.publish('x'.repeat(MAX_PAYLOAD_BYTES))).resolves.toBeUndefined();
      const err = await db.bus.publish('x'.repeat(MAX_PAYLOAD_BYTES + 1)).catch((e: unknown) => e);
      expect((err as DbError).code).toBe('BUS_PAYLOAD_TOO_LARGE');
      expect((err as DbError).message).toMatch(/limit/);
    } finally {
      await db.close();
    }
  });
});

describe('openDatabase on pglite, data directory', () => {
  it('refuses a second open of a data directory that is in use, and allows it after close', async () => {
    const target = await freshTarget('pglite');
    const db = await openDatabase(target);
    try {
      const err = await openDatabase(target).catch((e: unknown) => e);
      expect((err as DbError).code).toBe('DATA_DIR_IN_USE');
    } finally {
      await db.close();
      await db.close();
    }
    const again = await openDatabase(target);
    await again.close();
  });

  it('takes over a lock left behind by a process that died', async () => {
    const target = await freshTarget('pglite');
    const gone = spawnSync(process.execPath, ['-e', 'process.pid'], { stdio: 'ignore' }).pid;
    writeFileSync(join((target as { dataDir: string }).dataDir, 'db.lock'), `${gone}\n`);
    const db = await openDatabase(target);
    await db.close();
  });

  it('creates every file of the embedded database owner-only, and new ones stay so while it runs', async () => {
    const { dataDir } = (await freshTarget('pglite')) as { dataDir: string };
    const db = await openDatabase({ dataDir });
    try {
      // Enough writes for Postgres to create files of its own (relation segments, WAL, stats).
      await db.prisma.$executeRawUnsafe('CREATE TABLE filler AS SELECT g AS id, repeat(\'x\', 200) AS pad FROM generate_series(1, 20000) g');
      await db.prisma.$executeRawUnsafe('CHECKPOINT');
      expect(countEntries(dataDir)).toBeGreaterThan(100);
      expect(notOwnerOnly(dataDir)).toEqual([]);
    } finally {
      await db.close();
    }
    expect(notOwnerOnly(dataDir)).toEqual([]);
  });

  it('makes an existing database owner-only when it opens it', async () => {
    const { dataDir } = (await freshTarget('pglite')) as { dataDir: string };
    await (await openDatabase({ dataDir })).close();
    // As an older version left it: files 0666, directories 0755.
    const loosen = (path: string) => {
      const dir = lstatSync(path).isDirectory();
      chmodSync(path, dir ? 0o755 : 0o666);
      if (dir) for (const name of readdirSync(path)) loosen(join(path, name));
    };
    loosen(join(dataDir, 'db'));
    expect(notOwnerOnly(dataDir).length).toBeGreaterThan(100);
    const db = await openDatabase({ dataDir });
    try {
      expect(notOwnerOnly(dataDir)).toEqual([]);
    } finally {
      await db.close();
    }
  });

  it('refuses a data directory open to group or others, saying how to fix it, and creates nothing in it', async () => {
    const { dataDir } = (await freshTarget('pglite')) as { dataDir: string };
    for (const mode of [0o755, 0o750, 0o701]) {
      chmodSync(dataDir, mode);
      const err = await openDatabase({ dataDir }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DbError);
      expect((err as DbError).code).toBe('DATA_DIR_NOT_PRIVATE');
      expect((err as DbError).message).toContain(`chmod 700 ${dataDir}`);
      expect((err as DbError).message).not.toContain('\n');
      expect(readdirSync(dataDir)).toEqual([]);
    }
    chmodSync(dataDir, 0o700);
    await (await openDatabase({ dataDir })).close();
  });

  it('creates a missing data directory owner-only', async () => {
    const { dataDir } = (await freshTarget('pglite')) as { dataDir: string };
    const nested = join(dataDir, 'a', 'b');
    await (await openDatabase({ dataDir: nested })).close();
    expect(notOwnerOnly(dataDir)).toEqual([]);
  });

  it('creates a new database in a child process, so its memory is not held by the server', async () => {
    const { dataDir } = (await freshTarget('pglite')) as { dataDir: string };
    const log = recordingLog();
    // As a server outside the tests does: initdb, not a copy of the run's template (test-support/pglite-template.ts).
    vi.stubEnv(PGLITE_TEMPLATE_ENV, undefined);
    const db = await openDatabase({ dataDir }, log).finally(() => vi.unstubAllEnvs());
    try {
      const created = log.lines.find((l) => l.msg === 'created the embedded database in a child process');
      expect(created?.obj.childPid).toEqual(expect.any(Number));
      expect(created?.obj.childPid).not.toBe(process.pid);
      expect(existsSync(join(dataDir, 'db', 'PG_VERSION'))).toBe(true);
      expect(existsSync(join(dataDir, 'db.creating'))).toBe(false);
    } finally {
      await db.close();
    }
    // An existing database opens in-process, with no child.
    const again = recordingLog();
    const reopened = await openDatabase({ dataDir }, again);
    await reopened.close();
    expect(again.lines.map((l) => l.msg)).not.toContain('created the embedded database in a child process');
  });

  it("in the test tiers a new database is a copy of the run's template, and still applies every migration", async () => {
    expect(process.env[PGLITE_TEMPLATE_ENV], 'set by test-support/pglite-template.ts').toBeTruthy();
    const { dataDir } = (await freshTarget('pglite')) as { dataDir: string };
    const log = recordingLog();
    const db = await openDatabase({ dataDir }, log);
    try {
      expect(log.lines.find((l) => l.msg === 'created the embedded database from the test template')?.obj.template).toBe(process.env[PGLITE_TEMPLATE_ENV]);
      expect(log.lines.map((l) => l.msg)).not.toContain('created the embedded database in a child process');
      expect(db.appliedMigrations).toEqual(files.map((f) => f.name));
    } finally {
      await db.close();
    }
    expect(notOwnerOnly(dataDir)).toEqual([]);
  });

  it('a template that holds no database is refused, naming the variable, and no database is made', async () => {
    const { dataDir } = (await freshTarget('pglite')) as { dataDir: string };
    const notATemplate = join(dataDir, 'not-a-template');
    mkdirSync(notATemplate);
    vi.stubEnv(PGLITE_TEMPLATE_ENV, notATemplate);
    const err = await openDatabase({ dataDir }).catch((e: unknown) => e).finally(() => vi.unstubAllEnvs());
    expect(err).toBeInstanceOf(DbError);
    expect((err as DbError).code).toBe('DATABASE_INIT_FAILED');
    expect((err as DbError).message).toContain(`${PGLITE_TEMPLATE_ENV}=${notATemplate} holds no database`);
    expect(readdirSync(dataDir).filter((n) => n.startsWith('db'))).toEqual([]);
  });

  it('refuses a db directory that holds something other than a database, and leaves it alone', async () => {
    const { dataDir } = (await freshTarget('pglite')) as { dataDir: string };
    mkdirSync(join(dataDir, 'db'));
    writeFileSync(join(dataDir, 'db', 'notes.txt'), 'mine\n');
    const err = await openDatabase({ dataDir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DbError);
    expect((err as DbError).code).toBe('DATABASE_INIT_FAILED');
    expect((err as DbError).message).toMatch(/not empty but holds no database/);
    expect(readdirSync(join(dataDir, 'db'))).toEqual(['notes.txt']);
    expect(existsSync(join(dataDir, 'db.lock'))).toBe(false);
  });
});

function recordingLog(): Log & { lines: { obj: Record<string, unknown>; msg: string }[] } {
  const lines: { obj: Record<string, unknown>; msg: string }[] = [];
  const record = (obj: object, msg?: string) => void lines.push({ obj: obj as Record<string, unknown>, msg: msg ?? '' });
  return { lines, info: record, warn: record, error: record };
}

describe('openDatabase on postgres, several replicas', () => {
  it('lets replicas start at once on a fresh database; the migration is recorded once', async () => {
    const databaseUrl = await createTestDatabase();
    const replicas = await Promise.all([1, 2, 3, 4].map(() => openDatabase({ databaseUrl })));
    try {
      expect(replicas.flatMap((r) => r.appliedMigrations).sort()).toEqual(files.map((f) => f.name).sort());
      const rows = await migrationRows(replicas[0]!);
      expect(rows.map((r) => r.migration_name)).toEqual(files.map((f) => f.name));
    } finally {
      await Promise.all(replicas.map((r) => r.close()));
    }
  });

  it('lets separate processes start at once on a fresh database', async () => {
    const databaseUrl = await createTestDatabase();
    const fixture = fileURLToPath(new URL('./fixtures/open-database.ts', import.meta.url));
    const runs = await Promise.all(
      [1, 2, 3].map(
        () =>
          new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
            const child = spawn(process.execPath, ['--import', 'tsx', fixture, databaseUrl], { stdio: ['ignore', 'pipe', 'pipe'] });
            let out = '';
            let err = '';
            child.stdout.on('data', (d: Buffer) => (out += d.toString()));
            child.stderr.on('data', (d: Buffer) => (err += d.toString()));
            child.on('close', (code) => resolve({ code, out, err }));
          }),
      ),
    );
    for (const r of runs) expect(r.code, r.err).toBe(0);
    expect(runs.flatMap((r) => JSON.parse(r.out) as string[]).sort()).toEqual(files.map((f) => f.name).sort());
    const db = await openDatabase({ databaseUrl });
    try {
      expect((await migrationRows(db)).map((r) => r.migration_name)).toEqual(files.map((f) => f.name));
    } finally {
      await db.close();
    }
  });

  it('carries a change from one replica to another', async () => {
    const databaseUrl = await createTestDatabase();
    const a = await openDatabase({ databaseUrl });
    const b = await openDatabase({ databaseUrl });
    try {
      const atB = nextPayload(b);
      const atA = nextPayload(a);
      await a.bus.publish('from-a');
      expect(await atB).toBe('from-a');
      expect(await atA).toBe('from-a');
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('keeps delivering after the listening connection is killed', async () => {
    const databaseUrl = await createTestDatabase();
    const a = await openDatabase({ databaseUrl });
    const b = await openDatabase({ databaseUrl });
    const admin = new pg.Client({ connectionString: databaseUrl });
    await admin.connect();
    try {
      const reconnected = new Promise<void>((resolve) => b.bus.onReconnect(resolve));
      await admin.query(
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE 'weft-change-bus/%' AND datname = current_database()`,
      );
      await reconnected;
      const atB = nextPayload(b, (p) => p === 'after-reconnect');
      await a.bus.publish('after-reconnect');
      expect(await atB).toBe('after-reconnect');
    } finally {
      await admin.end();
      await Promise.all([a.close(), b.close()]);
    }
  });
});

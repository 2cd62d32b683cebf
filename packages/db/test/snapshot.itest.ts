/**
 * Snapshots (snapshot.ts) between the two backends: what `weft-server backup`, `restore` and
 * `db copy` rest on. Real PGlite and a real Postgres cluster.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../../../test-support/test-database.js';
import { type Database, openDatabase, type OpenOptions } from '../src/index.js';
import { databaseSums, parseSnapshotHeader, restoreSnapshot, SnapshotError, writeSnapshot } from '../src/snapshot.js';

type Backend = 'pglite' | 'postgres';
const dirs: string[] = [];
const open: Database[] = [];
afterAll(async () => {
  for (const db of open) await db.close().catch(() => {});
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function fresh(backend: Backend): Promise<Database> {
  let opts: OpenOptions;
  if (backend === 'postgres') opts = { databaseUrl: await createTestDatabase() };
  else {
    const dir = mkdtempSync(join(tmpdir(), 'weft-snapshot-test-'));
    dirs.push(dir);
    opts = { dataDir: dir };
  }
  const db = await openDatabase(opts);
  open.push(db);
  return db;
}

/** Rows of every kind of column: text arrays, JSON, bigint ids, nullable timestamps, booleans. */
async function populate(db: Database, n: number): Promise<void> {
  const p = db.prisma;
  const user = await p.user.create({ data: { name: 'odin', email: 'odin@example.com', displayName: 'Odin "Allfather" \u00e9\u00e8' } });
  const key = await p.authKey.create({ data: { prefix: 'wak_abc', hash: 'h'.repeat(64), userId: user.id, reusable: true, tags: ['tag:a', 'tag:b'] } });
  for (let i = 1; i <= n; i++) {
    await p.node.create({
      data: {
        userId: user.id, name: `web-${i}`, hostname: `web-${i}`, nodeKey: `nodekey:${i.toString(16).padStart(64, '0')}`,
        machineKey: `mkey:${i.toString(16).padStart(64, '0')}`, ipv4Int: 1_681_915_904 + i, ipv4: `100.64.0.${i}`, ipv6: `fd7a::${i}`,
        endpoints: [`192.0.2.${i}:41641`, `[2001:db8::${i}]:41641`], online: i % 2 === 0, lastSeen: new Date(1_700_000_000_000 + i * 1234),
        authKeyId: key.id, tags: i % 3 === 0 ? ['tag:x'] : [],
      },
    });
  }
  await p.apiKey.create({ data: { prefix: 'wapi_1', hash: 'k'.repeat(64), scopes: ['admin'], expiresAt: new Date('2027-01-01T00:00:00.123Z') } });
  await p.auditEvent.create({ data: { actor: 'admin', action: 'user.create', target: 'user:1', detail: { nested: { list: [1, 2.5, null, 'x\ny'] } } } });
  await p.setting.create({ data: { key: 'ula', value: 'fd7a:115c:a1e0::/48' } });
}

async function snapshotLines(db: Database): Promise<string[]> {
  let text = '';
  await writeSnapshot(db.prisma, db.backend, async (chunk) => {
    text += chunk;
  });
  return text.split('\n').filter((l) => l !== '');
}

async function* iterate(lines: string[]): AsyncIterable<string> {
  for (const l of lines) yield l;
}

describe.each([['pglite', 'postgres'], ['postgres', 'pglite']] as const)('snapshot from %s into %s', { timeout: 180_000 }, (from, to) => {
  it('restores every table and sequence position exactly; the restored database goes on numbering where the source left off', async () => {
    const src = await fresh(from);
    await populate(src, 30);
    const lines = await snapshotLines(src);
    const header = parseSnapshotHeader(lines[0]!);
    expect(header.tables.find((t) => t.name === 'nodes')?.rows).toBe(30);
    expect(header.tables.map((t) => t.name)).not.toContain('node_sessions');
    expect(lines.at(-1)).toBe('{"end":true}');

    const dst = await fresh(to);
    const result = await restoreSnapshot(dst.prisma, iterate(lines));
    expect(result.tables).toEqual(header.tables);
    expect(await databaseSums(dst.prisma)).toEqual(await databaseSums(src.prisma));
    const next = await dst.prisma.user.create({ data: { name: 'freya' } });
    const nextAtSource = await src.prisma.user.create({ data: { name: 'freya' } });
    expect(next.id).toBe(nextAtSource.id);
  });
});

// One source and one target per backend (a fresh embedded database costs seconds): every refusal
// must leave the target as it was, and the final restore into that same target proves it.
describe.each(['pglite', 'postgres'] as const)('restore refusals on %s', { timeout: 180_000 }, (backend) => {
  let lines: string[];
  let dst: Database;

  it('a truncated snapshot restores nothing', async () => {
    const src = await fresh(backend);
    await populate(src, 5);
    lines = await snapshotLines(src);
    dst = await fresh(backend);
    await expect(restoreSnapshot(dst.prisma, iterate(lines.slice(0, -1)))).rejects.toThrow(/truncated/);
    expect(await dst.prisma.node.count()).toBe(0);
    expect(await dst.prisma.user.count()).toBe(0);
  });

  it('a row edited after the snapshot was taken fails its checksum and restores nothing', async () => {
    const tampered = lines.map((l) => l.replace('"hostname":"web-3"', '"hostname":"evil"'));
    expect(tampered).not.toEqual(lines);
    await expect(restoreSnapshot(dst.prisma, iterate(tampered))).rejects.toThrow(/table nodes does not match the snapshot/);
    expect(await dst.prisma.node.count()).toBe(0);
  });

  it('a snapshot taken at other migrations is refused with what differs', async () => {
    const h = parseSnapshotHeader(lines[0]!);
    const other = [JSON.stringify({ ...h, migrations: [...h.migrations, '29990101000000_future'] }), ...lines.slice(1)];
    await expect(restoreSnapshot(dst.prisma, iterate(other))).rejects.toThrow(/missing here: 29990101000000_future/);
    await expect(restoreSnapshot(dst.prisma, iterate(['{"hello":1}']))).rejects.toThrow(SnapshotError);
    expect(await dst.prisma.user.count()).toBe(0);
  });

  it('after all those refusals the same target takes the snapshot; then it has data, and a second restore is refused and changes nothing', async () => {
    await restoreSnapshot(dst.prisma, iterate(lines));
    expect(await dst.prisma.node.count()).toBe(5);
    await dst.prisma.user.create({ data: { name: 'existing' } });
    const before = await databaseSums(dst.prisma);
    await expect(restoreSnapshot(dst.prisma, iterate(lines))).rejects.toThrow(/the target database is not empty: table \w+ has \d+ rows/);
    expect(await databaseSums(dst.prisma)).toEqual(before);
  });
});

describe('a snapshot while writers run (postgres)', () => {
  it('is one consistent point in time: its checksums hold for the rows it carries', async () => {
    const src = await fresh('postgres');
    await populate(src, 10);
    const user = await src.prisma.user.findFirstOrThrow();
    let stop = false;
    let written = 0;
    const writer = (async () => {
      for (let i = 0; !stop; i++) {
        await src.prisma.auditEvent.create({ data: { actor: 'writer', action: 'tick', target: `n${i}` } });
        await src.prisma.node.update({ where: { name: 'web-1' }, data: { endpoints: [`192.0.2.1:${1000 + (i % 60000)}`] } });
        written++;
      }
    })();
    await new Promise((r) => setTimeout(r, 100));
    const lines = await snapshotLines(src);
    stop = true;
    await writer;
    expect(written).toBeGreaterThan(0);
    const dst = await fresh('postgres');
    const restored = await restoreSnapshot(dst.prisma, iterate(lines));
    expect(restored.tables.find((t) => t.name === 'users')?.rows).toBe(1);
    expect(user.id).toBeGreaterThan(0);
  });
});

/**
 * Issue 12, "From embedded to Postgres, and backups": `weft-server backup` from a running server,
 * `restore` into a fresh data directory, and `db copy` from the embedded database to Postgres, after
 * which an agent carries on against a server on Postgres without re-enrolling. Real processes,
 * real PGlite and a real Postgres cluster.
 */
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '@weft/db';
import { SimAgent } from '../../../../test-support/sim-agent.js';
import { createTestDatabase } from '../../../../test-support/test-database.js';
import { cli, spawnServer, type ServerProcess } from '../support/process.js';

describe('backup, restore and db copy (embedded -> Postgres)', { timeout: 300_000 }, () => {
  const work = mkdtempSync(join(tmpdir(), 'weft-dbcopy-'));
  const dataDir = join(work, 'data');
  const backupFile = join(work, 'weft.backup');
  let server: ServerProcess | undefined;
  let agent: SimAgent;
  let nodesBefore: Array<{ id: number; name: string; ipv4: string; ipv6: string }>;
  const api = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${server!.url}${path}`, {
      method, headers: { authorization: `Bearer ${apiKey}`, ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined,
    });
    return { status: res.status, body: (await res.json()) as any };
  };
  let apiKey: string;

  beforeAll(async () => {
    server = await spawnServer({}, dataDir);
    const local = (...args: string[]) => cli([...args, '--data-dir', dataDir, '--json']);
    expect((await local('users', 'create', 'odin')).code).toBe(0);
    apiKey = JSON.parse((await local('apikeys', 'create', '--scopes', 'admin')).stdout).key;
    const authKey = JSON.parse((await local('authkeys', 'create', '--user', 'odin', '--reusable')).stdout).key as string;
    agent = new SimAgent(server.url, 'laptop');
    await agent.register(authKey);
    await agent.connect();
    await agent.waitFor(() => agent.received.some((r) => r.msg.type === 'netmap'), 20_000, 'netmap');
    const other = new SimAgent(server.url, 'server-1');
    await other.register(authKey);
    nodesBefore = (await api('GET', '/api/v1/nodes')).body.items.map((n: { id: number; name: string; ipv4: string; ipv6: string }) => ({ id: n.id, name: n.name, ipv4: n.ipv4, ipv6: n.ipv6 }));
    expect(nodesBefore).toHaveLength(2);
  });
  afterAll(async () => {
    agent?.close();
    await server?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  it('backup FILE takes a snapshot from the running server: owner-only, complete, audited', async () => {
    const r = await cli(['backup', backupFile, '--data-dir', dataDir]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/backup written to .*weft\.backup \(owner-only\)/);
    expect(r.stdout).toMatch(/nodes\s+2/);
    expect(statSync(backupFile).mode & 0o777).toBe(0o600);
    const text = readFileSync(backupFile, 'utf8');
    expect(text.trimEnd().split('\n').at(-1)).toBe('{"end":true}');
    expect(text).not.toContain(apiKey); // keys are kept as hashes only
    const events = (await api('GET', '/api/v1/audit?action=database.backup')).body.items;
    expect(events).toHaveLength(1);
    // A key without the admin scope gets nothing.
    const readKey = JSON.parse((await cli(['apikeys', 'create', '--scopes', 'read', '--json', '--data-dir', dataDir])).stdout).key as string;
    const refused = await cli(['backup', join(work, 'nope'), '--server', server!.url, '--api-key', readKey]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/admin/);
    expect(() => statSync(join(work, 'nope'))).toThrow();
  });

  it('restore FILE loads the backup into a fresh data directory: the same users and nodes', async () => {
    const fresh = join(work, 'restored');
    const r = await cli(['restore', backupFile, '--data-dir', fresh]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/every table's rows and checksum verified/);
    const db = await openDatabase({ dataDir: fresh });
    try {
      const nodes = await db.prisma.node.findMany({ orderBy: { id: 'asc' }, select: { id: true, name: true, ipv4: true, ipv6: true } });
      expect(nodes).toEqual(nodesBefore);
      expect((await db.prisma.user.findMany()).map((u) => u.name)).toEqual(['odin']);
    } finally {
      await db.close();
    }
    const again = await cli(['restore', backupFile, '--data-dir', fresh]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/not empty/);
  });

  it('db copy refuses while the server runs on the data directory, and says what to do', async () => {
    const r = await cli(['db', 'copy', '--to', await createTestDatabase(), '--data-dir', dataDir]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/Stop weft-server serve/);
  });

  it('db copy moves everything to Postgres, verified; the agent carries on against the server on Postgres without re-enrolling', async () => {
    await server!.stop();
    server = undefined;
    const url = await createTestDatabase();
    const r = await cli(['db', 'copy', '--to', url, '--data-dir', dataDir, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.tables.find((t: { name: string }) => t.name === 'nodes').rows).toBe(2);

    const second = await cli(['db', 'copy', '--to', url, '--data-dir', dataDir]);
    expect(second.code).toBe(1);
    expect(second.stderr).toMatch(/not empty/);

    server = await spawnServer({}, undefined, ['--database-url', url]);
    // The same agent (same machine key), no register call: it only reconnects.
    agent.close();
    agent.received.length = 0;
    await agent.connect({ url: server.url });
    await agent.waitFor(() => agent.received.some((m) => m.msg.type === 'netmap'), 20_000, 'netmap from the server on Postgres');
    const netmap = agent.received.find((m) => m.msg.type === 'netmap')!.msg as unknown as { self: { id: number; ipv4: string } };
    expect(netmap.self).toMatchObject({ id: nodesBefore[0]!.id, ipv4: nodesBefore[0]!.ipv4 });
    const nodes = (await api('GET', '/api/v1/nodes')).body.items.map((n: { id: number; name: string; ipv4: string; ipv6: string }) => ({ id: n.id, name: n.name, ipv4: n.ipv4, ipv6: n.ipv6 }));
    expect(nodes).toEqual(nodesBefore);
    // Numbering goes on where the embedded database left off: a new user does not collide.
    expect((await api('POST', '/api/v1/users', { name: 'freya' })).status).toBe(201);
  });

  it('usage errors name what is wrong (exit 2)', async () => {
    const none = await cli(['db', 'copy', '--data-dir', dataDir]);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/db copy needs --to postgres/);
    const missing = await cli(['db', 'copy', '--to', 'postgres://x/y', '--data-dir', join(work, 'nothing-here')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/no embedded database/);
    const notSnapshot = join(work, 'junk');
    const r = await cli(['restore', '/etc/hostname', '--data-dir', notSnapshot]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/not a Weft snapshot/);
  });
});

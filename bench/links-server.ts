/**
 * The server process of `npm run bench:links`: embedded PGlite seeded with the fleet's nodes in one
 * statement (registering 10,000 nodes one by one takes minutes and is not what is measured), then
 * the real app (buildApp) on loopback, under a policy with no rules (every netmap is the node
 * alone: what is measured is the link reports, not netmap fan-out). Talks to the parent over IPC.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase } from '@weft/db';
import { buildApp } from '../apps/server/src/app.js';
import { SYSTEM } from '../apps/server/src/state/index.js';

process.once('message', async (m: { nodes: { machineKey: string; nodeKey: string }[]; token: string }) => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-bench-links-'));
  const db = await openDatabase({ dataDir: dir });
  const user = await db.prisma.user.create({ data: { name: 'fleet' } });
  const base = (100 << 24) | (64 << 16);
  await db.prisma.node.createMany({
    data: m.nodes.map((n, i) => {
      const v4 = base + i + 1;
      return {
        userId: user.id, name: `sim-${i}`, hostname: `sim-${i}`, nodeKey: n.nodeKey, machineKey: n.machineKey, ipv4Int: v4 | 0,
        ipv4: [v4 >>> 24, (v4 >>> 16) & 255, (v4 >>> 8) & 255, v4 & 255].join('.'), ipv6: `fd7a:115c:a1e0::${(i + 1).toString(16)}`,
      };
    }),
  });
  const app = await buildApp({ db, serverUrl: 'http://127.0.0.1', metrics: { token: m.token }, loadPolicy: async () => '{"acls": []}' });
  await app.app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.app.server.address();
  const apiKey = (await app.state.apiKeys.create(SYSTEM, { scopes: ['read'] })).key;
  const ids = (await db.prisma.node.findMany({ select: { id: true }, orderBy: { id: 'asc' } })).map((r) => r.id);
  process.send!({ url: `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`, apiKey, ids });
  process.once('message', async () => {
    await app.app.close();
    await db.close();
    rmSync(dir, { recursive: true, force: true });
    process.exit(0);
  });
});

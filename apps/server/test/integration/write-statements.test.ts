/**
 * What a write costs the database in round trips: every SQL statement the Prisma client sends,
 * BEGIN and COMMIT included (`weft_db_statements_total`), for a node DELETE and an agent
 * registration, on PGlite and Postgres. Real server, real WebSocket agents connected while it
 * happens, so the mapper's table holds what the write needs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SimAgent } from '../../../../test-support/sim-agent.js';
import { connected, online } from '../support/patch-window.js';
import { BACKENDS, startServer, type TestServer } from '../support/server.js';

async function statements(s: TestServer): Promise<number> {
  const m = /^weft_db_statements_total (\d+)$/m.exec(await s.metrics!.exposition());
  return Number(m![1]);
}

describe.each(BACKENDS)('statements per write on %s', (backend) => {
  let s: TestServer;
  let key: string;
  const all: SimAgent[] = [];

  beforeAll(async () => {
    // No periodic sweep falls into a measured write.
    s = await startServer(backend, { metrics: {}, patchIntervalMs: 3_600_000, ephemeralTimeoutS: 3600, expirySweepIntervalMs: 3_600_000 });
    await s.api('POST', '/api/v1/users', { name: 'w' });
    key = (await s.api('POST', '/api/v1/authkeys', { user: 'w', reusable: true })).body.key;
    for (let i = 0; i < 3; i++) {
      const a = new SimAgent(s.url, `w-${i}`);
      await a.register(key);
      await connected(a);
      all.push(a);
    }
    await online(s, all.length);
  }, 300_000);
  afterAll(async () => {
    for (const a of all) a.close();
    await s?.close();
  });

  it('a node DELETE: the API key and its owner, then BEGIN, DELETE ... RETURNING, its user, the audit row with its lock, (Postgres) the outbox row, COMMIT', async () => {
    const victim = all.pop()!;
    victim.close();
    await online(s, all.length);
    const before = await statements(s);
    const r = await s.api('DELETE', `/api/v1/nodes/${victim.self!.id}`);
    expect(r.status).toBe(200);
    // Was 9 (PGlite) and 11 (Postgres): a read before the delete, and the commit-order lock taken
    // by a statement of its own before the audit row and again before the outbox row.
    expect((await statements(s)) - before).toBe(backend === 'postgres' ? 8 : 7);
  });

  it('a DELETE of a node that does not exist is a 404 and writes nothing', async () => {
    const audit = (await s.api('GET', '/api/v1/audit?action=node.')).body;
    const r = await s.api('DELETE', '/api/v1/nodes/999999');
    expect(r.status).toBe(404);
    expect(r.body.code).toBe('node_not_found');
    expect((await s.api('GET', '/api/v1/audit?action=node.')).body).toEqual(audit);
  });

  it('a registration with an auth key, the mapper\'s read of the new node included', async () => {
    const a = new SimAgent(s.url, 'w-new');
    const before = await statements(s);
    await a.register(key);
    await s.mapper.settled();
    // Was 20 (PGlite) and 22 (Postgres): the owner read, locked and read again, and the
    // commit-order lock in statements of its own. What is left: docs/design.md "Round trips".
    expect((await statements(s)) - before).toBe(backend === 'postgres' ? 18 : 17);
  });
});

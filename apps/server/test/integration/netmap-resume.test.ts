/**
 * Netmap resume: a reconnecting agent that holds the server's current peer list (by its content
 * revision) is sent its peers' volatile fields, not the list again. Guards the three ways it can go
 * wrong: a resumed agent that ends with other peers than a fresh one would get (after a restart, so
 * the revision is derived from content, not from a process); a change made while it was away that
 * it never hears of; and a stale, garbage or (under a policy) any revision that is trusted. Real
 * server (PGlite and Postgres) restarted on the same database, real WebSocket agents.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateNodeKey } from '@weft/crypto';
import { type Database, openDatabase } from '@weft/db';
import type { Peer } from '@weft/protocol';
import { createTestDatabase } from '../../../../test-support/test-database.js';
import { SimAgent } from '../../../../test-support/sim-agent.js';
import type { App } from '../../src/app.js';
import { SYSTEM } from '../../src/state/index.js';
import { BACKENDS, listenOn } from '../support/server.js';

describe.each(BACKENDS)('netmap resume on %s', (backend) => {
  let dir = '';
  let databaseUrl: string | undefined;
  let db: Database;
  let app: App;
  let url = '';
  const agents: SimAgent[] = [];
  let authKey = '';
  let external = 0;

  const start = async () => {
    db = await openDatabase(backend === 'pglite' ? { dataDir: dir } : { databaseUrl: databaseUrl! });
    ({ app, url } = await listenOn(db));
  };
  const stop = async () => {
    await app.app.close();
    await db.close();
  };
  /** Connects and returns the type of the connection's first message (netmap or resume). */
  const reconnect = async (a: SimAgent, resume: boolean | string) => {
    const mark = a.received.length;
    await a.connect({ url, resume });
    await a.waitFor(() => a.received.length > mark, 10_000, `${a.hostname} first message`);
    return a.received[mark]!.msg.type;
  };
  /** Peers as held, `nat` null and absent both meaning "not known". */
  const held = (a: SimAgent) => [...a.peers.values()].map(({ nat, ...p }) => (nat ? { ...p, nat } : p) as Peer).sort((x, y) => x.id - y.id);
  /** What a fresh agent gets: the same node connected without a revision. */
  const fresh = async (a: SimAgent) => {
    await a.disconnect();
    expect(await reconnect(a, false)).toBe('netmap');
    return held(a);
  };
  const quiet = async () => {
    await app.mapper.settled();
    await new Promise((r) => setTimeout(r, 300)); // presence writes and their patch window
    await app.mapper.settled();
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'weft-resume-'));
    if (backend === 'postgres') databaseUrl = await createTestDatabase();
    await start();
    await app.state.users.create(SYSTEM, { name: 'ops' });
    authKey = (await app.state.authKeys.create(SYSTEM, { user: 'ops', reusable: true })).key;
    external = (await app.state.nodes.createExternal(SYSTEM, { user: 'ops', hostname: 'printer', nodeKey: generateNodeKey().publicKey })).id;
    for (let i = 0; i < 4; i++) {
      const a = new SimAgent(url, `r-${i}`);
      await a.register(authKey);
      agents.push(a);
      expect(await reconnect(a, false)).toBe('netmap');
    }
    for (const a of agents) await a.waitFor(() => a.peers.size === 4, 10_000, `${a.hostname} sees the others`);
  }, 120_000);
  afterAll(async () => {
    for (const a of agents) a.close();
    await stop().catch(() => {});
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('after a restart an agent holding the current revision gets no list and ends with the peers a fresh agent gets', async () => {
    await quiet();
    for (const a of agents) expect(a.revision, a.hostname).toMatch(/^[0-9a-f]{32}$/);
    for (const a of agents) await a.disconnect();
    // A volatile field changed while they were away: the resume must carry it.
    await app.state.nodes.patch(external, { endpoints: ['192.0.2.7:41641'] });
    await stop();
    await start();
    const [r0, r1, r2, old] = agents as [SimAgent, SimAgent, SimAgent, SimAgent];
    for (const a of [r0, r1, r2]) expect(await reconnect(a, true), a.hostname).toBe('resume');
    // An agent that sends no revision (an older agent) gets the full netmap as before.
    expect(await reconnect(old, false)).toBe('netmap');
    await quiet();
    const resumed = held(r0);
    expect(resumed.map((p) => p.id).sort((x, y) => x - y)).toEqual([external, r1.self!.id, r2.self!.id, old.self!.id].sort((x, y) => x - y));
    expect(resumed.find((p) => p.id === old.self!.id)?.online).toBe(true);
    expect(resumed.find((p) => p.id === external)?.endpoints).toEqual(['192.0.2.7:41641']);
    expect(await fresh(r0)).toEqual(resumed);
  }, 60_000);

  it('a change made while it was away (a node added, one deleted) gets it the full netmap; one made while connected keeps it resumable', async () => {
    const [r0, r1, r2] = agents as [SimAgent, SimAgent, SimAgent];
    await quiet();
    await r1.disconnect();
    const added = await app.state.nodes.createExternal(SYSTEM, { user: 'ops', hostname: 'scanner', nodeKey: generateNodeKey().publicKey });
    await app.state.nodes.delete(SYSTEM, external);
    // r2 was connected: it got both changes as deltas, each saying the list's new revision.
    await r2.waitFor(() => r2.peers.has(added.id) && !r2.peers.has(external), 10_000, 'the two deltas');
    await quiet();
    expect(await reconnect(r1, true)).toBe('netmap');
    expect(held(r1).map((p) => p.id)).toContain(added.id);
    expect(held(r1).map((p) => p.id)).not.toContain(external);
    await r2.disconnect();
    expect(await reconnect(r2, true)).toBe('resume');
    await quiet();
    expect(held(r2)).toEqual(await fresh(r2));
    expect(r0.closed).toBeNull();
  }, 60_000);

  it('a stale, garbage or oversized revision gets the full netmap and a working session', async () => {
    const a = agents[0]!;
    for (const bad of ['0'.repeat(32), 'not-a-revision', 'A'.repeat(32), 'f'.repeat(5000)]) {
      await a.disconnect();
      expect(await reconnect(a, bad), bad.slice(0, 40)).toBe('netmap');
      expect(a.peers.size).toBe(agents.length);
      expect(a.closed).toBeNull();
    }
    // The session works: a change reaches it as a delta.
    const n = await app.state.nodes.createExternal(SYSTEM, { user: 'ops', hostname: 'late', nodeKey: generateNodeKey().publicKey });
    await a.waitFor(() => a.peers.has(n.id), 10_000, 'the upsert after a bad revision');
  }, 60_000);

  it('under an access policy an agent of the older resume gets the full netmap with its filter and revision; a current one resumes with the filter', async () => {
    const a = agents[1]!;
    await quiet();
    expect(a.revision).toMatch(/^[0-9a-f]{32}$/);
    await app.state.policy.set(JSON.stringify({ acls: [{ action: 'accept', src: ['*'], dst: ['*:*'] }] }), (await app.state.policy.current()).version, SYSTEM);
    await quiet();
    const revisionBefore = a.revision!;
    await a.disconnect();
    const mark = a.received.length;
    await a.connect({ url, resume: revisionBefore, endpoints: false });
    await a.waitFor(() => a.received.length > mark, 10_000, 'first message');
    const netmap = a.received[mark]!.msg;
    expect(netmap.type).toBe('netmap');
    expect(netmap.packetFilter).toBeDefined();
    // Everyone sees everyone: the class's list is the whole list, so its revision is the same.
    expect(netmap.revision).toBe(revisionBefore);
    await a.disconnect();
    expect(await reconnect(a, true)).toBe('resume');
    expect(a.received.at(-1)!.msg.packetFilter).toEqual(netmap.packetFilter);
  }, 60_000);
});

/**
 * A restart of a server on the embedded database is invisible to its peers: the predecessor's
 * sessions are kept for the restart grace, so agents that come back within it never go offline and
 * nobody is patched about them; one that does not come back goes offline when the grace ends. And a
 * reconnect of an online node (only lastSeen moves) is not patched to peers. Real PGlite, a server
 * restarted on the database it keeps, real WebSocket agents.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type Database, openDatabase } from '@weft/db';
import { SimAgent } from '../../../../test-support/sim-agent.js';
import type { App } from '../../src/app.js';
import { SYSTEM } from '../../src/state/index.js';
import { listenOn } from '../support/server.js';

/** Long enough for the agents to reconnect on a busy machine, short enough to wait out. */
const GRACE_MS = 4_000;

describe('presence across a restart on the embedded database', () => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-presence-restart-'));
  let db: Database;
  let app: App;
  let url = '';
  const agents: SimAgent[] = [];
  const start = async () => {
    db = await openDatabase({ dataDir: dir });
    ({ app, url } = await listenOn(db, { restartGraceMs: GRACE_MS }));
  };
  const stop = async () => {
    await app.app.close();
    await db.close();
  };
  afterAll(async () => {
    for (const a of agents) a.close();
    await stop().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  });
  /** The online patches `a` got about `id` since message `mark`. */
  const onlinePatches = (a: SimAgent, id: number, mark: number) =>
    a.received.slice(mark).flatMap((r) => (r.msg.type === 'delta' ? ((r.msg as { patch?: { id: number; online?: boolean }[] }).patch ?? []) : []))
      .filter((p) => p.id === id && p.online !== undefined).map((p) => p.online);
  const closed = (a: SimAgent) => new Promise<void>((resolve) => {
    if (a.closed || !a.socket) return resolve();
    a.socket.once('close', () => resolve());
    a.close();
  });
  const settle = async () => {
    await app.state.presence.settled();
    await app.mapper.settled();
    app.mapper.flushPatches();
    await new Promise((r) => setTimeout(r, 300)); // a presence write and its patch window
    await app.state.presence.settled();
    app.mapper.flushPatches();
  };

  it('agents back within the grace get no online patches about each other; one that is not back goes offline after it; an online reconnect patches nobody', async () => {
    await start();
    await app.state.users.create(SYSTEM, { name: 'ops' });
    const key = (await app.state.authKeys.create(SYSTEM, { user: 'ops', reusable: true })).key;
    for (const name of ['back-1', 'back-2', 'gone']) {
      const a = new SimAgent(url, name);
      await a.register(key);
      await a.connect();
      agents.push(a);
    }
    const [one, two, gone] = agents as [SimAgent, SimAgent, SimAgent];
    for (const a of agents) await a.waitFor(() => [...a.peers.values()].filter((p) => p.online).length === 2, 10_000, `${a.hostname} sees the others online`);

    await stop();
    for (const a of agents) await closed(a);
    await start();
    const marks = [one.received.length, two.received.length];
    await one.connect({ url });
    await one.waitFor(() => one.received.length > marks[0]!, 10_000, 'back-1 netmap');
    await settle();
    await two.connect({ url });
    await two.waitFor(() => two.received.length > marks[1]!, 10_000, 'back-2 netmap');
    await settle();
    // (a) Neither went offline, so neither heard the other come back.
    expect(onlinePatches(one, two.self!.id, marks[0]!)).toEqual([]);
    expect(onlinePatches(two, one.self!.id, marks[1]!)).toEqual([]);
    expect(two.peers.get(one.self!.id)?.online).toBe(true);
    expect(one.peers.get(two.self!.id)?.online).toBe(true);
    expect(one.peers.get(gone.self!.id)?.online).toBe(true);

    // (b) The one that did not come back goes offline when the grace ends, and its peers hear of it.
    await one.waitFor(() => one.peers.get(gone.self!.id)?.online === false, GRACE_MS + 10_000, 'gone offline after the grace');
    await two.waitFor(() => two.peers.get(gone.self!.id)?.online === false, 5_000, 'gone offline on back-2');
    const row = await app.state.ctx.prisma.node.findUniqueOrThrow({ where: { id: gone.self!.id } });
    expect(row.online).toBe(false);
    expect((await app.state.ctx.prisma.node.findUniqueOrThrow({ where: { id: one.self!.id } })).online).toBe(true);
    const event = await app.state.ctx.prisma.auditEvent.findFirstOrThrow({ where: { action: 'replica.expire' } });
    expect(event.detail).toMatchObject({ offline: { count: 1, names: [row.name] } });

    // (c) back-1 reconnects while online: its lastSeen moves in the database, no peer is patched.
    const before = (await app.state.ctx.prisma.node.findUniqueOrThrow({ where: { id: one.self!.id } })).lastSeen!;
    const mark = two.received.length;
    // The server replaces the older connection when the new one is up: wait for it to close.
    const replaced = new Promise<void>((resolve) => one.socket!.once('close', () => resolve()));
    await one.connect({ url });
    await replaced;
    await settle();
    expect((await app.state.ctx.prisma.node.findUniqueOrThrow({ where: { id: one.self!.id } })).lastSeen!.getTime()).toBeGreaterThan(before.getTime());
    expect(onlinePatches(two, one.self!.id, mark)).toEqual([]);
    expect(two.peers.get(one.self!.id)?.online).toBe(true);
  }, 120_000);
});

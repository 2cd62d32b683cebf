/**
 * Presence per replica session, on the real database: the server under test is replica A; a
 * second `Presence` on the same database (its own replica row) plays replica B. The sweeps are
 * called directly, so nothing here waits for a heartbeat.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SimAgent } from '../../../../test-support/sim-agent.js';
import { Presence } from '../../src/state/presence.js';
import { REPLICA_DEAD_AFTER_MS } from '../../src/tunables.js';
import { BACKENDS, startServer, type TestServer } from '../support/server.js';
import { joinedAgent } from '../support/replicas.js';

const quiet = { warn: () => {}, error: () => {} };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.each(BACKENDS)('presence on %s', (backend) => {
  let s: TestServer;
  let key: string;
  let watcher: SimAgent;
  beforeAll(async () => {
    // No restart grace: a second replica here plays HA on the embedded database too.
    s = await startServer(backend, { restartGraceMs: 0 });
    await s.api('POST', '/api/v1/users', { name: 'ops' });
    key = (await s.api('POST', '/api/v1/authkeys', { user: 'ops', reusable: true })).body.key;
    watcher = await joined('watcher');
  });
  afterAll(async () => {
    watcher?.close();
    await s?.close();
  });

  async function joined(hostname: string): Promise<SimAgent> {
    return joinedAgent(s.url, hostname, key);
  }
  async function replicaB(id: string): Promise<Presence> {
    const b = new Presence(s.state.ctx, id, quiet);
    await b.start({ sole: false, deadAfterMs: 60_000 });
    return b;
  }
  const online = async (id: number) => (await s.api('GET', `/api/v1/nodes/${id}`)).body.online as boolean;
  const sessions = (nodeId: number) => s.state.ctx.prisma.nodeSession.findMany({ where: { nodeId }, orderBy: { replicaId: 'asc' } });

  it('a node that moved to another replica stays online when the old replica closes its stale session', async () => {
    const b = await replicaB('replica-b-moved');
    const x = await joined('mover');
    const id = x.self!.id;
    await watcher.waitFor(() => watcher.peers.get(id)?.online === true, 5000, 'mover online');
    b.connected(id);
    await b.settled();
    expect((await sessions(id)).map((r) => r.replicaId).sort()).toEqual([s.hub.origin, 'replica-b-moved'].sort());
    x.close();
    await x.waitFor(() => x.closed !== null, 5000, 'socket closed');
    await s.mapper.settled();
    await s.state.presence.settled();
    expect((await sessions(id)).map((r) => r.replicaId)).toEqual(['replica-b-moved']);
    expect(await online(id)).toBe(true);
    // Its last session closing takes it offline, and peers hear of it.
    b.disconnected(id);
    await b.settled();
    expect(await online(id)).toBe(false);
    await watcher.waitFor(() => watcher.peers.get(id)?.online === false, 5000, 'mover offline patch');
    await b.stop();
  });

  it('a replica that stops beating is swept: its nodes go offline (audited as system), nodes with a live session stay online', async () => {
    const b = await replicaB('replica-b-dies');
    const x = await joined('only-on-b');
    const y = await joined('on-both');
    const [xid, yid] = [x.self!.id, y.self!.id];
    // x's socket moves to B (A closes its own), y is held by both.
    b.connected(xid);
    b.connected(yid);
    await b.settled();
    x.close();
    await x.waitFor(() => x.closed !== null, 5000, 'x closed on A');
    await s.mapper.settled();
    await s.state.presence.settled();
    expect(await online(xid)).toBe(true);
    await b.stop(); // B "crashes": no more beats, sessions left behind.
    await watcher.waitFor(() => watcher.peers.get(xid)?.online === true, 5000, 'x online');
    const before = await s.state.ctx.prisma.replica.findUniqueOrThrow({ where: { id: 'replica-b-dies' } });
    await sleep(20);
    const changed = await s.state.presence.sweep(10);
    expect(changed).toEqual([xid]);
    expect(await online(xid)).toBe(false);
    expect(await online(yid)).toBe(true);
    expect(await s.state.ctx.prisma.replica.findUnique({ where: { id: 'replica-b-dies' } })).toBeNull();
    expect(await sessions(xid)).toEqual([]);
    // Last seen is when its replica last beat, so the ephemeral timeout counts from there.
    const row = await s.state.ctx.prisma.node.findUniqueOrThrow({ where: { id: xid } });
    expect(row.lastSeen!.getTime()).toBeGreaterThanOrEqual(before.heartbeatAt.getTime());
    await watcher.waitFor(() => watcher.peers.get(xid)?.online === false, 5000, 'x offline patch from the sweep');
    expect(watcher.peers.get(yid)?.online).toBe(true);
    const event = await s.state.ctx.prisma.auditEvent.findFirstOrThrow({ where: { action: 'replica.expire', target: 'replica:replica-b-dies' } });
    expect(event.actor).toBe('system');
    expect(event.detail).toMatchObject({ sessions: 2, offline: { count: 1, names: [row.name] } });
    y.close();
  });

  it('a replica that stops gracefully keeps its sessions through the grace it stamped, whatever its last beat; a sweep after it takes them', async () => {
    const GRACE_MS = 1500;
    const b = await replicaB('replica-b-restarts');
    const x = await joined('restarting-on-b');
    const xid = x.self!.id;
    b.connected(xid);
    await b.settled();
    x.close();
    await x.waitFor(() => x.closed !== null, 5000, 'x closed on A');
    await s.mapper.settled();
    await s.state.presence.settled();
    const stoppedAt = Date.now();
    await b.stop({ keepSessionsMs: GRACE_MS }); // SIGTERM: a restart or a rolling upgrade.
    const row = await s.state.ctx.prisma.replica.findUniqueOrThrow({ where: { id: 'replica-b-restarts' } });
    expect(row.keepSessionsUntil).not.toBeNull();
    await sleep(20);
    // Its beat is older than the bound: a crashed replica would go now (the test above).
    expect(await s.state.presence.sweep(10)).toEqual([]);
    expect(await online(xid)).toBe(true);
    expect((await sessions(xid)).map((r) => r.replicaId)).toEqual(['replica-b-restarts']);
    await sleep(Math.max(0, stoppedAt + GRACE_MS + 100 - Date.now()));
    expect(await s.state.presence.sweep(10)).toEqual([xid]);
    expect(await online(xid)).toBe(false);
    expect(await s.state.ctx.prisma.replica.findUnique({ where: { id: 'replica-b-restarts' } })).toBeNull();
    await watcher.waitFor(() => watcher.peers.get(xid)?.online === false, 5000, 'x offline patch after the grace');
  });

  it('a replica declared dead while still alive registers again and rewrites its sessions at its next beat', async () => {
    const x = await joined('survivor');
    const id = x.self!.id;
    await s.state.presence.settled();
    const b = await replicaB('replica-b-sweeper');
    await sleep(20);
    // B sweeps A as if A had stalled past the bound.
    await b.sweep(10);
    expect(await online(id)).toBe(false);
    await s.state.presence.beat();
    await s.state.presence.settled();
    expect(await online(id)).toBe(true);
    expect((await sessions(id)).map((r) => r.replicaId)).toEqual([s.hub.origin]);
    await b.stop();
    await s.state.ctx.prisma.replica.delete({ where: { id: 'replica-b-sweeper' } });
    x.close();
  });

  it('an online change that reaches the mapper after a newer one (out of commit order) is ignored', async () => {
    const x = await joined('ordered');
    const id = x.self!.id;
    await s.state.presence.settled();
    await watcher.waitFor(() => watcher.peers.get(id)?.online === true, 5000, 'ordered online');
    const row = await s.state.ctx.prisma.node.findUniqueOrThrow({ where: { id } });
    // A stale "offline" (lower seq than the row's), then an endpoint patch flushed in the same window.
    await s.mapper.apply({ kind: 'presence', nodes: [{ id, online: false, lastSeen: new Date().toISOString(), seq: row.presenceSeq - 1 }] });
    x.send(JSON.stringify({ type: 'endpoints', endpoints: ['192.0.2.9:41641'] }));
    await watcher.waitFor(() => watcher.peers.get(id)?.endpoints[0] === '192.0.2.9:41641', 5000, 'endpoint patch');
    expect(watcher.peers.get(id)?.online).toBe(true);
    x.close();
  });

  it("a node of a crashed replica was last seen at that replica's last beat; after a sole server's restart, at the restart (an ephemeral node gets its whole timeout)", async () => {
    const held = async (replica: string, hostname: string) => {
      const b = await replicaB(replica);
      const a = new SimAgent(s.url, hostname);
      await a.register(key);
      b.connected(a.self!.id);
      await b.settled();
      await b.stop();
      // Connected two hours ago; its replica's last beat was an hour ago.
      await s.state.ctx.prisma.node.update({ where: { id: a.self!.id }, data: { lastSeen: new Date(Date.now() - 2 * 3600_000) } });
      await s.state.ctx.prisma.$executeRaw`UPDATE replicas SET heartbeat_at = now() - interval '1 hour' WHERE id = ${replica}`;
      return a.self!.id;
    };
    const lastSeen = async (id: number) => (await s.state.ctx.prisma.node.findUniqueOrThrow({ where: { id } })).lastSeen!.getTime();

    const crashed = await held('replica-crashed', 'on-crashed');
    expect(await s.state.presence.sweep(REPLICA_DEAD_AFTER_MS)).toEqual([crashed]);
    expect(await lastSeen(crashed)).toBeLessThan(Date.now() - 50 * 60_000);
    expect(await lastSeen(crashed)).toBeGreaterThan(Date.now() - 70 * 60_000);

    const predecessor = await held('replica-predecessor', 'on-predecessor');
    const sweptAt = Date.now();
    expect(await s.state.presence.sweep(REPLICA_DEAD_AFTER_MS, { everyOther: true })).toEqual([predecessor]);
    expect(await lastSeen(predecessor)).toBeGreaterThan(sweptAt - 5_000);
    expect(await online(predecessor)).toBe(false);
  });

  it('connects recorded together (a reconnect storm) are written in one presence transaction, the first not alone', async () => {
    const b = await replicaB('replica-b-storm');
    const ids: number[] = [];
    for (let i = 0; i < 20; i++) {
      const a = new SimAgent(s.url, `storm-${i}`);
      await a.register(key);
      ids.push(a.self!.id);
    }
    const emitted: number[][] = [];
    const emit = s.state.ctx.emit;
    s.state.ctx.emit = (change) => {
      if (change.kind === 'presence' && change.nodes.some((n) => ids.includes(n.id))) emitted.push(change.nodes.map((n) => n.id));
      emit(change);
    };
    try {
      // Recorded together (the first used to start a transaction of its own at once).
      for (const id of ids) b.connected(id);
      await b.settled();
    } finally {
      s.state.ctx.emit = emit;
    }
    expect(emitted).toHaveLength(1);
    expect([...emitted[0]!].sort((x, y) => x - y)).toEqual(ids);
    expect((await s.state.ctx.prisma.nodeSession.count({ where: { replicaId: 'replica-b-storm' } }))).toBe(ids.length);
    for (const id of ids) b.disconnected(id);
    await b.settled();
    await b.stop();
    await s.state.ctx.prisma.replica.delete({ where: { id: 'replica-b-storm' } });
  });

  it('a session of a node deleted meanwhile is not written, and the writer carries on', async () => {
    const b = await replicaB('replica-b-deleted');
    const x = await joined('deleted-soon');
    const id = x.self!.id;
    expect((await s.api('DELETE', `/api/v1/nodes/${id}`)).status).toBe(200);
    b.connected(id);
    const y = await joined('after-delete');
    b.connected(y.self!.id);
    await b.settled();
    expect(await sessions(id)).toEqual([]);
    expect((await sessions(y.self!.id)).map((r) => r.replicaId)).toContain('replica-b-deleted');
    b.disconnected(y.self!.id);
    await b.settled();
    await b.stop();
    await s.state.ctx.prisma.replica.delete({ where: { id: 'replica-b-deleted' } });
    y.close();
  });
});

/**
 * The mesh on a real network (issue 3, "Real-network lab"): the real server, one real agent daemon
 * with wireguard-go per host. Tests run in order and build on each other's state.
 */
import { describe, expect, it } from 'vitest';
import { useLab } from './lab/vitest.js';
import { parseJsonOutput, startMesh, WeftAgent, wgKeyOf, type Mesh } from './lab/weft.js';
import { waitFor } from './lab/wait.js';

const PEER_GONE_MS = 1000;

let mesh: Mesh<'a' | 'b' | 'c'>;
/** Agents started by individual tests (d, e, f). */
const more: Record<string, WeftAgent> = {};
const ctx = useLab({ name: 'mesh', hosts: ['server', 'a', 'b', 'c', 'd', 'e', 'f'] }, async (lab) => {
  mesh = await startMesh(lab, ['a', 'b', 'c'] as const);
});

const pairs = <T>(xs: readonly T[]) => xs.flatMap((x) => xs.filter((y) => y !== x).map((y) => [x, y] as const));

/** Resolves once no host in `watchers` has `gone` among its WireGuard peers; returns the ms taken. */
async function peersDropped(watchers: WeftAgent[], goneNodeKeys: string[], timeoutMs: number): Promise<number> {
  const t0 = Date.now();
  const keys = goneNodeKeys.map(wgKeyOf);
  await waitFor(
    async () => {
      const dumps = await Promise.all(watchers.map((w) => w.wgDump()));
      return dumps.every((d) => d !== null && !d.peers.some((p) => keys.includes(p.publicKey)));
    },
    { timeoutMs, intervalMs: 25, what: `peers ${goneNodeKeys.join(', ')} removed from ${watchers.map((w) => w.host.name).join(', ')}` },
  );
  const ms = Date.now() - t0;
  console.info(`peers ${goneNodeKeys.length} removed from ${watchers.map((w) => w.host.name).join(',')} ${ms} ms after the REST call returned`);
  return ms;
}

describe('mesh', () => {
  it('three hosts joined with an auth key ping each other over tunnel addresses', async () => {
    const { hosts } = ctx.lab;
    const results = await Promise.all(
      pairs(['a', 'b', 'c'] as const).map(async ([x, y]) => [x, y, await hosts[x].ping(mesh.ips[y], { count: 2, intervalMs: 100, timeoutMs: 5000 })] as const),
    );
    for (const [x, y, r] of results) expect(r.ok, `${x} -> ${y} (${mesh.ips[y]}): ${r.output}`).toBe(true);

    // Every host's WireGuard has exactly the other two as peers.
    const statuses = Object.fromEntries(await Promise.all((['a', 'b', 'c'] as const).map(async (h) => [h, await mesh.agents[h].status()] as const)));
    for (const h of ['a', 'b', 'c'] as const) {
      const others = (['a', 'b', 'c'] as const).filter((o) => o !== h).map((o) => wgKeyOf(statuses[o]!.self!.nodeKey)).sort();
      const dump = await mesh.agents[h].wgDump();
      expect(dump?.peers.map((p) => p.publicKey).sort()).toEqual(others);
    }
    const nodes = await mesh.server.api.nodes();
    expect(nodes.map((n) => n.hostname).sort()).toEqual(['a', 'b', 'c']);
  });

  it('an agent daemon restarted comes back as the same node with the same addresses, without logging in', async () => {
    const a = mesh.agents.a;
    const before = await a.status();
    await a.restart();
    const after = await waitFor(async () => {
      const s = await a.status();
      return s.state === 'running' && s.online ? s : null;
    }, { timeoutMs: 20_000, intervalMs: 200, what: 'a running again' });
    expect(after.self).toMatchObject({ id: before.self!.id, ipv4: before.self!.ipv4, ipv6: before.self!.ipv6, nodeKey: before.self!.nodeKey });
    expect((await ctx.lab.hosts.a.ping(mesh.ips.b, { count: 1, timeoutMs: 5000 })).ok).toBe(true);
    expect((await mesh.server.api.nodes()).length).toBe(3);
  });

  it('a daemon killed with -9 leaves wireguard-go running; the next daemon adopts it: same node, tunnels never stop', async () => {
    const a = mesh.agents.a;
    const { hosts } = ctx.lab;
    const before = await a.status();
    const wgPid = a.wireguardGoPid();
    expect(wgPid).not.toBeNull();
    await a.crash();
    // No daemon: the data plane is wireguard-go's alone.
    expect(a.wireguardGoPid()).toBe(wgPid);
    expect((await hosts.a.ping(mesh.ips.b, { count: 1, timeoutMs: 5000 })).ok).toBe(true);

    await a.startAgain();
    const after = await waitFor(async () => {
      const s = await a.status().catch(() => null);
      return s?.state === 'running' && s.online ? s : null;
    }, { timeoutMs: 20_000, intervalMs: 200, what: 'a running again after kill -9' });
    expect(after.self).toMatchObject({ id: before.self!.id, ipv4: before.self!.ipv4, nodeKey: before.self!.nodeKey });
    expect(a.wireguardGoPid()).toBe(wgPid); // adopted, not replaced
    expect(a.process.output()).toContain('adopted running wireguard-go');
    for (const y of ['b', 'c'] as const) expect((await hosts.a.ping(mesh.ips[y], { count: 1, timeoutMs: 5000 })).ok, `a -> ${y}`).toBe(true);
    expect((await hosts.b.ping(mesh.ips.a, { count: 1, timeoutMs: 5000 })).ok, 'b -> a').toBe(true);
    expect((await mesh.server.api.nodes()).length).toBe(3);
  });

  it('with the server stopped tunnels keep working; back up, agents reconnect and see new changes', async () => {
    const { hosts } = ctx.lab;
    await mesh.server.stop();
    await waitFor(async () => !(await mesh.agents.a.status()).online, { timeoutMs: 15_000, intervalMs: 200, what: 'a to notice the server is gone' });
    for (const [x, y] of pairs(['a', 'b', 'c'] as const)) expect((await hosts[x].ping(mesh.ips[y], { count: 1, timeoutMs: 3000 })).ok, `${x} -> ${y}`).toBe(true);

    await mesh.server.restart();
    await waitFor(async () => (await Promise.all(Object.values(mesh.agents).map((g) => g.status()))).every((s) => s.online), {
      timeoutMs: 30_000, intervalMs: 250, what: 'every agent back online',
    });
    // A change made after the restart reaches them: d joins and everyone can reach it.
    const d = (more.d = await WeftAgent.start(hosts.d));
    const ds = await d.upOk({ server: mesh.server.url, authKey: mesh.authKey, hostname: 'd' });
    for (const h of ['a', 'b', 'c'] as const) {
      const r = await hosts[h].ping(ds.self!.ipv4, { count: 1, timeoutMs: 5000 });
      expect(r.ok, `${h} -> d`).toBe(true);
    }
  });

  it('interactive login: weft up without a key waits for weft-server nodes approve', async () => {
    const e = (more.e = await WeftAgent.start(ctx.lab.hosts.e));
    await mesh.server.authKey('bob'); // creates user bob
    const login = await e.upInteractive({ server: mesh.server.url, hostname: 'e' });
    expect(login.code).toMatch(/\S+/);
    expect(login.url).toContain(mesh.server.url);
    expect((await e.status()).state).not.toBe('running');
    await mesh.server.approve(login.code, 'bob');
    expect(await login.done).toMatchObject({ code: 0 });
    const st = await e.status();
    expect(st.self?.user).toBe('bob');
    expect((await ctx.lab.hosts.e.ping(mesh.ips.a, { count: 1, timeoutMs: 5000 })).ok).toBe(true);
  });

  it('an expired node is cut off (weft status exits 11, says weft login), logs in again with weft login and keeps its id and addresses', async () => {
    const e = more.e!;
    const before = (await e.status()).self!;
    await mesh.server.api.call('POST', `/api/v1/nodes/${before.id}/expire`);
    await peersDropped([mesh.agents.a, mesh.agents.b], [before.nodeKey], 5000);
    const expired = await waitFor(async () => {
      const st = await e.status();
      return st.state === 'expired' ? st : undefined;
    }, { timeoutMs: 5000, intervalMs: 100, what: 'e to report expired' });
    expect(expired.lastError?.message).toMatch(/expired/);
    const r = await e.cli(['status', '--socket', e.socket], 15_000);
    expect(r.code).toBe(11);
    expect(r.stdout + r.stderr).toContain('weft login');
    const login = await e.upInteractive({ server: mesh.server.url, hostname: 'e' });
    await mesh.server.approve(login.code, 'bob');
    expect(await login.done).toMatchObject({ code: 0 });
    const after = (await e.status()).self!;
    expect(after).toMatchObject({ id: before.id, ipv4: before.ipv4, ipv6: before.ipv6, name: before.name });
    expect(Date.parse(after.expiresAt!)).toBeGreaterThan(Date.now() + 179 * 86_400_000);
    expect((await ctx.lab.hosts.a.ping(before.ipv4, { count: 1, timeoutMs: 5000 })).ok).toBe(true);
  });

  it(`weft logout tells the server: the node leaves GET /api/v1/nodes and every peer's wg show within ${PEER_GONE_MS} ms`, async () => {
    const d = more.d!;
    const self = (await d.status()).self!;
    const r = await d.logout();
    expect(r.code, r.stderr).toBe(0);
    expect(parseJsonOutput<{ serverNotified: boolean }>(r, 'weft logout')).toMatchObject({ serverNotified: true, serverError: null });
    expect((await mesh.server.api.nodes()).map((n) => n.id)).not.toContain(self.id);
    const ms = await peersDropped([mesh.agents.a, mesh.agents.b, mesh.agents.c, more.e!], [self.nodeKey], PEER_GONE_MS);
    expect(ms).toBeLessThanOrEqual(PEER_GONE_MS);
    expect(await d.wgDump()).toBeNull(); // its own interface is gone
    expect((await d.status()).state).toBe('needs-login');
  });

  it(`DELETE /api/v1/nodes/:id: within ${PEER_GONE_MS} ms no peer has its key, pings fail, and its daemon says revoked`, async () => {
    const c = mesh.agents.c;
    const self = (await c.status()).self!;
    await mesh.server.api.deleteNode(self.id);
    const ms = await peersDropped([mesh.agents.a, mesh.agents.b], [self.nodeKey], PEER_GONE_MS);
    expect(ms).toBeLessThanOrEqual(PEER_GONE_MS);
    expect((await ctx.lab.hosts.a.ping(self.ipv4, { count: 1, timeoutMs: 1000 })).ok).toBe(false);
    await waitFor(async () => (await c.status()).state === 'revoked', { timeoutMs: 5000, intervalMs: 100, what: 'c to report revoked' });
  });

  it(`deleting a user removes all of that user's nodes within ${PEER_GONE_MS} ms`, async () => {
    const f = (more.f = await WeftAgent.start(ctx.lab.hosts.f));
    await f.upOk({ server: mesh.server.url, authKey: await mesh.server.authKey('bob'), hostname: 'f' });
    const bobs = (await mesh.server.api.nodes()).filter((n) => n.user === 'bob');
    expect(bobs.map((n) => n.hostname).sort()).toEqual(['e', 'f']); // e joined as bob by interactive login

    await mesh.server.api.deleteUser('bob');
    const ms = await peersDropped([mesh.agents.a, mesh.agents.b], bobs.map((n) => n.nodeKey), PEER_GONE_MS);
    expect(ms).toBeLessThanOrEqual(PEER_GONE_MS);
    expect((await ctx.lab.hosts.a.ping(bobs[0]!.ipv4, { count: 1, timeoutMs: 1000 })).ok).toBe(false);
    for (const g of [f, more.e!]) {
      await waitFor(async () => (await g.status()).state === 'revoked', { timeoutMs: 5000, intervalMs: 100, what: `${g.host.name} to report revoked` });
    }
  });
});

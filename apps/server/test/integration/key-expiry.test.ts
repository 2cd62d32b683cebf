/**
 * Node key expiry through the real server: the tailnet default (REST and `weft-server settings`),
 * per-node disable and extend, the sweeper cutting off a node whose time passed (once, with
 * several sweeps racing), and an expired node logging in again with its id and addresses kept.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CloseCode } from '@weft/protocol';
import { SimAgent } from '../../../../test-support/sim-agent.js';
import { admin } from '../../src/cli/admin.js';
import { BACKENDS, startServer, type TestServer } from '../support/server.js';
import { joinedAgent } from '../support/replicas.js';

const DAY_MS = 86_400_000;

describe.each(BACKENDS)('node key expiry on %s', (backend) => {
  let s: TestServer;
  let key: string;
  beforeAll(async () => {
    s = await startServer(backend, { expirySweepIntervalMs: 100 });
    await s.api('POST', '/api/v1/users', { name: 'kim' });
    key = (await s.api('POST', '/api/v1/authkeys', { user: 'kim', reusable: true })).body.key;
  });
  afterAll(async () => s?.close());

  async function joined(hostname: string): Promise<SimAgent> {
    return joinedAgent(s.url, hostname, key);
  }

  /** Moves a node's expiry into the past, as time passing would (the sweeper is what is tested). */
  async function backdate(nodeId: number): Promise<void> {
    await s.state.ctx.prisma.node.update({ where: { id: nodeId }, data: { expiresAt: new Date(Date.now() - 1000) } });
  }

  async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
    const out: string[] = [];
    const err: string[] = [];
    const code = await admin([...args, '--server', s.url, '--api-key', s.adminKey], (l) => out.push(l), (l) => err.push(l));
    return { code, out: out.join('\n'), err: err.join('\n') };
  }

  it('the default is 180 days: a node that joins expires 180 days after it joined', async () => {
    expect((await s.api('GET', '/api/v1/settings')).body).toEqual({ nodeKeyExpiryDays: 180, deviceApprovalRequired: false });
    const t0 = Date.now();
    const a = new SimAgent(s.url, 'default-expiry');
    const res = await a.register(key);
    expect(res.status).toBe('registered');
    const at = Date.parse(a.self!.expiresAt!);
    expect(at).toBeGreaterThanOrEqual(t0 + 180 * DAY_MS - 1000);
    expect(at).toBeLessThanOrEqual(Date.now() + 180 * DAY_MS + 1000);
  });

  it('PATCH /api/v1/settings outside 1-180 days is refused naming the field and the range, and changes nothing', async () => {
    for (const bad of [0, 181, 1.5, -3, '30']) {
      const res = await s.api('PATCH', '/api/v1/settings', { nodeKeyExpiryDays: bad });
      expect(res.status, JSON.stringify(bad)).toBe(400);
      expect(res.type).toMatch(/^application\/problem\+json/);
      expect(res.body).toMatchObject({ code: 'invalid_request', retryable: false });
      expect(res.body.detail).toContain('nodeKeyExpiryDays');
      expect(res.body.detail).toContain('1-180');
      expect(res.body.errors[0].path).toBe('body.nodeKeyExpiryDays');
    }
    expect((await s.api('PATCH', '/api/v1/settings', { nodeKeyExpiry: 30 })).status).toBe(400);
    expect((await s.api('PATCH', '/api/v1/settings', { nodeKeyExpiryDays: 30 }, { authorization: `Bearer ${s.readKey}` })).status).toBe(403);
    expect((await s.api('GET', '/api/v1/settings')).body.nodeKeyExpiryDays).toBe(180);
    expect((await s.api('GET', '/api/v1/audit?action=settings.')).body.items).toEqual([]);
  });

  it('weft-server settings set changes the default (audited with before and after); new joins use it', async () => {
    const set = await cli('settings', 'set', 'node-key-expiry-days', '30');
    expect(set.code, set.err).toBe(0);
    expect(set.out).toContain('node-key-expiry-days      30');
    const got = await cli('settings', 'get', '--json');
    expect(JSON.parse(got.out)).toEqual({ nodeKeyExpiryDays: 30, deviceApprovalRequired: false });
    const bad = await cli('settings', 'set', 'node-key-expiry-days', '365');
    expect(bad.code).toBe(1);
    expect(bad.err).toContain('nodeKeyExpiryDays must be 1-180 days');
    expect((await cli('settings', 'set', 'node-key-expiry-days', 'soon')).code).toBe(2);
    expect((await cli('settings', 'set', 'colour', 'blue')).err).toContain('unknown setting "colour"');
    const events = (await s.api('GET', '/api/v1/audit?action=settings.update')).body.items;
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ before: { nodeKeyExpiryDays: 180 }, after: { nodeKeyExpiryDays: 30 } });
    const a = new SimAgent(s.url, 'thirty-days');
    await a.register(key);
    expect(Math.abs(Date.parse(a.self!.expiresAt!) - (Date.now() + 30 * DAY_MS))).toBeLessThan(5000);
    expect((await cli('settings', 'set', 'node-key-expiry-days', '180')).code).toBe(0);
  });

  it('per node: disable (never expires), enable (the default from now), extend; bad bodies are refused; all audited', async () => {
    const a = new SimAgent(s.url, 'per-node');
    await a.register(key);
    const id = a.self!.id;
    const disabled = await s.api('POST', `/api/v1/nodes/${id}/expiry`, { disabled: true });
    expect(disabled.status).toBe(200);
    expect(disabled.body).toMatchObject({ expiresAt: null, expired: false });
    const enabled = await s.api('POST', `/api/v1/nodes/${id}/expiry`, { disabled: false });
    expect(Math.abs(Date.parse(enabled.body.expiresAt) - (Date.now() + 180 * DAY_MS))).toBeLessThan(5000);
    const ext = await cli('nodes', 'expiry', String(id), '--extend', '10');
    expect(ext.code, ext.err).toBe(0);
    const after = (await s.api('GET', `/api/v1/nodes/${id}`)).body;
    expect(Date.parse(after.expiresAt) - Date.parse(enabled.body.expiresAt)).toBe(10 * DAY_MS);
    for (const body of [{}, { extendDays: 0 }, { extendDays: 181 }, { disabled: true, extendDays: 3 }, { disabled: 'yes' }]) {
      const res = await s.api('POST', `/api/v1/nodes/${id}/expiry`, body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.code).toBe('invalid_request');
    }
    expect((await s.api('GET', `/api/v1/nodes/${id}`)).body.expiresAt).toBe(after.expiresAt);
    expect((await s.api('POST', '/api/v1/nodes/999999/expiry', { disabled: true })).status).toBe(404);
    expect((await cli('nodes', 'expiry', String(id))).code).toBe(2);
    const actions = (await s.api('GET', `/api/v1/audit?target=node:${a.self!.name}&action=node.expiry`)).body.items.map((e: { action: string }) => e.action);
    expect(actions).toEqual(['node.expiry-disable', 'node.expiry-enable', 'node.expiry-extend']);
  });

  it('the sweeper cuts off a node whose expiry passed: closed with NodeExpired, dropped by its peers, audited once as the system', async () => {
    const e = await joined('sweep-me');
    const w = await joined('sweep-witness');
    await w.waitFor(() => w.peers.has(e.self!.id), 5000, 'peer visible');
    await backdate(e.self!.id);
    await e.waitFor(() => e.closed !== null, 5000, 'expired node closed');
    expect(e.closed!.code).toBe(CloseCode.NodeExpired);
    await w.waitFor(() => !w.peers.has(e.self!.id), 5000, 'expired node dropped by its peer');
    await e.connect().catch(() => {});
    expect(e.refused).toMatchObject({ status: 410, body: { code: 'node_expired' } });
    // More sweeps find nothing more to do.
    await new Promise((r) => setTimeout(r, 400));
    const events = (await s.api('GET', `/api/v1/audit?action=node.expire&target=node:${e.self!.name}`)).body.items;
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ actor: 'system', actorType: 'system', origin: 'system', detail: { reason: 'key expiry' } });
    w.close();
  });

  it('sweeps racing each other (as replicas do) claim each expired node exactly once', async () => {
    const nodes = await Promise.all(['race-1', 'race-2', 'race-3'].map(async (h) => {
      const a = new SimAgent(s.url, h);
      await a.register(key);
      return a.self!;
    }));
    // Backdated in one statement so the interval sweeper cannot take some before the race.
    await s.state.ctx.prisma.node.updateMany({ where: { id: { in: nodes.map((n) => n.id) } }, data: { expiresAt: new Date(Date.now() - 1000) } });
    const claimed = (await Promise.all(Array.from({ length: 6 }, () => s.state.nodes.sweepExpired()))).flat();
    await new Promise((r) => setTimeout(r, 300));
    for (const n of nodes) expect((await s.api('GET', `/api/v1/audit?action=node.expire&target=node:${n.name}`)).body.items, n.name).toHaveLength(1);
    expect(new Set(claimed).size).toBe(claimed.length);
  });

  it('an expired node logs in again interactively (weft login, no key): same node id and addresses, visible again', async () => {
    const e = await joined('relogin');
    const w = await joined('relogin-witness');
    await w.waitFor(() => w.peers.has(e.self!.id));
    const before = e.self!;
    await backdate(before.id);
    await e.waitFor(() => e.closed !== null, 5000, 'expired node closed');
    await w.waitFor(() => !w.peers.has(before.id), 5000, 'dropped');
    const pending = await e.register();
    expect(pending.status).toBe('pending');
    if (pending.status !== 'pending') return;
    expect((await s.api('POST', `/api/v1/logins/${pending.code}/approve`, { user: 'kim' })).status).toBe(200);
    const back = await e.register();
    expect(back).toMatchObject({ status: 'registered', node: { id: before.id, ipv4: before.ipv4, ipv6: before.ipv6, name: before.name } });
    if (back.status !== 'registered') return;
    expect(Date.parse(back.node.expiresAt!)).toBeGreaterThan(Date.now() + 179 * DAY_MS);
    await w.waitFor(() => w.peers.has(before.id), 5000, 'visible again');
    await e.connect();
    await e.waitFor(() => e.received.filter((r) => r.msg.type === 'netmap').length >= 2, 5000, 'a fresh netmap');
    // Its renewal cleared the sweep mark: when this expiry passes it is cut off again.
    await backdate(before.id);
    await e.waitFor(() => e.closed !== null && e.closed.code === CloseCode.NodeExpired, 5000, 'expired a second time');
    w.close();
  });

  it('an expired node comes back with an auth key too, and extending an expired node brings it back at once', async () => {
    const e = await joined('rekey');
    const w = await joined('rekey-witness');
    await w.waitFor(() => w.peers.has(e.self!.id));
    const before = e.self!;
    await backdate(before.id);
    await w.waitFor(() => !w.peers.has(before.id), 5000, 'dropped');
    expect(await e.register(key)).toMatchObject({ status: 'registered', node: { id: before.id, ipv4: before.ipv4, ipv6: before.ipv6 } });
    await w.waitFor(() => w.peers.has(before.id), 5000, 'back after the auth key');
    await backdate(before.id);
    await w.waitFor(() => !w.peers.has(before.id), 5000, 'dropped again');
    const ext = await s.api('POST', `/api/v1/nodes/${before.id}/expiry`, { extendDays: 1 });
    expect(ext.body).toMatchObject({ expired: false });
    expect(Math.abs(Date.parse(ext.body.expiresAt) - (Date.now() + DAY_MS))).toBeLessThan(5000);
    await w.waitFor(() => w.peers.has(before.id), 5000, 'back after the extension');
    w.close();
  });
});

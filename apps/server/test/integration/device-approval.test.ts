/**
 * "Admins approve new devices" through the real server: with the tailnet setting on, a device
 * that joined with an auth key not marked pre-approved, or that a person who is not an admin
 * confirmed, waits: registration says so, the agent door refuses it, it is in no netmap; an admin
 * approving it (REST or `weft-server nodes approve ID`) sends it to its peers as a normal delta.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nodeKeyFingerprint } from '@weft/crypto';
import { SimAgent } from '../../../../test-support/sim-agent.js';
import { admin } from '../../src/cli/admin.js';
import type { Actor } from '../../src/state/index.js';
import { BACKENDS, startServer, type TestServer } from '../support/server.js';

describe.each(BACKENDS)('device approval on %s', (backend) => {
  let s: TestServer;
  let key: string;
  let preKey: string;
  let witness: SimAgent;
  beforeAll(async () => {
    s = await startServer(backend);
    await s.api('POST', '/api/v1/users', { name: 'pat' });
    key = (await s.api('POST', '/api/v1/authkeys', { user: 'pat', reusable: true })).body.key;
    const pre = await s.api('POST', '/api/v1/authkeys', { user: 'pat', reusable: true, preApproved: true });
    expect(pre.body.preApproved).toBe(true);
    preKey = pre.body.key;
    // Joined before the setting is turned on: approved already.
    witness = new SimAgent(s.url, 'witness');
    await witness.register(key);
    await witness.connect();
    await witness.waitFor(() => witness.received.some((r) => r.msg.type === 'netmap'), 10_000, 'netmap');
  });
  afterAll(async () => {
    witness?.close();
    await s?.close();
  });

  async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
    const out: string[] = [];
    const err: string[] = [];
    const code = await admin([...args, '--server', s.url, '--api-key', s.adminKey], (l) => out.push(l), (l) => err.push(l));
    return { code, out: out.join('\n'), err: err.join('\n') };
  }

  const upsertsOf = (a: SimAgent, id: number) =>
    a.received.filter((r) => r.msg.type === 'delta' && Array.isArray(r.msg.upsert) && (r.msg.upsert as { id: number }[]).some((p) => p.id === id));

  it('is off by default; weft-server settings set device-approval-required on turns it on (audited)', async () => {
    expect((await s.api('GET', '/api/v1/settings')).body.deviceApprovalRequired).toBe(false);
    expect((await s.api('PATCH', '/api/v1/settings', { deviceApprovalRequired: 'yes' })).body).toMatchObject({ code: 'invalid_request', detail: expect.stringContaining('deviceApprovalRequired') });
    const on = await cli('settings', 'set', 'device-approval-required', 'on');
    expect(on.code, on.err).toBe(0);
    expect(on.out).toContain('device-approval-required  on');
    const [ev] = (await s.api('GET', '/api/v1/audit?action=settings.update')).body.items;
    expect(ev).toMatchObject({ before: { deviceApprovalRequired: false }, after: { deviceApprovalRequired: true } });
  });

  it('a device joining with an auth key waits: told so, refused at the door, in no netmap until an admin approves it; then it reaches its peers as a delta', async () => {
    const a = new SimAgent(s.url, 'newcomer');
    const res = await a.register(key);
    expect(res).toMatchObject({ status: 'pending', approval: 'admin', loginUrl: `${s.state.ctx.serverUrl}/pending` });
    if (res.status !== 'pending') return;
    const id = Number(res.code);
    const node = (await s.api('GET', `/api/v1/nodes/${id}`)).body;
    expect(node).toMatchObject({ name: 'newcomer', approvalPending: true });
    // Polling again (the agent's loop) answers the same, and allocates nothing new.
    expect(await a.register(key)).toMatchObject({ status: 'pending', approval: 'admin', code: String(id) });
    expect(await a.register()).toMatchObject({ status: 'pending', approval: 'admin', code: String(id) });
    await a.connect().catch(() => {});
    expect(a.refused).toMatchObject({ status: 403, body: { code: 'node_pending_approval', retryable: false } });
    // In no netmap: not in the witness's, nor in a fresh one.
    const fresh = new SimAgent(s.url, 'fresh');
    await fresh.register(preKey);
    await fresh.connect();
    await fresh.waitFor(() => fresh.received.some((r) => r.msg.type === 'netmap'), 10_000, 'netmap');
    expect((fresh.received[0]!.msg.peers as { id: number }[]).map((p) => p.id)).not.toContain(id);
    await witness.waitFor(() => witness.peers.has(fresh.self!.id), 5000, 'pre-approved node visible');
    expect(witness.peers.has(id)).toBe(false);
    expect(upsertsOf(witness, id)).toEqual([]);
    // Listed as waiting, by REST and the CLI.
    expect((await s.api('GET', '/api/v1/nodes?status=pending')).body.items.map((n: { id: number }) => n.id)).toEqual([id]);
    const pending = await cli('nodes', 'pending');
    expect(pending.out).toContain('Waiting for an admin');
    expect(pending.out).toContain('newcomer');
    const approved = await cli('nodes', 'approve', String(id));
    expect(approved.code, approved.err).toBe(0);
    expect(approved.out).toContain('Approved: newcomer');
    await witness.waitFor(() => witness.peers.has(id), 5000, 'approved node upserted');
    expect(upsertsOf(witness, id).length).toBeGreaterThan(0);
    await fresh.waitFor(() => fresh.peers.has(id), 5000, 'approved node reaches the other peer');
    expect(await a.register()).toMatchObject({ status: 'registered', node: { id, ipv4: node.ipv4 } });
    await a.connect();
    await a.waitFor(() => a.received.some((r) => r.msg.type === 'netmap'), 10_000, 'netmap once approved');
    expect((a.received[0]!.msg.peers as { id: number }[]).map((p) => p.id)).toEqual(expect.arrayContaining([witness.self!.id, fresh.self!.id]));
    const [ev] = (await s.api('GET', '/api/v1/audit?action=node.admin-approve')).body.items;
    expect(ev).toMatchObject({ target: 'node:newcomer', before: { approvalPending: true }, after: { approvalPending: false } });
    // Approving again is refused, naming why, and changes nothing.
    const again = await s.api('POST', `/api/v1/nodes/${id}/approve`);
    expect(again).toMatchObject({ status: 409, body: { code: 'node_not_pending' } });
    expect((await s.api('GET', '/api/v1/audit?action=node.admin-approve')).body.items).toHaveLength(1);
    a.close();
    fresh.close();
  });

  it('a device that joined with a single-use key keeps polling with it while it waits, and once approved (the key is not spent twice)', async () => {
    const once = (await s.api('POST', '/api/v1/authkeys', { user: 'pat' })).body.key;
    const a = new SimAgent(s.url, 'single-use');
    const first = await a.register(once);
    expect(first).toMatchObject({ status: 'pending', approval: 'admin' });
    if (first.status !== 'pending') return;
    expect(await a.register(once)).toMatchObject({ status: 'pending', approval: 'admin', code: first.code });
    expect((await s.api('POST', `/api/v1/nodes/${first.code}/approve`)).status).toBe(200);
    expect(await a.register(once)).toMatchObject({ status: 'registered', node: { id: Number(first.code) } });
    // Another machine still cannot use the spent key.
    await expect(new SimAgent(s.url, 'thief').register(once)).rejects.toMatchObject({ status: 401, body: { code: 'auth_key_used' } });
  });

    it('a pre-approved auth key joins at once', async () => {
    const a = new SimAgent(s.url, 'preapproved');
    expect(await a.register(preKey)).toMatchObject({ status: 'registered' });
  });

  it('a device a person (not an admin) confirmed waits for an admin; one an admin approved does not', async () => {
    const a = new SimAgent(s.url, 'confirmed-by-member');
    a.os = 'darwin 24.1.0';
    const login = await a.register();
    if (login.status !== 'pending') throw new Error('expected a login');
    expect(login.approval).toBeUndefined();
    // The admin sees the same device details as the approval page: OS and key fingerprint.
    const listed = await cli('nodes', 'pending');
    expect(listed.out).toContain('Waiting for sign-in');
    expect(listed.out).toMatch(new RegExp(`${login.code}\\s+confirmed-by-member\\s+darwin 24\\.1\\.0\\s+${nodeKeyFingerprint(a.node.publicKey)}`));
    const member: Actor = { type: 'user', id: '1', name: 'pat', origin: 'ui' };
    const { nodeId } = await s.state.logins.approve(member, login.code, 'pat', { byAdmin: false });
    expect(await a.register()).toMatchObject({ status: 'pending', approval: 'admin', code: String(nodeId) });
    expect(await a.register()).toMatchObject({ status: 'pending', approval: 'admin', code: String(nodeId) });
    expect((await s.api('POST', `/api/v1/nodes/${nodeId}/approve`)).status).toBe(200);
    expect(await a.register()).toMatchObject({ status: 'registered', node: { id: nodeId } });

    const b = new SimAgent(s.url, 'approved-by-admin');
    const bl = await b.register();
    if (bl.status !== 'pending') throw new Error('expected a login');
    expect((await s.api('POST', `/api/v1/logins/${bl.code}/approve`, { user: 'pat' })).body).toMatchObject({ approvalPending: false });
    expect(await b.register()).toMatchObject({ status: 'registered' });
  });

  it('turned off again, new devices join at once', async () => {
    expect((await cli('settings', 'set', 'device-approval-required', 'off')).code).toBe(0);
    const a = new SimAgent(s.url, 'after-off');
    expect(await a.register(key)).toMatchObject({ status: 'registered' });
  });
});

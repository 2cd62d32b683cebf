/**
 * Suspend, resume and offboard over REST, seen by real simulated agents, and the audit log they
 * leave: filters, and paging that loses and repeats nothing while events are being written.
 */
import { CloseCode } from '@weft/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SimAgent } from '../../../../test-support/sim-agent.js';
import { BACKENDS, startServer, type TestServer } from '../support/server.js';

describe.each(BACKENDS)('user lifecycle and audit on %s', (backend) => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startServer(backend);
  });
  afterAll(async () => s?.close());

  /** A user with two connected devices, and `peer` of another user who sees both. */
  async function fleet(name: string) {
    await s.api('POST', '/api/v1/users', { name });
    await s.api('POST', '/api/v1/users', { name: `${name}-peer-owner` });
    const key = (await s.api('POST', '/api/v1/authkeys', { user: name, reusable: true })).body;
    const peerKey = (await s.api('POST', '/api/v1/authkeys', { user: `${name}-peer-owner` })).body;
    const devices = [new SimAgent(s.url, `${name}-laptop`), new SimAgent(s.url, `${name}-phone`)];
    for (const d of devices) {
      await d.register(key.key);
      await d.connect();
    }
    const peer = new SimAgent(s.url, `${name}-peer`);
    await peer.register(peerKey.key);
    await peer.connect();
    const ids = devices.map((d) => d.self!.id);
    await peer.waitFor(() => ids.every((id) => peer.peers.has(id)), 10_000, 'peer sees both devices');
    return { key, devices, peer, ids, close: () => [...devices, peer].forEach((a) => a.close()) };
  }

  it('suspend cuts both devices off (peer drops them, sockets close, reconnect refused); resume brings them back', async () => {
    const f = await fleet('sam');
    const r = await s.api('POST', '/api/v1/users/sam/suspend');
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.user.status).toBe('suspended');
    expect(r.body.nodes.map((n: { id: number }) => n.id)).toEqual(f.ids);
    expect(r.body.authKeys.map((k: { prefix: string }) => k.prefix)).toEqual([f.key.prefix]);

    await f.peer.waitFor(() => f.ids.every((id) => !f.peer.peers.has(id)), 5_000, 'peer drops both devices');
    for (const d of f.devices) {
      await d.waitFor(() => d.closed !== null, 5_000, 'device socket closed');
      expect(d.closed!.code).toBe(CloseCode.UserSuspended);
      const refused = await d.connect().catch((e: { refused?: unknown }) => e.refused);
      expect(refused).toMatchObject({ status: 403, body: { code: 'user_suspended', retryable: false } });
      await expect(d.register()).rejects.toMatchObject({ status: 403, body: { code: 'user_suspended' } });
    }
    const users = (await s.api('GET', '/api/v1/users')).body.items;
    expect(users.find((u: { name: string }) => u.name === 'sam')).toMatchObject({ status: 'suspended' });
    // No new devices: the key was revoked, and a pending login cannot be approved as sam.
    await expect(new SimAgent(s.url).register(f.key.key)).rejects.toMatchObject({ body: { code: 'auth_key_revoked' } });
    const newcomer = new SimAgent(s.url, 'sam-new');
    const pending = await newcomer.register();
    expect(pending.status).toBe('pending');
    const approve = await s.api('POST', `/api/v1/logins/${(pending as { code: string }).code}/approve`, { user: 'sam' });
    expect(approve.status).toBe(403);
    expect(approve.body.code).toBe('user_suspended');
    expect((await s.api('POST', '/api/v1/authkeys', { user: 'sam' })).body.code).toBe('user_suspended');

    const resumed = await s.api('POST', '/api/v1/users/sam/resume');
    expect(resumed.status).toBe(200);
    expect(resumed.body.user.status).toBe('active');
    for (const d of f.devices) await d.connect();
    await f.peer.waitFor(() => f.ids.every((id) => f.peer.peers.has(id)), 5_000, 'peer sees both devices again');
    for (const d of f.devices) await d.waitFor(() => d.peers.has(f.peer.self!.id), 5_000, 'device has its peer again');
    f.close();
  });

  it('offboard deletes the devices, revokes the auth keys, and leaves one audit event naming all of it', async () => {
    const f = await fleet('olga');
    const second = (await s.api('POST', '/api/v1/authkeys', { user: 'olga' })).body;
    const r = await s.api('POST', '/api/v1/users/olga/offboard');
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.user.status).toBe('offboarded');
    await f.peer.waitFor(() => f.ids.every((id) => !f.peer.peers.has(id)), 5_000, 'peer drops both devices');
    for (const d of f.devices) {
      await d.waitFor(() => d.closed !== null, 5_000, 'device socket closed');
      expect(d.closed!.code).toBe(CloseCode.NodeDeleted);
      expect((await s.api('GET', `/api/v1/nodes/${d.self!.id}`)).status).toBe(404);
    }
    for (const k of [f.key, second]) await expect(new SimAgent(s.url).register(k.key)).rejects.toMatchObject({ body: { code: 'auth_key_revoked' } });
    expect((await s.api('GET', '/api/v1/users/olga')).body.status).toBe('offboarded');
    // Final: no resume, no new keys; a second offboard changes nothing.
    expect((await s.api('POST', '/api/v1/users/olga/resume')).body.code).toBe('user_offboarded');
    expect((await s.api('POST', '/api/v1/authkeys', { user: 'olga' })).body.code).toBe('user_offboarded');

    const events = (await s.api('GET', '/api/v1/audit?action=user.offboard&target=user:olga')).body.items;
    expect(events).toHaveLength(1);
    const e = events[0];
    expect(e).toMatchObject({ actorType: 'apikey', origin: 'api', action: 'user.offboard', target: 'user:olga', before: { status: 'active' }, after: { status: 'offboarded' }, groupId: r.body.groupId });
    expect(e.actor).toMatch(/^apikey:weft-api-/);
    expect(e.ip).toBe('127.0.0.1');
    expect(e.detail.nodes.map((n: { id: number }) => n.id)).toEqual(f.ids);
    expect(e.detail.authKeys.map((k: { prefix: string }) => k.prefix).sort()).toEqual([f.key.prefix, second.prefix].sort());
    f.close();
  });

  it('deleting a user offboards first: both events share a group id', async () => {
    const f = await fleet('dora');
    expect((await s.api('DELETE', '/api/v1/users/dora')).status).toBe(200);
    await f.peer.waitFor(() => f.ids.every((id) => !f.peer.peers.has(id)), 5_000, 'peer drops both devices');
    const events = (await s.api('GET', '/api/v1/audit?target=user:dora&action=user.')).body.items;
    const [off, del] = [events.find((e: { action: string }) => e.action === 'user.offboard'), events.find((e: { action: string }) => e.action === 'user.delete')];
    expect(off.detail.nodes).toHaveLength(2);
    expect(del.groupId).toBe(off.groupId);
    expect(BigInt(del.id)).toBeGreaterThan(BigInt(off.id));
    f.close();
  });

  it('offboard racing joins with the user\'s key leaves no device of the user behind', async () => {
    await s.api('POST', '/api/v1/users', { name: 'race' });
    const key = (await s.api('POST', '/api/v1/authkeys', { user: 'race', reusable: true })).body;
    const joins = Array.from({ length: 12 }, (_, i) => new SimAgent(s.url, `race-${i}`).register(key.key).then(() => 'joined', (e: { body?: { code?: string } }) => e.body?.code));
    await new Promise((r) => setTimeout(r, 20));
    const off = await s.api('POST', '/api/v1/users/race/offboard');
    expect(off.status).toBe(200);
    const outcomes = await Promise.all(joins);
    for (const o of outcomes) expect(['joined', 'auth_key_revoked', 'user_offboarded']).toContain(o);
    const left = (await s.api('GET', '/api/v1/nodes')).body.items.filter((n: { user: string }) => n.user === 'race');
    expect(left).toEqual([]);
    // Every device that joined before the offboard is named by it.
    expect(off.body.nodes.length).toBe(outcomes.filter((o) => o === 'joined').length);
  });

  it('a read key cannot suspend (403) and nothing changes; bad ids are 400, unknown users 404', async () => {
    const f = await fleet('rita');
    const before = (await s.api('GET', '/api/v1/audit?target=user:rita')).body.items.length;
    for (const op of ['suspend', 'resume', 'offboard']) {
      const denied = await s.api('POST', `/api/v1/users/rita/${op}`, undefined, { authorization: `Bearer ${s.readKey}` });
      expect(denied.status).toBe(403);
      expect(denied.body.code).toBe('forbidden');
    }
    expect((await s.api('GET', '/api/v1/users/rita')).body.status).toBe('active');
    expect((await s.api('GET', '/api/v1/audit?target=user:rita')).body.items.length).toBe(before);
    expect(f.devices.every((d) => d.closed === null)).toBe(true);
    expect(f.ids.every((id) => f.peer.peers.has(id))).toBe(true);
    // (All digits past int4 is a user name, not an id: it is looked up and not found.)
    for (const bad of ['-1', 'Bad%20Name', '%00', 'a%2Fb']) {
      const r = await s.api('POST', `/api/v1/users/${bad}/suspend`);
      expect(r.status, bad).toBe(400);
      expect(r.body.code).toBe('invalid_request');
    }
    expect((await s.api('POST', '/api/v1/users/2147483648/suspend')).body.code).toBe('user_not_found');
    const unknown = await s.api('POST', '/api/v1/users/999999/suspend');
    expect(unknown.status).toBe(404);
    expect(unknown.body.code).toBe('user_not_found');
    expect((await s.api('POST', '/api/v1/users/nobody-here/offboard')).body.code).toBe('user_not_found');
    f.close();
  });

  it('audit filters: actor, action prefix, target, since/until; bad filters are 400', async () => {
    await s.api('POST', '/api/v1/users', { name: 'fil' });
    const all = (await s.api('GET', '/api/v1/audit?limit=1000')).body.items;
    const created = all.find((e: { action: string; target: string }) => e.action === 'user.create' && e.target === 'user:fil');
    expect(created).toMatchObject({ actorType: 'apikey', origin: 'api' });
    const byActor = (await s.api('GET', `/api/v1/audit?actor=${encodeURIComponent(created.actor)}&limit=1000`)).body.items;
    expect(byActor.length).toBeGreaterThan(0);
    expect(byActor.every((e: { actor: string }) => e.actor === created.actor)).toBe(true);
    const users = (await s.api('GET', '/api/v1/audit?action=user.&limit=1000')).body.items;
    expect(users.every((e: { action: string }) => e.action.startsWith('user.'))).toBe(true);
    const at = Date.parse(created.at);
    const window = (await s.api('GET', `/api/v1/audit?target=user:fil&since=${new Date(at).toISOString()}&until=${new Date(at + 1).toISOString()}`)).body.items;
    expect(window.map((e: { id: string }) => e.id)).toEqual([created.id]);
    expect((await s.api('GET', `/api/v1/audit?target=user:fil&until=${new Date(at).toISOString()}`)).body.items).toEqual([]);
    for (const q of ['since=yesterday', 'limit=0', 'limit=1001', 'after=-1', 'after=abc', 'nope=1']) {
      const r = await s.api('GET', `/api/v1/audit?${q}`);
      expect(r.status, q).toBe(400);
      expect(r.body.code).toBe('invalid_request');
    }
    expect((await s.api('GET', '/api/v1/audit', undefined, { authorization: `Bearer ${s.readKey}` })).status).toBe(200);
  });

  it('audit paging loses and repeats no event while events are written concurrently', async () => {
    const start = (await s.api('GET', '/api/v1/audit?limit=1000')).body;
    let after: string | undefined = start.items.at(-1)?.id;
    const seen: string[] = [];
    let writing = true;
    const N = 60;
    const writers = (async () => {
      // Several writers at once, so ids are taken by transactions that commit in any order.
      await Promise.all(Array.from({ length: 4 }, async (_, w) => {
        for (let i = 0; i < N / 4; i++) await s.api('POST', '/api/v1/users', { name: `page-${w}-${i}` });
      }));
      writing = false;
    })();
    const readPage = async () => {
      const page = (await s.api('GET', `/api/v1/audit?limit=3${after ? `&after=${after}` : ''}`)).body;
      for (const e of page.items) seen.push(e.id);
      if (page.items.length) after = page.items.at(-1).id;
    };
    while (writing) await readPage();
    await writers;
    for (let i = 0; i < N; i++) await readPage();
    const created = (await s.api('GET', `/api/v1/audit?action=user.create&limit=1000${start.items.length ? `&after=${start.items.at(-1).id}` : ''}`)).body.items
      .filter((e: { target: string }) => e.target.startsWith('user:page-'));
    expect(created).toHaveLength(N);
    expect(new Set(seen).size).toBe(seen.length);
    const seenSet = new Set(seen);
    expect(created.filter((e: { id: string }) => !seenSet.has(e.id))).toEqual([]);
    const ids = seen.map(BigInt);
    expect(ids.every((id, i) => i === 0 || id > ids[i - 1]!)).toBe(true);
  });
});

import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import { CloseCode, MAX_AGENT_MESSAGE_BYTES, MAX_ENDPOINTS, type Peer } from '@weft/protocol';
import { generateNodeKey, signMachineToken } from '@weft/crypto';
import { SimAgent } from '../../../../test-support/sim-agent.js';
import { ENDPOINT_WRITE_INTERVAL_MS } from '../../src/tunables.js';
import { BACKENDS, startServer, type TestServer } from '../support/server.js';
import { joinedAgent } from '../support/replicas.js';

describe.each(BACKENDS)('agent channel on %s', (backend) => {
  let s: TestServer;
  let key: string;
  beforeAll(async () => {
    s = await startServer(backend);
    await s.api('POST', '/api/v1/users', { name: 'ops' });
    await s.api('POST', '/api/v1/users', { name: 'leaver' });
    key = (await s.api('POST', '/api/v1/authkeys', { user: 'ops', reusable: true })).body.key;
  });
  afterAll(async () => s?.close());

  async function joined(hostname: string, authKey = key): Promise<SimAgent> {
    return joinedAgent(s.url, hostname, authKey);
  }

  it('a message the agent sends while the mapper is still busy (before its socket is attached) is not lost', async () => {
    const watcher = await joined('early-watcher');
    const sender = new SimAgent(s.url, 'early-sender');
    await sender.register(key);
    let release!: () => void;
    const busy = new Promise<void>((resolve) => (release = resolve));
    // The door waits on the mapper too (it reads the node from the mapper's table): let that call
    // through, and hold the second, the one the socket waits on before it is attached.
    const original = s.mapper.settled.bind(s.mapper);
    let calls = 0;
    const settled = vi.spyOn(s.mapper, 'settled').mockImplementation(() => (++calls === 2 ? busy : original()));
    try {
      await sender.connect();
      sender.send(JSON.stringify({ type: 'endpoints', endpoints: ['192.0.2.77:41641'] }));
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(sender.received).toEqual([]); // still waiting on the mapper: nothing attached yet
    } finally {
      release();
      settled.mockRestore();
    }
    await watcher.waitFor(() => watcher.peers.get(sender.self!.id)?.endpoints[0] === '192.0.2.77:41641', 5000, 'the early endpoint report');
    sender.close();
    watcher.close();
  });

  it('sends a full netmap on connect, then sequenced deltas to the nodes affected', async () => {
    const a = await joined('alpha');
    expect(a.received[0]!.msg).toMatchObject({ type: 'netmap', seq: 1 });
    const b = await joined('beta');
    expect(b.peers.has(a.self!.id)).toBe(true);
    await a.waitFor(() => a.peers.has(b.self!.id), 5000, 'beta upserted into alpha');
    const seqs = a.received.map((r) => r.msg.seq);
    expect(seqs).toEqual(seqs.map((_, i) => i + 1));
    expect(a.peers.get(b.self!.id)).toMatchObject({ nodeKey: b.node.publicKey, allowedIps: [`${b.self!.ipv4}/32`, `${b.self!.ipv6}/128`] });
    // Endpoints reported by one node reach the other as a patch.
    b.send(JSON.stringify({ type: 'endpoints', endpoints: ['192.0.2.7:41641'] }));
    await a.waitFor(() => a.peers.get(b.self!.id)?.endpoints[0] === '192.0.2.7:41641', 5000, 'endpoint patch');
    // A node never sees itself as a peer.
    expect(a.peers.has(a.self!.id)).toBe(false);
    a.close();
    b.close();
  });

  it('a netcheck verdict sent by one agent reaches its peers as a patch and in later netmaps, and is dropped when it disconnects', async () => {
    const a = await joined('nat-sender');
    const b = await joined('nat-watcher');
    await b.waitFor(() => b.peers.has(a.self!.id), 5000, 'sender in watcher');
    expect(b.peers.get(a.self!.id)).not.toHaveProperty('nat'); // nothing reported yet
    a.send(JSON.stringify({ type: 'nat', nat: { udp: true, mappingVariesByDestination: true } }));
    await b.waitFor(() => b.peers.get(a.self!.id)?.nat?.mappingVariesByDestination === true, 5000, 'nat patch');
    // Carried by a patch (it may be coalesced with the sender's presence patch).
    const natDeltas = () => b.received.filter((r) => r.msg.type === 'delta' && JSON.stringify(r.msg).includes('"nat"')).map((r) => r.msg as { patch?: { id: number; nat?: unknown }[]; upsert?: unknown });
    expect(natDeltas()[0]!.patch?.find((p) => p.id === a.self!.id)).toMatchObject({ id: a.self!.id, nat: { udp: true, mappingVariesByDestination: true } });
    // A node that connects later gets it in its netmap's peer entry.
    const c = await joined('nat-latecomer');
    expect(c.peers.get(a.self!.id)?.nat).toEqual({ udp: true, mappingVariesByDestination: true });
    // A change is patched again (not an upsert: no view recomputed).
    a.send(JSON.stringify({ type: 'nat', nat: { udp: false, mappingVariesByDestination: null } }));
    await b.waitFor(() => b.peers.get(a.self!.id)?.nat?.udp === false, 5000, 'second nat patch');
    expect(natDeltas().map((d) => [d.patch !== undefined, d.upsert])).toEqual([[true, undefined], [true, undefined]]);
    // It belongs to the connection: the sender going away clears it at its peers.
    a.close();
    await b.waitFor(() => b.peers.get(a.self!.id)?.nat === null, 5000, 'nat cleared on disconnect');
    b.close();
    c.close();
  });

  it('a malformed netcheck verdict closes only that socket with BadMessage, naming the field, and reaches no peer', async () => {
    const bad = await joined('nat-bad');
    const watcher = await joined('nat-bad-watcher');
    await watcher.waitFor(() => watcher.peers.has(bad.self!.id), 5000, 'bad sender in watcher');
    const cases: [unknown, RegExp][] = [
      [{ type: 'nat', nat: { udp: 'yes', mappingVariesByDestination: true } }, /^nat\.udp: /],
      [{ type: 'nat', nat: { udp: true } }, /^nat\.mappingVariesByDestination: /],
      [{ type: 'nat', nat: { udp: true, mappingVariesByDestination: false, extra: 1 } }, /^nat: /],
      [{ type: 'nat' }, /^nat: /],
    ];
    for (const [msg, reason] of cases) {
      if (bad.closed) {
        const netmaps = bad.received.filter((r) => r.msg.type === 'netmap').length;
        await bad.connect();
        await bad.waitFor(() => bad.received.filter((r) => r.msg.type === 'netmap').length > netmaps, 5000, 'netmap');
      }
      bad.send(JSON.stringify(msg));
      await bad.waitFor(() => bad.closed !== null, 5000, 'bad sender closed');
      expect(bad.closed!.code).toBe(CloseCode.BadMessage);
      expect(bad.closed!.reason).toMatch(reason);
    }
    const natOfBad = watcher.received.flatMap((r) => {
      const m = r.msg as { peers?: Peer[]; upsert?: Peer[]; patch?: { id: number; nat?: unknown }[] };
      return [...(m.peers ?? []), ...(m.upsert ?? []), ...(m.patch ?? [])].filter((p) => p.id === bad.self!.id && p.nat);
    });
    expect(natOfBad).toEqual([]);
    expect(watcher.peers.get(bad.self!.id)?.nat ?? null).toBeNull();
    expect(watcher.closed).toBeNull();
    watcher.close();
  });

  it('a netmap of several hundred peers (several cached chunks, sent as fragments) arrives as one whole message', async () => {
    const created: number[] = [];
    const keys = Array.from({ length: 300 }, () => generateNodeKey().publicKey);
    for (let i = 0; i < keys.length; i += 10) {
      const batch = keys.slice(i, i + 10).map((nodeKey, j) => s.api('POST', '/api/v1/nodes', { user: 'ops', hostname: `bulk-${i + j}`, nodeKey }));
      for (const res of await Promise.all(batch)) {
        expect(res.status).toBe(201);
        created.push(res.body.id as number);
      }
    }
    const a = await joined('bulk-reader');
    const netmap = a.received[0]!;
    expect(netmap.msg).toMatchObject({ type: 'netmap', seq: 1 });
    expect(netmap.bytes).toBeGreaterThan(300 * 200);
    const peers = netmap.msg.peers as { id: number; nodeKey: string }[];
    expect(peers.map((p) => p.id)).toEqual(expect.arrayContaining(created));
    // Exactly every live node but the reader, once each, in id order, with its key.
    const listed = (await s.api('GET', '/api/v1/nodes')).body.items as { id: number; nodeKey: string; expired: boolean }[];
    const expected = listed.filter((n) => !n.expired && n.id !== a.self!.id).sort((x, y) => x.id - y.id);
    expect(peers.map((p) => [p.id, p.nodeKey])).toEqual(expected.map((n) => [n.id, n.nodeKey]));
    a.close();
  });

  it('a known node reconnecting is let in from the mapper\'s table (no database read per connection); a node the mapper has not heard of yet is read from the database', async () => {
    const a = await joined('door-known');
    a.close();
    await a.waitFor(() => a.closed !== null, 5000, 'closed');
    const lookups = vi.spyOn(s.state.nodes, 'byMachineKey');
    try {
      await a.connect();
      await a.waitFor(() => a.received.filter((r) => r.msg.type === 'netmap').length === 2, 10_000, 'second netmap');
      expect(lookups).not.toHaveBeenCalled();
      // A node whose upsert this replica has not applied yet (another replica registered it, the
      // outbox is behind): the door falls back to the database and the mapper takes the row.
      const late = new SimAgent(s.url, 'door-late');
      const apply = vi.spyOn(s.mapper, 'apply').mockImplementation(() => Promise.resolve());
      try {
        await late.register(key);
      } finally {
        apply.mockRestore();
      }
      expect(s.mapper.nodeByMachineKey(late.machine.publicKey)).toBeUndefined();
      lookups.mockClear(); // registration itself looks the machine key up
      await late.connect();
      await late.waitFor(() => late.received.some((r) => r.msg.type === 'netmap'), 10_000, 'netmap');
      expect(lookups).toHaveBeenCalledTimes(1);
      expect(late.received[0]!.msg).toMatchObject({ type: 'netmap', self: { id: late.self!.id } });
      late.close();
    } finally {
      lookups.mockRestore();
      a.close();
    }
  });

  it('resends a full netmap on resync', async () => {
    const a = await joined('gamma');
    a.send(JSON.stringify({ type: 'resync' }));
    await a.waitFor(() => a.received.filter((r) => r.msg.type === 'netmap').length === 2, 5000, 'second netmap');
    // Numbering restarts with the fresh netmap (a patch about another node may follow it).
    expect(a.received.filter((r) => r.msg.type === 'netmap')[1]!.msg.seq).toBe(1);
    a.close();
  });

  it('deleting a node closes its socket at once, removes it from every peer, and it cannot reconnect', async () => {
    const victim = await joined('victim');
    const watcher = await joined('watcher');
    await victim.waitFor(() => victim.peers.has(watcher.self!.id));
    const res = await s.api('DELETE', `/api/v1/nodes/${victim.self!.id}`);
    expect(res.status).toBe(200);
    await victim.waitFor(() => victim.closed !== null, 5000, 'victim closed');
    expect(victim.closed!.code).toBe(CloseCode.NodeDeleted);
    await watcher.waitFor(() => !watcher.peers.has(victim.self!.id), 5000, 'victim removed from watcher');
    await victim.connect().catch(() => {});
    expect(victim.refused).toMatchObject({ status: 401, body: { code: 'machine_unauthorized' } });
    watcher.close();
  });

  it('deleting a user removes every node of theirs from every peer', async () => {
    const leaverKey = (await s.api('POST', '/api/v1/authkeys', { user: 'leaver', reusable: true })).body.key;
    const l1 = await joined('leaver-laptop', leaverKey);
    const l2 = await joined('leaver-desktop', leaverKey);
    const stay = await joined('stayer');
    await stay.waitFor(() => stay.peers.has(l1.self!.id) && stay.peers.has(l2.self!.id));
    expect((await s.api('DELETE', '/api/v1/users/leaver')).status).toBe(200);
    await stay.waitFor(() => !stay.peers.has(l1.self!.id) && !stay.peers.has(l2.self!.id), 5000, 'leaver nodes removed');
    await l1.waitFor(() => l1.closed !== null);
    await l2.waitFor(() => l2.closed !== null);
    expect([l1.closed!.code, l2.closed!.code]).toEqual([CloseCode.NodeDeleted, CloseCode.NodeDeleted]);
    stay.close();
  });

  it('expiring a node closes it with NodeExpired and hides it; a new auth key renews it in place', async () => {
    const e = await joined('expiring');
    const w = await joined('witness');
    await w.waitFor(() => w.peers.has(e.self!.id));
    const before = e.self!;
    await s.api('POST', `/api/v1/nodes/${e.self!.id}/expire`);
    await e.waitFor(() => e.closed !== null);
    expect(e.closed!.code).toBe(CloseCode.NodeExpired);
    await w.waitFor(() => !w.peers.has(before.id), 5000, 'expired node hidden');
    // Refused before the upgrade: 410 with the code the agent stops on.
    await e.connect().catch(() => {});
    expect(e.refused).toMatchObject({ status: 410, type: 'application/problem+json; charset=utf-8', body: { code: 'node_expired', retryable: false } });
    await expect(e.register()).resolves.toMatchObject({ status: 'pending' });
    const renewed = await e.register(key);
    expect(renewed).toMatchObject({ status: 'registered', node: { id: before.id, ipv4: before.ipv4 } });
    await w.waitFor(() => w.peers.has(before.id), 5000, 'renewed node visible again');
    w.close();
  });

  it('a malformed or oversize message closes only that socket', async () => {
    const bad = await joined('bad-json');
    const big = await joined('too-big');
    const wrong = await joined('wrong-shape');
    const good = await joined('good');
    bad.send('{not json');
    big.send('x'.repeat(MAX_AGENT_MESSAGE_BYTES + 1));
    wrong.send(JSON.stringify({ type: 'endpoints', endpoints: ['not-an-endpoint'] }));
    await bad.waitFor(() => bad.closed !== null);
    await big.waitFor(() => big.closed !== null);
    await wrong.waitFor(() => wrong.closed !== null);
    expect(bad.closed!.code).toBe(CloseCode.BadMessage);
    expect(big.closed!.code).toBe(CloseCode.TooBig);
    expect(wrong.closed!.code).toBe(CloseCode.BadMessage);
    const late = await joined('late');
    await good.waitFor(() => good.peers.has(late.self!.id), 5000, 'late peer reaches good node');
    expect(good.closed).toBeNull();
    good.close();
    late.close();
  });

  it('an endpoint outside address or port range closes only that socket, naming it, and is stored nowhere nor sent to any peer', async () => {
    const poisoner = await joined('poisoner');
    const victim = await joined('victim-of-poison');
    await victim.waitFor(() => victim.peers.has(poisoner.self!.id));
    poisoner.send(JSON.stringify({ type: 'endpoints', endpoints: ['192.0.2.9:41641'] }));
    await victim.waitFor(() => victim.peers.get(poisoner.self!.id)?.endpoints[0] === '192.0.2.9:41641', 5000, 'good endpoint');
    const cases: [unknown[], RegExp][] = [
      [['192.0.2.10:41641', '999.999.999.999:99999'], /^endpoints\[1\]: IPv4 address: octet 1 is 999, outside 0-255$/],
      [['192.0.2.10:0'], /^endpoints\[0\]: port is 0, outside 1-65535$/],
      [['[fe80::1%eth0]:41641'], /^endpoints\[0\]: IPv6 address: zone ids/],
      [['[1:2:3:4:5:6:7:8:9]:41641'], /^endpoints\[0\]: IPv6 address: has 9 groups/],
      [Array.from({ length: MAX_ENDPOINTS + 1 }, (_, i) => `192.0.2.${i + 1}:41641`), /^endpoints: /],
    ];
    poisoner.close();
    await poisoner.waitFor(() => poisoner.closed !== null);
    for (const [endpoints, reason] of cases) {
      const netmaps = poisoner.received.filter((r) => r.msg.type === 'netmap').length;
      await poisoner.connect();
      await poisoner.waitFor(() => poisoner.received.filter((r) => r.msg.type === 'netmap').length > netmaps, 5000, 'netmap');
      poisoner.send(JSON.stringify({ type: 'endpoints', endpoints }));
      await poisoner.waitFor(() => poisoner.closed !== null, 5000, 'poisoner closed');
      expect(poisoner.closed!.code).toBe(CloseCode.BadMessage);
      expect(poisoner.closed!.reason).toMatch(reason);
    }
    expect((await s.api('GET', `/api/v1/nodes/${poisoner.self!.id}`)).body.endpoints).toEqual(['192.0.2.9:41641']);
    const seen = victim.received.flatMap((r) => JSON.stringify(r.msg).match(/999\.999|:0"|fe80::1%eth0|1:2:3:4:5:6:7:8:9/g) ?? []);
    expect(seen).toEqual([]);
    expect(victim.closed).toBeNull();
    victim.close();
  });

  it('a flood of endpoint reports from one agent costs a bounded number of writes; the last value is stored and reaches peers', async () => {
    const flooder = await joined('flooder');
    const watcher = await joined('flood-watcher');
    await watcher.waitFor(() => watcher.peers.has(flooder.self!.id));
    const writes = vi.spyOn(s.state.nodes, 'patch');
    const N = 2000;
    const ep = (i: number) => [`198.51.100.${(i % 250) + 1}:${10_000 + i}`];
    const started = Date.now();
    try {
      for (let i = 0; i < N; i++) flooder.send(JSON.stringify({ type: 'endpoints', endpoints: ep(i) }));
      const last = ep(N - 1)[0];
      await watcher.waitFor(() => watcher.peers.get(flooder.self!.id)?.endpoints[0] === last, 10_000, 'last endpoint at the watcher');
      const elapsed = Date.now() - started;
      const endpointWrites = writes.mock.calls.filter(([id, data]) => id === flooder.self!.id && data.endpoints !== undefined);
      // one at once, then at most one per window
      expect(endpointWrites.length).toBeLessThanOrEqual(2 + Math.ceil(elapsed / ENDPOINT_WRITE_INTERVAL_MS));
      expect(endpointWrites.at(-1)![1].endpoints).toEqual(ep(N - 1));
      expect((await s.api('GET', `/api/v1/nodes/${flooder.self!.id}`)).body.endpoints).toEqual(ep(N - 1));
    } finally {
      writes.mockRestore();
    }
    expect(flooder.closed).toBeNull();
    flooder.close();
    watcher.close();
  });

  it('an agent without a valid machine token is refused with 401 problem+json before the upgrade', async () => {
    const refusal = (headers: Record<string, string>) =>
      new Promise<{ status: number; type: string | undefined; body: any; upgraded: boolean }>((resolve) => {
        const ws = new WebSocket(`${s.url.replace('http', 'ws')}/agent/v1`, { headers });
        ws.on('open', () => {
          resolve({ status: 101, type: undefined, body: null, upgraded: true });
          ws.terminate();
        });
        ws.on('unexpected-response', (_req, res) => {
          let text = '';
          res.on('data', (c: Buffer) => (text += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'], body: JSON.parse(text), upgraded: false }));
        });
        ws.on('error', () => {});
      });
    const stranger = new SimAgent(s.url);
    const cases: Record<string, string>[] = [{}, { authorization: 'Bearer nope' }, { authorization: `Bearer ${await signMachineToken(stranger.machine.privateKey)}` }];
    for (const headers of cases) {
      const r = await refusal(headers);
      expect(r, JSON.stringify(headers)).toMatchObject({ upgraded: false, status: 401, type: 'application/problem+json; charset=utf-8', body: { status: 401, code: 'machine_unauthorized', retryable: false } });
      expect(r.body.detail).toEqual(expect.any(String));
    }
    // A registered node still gets through.
    const ok = await joined('after-refusals');
    expect(ok.refused).toBeNull();
    ok.close();
  });

  it('single-use keys work once; the same machine key comes back as the same node', async () => {
    const once = (await s.api('POST', '/api/v1/authkeys', { user: 'ops' })).body.key;
    const a = new SimAgent(s.url, 'once');
    const first = await a.register(once);
    await expect(new SimAgent(s.url, 'twice').register(once)).rejects.toMatchObject({ body: { code: 'auth_key_used' } });
    expect(await a.register()).toEqual(first);
    await expect(new SimAgent(s.url).register('weft-auth-000000000000-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA')).rejects.toMatchObject({ body: { code: 'auth_key_invalid' } });
    const expired = (await s.api('POST', '/api/v1/authkeys', { user: 'ops', expiresIn: 1 })).body.key;
    await new Promise((r) => setTimeout(r, 1100));
    await expect(new SimAgent(s.url).register(expired)).rejects.toMatchObject({ body: { code: 'auth_key_expired' } });
  });

  it('an ephemeral node is deleted once it has been offline past the timeout, and peers drop it', async () => {
    const eph = (await s.api('POST', '/api/v1/authkeys', { user: 'ops', ephemeral: true })).body.key;
    const runner = await joined('ci-runner', eph);
    const peer = await joined('peer-of-runner');
    await peer.waitFor(() => peer.peers.has(runner.self!.id));
    expect((await s.api('GET', `/api/v1/nodes/${runner.self!.id}`)).body.ephemeral).toBe(true);
    // Connected ephemeral nodes stay, however long.
    await new Promise((r) => setTimeout(r, 1500));
    expect((await s.api('GET', `/api/v1/nodes/${runner.self!.id}`)).status).toBe(200);
    runner.close();
    await peer.waitFor(() => !peer.peers.has(runner.self!.id), 10_000, 'ephemeral node reaped');
    expect((await s.api('GET', `/api/v1/nodes/${runner.self!.id}`)).status).toBe(404);
    peer.close();
  });

  it('a device that logs out is deleted and dropped by its peers', async () => {
    const leaving = await joined('leaving');
    const peer = await joined('peer-of-leaving');
    await peer.waitFor(() => peer.peers.has(leaving.self!.id));
    const res = await fetch(`${s.url}/agent/v1/logout`, { method: 'POST', headers: { authorization: `Bearer ${await signMachineToken(leaving.machine.privateKey)}` } });
    expect(res.status).toBe(200);
    await peer.waitFor(() => !peer.peers.has(leaving.self!.id), 5000, 'logged-out node removed');
    expect((await s.api('GET', `/api/v1/nodes/${leaving.self!.id}`)).status).toBe(404);
    const again = await fetch(`${s.url}/agent/v1/logout`, { method: 'POST', headers: { authorization: `Bearer ${await signMachineToken(leaving.machine.privateKey)}` } });
    expect(again.status).toBe(404);
    peer.close();
  });

  it('interactive login: pending with a code until an admin approves it', async () => {
    const a = new SimAgent(s.url, 'laptop');
    const pending = await a.register();
    if (pending.status !== 'pending') throw new Error('expected pending');
    expect(pending.code).toMatch(/^[A-Z2-9]{4}-[A-Z2-9]{4}$/);
    expect(pending.loginUrl).toContain(`/login/${pending.code}`);
    expect(await a.register()).toMatchObject({ status: 'pending', code: pending.code });
    expect(await (await fetch(`${s.url}/login/${pending.code}`)).text()).toContain(pending.code);
    expect((await s.api('POST', `/api/v1/logins/${pending.code.toLowerCase()}/approve`, { user: 'ops' })).status).toBe(200);
    expect(await a.register()).toMatchObject({ status: 'registered', node: { user: 'ops', name: 'laptop' } });
    expect((await s.api('POST', `/api/v1/logins/${pending.code}/approve`, { user: 'ops' })).status).toBe(404);
  });
});

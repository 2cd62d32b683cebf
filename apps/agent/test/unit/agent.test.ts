/**
 * The daemon core against a scripted control server (real loopback HTTP + WebSocket) and an
 * in-memory Device. Real WireGuard and the real server are covered by the e2e lab.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { deflateRawSync } from 'node:zlib';
import { platform, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { endpointsRevision, nodeKeyFingerprint, type NodePublicKey } from '@weft/crypto';
import { StunServer } from '@weft/relay';
import { MAX_INFLATED_NETMAP_BYTES, type SelfNode } from '@weft/protocol';
import { Agent, reportableHostname, type UpEvent } from '../../src/agent.js';
import { AgentError } from '../../src/agent-error.js';
import { silentLogger } from '../../src/log.js';
import { StateStore } from '../../src/state-store.js';
import { formatStatus } from '../../src/cli/status-format.js';
import { FakeControl, problem } from './fake-control.js';
import { FakeDevice } from './fake-device.js';
import { noFirewall, peer, self } from './fixtures.js';

const netmap = (seq: number, peers = [peer(2)], s: SelfNode = self) => ({ type: 'netmap' as const, seq, protocolVersion: 1, self: s, peers });

async function until(cond: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

// Each case waits up to 5 s for a condition (`until`); vitest's default 5 s per test would race that
// on a loaded machine and fail a case whose condition was about to hold.
describe('Agent', { timeout: 20_000 }, () => {
  let dir: string;
  let control: FakeControl;
  let devices: FakeDevice[];
  let agents: Agent[];

  const newAgent = () => {
    const agent = new Agent({
      store: new StateStore(dir), openDevice: () => { const d = new FakeDevice(); devices.push(d); return d; },
      interfaceName: 'weft0', backend: 'userspace', listenPort: 41641, mtu: 1280, log: silentLogger, loginPollMs: 20,
      hostname: () => 'testhost', firewallRunner: noFirewall,
    });
    agents.push(agent);
    return agent;
  };
  const device = () => devices[devices.length - 1]!;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'weft-agent-'));
    control = new FakeControl();
    await control.start();
    control.onRegister = () => ({ status: 200, body: { status: 'registered', node: self } });
    control.onConnect = (ws) => ws.send(JSON.stringify(netmap(1)));
    devices = [];
    agents = [];
  });
  afterEach(async () => {
    for (const a of agents) await a.shutdown();
    await control.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('dials the relay at <server>/api/v1/relay while its control session runs, and keeps the tunnels when there is none', async () => {
    const agent = newAgent();
    await agent.start();
    await agent.up({ server: control.url, authKey: 'weft-auth-x' }, () => {}, new AbortController().signal);
    await until(() => control.relayUpgrades >= 1);
    expect((await agent.status()).online).toBe(true);
    expect(control.connections).toBe(1);
  });

  it('joins with an auth key, programs peers and reports endpoints', async () => {
    const agent = newAgent();
    await agent.start();
    const events: UpEvent[] = [];
    await agent.up({ server: control.url + '/', authKey: 'weft-auth-x' }, (e) => events.push(e), new AbortController().signal);
    expect(control.registers[0]).toMatchObject({ hostname: 'testhost', authKey: 'weft-auth-x' });
    expect(control.registers[0]!.nodeKey).toMatch(/^nodekey:/);
    expect(events.map((e) => e.type)).toEqual(['registered']);
    expect([...device().peers.keys()]).toEqual([peer(2).nodeKey]);
    const status = await agent.status();
    expect(status).toMatchObject({ state: 'running', online: true, server: control.url, self: { name: 'self' }, interface: { up: true } });
    await until(() => control.received.some((m) => m.type === 'endpoints'));
    const ep = control.received.find((m) => m.type === 'endpoints')!;
    if (ep.type !== 'endpoints') throw new Error();
    for (const e of ep.endpoints) expect(e).toMatch(/:41641$/);
  });

  it('reports its background netcheck verdict (nat) after the netmap, once per connection, and again after a reconnect', async () => {
    const stun = await StunServer.listen({ listen: '127.0.0.1:0' });
    try {
      const regions = [{ id: 1, code: 'lo', name: 'Loopback', stun: [stun.toString()] }];
      control.onConnect = (ws) => ws.send(JSON.stringify({ ...netmap(1), regions }));
      const agent = newAgent();
      await agent.start();
      await agent.up({ server: control.url, authKey: 'weft-auth-x' }, () => {}, new AbortController().signal);
      const nats = () => control.received.filter((m) => m.type === 'nat');
      await until(() => nats().length >= 1, 10_000);
      // One STUN destination answered: UDP works, whether the mapping varies is unknown.
      expect(nats()[0]).toEqual({ type: 'nat', nat: { udp: true, mappingVariesByDestination: null } });
      await until(async () => (await agent.status()).peers.length > 0 && control.received.some((m) => m.type === 'endpoints'));
      expect(nats()).toHaveLength(1); // one netcheck, one report
      for (const ws of control.sockets) ws.close(1001, 'going away');
      await until(() => control.connections >= 2, 10_000);
      await until(() => nats().length >= 2, 10_000); // the new connection is told too, without waiting for a netcheck
      expect(nats()[1]).toEqual(nats()[0]);
    } finally {
      await stun.close();
    }
  });

  it('a server that refuses nat by its type (it predates it) is not sent nat again; the session goes on (endpoints reported)', async () => {
    const stun = await StunServer.listen({ listen: '127.0.0.1:0' });
    try {
      const regions = [{ id: 1, code: 'lo', name: 'Loopback', stun: [stun.toString()] }];
      let refusals = 0;
      control.onConnect = (ws) => {
        ws.on('message', (data) => {
          if ((JSON.parse(data.toString()) as { type: string }).type !== 'nat') return;
          refusals++;
          ws.close(4400, "type: Invalid discriminator value. Expected 'endpoints' | 'resync' | 'links'");
        });
        ws.send(JSON.stringify({ ...netmap(1), regions }));
      };
      const agent = newAgent();
      await agent.start();
      await agent.up({ server: control.url, authKey: 'weft-auth-x' }, () => {}, new AbortController().signal);
      await until(() => refusals >= 1 && control.connections >= 2, 10_000);
      await until(async () => (await agent.status()).online, 10_000);
      const sentBefore = control.received.filter((m) => m.type === 'nat').length;
      for (const ws of control.sockets) ws.close(1001, 'going away');
      await until(() => control.connections >= 3, 10_000);
      await until(async () => (await agent.status()).online, 10_000);
      await until(() => control.received.some((m) => m.type === 'endpoints'), 10_000);
      expect(control.received.filter((m) => m.type === 'nat').length).toBe(sentBefore);
      expect(refusals).toBe(1);
    } finally {
      await stun.close();
    }
  });

  it('interactive login: emits URL and code once, polls until approved', async () => {
    const seen: string[] = [];
    control.onRegister = (_req, n) => n < 4
      ? { status: 200, body: { status: 'pending', loginUrl: `${control.url}/login/ABC`, code: 'ABC-123', expiresAt: new Date(Date.now() + 60_000).toISOString() } }
      : { status: 200, body: { status: 'registered', node: self } };
    const agent = newAgent();
    await agent.start();
    const events: UpEvent[] = [];
    await agent.up({ server: control.url }, (e) => {
      events.push(e);
      if (e.type === 'login') void agent.status().then((st) => seen.push(`${st.state} ${st.login?.code}`));
    }, new AbortController().signal);
    expect(events.map((e) => e.type)).toEqual(['login', 'registered']);
    expect(seen).toEqual(['needs-login ABC-123']);
    expect((await agent.status()).login).toBeNull();
    expect(events[0]).toMatchObject({ code: 'ABC-123' });
    // The fingerprint printed beside the URL is the node key's, as the approval page shows it.
    expect((events[0] as { fingerprint?: string }).fingerprint).toBe(nodeKeyFingerprint(control.registers[0]!.nodeKey as NodePublicKey));
    expect(control.registers.length).toBe(4);
    expect(control.registers.every((r) => r.authKey === undefined)).toBe(true);
    // The OS is reported for the approval page.
    expect(control.registers[0]!.os).toBe(`${platform()} ${release()}`.slice(0, 100));
  });

  it('waiting for an admin (approval "admin"): says so in its event and status, keeps polling until approved', async () => {
    const seen: string[] = [];
    control.onRegister = (_req, n) => n < 3
      ? { status: 200, body: { status: 'pending', approval: 'admin', loginUrl: `${control.url}/pending`, code: '17', expiresAt: new Date(Date.now() + 86_400_000).toISOString() } }
      : { status: 200, body: { status: 'registered', node: self } };
    const agent = newAgent();
    await agent.start();
    const events: UpEvent[] = [];
    await agent.up({ server: control.url, authKey: 'k' }, (e) => {
      events.push(e);
      if (e.type === 'login') void agent.status().then((st) => seen.push(`${st.state} ${st.login?.approval} ${st.login?.code}`));
    }, new AbortController().signal);
    expect(events.map((e) => e.type)).toEqual(['login', 'registered']);
    expect(events[0]).toMatchObject({ approval: 'admin', code: '17', url: `${control.url}/pending` });
    expect(seen).toEqual(['needs-login admin 17']);
    expect(control.registers.length).toBe(3);
    expect(control.registers.every((r) => r.authKey === 'k')).toBe(true);
  });

  it('maps register problems to stable codes', async () => {
    control.onRegister = () => ({ status: 401, body: problem(401, 'auth_key_used') });
    const agent = newAgent();
    await agent.start();
    const err = await agent.up({ server: control.url, authKey: 'k' }, () => {}, new AbortController().signal).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AgentError);
    expect((err as AgentError).code).toBe('auth_key_used');
    expect((await agent.status()).state).toBe('needs-login');
    // The device opened while registering is closed again.
    expect(devices.every((d) => d.closed)).toBe(true);
    expect((await agent.status()).interface.backend).toBeNull();
  });

  it('opens the device while registering, so a join does not wait for wireguard-go after the server answered', async () => {
    let openedBeforeReply = false;
    control.onRegister = () => {
      openedBeforeReply = devices.length > 0;
      return { status: 200, body: { status: 'registered', node: self } };
    };
    const agent = newAgent();
    await agent.start();
    await agent.up({ server: control.url, authKey: 'k' }, () => {}, new AbortController().signal);
    expect(openedBeforeReply).toBe(true);
    expect(devices).toHaveLength(1);
  });

  it('reports an unreachable server', async () => {
    const agent = newAgent();
    await agent.start();
    const err = await agent.up({ server: 'http://127.0.0.1:1', authKey: 'k' }, () => {}, new AbortController().signal).catch((e: unknown) => e);
    expect((err as AgentError).code).toBe('server_unreachable');
  });

  it('resyncs on a seq gap and applies the fresh netmap', async () => {
    const agent = newAgent();
    await agent.start();
    await agent.up({ server: control.url, authKey: 'k' }, () => {}, new AbortController().signal);
    control.send({ type: 'delta', seq: 2, upsert: [peer(3)] });
    await until(() => device().peers.size === 2);
    control.send({ type: 'delta', seq: 4, upsert: [peer(4)] }); // seq 3 lost
    await until(() => control.received.some((m) => m.type === 'resync'));
    expect(device().peers.has(peer(4).nodeKey)).toBe(false);
    control.send(netmap(5, [peer(2), peer(3), peer(4)]));
    await until(() => device().peers.size === 3);
  });

  it('asks for compressed netmaps and applies one (binary raw deflate), then text deltas', async () => {
    const asked: (string | string[] | undefined)[] = [];
    control.onConnect = (ws, req) => {
      asked.push(req.headers['weft-netmap-encoding']);
      ws.send(deflateRawSync(JSON.stringify(netmap(1, [peer(2), peer(3)]))));
    };
    const agent = newAgent();
    await agent.start();
    await agent.up({ server: control.url, authKey: 'k' }, () => {}, new AbortController().signal);
    await until(() => device().peers.size === 2);
    expect(asked).toEqual(['deflate']);
    control.send({ type: 'delta', seq: 2, upsert: [peer(4)] });
    await until(() => device().peers.size === 3);
  });

  it('a compressed message that inflates past the bound (a deflate bomb) is refused; the next seq asks for a fresh netmap', async () => {
    // A valid delta but for its size: whitespace past the bound inside its JSON.
    const bomb = deflateRawSync(Buffer.concat([
      Buffer.from('{"type":"delta","seq":2,"upsert":['), Buffer.alloc(MAX_INFLATED_NETMAP_BYTES, ' '), Buffer.from(`${JSON.stringify(peer(4))}]}`),
    ]));
    const agent = newAgent();
    await agent.start();
    await agent.up({ server: control.url, authKey: 'k' }, () => {}, new AbortController().signal);
    await until(() => device().peers.size === 1);
    for (const ws of control.sockets) ws.send(bomb);
    control.send({ type: 'delta', seq: 3, upsert: [peer(5)] }); // seq 2 was the bomb
    await until(() => control.received.some((m) => m.type === 'resync'));
    expect(device().peers.has(peer(4).nodeKey)).toBe(false);
    expect(device().peers.has(peer(5).nodeKey)).toBe(false);
    control.send(netmap(1, [peer(2), peer(3)]));
    await until(() => device().peers.size === 2);
  });

  it('revoked (4403): interface removed, state remembered, up refuses, restart stays revoked', async () => {
    const agent = newAgent();
    await agent.start();
    await agent.up({ server: control.url, authKey: 'k' }, () => {}, new AbortController().signal);
    const connections = control.connections;
    control.closeAll(4403);
    await until(async () => (await agent.status()).state === 'revoked');
    expect(device().closed).toBe(true);
    const s = await agent.status();
    expect(s).toMatchObject({ online: false, peers: [], lastError: { code: 'node_revoked' } });
    const err = await agent.up({}, () => {}, new AbortController().signal).catch((e: unknown) => e);
    expect((err as AgentError).code).toBe('node_revoked');
    await new Promise((r) => setTimeout(r, 300));
    expect(control.connections).toBe(connections); // no reconnect
    await agent.shutdown();
    const again = newAgent();
    await again.start();
    expect((await again.status()).state).toBe('revoked');
  });

  it('unauthorized (4401) twice in a row counts as revoked; once is retried', async () => {
    const agent = newAgent();
    await agent.start();
    await agent.up({ server: control.url, authKey: 'k' }, () => {}, new AbortController().signal);
    control.onConnect = (ws) => ws.close(4401, 'no node has this machine key');
    control.closeAll(4401);
    await until(async () => (await agent.status()).state === 'revoked');
    expect(control.connections).toBe(2); // the original, then exactly one retry
    expect(device().closed).toBe(true);
  });

  it('expired (4410): needs login again, and weft up registers again', async () => {
    const agent = newAgent();
    await agent.start();
    await agent.up({ server: control.url, authKey: 'k' }, () => {}, new AbortController().signal);
    control.closeAll(4410);
    await until(async () => (await agent.status()).state === 'expired');
    expect(device().closed).toBe(true);
    await agent.up({ authKey: 'k2' }, () => {}, new AbortController().signal);
    expect(control.registers.length).toBe(2);
    expect((await agent.status()).state).toBe('running');
  });

  it('refused at the upgrade with 401 machine_unauthorized: retried once with a fresh token, then revoked, saying why', async () => {
    const agent = newAgent();
    await agent.start();
    await agent.up({ server: control.url, authKey: 'k' }, () => {}, new AbortController().signal);
    const before = control.upgrades;
    control.onUpgrade = () => ({ status: 401, body: problem(401, 'machine_unauthorized') });
    control.closeAll(1001);
    await until(async () => (await agent.status()).state === 'revoked');
    expect(control.upgrades - before).toBe(2);
    expect(device().closed).toBe(true);
    expect((await agent.status()).lastError).toMatchObject({ code: 'node_revoked', message: expect.stringContaining('HTTP 401 machine_unauthorized: detail for machine_unauthorized') });
  });

  it('refused at the upgrade with 410 node_expired: expired at once, and weft up registers again', async () => {
    const agent = newAgent();
    await agent.start();
    await agent.up({ server: control.url, authKey: 'k' }, () => {}, new AbortController().signal);
    const before = control.upgrades;
    control.onUpgrade = () => ({ status: 410, body: problem(410, 'node_expired') });
    control.closeAll(1001);
    await until(async () => (await agent.status()).state === 'expired');
    expect(control.upgrades - before).toBe(1);
    expect((await agent.status()).lastError).toMatchObject({ code: 'node_expired' });
    control.onUpgrade = () => null;
    await agent.up({ authKey: 'k2' }, () => {}, new AbortController().signal);
    expect((await agent.status()).state).toBe('running');
  });

  it('refused at the upgrade with a retryable 503: keeps retrying with backoff and reconnects when the server is back', async () => {
    const agent = newAgent();
    await agent.start();
    await agent.up({ server: control.url, authKey: 'k' }, () => {}, new AbortController().signal);
    const before = control.upgrades;
    control.onUpgrade = () => ({ status: 503, body: problem(503, 'unavailable', true) });
    control.closeAll(1001);
    await until(() => control.upgrades - before >= 3);
    expect(['revoked', 'expired']).not.toContain((await agent.status()).state);
    const connections = control.connections;
    control.onUpgrade = () => null;
    await until(() => control.connections === connections + 1, 10_000);
    await until(async () => (await agent.status()).online);
  });

  it('one poisoned peer in a netmap or delta is skipped and shown in status; every other peer is programmed', async () => {
    const poisoned = { ...peer(7), endpoints: ['999.999.999.999:99999'] };
    control.onConnect = (ws) => ws.send(JSON.stringify({ ...netmap(1, [peer(2)]), peers: [peer(2), poisoned, peer(9)] }));
    const agent = newAgent();
    await agent.start();
    await agent.up({ server: control.url, authKey: 'k' }, () => {}, new AbortController().signal);
    expect([...device().peers.keys()].sort()).toEqual([peer(2).nodeKey, peer(9).nodeKey].sort());
    let status = await agent.status();
    expect(status.lastError).toBeNull();
    expect(status.peers.map((p) => p.id)).toEqual([2, 9]);
    expect(status.skippedPeers).toEqual([{ id: 7, reason: 'endpoints[0]: IPv4 address: octet 1 is 999, outside 0-255' }]);
    expect(formatStatus(status)).toContain('skipped peer 7: endpoints[0]: IPv4 address: octet 1 is 999, outside 0-255');
    // A delta whose upsert of peer 2 is bad drops peer 2, applies the new peer 3 beside it.
    control.send({ type: 'delta', seq: 2, upsert: [{ ...peer(2), ipv4: '100.64.0.256' }, peer(3)] } as never);
    await until(() => device().peers.has(peer(3).nodeKey));
    expect([...device().peers.keys()].sort()).toEqual([peer(3).nodeKey, peer(9).nodeKey].sort());
    status = await agent.status();
    expect(status.skippedPeers.map((k) => k.id)).toEqual([2, 7]);
    expect(status.skippedPeers[0]!.reason).toBe('ipv4: octet 4 is 256, outside 0-255');
    // The next delta is still in sequence: nothing was lost to a resync.
    control.send({ type: 'delta', seq: 3, upsert: [peer(4)] });
    await until(() => device().peers.has(peer(4).nodeKey));
    expect(control.received.some((m) => m.type === 'resync')).toBe(false);
  });

  it('a peer saved by an older agent that is now refused is left out on restart, the rest restored', async () => {
    const agent = newAgent();
    await agent.start();
    await agent.up({ server: control.url, authKey: 'k' }, () => {}, new AbortController().signal);
    await agent.shutdown();
    const store = new StateStore(dir);
    const saved = await store.loadState();
    await store.saveState({ ...saved, peers: [...saved.peers, { ...peer(8), endpoints: ['1.2.3.4:0'] }] });
    control.onConnect = () => {};
    const again = newAgent();
    await again.start();
    expect([...device().peers.keys()]).toEqual([peer(2).nodeKey]);
    expect((await again.status()).lastError).toBeNull();
  });

  it('reconnects after the server drops the socket and takes the new netmap', async () => {
    const agent = newAgent();
    await agent.start();
    await agent.up({ server: control.url, authKey: 'k' }, () => {}, new AbortController().signal);
    control.onConnect = (ws) => ws.send(JSON.stringify(netmap(1, [peer(2), peer(9)])));
    control.closeAll(1001);
    await until(() => control.connections === 2 && device().peers.size === 2);
    expect(device().calls.filter((c) => c.startsWith('configure')).length).toBe(1); // link never reconfigured
  });

  it('reconnects with the revision it holds and, resumed, keeps its peers with their volatile fields replaced', async () => {
    const R = 'a'.repeat(32);
    const sent: (string | undefined)[] = [];
    const endpointsSent: (string | undefined)[] = [];
    control.onConnect = (ws, req) => {
      const held = req.headers['weft-netmap-revision'] as string | undefined;
      sent.push(held);
      endpointsSent.push(req.headers['weft-netmap-endpoints'] as string | undefined);
      ws.send(JSON.stringify(held === R
        ? { type: 'resume', seq: 1, revision: R, protocolVersion: 1, self, patch: [{ id: 2, endpoints: ['192.0.2.2:41641'], online: false, lastSeen: null, nat: null }] }
        : { ...netmap(1, [peer(2)]), revision: R }));
    };
    const agent = newAgent();
    await agent.start();
    await agent.up({ server: control.url, authKey: 'k' }, () => {}, new AbortController().signal);
    control.closeAll(1001);
    await until(async () => control.connections === 2 && (await agent.status()).peers[0]?.online === false);
    expect(sent).toEqual([undefined, R]);
    // With the revision, the endpoints revision of the peers it held (it reads the compact resume).
    expect(endpointsSent).toEqual([undefined, endpointsRevision([peer(2)])]);
    const [p] = (await agent.status()).peers;
    expect(p).toMatchObject({ id: 2, online: false });
    expect([...device().peers.keys()]).toEqual([peer(2).nodeKey]);
  });

  it('a restarted daemon comes back on its last netmap before the server answers, without logging in', async () => {
    const agent = newAgent();
    await agent.start();
    await agent.up({ server: control.url, authKey: 'k' }, () => {}, new AbortController().signal);
    control.send({ type: 'delta', seq: 2, upsert: [peer(3)] });
    await until(async () => (await agent.status()).peers.length === 2);
    await agent.shutdown();
    control.onConnect = () => {}; // server says nothing this time
    const again = newAgent();
    await again.start();
    expect([...device().peers.keys()].sort()).toEqual([peer(2).nodeKey, peer(3).nodeKey].sort());
    expect(device().config?.privateKey).toBe(devices[0]!.config?.privateKey);
    expect(control.registers.length).toBe(1);
    await until(() => control.connections === 2);
  });

  it('down keeps the registration; up with no flags comes back; logout forgets everything', async () => {
    const agent = newAgent();
    await agent.start();
    await agent.up({ server: control.url, authKey: 'k' }, () => {}, new AbortController().signal);
    await agent.down();
    expect((await agent.status())).toMatchObject({ state: 'stopped', online: false, interface: { up: false } });
    await agent.up({}, () => {}, new AbortController().signal);
    expect((await agent.status())).toMatchObject({ state: 'running', online: true, interface: { up: true } });
    expect(control.registers.length).toBe(1);
    const machineKey = (await agent.status()).self!.machineKey;
    expect(await agent.logout()).toEqual({ serverNotified: true, serverError: null });
    expect(control.logouts).toEqual([machineKey]);
    expect((await agent.status())).toMatchObject({ state: 'needs-login', self: null, server: null });
    const err = await agent.up({}, () => {}, new AbortController().signal).catch((e: unknown) => e);
    expect((err as AgentError).code).toBe('not_logged_in');
  });

  it('logout tells the server; a server that no longer knows the node counts as told', async () => {
    control.onLogout = () => ({ status: 404, body: problem(404, 'node_not_found') });
    const agent = newAgent();
    await agent.start();
    await agent.up({ server: control.url, authKey: 'k' }, () => {}, new AbortController().signal);
    expect(await agent.logout()).toEqual({ serverNotified: true, serverError: null });
    expect(control.logouts).toHaveLength(1);
    expect(device().closed).toBe(true);
  });

  it('logout with the server unreachable still removes the interface, keys and state, and says why', async () => {
    const agent = newAgent();
    await agent.start();
    await agent.up({ server: control.url, authKey: 'k' }, () => {}, new AbortController().signal);
    await control.stop();
    const r = await agent.logout();
    expect(r.serverNotified).toBe(false);
    expect(r.serverError).toMatch(/cannot reach control server/);
    expect(device().closed).toBe(true);
    expect((await agent.status())).toMatchObject({ state: 'needs-login', self: null, server: null });
    expect(await new StateStore(dir).loadState()).toMatchObject({ phase: 'needs-login', self: null });
    control = new FakeControl(); // afterEach stops it
    await control.start();
  });

  it('logout refused by the server (not 404) still wipes local state', async () => {
    control.onLogout = () => ({ status: 500, body: problem(500, 'internal', true) });
    const agent = newAgent();
    await agent.start();
    await agent.up({ server: control.url, authKey: 'k' }, () => {}, new AbortController().signal);
    const r = await agent.logout();
    expect(r).toMatchObject({ serverNotified: false });
    expect(r.serverError).toBeTruthy();
    expect((await agent.status()).self).toBeNull();
  });

  it('a device that cannot be opened at first is retried until the netmap is programmed', async () => {
    let failures = 1;
    const mine: FakeDevice[] = [];
    const agent = new Agent({
      store: new StateStore(dir), interfaceName: 'weft0', backend: 'userspace', listenPort: 41641, mtu: 1280, log: silentLogger, firewallRunner: noFirewall,
      openDevice: () => {
        if (failures-- > 0) throw new Error('a wireguard-go for weft0 is already running');
        const d = new FakeDevice();
        mine.push(d);
        return d;
      },
    });
    agents.push(agent);
    await agent.start();
    await agent.up({ server: control.url, authKey: 'k' }, () => {}, new AbortController().signal).catch(() => {});
    await until(async () => (await agent.status()).interface.up, 5000);
    expect(mine).toHaveLength(1);
    expect([...mine[0]!.peers.keys()]).toEqual([peer(2).nodeKey]);
    expect((await agent.status()).lastError).toBeNull();
  });

  it('reports a hostname the protocol accepts', () => {
    expect(reportableHostname('café-box')).toBe('caf--box');
    expect(reportableHostname('')).toBe('weft-node');
    expect(reportableHostname('x'.repeat(300))).toHaveLength(253);
  });

  it('refuses to switch servers without logout', async () => {
    const agent = newAgent();
    await agent.start();
    await agent.up({ server: control.url, authKey: 'k' }, () => {}, new AbortController().signal);
    const err = await agent.up({ server: 'http://10.9.9.9:8080' }, () => {}, new AbortController().signal).catch((e: unknown) => e);
    expect((err as AgentError).code).toBe('already_registered');
  });
});

/**
 * The agent's wiring of the packet filter: a netmap's filter reaches nft, survives a restart in
 * state.json, and a failure is reported in status and retried. nft is a fake here; the real one
 * is exercised in e2e/firewall.test.ts.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { NetmapMessage } from '@weft/protocol';
import { Agent } from '../../../src/agent.js';
import { silentLogger } from '../../../src/log.js';
import { StateStore } from '../../../src/state-store.js';
import { FakeControl } from '../fake-control.js';
import { FakeDevice } from '../fake-device.js';
import { peer, self } from '../fixtures.js';
import { FakeRunner, missing } from './fake-runner.js';

const filter: NonNullable<NetmapMessage['packetFilter']> = [{ srcIPs: ['100.64.0.2'], dstPorts: [{ ip: '100.64.0.1', ports: '22' }], protos: [6] }];
const netmap = (seq: number, packetFilter?: NetmapMessage['packetFilter']): NetmapMessage => ({
  type: 'netmap', seq, protocolVersion: 1, self, peers: [peer(2)], ...(packetFilter && { packetFilter }),
});

async function until(cond: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('Agent and the packet filter', { timeout: 20_000 }, () => {
  let dir: string;
  let control: FakeControl;
  let devices: FakeDevice[];
  let agents: Agent[];
  let runner: FakeRunner;

  const newAgent = () => {
    const agent = new Agent({
      store: new StateStore(dir), openDevice: () => { const d = new FakeDevice(); devices.push(d); return d; },
      interfaceName: 'weft0', backend: 'userspace', listenPort: 41641, mtu: 1280, log: silentLogger, hostname: () => 'testhost',
      firewallRunner: runner.run,
    });
    agents.push(agent);
    return agent;
  };
  const device = () => devices[devices.length - 1]!;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'weft-agent-fw-'));
    control = new FakeControl();
    await control.start();
    control.onRegister = () => ({ status: 200, body: { status: 'registered', node: self } });
    control.onConnect = (ws) => ws.send(JSON.stringify(netmap(1, filter)));
    devices = [];
    agents = [];
    runner = new FakeRunner();
  });
  afterEach(async () => {
    for (const a of agents) await a.shutdown();
    await control.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('a netmap\'s filter is put in force, shown in status and kept in state.json; a netmap without one removes the table', async () => {
    const agent = newAgent();
    await agent.start();
    await agent.up({ server: control.url, authKey: 'k' }, () => {}, new AbortController().signal);
    expect(runner.nftScripts[0]).toContain('ip saddr @rule0_src4 ip daddr 100.64.0.1 meta l4proto 6 th dport 22 accept');
    expect((await agent.status()).firewall).toEqual({ state: 'enforcing', rules: 1, skippedRules: [], error: null });
    expect(device().peers.size).toBe(1);
    expect(JSON.parse(await readFile(join(dir, 'state.json'), 'utf8')).packetFilter).toEqual(filter);
    // A netmap without a filter removes the table: every tunnel packet allowed again.
    control.send(netmap(2));
    await until(() => runner.nftScripts.length === 2);
    expect(runner.nftScripts[1]).toBe('table inet weft {}\ndelete table inet weft\n');
    await until(async () => (await agent.status()).firewall.state === 'off');
  });

  it('a restarted daemon restores its peers only behind the saved filter; nft failing leaves it blocked with no peers', async () => {
    const first = newAgent();
    await first.start();
    await first.up({ server: control.url, authKey: 'k' }, () => {}, new AbortController().signal);
    await first.shutdown();
    runner.nft = missing;
    control.onConnect = () => {}; // the server stays silent: only the saved netmap is there
    const second = newAgent();
    await second.start();
    const s = await second.status();
    expect(s.firewall).toMatchObject({ state: 'blocked', error: expect.stringContaining('nft not found') });
    expect(s.lastError?.code).toBe('firewall_error');
    expect(device().peers.size).toBe(0);
  });

  it('a saved filter that does not parse is restored as an empty filter (nothing in), never as none', async () => {
    const first = newAgent();
    await first.start();
    await first.up({ server: control.url, authKey: 'k' }, () => {}, new AbortController().signal);
    await first.shutdown();
    const state = JSON.parse(await readFile(join(dir, 'state.json'), 'utf8'));
    await writeFile(join(dir, 'state.json'), JSON.stringify({ ...state, packetFilter: [{ srcIPs: 'not a list' }] }));
    control.onConnect = () => {};
    runner.calls = [];
    const second = newAgent();
    await second.start();
    await until(() => runner.nftScripts.length > 0);
    expect(runner.nftScripts[0]).not.toContain('accept comment');
    expect(runner.nftScripts[0]).toContain('\t\tdrop\n');
    expect((await second.status()).firewall).toMatchObject({ state: 'enforcing', rules: 0 });
  });

  it('a delta carrying a new filter (how a policy change arrives) puts it in force before its peers, persists it, and a delta with null removes the table', async () => {
    const agent = newAgent();
    await agent.start();
    await agent.up({ server: control.url, authKey: 'k' }, () => {}, new AbortController().signal);
    expect(runner.nftScripts.length).toBe(1);
    const changed: NonNullable<NetmapMessage['packetFilter']> = [{ srcIPs: ['100.64.0.3'], dstPorts: [{ ip: '100.64.0.1', ports: '443' }], protos: [6] }];
    control.send({ type: 'delta', seq: 2, upsert: [peer(3)], packetFilter: changed });
    await until(() => runner.nftScripts.length === 2 && device().peers.size === 2);
    expect(runner.nftScripts[1]).toContain('th dport 443 accept');
    expect(runner.nftScripts[1]).not.toContain('th dport 22 accept');
    expect((await agent.status()).firewall).toEqual({ state: 'enforcing', rules: 1, skippedRules: [], error: null });
    await until(async () => JSON.stringify(JSON.parse(await readFile(join(dir, 'state.json'), 'utf8')).packetFilter) === JSON.stringify(changed));
    // A delta without packetFilter leaves the filter alone.
    control.send({ type: 'delta', seq: 3, remove: [3] });
    await until(() => device().peers.size === 1);
    expect(runner.nftScripts.length).toBe(2);
    // null: the policy is gone, every tunnel packet allowed again.
    control.send({ type: 'delta', seq: 4, packetFilter: null });
    await until(() => runner.nftScripts.length === 3);
    expect(runner.nftScripts[2]).toBe('table inet weft {}\ndelete table inet weft\n');
    await until(async () => (await agent.status()).firewall.state === 'off');
  });

  it('a delta whose filter nft refuses keeps the previous ruleset in force and says so in status', async () => {
    const agent = newAgent();
    await agent.start();
    await agent.up({ server: control.url, authKey: 'k' }, () => {}, new AbortController().signal);
    runner.nft = missing;
    control.send({ type: 'delta', seq: 2, packetFilter: [{ srcIPs: ['100.64.0.3'], dstPorts: [{ ip: '100.64.0.1', ports: '443' }], protos: [6] }] });
    await until(async () => (await agent.status()).firewall.state === 'kept');
    const s = await agent.status();
    expect(s.firewall.error).toContain('the previous ruleset stays in force');
    expect(s.lastError?.code).toBe('firewall_error');
    expect(device().peers.size).toBe(1);
  });

  it('a delta bringing the first filter to a node that had none fails closed when nft refuses it: no peer stays in WireGuard until the filter is in force', async () => {
    control.onConnect = (ws) => ws.send(JSON.stringify(netmap(1)));
    const agent = newAgent();
    await agent.start();
    await agent.up({ server: control.url, authKey: 'k' }, () => {}, new AbortController().signal);
    expect((await agent.status()).firewall.state).toBe('off');
    expect(device().peers.size).toBe(1);
    runner.nft = missing;
    control.send({ type: 'delta', seq: 2, upsert: [peer(3)], packetFilter: filter });
    await until(async () => (await agent.status()).firewall.state === 'blocked');
    expect(device().peers.size).toBe(0);
    // nft back: the reapply puts the filter in force and the peers behind it.
    runner.nft = () => ({ code: 0, stdout: '', stderr: '', missing: false });
    await until(async () => (await agent.status()).firewall.state === 'enforcing' && device().peers.size === 2, 10_000);
  });
});

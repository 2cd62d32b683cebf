import { describe, expect, it } from 'vitest';
import { generateNodeKey } from '@weft/crypto';
import { Engine } from '../../../src/engine.js';
import type { WireFilter } from '../../../src/firewall/filter.js';
import { Firewall, FirewallError } from '../../../src/firewall/firewall.js';
import { Netmap } from '../../../src/netmap.js';
import { silentLogger } from '../../../src/log.js';
import { FakeDevice } from '../fake-device.js';
import { peer, self } from '../fixtures.js';
import { FakeRunner, failing, missing } from './fake-runner.js';

const ssh: WireFilter = [{ srcIPs: ['100.64.0.2'], dstPorts: [{ ip: '100.64.0.1', ports: '22' }], protos: [6] }];
const web: WireFilter = [{ srcIPs: ['100.64.0.2'], dstPorts: [{ ip: '100.64.0.1', ports: '80' }], protos: [6] }];
const PEERS = ['100.64.0.2/32', '100.64.0.3/32'];

function setup() {
  const runner = new FakeRunner();
  const firewall = new Firewall({ interfaceName: 'weft0', log: silentLogger, run: runner.run });
  return { runner, firewall };
}

describe('Firewall', () => {
  it('puts a filter in force with one nft -f, and does not re-apply an unchanged one', async () => {
    const { runner, firewall } = setup();
    await firewall.apply(ssh, PEERS);
    await firewall.apply(ssh, PEERS);
    expect(runner.nftScripts).toHaveLength(1);
    expect(runner.calls[0]!.argv).toEqual(['nft', '-f', '-']);
    expect(firewall.status).toEqual({ state: 'enforcing', rules: 1, skippedRules: [], error: null });
    expect(firewall.blocksTunnel).toBe(false);
  });

  it('no filter and no table of ours: nft is only asked once, read only (a node without nftables works as before)', async () => {
    const { runner, firewall } = setup();
    runner.nft = missing;
    runner.nftList = missing;
    await firewall.apply(undefined, PEERS);
    await firewall.apply(undefined, PEERS);
    expect(runner.calls.map((c) => c.argv.join(' '))).toEqual(['nft list table inet weft']);
    expect(firewall.status).toEqual({ state: 'off', rules: 0, skippedRules: [], error: null });
  });

  it('no filter while a killed daemon\'s table is still in the kernel: the table is removed', async () => {
    const { runner, firewall } = setup();
    runner.nftList = () => ({ code: 0, stdout: 'table inet weft {\n}\n', stderr: '', missing: false });
    await firewall.apply(undefined, PEERS);
    expect(runner.calls.map((c) => c.argv.join(' '))).toEqual(['nft list table inet weft', 'nft -f -']);
    expect(runner.nftScripts.at(-1)).toBe('table inet weft {}\ndelete table inet weft\n');
    expect(firewall.status.state).toBe('off');
  });

  it('fails closed when nft is missing and nothing is in force: blocked, and says why', async () => {
    const { runner, firewall } = setup();
    runner.nft = missing;
    await expect(firewall.apply(ssh, PEERS)).rejects.toThrow(FirewallError);
    expect(firewall.status).toMatchObject({ state: 'blocked', error: expect.stringMatching(/nft not found: install the nftables package.*no peers are configured/) });
    expect(firewall.blocksTunnel).toBe(true);
  });

  it('a failed transaction keeps the previous ruleset and says so; the next success clears it', async () => {
    const { runner, firewall } = setup();
    await firewall.apply(ssh, PEERS);
    runner.nft = () => failing('Error: Could not process rule: No such file or directory');
    await expect(firewall.apply(web, PEERS)).rejects.toThrow(/previous ruleset stays in force/);
    expect(firewall.status).toMatchObject({ state: 'kept', rules: 1, error: expect.stringContaining('Could not process rule') });
    expect(firewall.blocksTunnel).toBe(false);
    runner.nft = () => ({ code: 0, stdout: '', stderr: '', missing: false });
    await firewall.apply(web, PEERS);
    expect(firewall.status).toEqual({ state: 'enforcing', rules: 1, skippedRules: [], error: null });
  });

  it('going from no filter to one that fails is blocked, not "kept": allow-all is not a ruleset to fall back on', async () => {
    const { runner, firewall } = setup();
    await firewall.apply(undefined, PEERS);
    runner.nft = () => failing('Error: oops');
    await expect(firewall.apply(ssh, PEERS)).rejects.toThrow(FirewallError);
    expect(firewall.status.state).toBe('blocked');
  });

  it('a removed rule deletes the conntrack entries of the TCP flows it allowed, and only those', async () => {
    const { runner, firewall } = setup();
    await firewall.apply([...ssh, ...web], PEERS);
    runner.conntrackList.ipv4 = [
      'tcp      6 431999 ESTABLISHED src=100.64.0.2 dst=100.64.0.1 sport=40000 dport=22 src=100.64.0.1 dst=100.64.0.2 sport=22 dport=40000 [ASSURED] mark=0 use=1',
      'tcp      6 431999 ESTABLISHED src=100.64.0.2 dst=100.64.0.1 sport=40001 dport=80 src=100.64.0.1 dst=100.64.0.2 sport=80 dport=40001 [ASSURED] mark=0 use=1',
    ].join('\n');
    await firewall.apply(ssh, PEERS);
    await firewall.settled();
    expect(runner.deletions).toEqual(['-f ipv4 -p tcp --orig-src 100.64.0.2 --orig-dst 100.64.0.1 --orig-port-src 40001 --orig-port-dst 80']);
  });

  it('clear removes the table only when one of ours may be there', async () => {
    const { runner, firewall } = setup();
    await firewall.clear();
    expect(runner.calls).toEqual([]);
    await firewall.apply(ssh, PEERS);
    await firewall.clear();
    expect(runner.nftScripts.at(-1)).toBe('table inet weft {}\ndelete table inet weft\n');
    expect(firewall.status.state).toBe('off');
  });
});

describe('Engine with a firewall', () => {
  function engineSetup() {
    const device = new FakeDevice();
    const { runner, firewall } = setup();
    const engine = new Engine({
      openDevice: () => device, interfaceName: 'weft0', backend: 'userspace',
      privateKey: generateNodeKey().privateKey, listenPort: 41641, mtu: 1280, log: silentLogger, firewall,
    });
    return { device, runner, engine };
  }

  it('blocked: the interface comes up with no peer, and deltas add none until the filter is in force', async () => {
    const { device, runner, engine } = engineSetup();
    runner.nft = missing;
    const nm = new Netmap();
    nm.apply({ type: 'netmap', seq: 1, protocolVersion: 1, self, peers: [peer(2)] });
    await expect(engine.applyFull(self, nm.peers, ssh)).rejects.toThrow(FirewallError);
    expect(device.config).toBeDefined();
    expect(device.peers.size).toBe(0);
    const change = nm.apply({ type: 'delta', seq: 2, upsert: [peer(3)] });
    if (change.kind !== 'delta') throw new Error('expected a delta');
    await engine.applyChange(change, self);
    expect(device.peers.size).toBe(0);
    runner.nft = () => ({ code: 0, stdout: '', stderr: '', missing: false });
    await engine.applyFull(self, nm.peers, ssh);
    expect(device.peers.size).toBe(2);
    expect(engine.firewallStatus?.state).toBe('enforcing');
  });

  it('the filter is in force before any peer is configured', async () => {
    const { device, runner, engine } = engineSetup();
    const order: string[] = [];
    const run = runner.run;
    runner.run = async (argv, input) => {
      order.push(`${argv[0]} (${device.peers.size} peers)`);
      return run(argv, input);
    };
    (engine as unknown as { opts: { firewall: Firewall } }).opts.firewall = new Firewall({ interfaceName: 'weft0', log: silentLogger, run: runner.run });
    await engine.applyFull(self, [peer(2)], ssh);
    expect(order[0]).toBe('nft (0 peers)');
    expect(device.peers.size).toBe(1);
  });
});

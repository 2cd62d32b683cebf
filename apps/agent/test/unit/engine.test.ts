import { afterEach, describe, expect, it, vi } from 'vitest';
import { type Engine, initiatesTo, interfaceAddresses, peerConfig, responderConfig } from '../../src/engine.js';
import { ANSWERING_SIDE_GRACE_MS } from '../../src/tunables.js';
import { Netmap } from '../../src/netmap.js';
import { fakeEngine, peer, self } from './fixtures.js';

const setup = fakeEngine;

async function delta(engine: Engine, nm: Netmap, msg: Parameters<Netmap['apply']>[0]) {
  const change = nm.apply(msg);
  if (change.kind !== 'delta') throw new Error(`expected delta, got ${change.kind}`);
  await engine.applyChange(change, nm.self!);
}

describe('Engine', () => {
  it('configures the interface with tailnet prefixes, MTU and keepalive peers', async () => {
    const { device, engine } = setup();
    await engine.applyFull(self, [peer(2), peer(3, { endpoints: [] })]);
    expect(device.config).toMatchObject({ addresses: ['100.64.0.1/10', 'fd7a:115c:a1e0::1/48'], mtu: 1280, listenPort: 41641 });
    expect([...device.peers.values()]).toEqual([peerConfig(peer(2)), peerConfig(peer(3, { endpoints: [] }))]);
    expect(peerConfig(peer(2))).toEqual({
      publicKey: peer(2).nodeKey, endpoint: '192.0.2.2:41641', allowedIps: ['100.64.0.2/32', 'fd7a:115c:a1e0::2/128'], persistentKeepalive: 25,
    });
    expect(peerConfig(peer(3, { endpoints: [] }))).not.toHaveProperty('endpoint');
  });

  it('applies deltas with upsert/remove only, never setPeers or reconfigure', async () => {
    const { device, engine } = setup();
    const nm = new Netmap();
    const full = nm.apply({ type: 'netmap', seq: 1, protocolVersion: 1, self, peers: [peer(2), peer(3)] });
    if (full.kind !== 'full') throw new Error();
    await engine.applyFull(full.self, full.peers);
    device.calls = [];
    await delta(engine, nm, { type: 'delta', seq: 2, upsert: [peer(4)] });
    await delta(engine, nm, { type: 'delta', seq: 3, remove: [4] });
    await delta(engine, nm, { type: 'delta', seq: 4, patch: [{ id: 2, endpoints: ['198.51.100.2:1'] }, { id: 3, online: false }] });
    expect(device.calls).toEqual(['upsert 0404', 'remove 0404', 'upsert 0202']);
    expect(device.peers.get(peer(2).nodeKey)!.endpoint).toBe('198.51.100.2:1');
  });

  it('a re-keyed peer loses its old key before the new one is added', async () => {
    const { device, engine } = setup();
    const nm = new Netmap();
    nm.apply({ type: 'netmap', seq: 1, protocolVersion: 1, self, peers: [peer(2)] });
    await engine.applyFull(self, nm.peers);
    device.calls = [];
    const rekeyed = peer(2, { nodeKey: `nodekey:${'ab'.repeat(32)}` });
    await delta(engine, nm, { type: 'delta', seq: 2, upsert: [rekeyed] });
    expect(device.calls).toEqual(['remove 0202', 'upsert abab']);
    expect([...device.peers.keys()]).toEqual([rekeyed.nodeKey]);
  });

  it('an upsert that changes only the name does not touch WireGuard', async () => {
    const { device, engine } = setup();
    const nm = new Netmap();
    nm.apply({ type: 'netmap', seq: 1, protocolVersion: 1, self, peers: [peer(2)] });
    await engine.applyFull(self, nm.peers);
    device.calls = [];
    await delta(engine, nm, { type: 'delta', seq: 2, upsert: [peer(2, { name: 'renamed' })] });
    expect(device.calls).toEqual([]);
  });

  it('down keeps the device; deltas while down are skipped; a netmap brings it back', async () => {
    const { device, engine } = setup();
    const nm = new Netmap();
    nm.apply({ type: 'netmap', seq: 1, protocolVersion: 1, self, peers: [peer(2)] });
    await engine.applyFull(self, nm.peers);
    await engine.down();
    expect(engine.up).toBe(false);
    await delta(engine, nm, { type: 'delta', seq: 2, upsert: [peer(5)] });
    expect(device.calls).toEqual(['setPeers 1', 'configure 100.64.0.1/10,fd7a:115c:a1e0::1/48', 'down']);
    await engine.applyFull(self, nm.peers);
    expect(engine.up).toBe(true);
    expect(device.peers.size).toBe(2);
  });

  it('keepalive only for a peer with an endpoint, so a handshake is never tried with nowhere to send it', () => {
    expect(peerConfig(peer(2, { endpoints: [] }))).not.toHaveProperty('persistentKeepalive');
    expect(peerConfig(peer(2, { endpoints: [] }))).not.toHaveProperty('endpoint');
    expect(peerConfig(peer(2))).toMatchObject({ endpoint: '192.0.2.2:41641', persistentKeepalive: 25 });
  });

  it('peers go in before the addresses on first configuration, so the first packets find a peer', async () => {
    const { device, engine } = setup();
    await engine.open();
    expect(device.calls).toEqual([]);
    await engine.applyFull(self, [peer(2), peer(3)]);
    expect(device.calls).toEqual(['setPeers 2', 'configure 100.64.0.1/10,fd7a:115c:a1e0::1/48']);
    await engine.applyFull(self, [peer(2)]); // configured already: peers only
    expect(device.calls.slice(2)).toEqual(['setPeers 1']);
  });

  it("the server's responder is a WireGuard peer with no allowed IPs and a keepalive; deltas leave it alone; a netmap without it removes it", async () => {
    const { device, engine } = setup();
    const nm = new Netmap();
    const responder = { publicKey: `nodekey:${'cd'.repeat(32)}`, endpoint: '192.0.2.1:3478' };
    const full = nm.apply({ type: 'netmap', seq: 1, protocolVersion: 1, self, peers: [peer(2)], wgResponders: [responder] });
    if (full.kind !== 'full') throw new Error();
    await engine.applyFull(full.self, full.peers, undefined, full.responders);
    expect(device.peers.get(responder.publicKey)).toEqual({ publicKey: responder.publicKey, allowedIps: [], endpoint: '192.0.2.1:3478', persistentKeepalive: 25 });
    expect(responderConfig(responder).allowedIps).toEqual([]);
    device.calls = [];
    await delta(engine, nm, { type: 'delta', seq: 2, upsert: [peer(4)], remove: [2], patch: [] });
    expect(device.calls).toEqual(['remove 0202', 'upsert 0404']);
    expect(device.peers.has(responder.publicKey)).toBe(true);
    // Not a peer anywhere the agent lists peers.
    expect(nm.peers.map((p) => p.nodeKey)).not.toContain(responder.publicKey);
    const without = nm.apply({ type: 'netmap', seq: 1, protocolVersion: 1, self, peers: [peer(4)] });
    if (without.kind !== 'full') throw new Error();
    await engine.applyFull(without.self, without.peers, undefined, without.responders);
    expect(device.peers.has(responder.publicKey)).toBe(false);
  });

  it('interfaceAddresses strips prefixes the server may already include', () => {
    expect(interfaceAddresses({ ...self, ipv4: '100.64.0.9/32', ipv6: 'fd00::9/128' })).toEqual(['100.64.0.9/10', 'fd00::9/48']);
  });
});

describe('one initiator per pair', () => {
  afterEach(() => {
    vi.useRealTimers();
  });
  // self is key 01..01: it initiates to peer(2) (02..02); peer(0) (00..00) initiates to it.
  const lower = peer(0);

  it('both sides of a pair agree on which one initiates', () => {
    expect(initiatesTo(self.nodeKey, peer(2).nodeKey)).toBe(true);
    expect(initiatesTo(peer(2).nodeKey, self.nodeKey)).toBe(false);
    expect(initiatesTo(self.nodeKey, lower.nodeKey)).toBe(false);
  });

  it('the initiating side gets keepalive with the endpoint; the answering side gets the endpoint alone, then keepalive after its grace', async () => {
    vi.useFakeTimers();
    const { device, engine } = setup();
    await engine.applyFull(self, [peer(2), lower]);
    expect(device.peers.get(peer(2).nodeKey)).toMatchObject({ endpoint: '192.0.2.2:41641', persistentKeepalive: 25 });
    expect(device.peers.get(lower.nodeKey)).toMatchObject({ endpoint: '192.0.2.0:41641' });
    expect(device.peers.get(lower.nodeKey)).not.toHaveProperty('persistentKeepalive');
    device.calls = [];
    await vi.advanceTimersByTimeAsync(ANSWERING_SIDE_GRACE_MS);
    // No handshake came in the grace: recreated with keepalive, so it handshakes at once.
    expect(device.calls).toEqual(['remove 0000', 'upsert 0000']);
    expect(device.peers.get(lower.nodeKey)).toMatchObject({ persistentKeepalive: 25 });
  });

  it('an answering peer that gets its first endpoint in a delta is given it without keepalive, and a later patch keeps keepalive once the grace is over', async () => {
    vi.useFakeTimers();
    const { device, engine } = setup();
    const nm = new Netmap();
    nm.apply({ type: 'netmap', seq: 1, protocolVersion: 1, self, peers: [peer(0, { endpoints: [] })] });
    await engine.applyFull(self, nm.peers);
    await delta(engine, nm, { type: 'delta', seq: 2, patch: [{ id: 0, endpoints: ['198.51.100.9:1'] }] });
    expect(device.peers.get(lower.nodeKey)).toMatchObject({ endpoint: '198.51.100.9:1' });
    expect(device.peers.get(lower.nodeKey)).not.toHaveProperty('persistentKeepalive');
    await vi.advanceTimersByTimeAsync(ANSWERING_SIDE_GRACE_MS);
    await delta(engine, nm, { type: 'delta', seq: 3, patch: [{ id: 0, endpoints: ['198.51.100.9:2'] }] });
    expect(device.peers.get(lower.nodeKey)).toMatchObject({ endpoint: '198.51.100.9:2', persistentKeepalive: 25 });
  });

  it('a peer removed during its grace is not reprogrammed when the grace ends', async () => {
    vi.useFakeTimers();
    const { device, engine } = setup();
    const nm = new Netmap();
    nm.apply({ type: 'netmap', seq: 1, protocolVersion: 1, self, peers: [lower] });
    await engine.applyFull(self, nm.peers);
    await delta(engine, nm, { type: 'delta', seq: 2, remove: [0] });
    device.calls = [];
    await vi.advanceTimersByTimeAsync(ANSWERING_SIDE_GRACE_MS * 2);
    expect(device.calls).toEqual([]);
    expect(device.peers.has(lower.nodeKey)).toBe(false);
  });

  it('adaptive MTU: setMtu sets the link of a configured interface once per change, and a later configure keeps the MTU it set', async () => {
    const { device, engine } = setup();
    const links: Array<[string, number]> = [];
    const setLink = async (name: string, mtu: number) => void links.push([name, mtu]);
    await engine.setMtu(1340, setLink); // not configured yet: remembered, nothing run
    expect(links).toEqual([]);
    await engine.applyFull(self, [peer(2)]);
    expect(device.config?.mtu).toBe(1340);
    await engine.setMtu(1420, setLink);
    await engine.setMtu(1420, setLink);
    expect(links).toEqual([['weft0', 1420]]);
    expect(engine.mtu).toBe(1420);
    await engine.applyFull({ ...self, ipv4: '100.64.0.9' }, [peer(2)]); // new address: configure again
    expect(device.config?.mtu).toBe(1420);
  });
});

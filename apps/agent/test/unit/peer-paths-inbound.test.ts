/**
 * A peer that relays to this node while PeerPaths is choosing its first path (e2e/restart-ping's
 * rare 1.6 s first reply): WireGuard is aimed at the relay socket by `inbound` while the socket
 * PeerPaths asked for opens, and may have begun a handshake there. The initiator's usual first
 * move (remove the peer and add it afresh, so WireGuard forgets a stale attempt) would lose that
 * handshake, and the fresh one, sent within 20 ms, is dropped by the other side as a flood.
 */
import { describe, expect, it } from 'vitest';
import type { NodePublicKey } from '@weft/crypto';
import { silentLogger } from '../../src/log.js';
import { PeerPaths } from '../../src/peer-paths.js';
import { fakeEngine, peer, self, STUB_RELAY_SOCKET, stubRelay } from './fixtures.js';

async function setup() {
  const p2 = peer(2); // self (key 01..) initiates to it (02..)
  const { device, engine } = fakeEngine();
  await engine.applyFull(self, [p2]);
  const relay = stubRelay();
  let release: () => void = () => {};
  const opened = new Promise<void>((r) => (release = r));
  let asked: () => void = () => {};
  /** Resolves when PeerPaths asks the relay for the peer's socket (and waits for `release`). */
  const openAsked = new Promise<void>((r) => (asked = r));
  const open = relay.open.bind(relay);
  relay.open = async (k) => {
    asked();
    await opened;
    return open(k);
  };
  const paths = new PeerPaths({
    engine: () => engine, peers: () => [p2], relay, forced: () => false,
    selfKey: () => self.nodeKey, selfPublicIp: () => undefined, punchingHopeless: () => false, log: silentLogger,
  });
  device.calls.length = 0;
  return { p2, device, paths, release, openAsked };
}

describe('a peer that relays to this node first', () => {
  it('while the first path is being chosen: WireGuard keeps the peer (no remove), aimed at the relay socket', async () => {
    const { p2, device, paths, release, openAsked } = await setup();
    const checking = paths.check();
    await openAsked;
    paths.inbound(p2.nodeKey as NodePublicKey, STUB_RELAY_SOCKET);
    release();
    await checking;
    expect(device.calls.filter((c) => c.startsWith('remove'))).toEqual([]);
    expect(device.peers.get(p2.nodeKey)?.endpoint).toBe(STUB_RELAY_SOCKET);
    expect(paths.view(p2.nodeKey)?.via).toBe('relay');
  });

  it('without it, the initiator starts the relayed pair from a fresh peer (removed, then added)', async () => {
    const { p2, device, paths, release } = await setup();
    release();
    await paths.check();
    expect(device.calls.filter((c) => c.startsWith('remove'))).toHaveLength(1);
    expect(device.peers.get(p2.nodeKey)?.endpoint).toBe(STUB_RELAY_SOCKET);
  });
});

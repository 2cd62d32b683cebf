/**
 * A peer that begins a handshake over the relay while this node, the pair's initiator, is moving
 * it there (e2e/restart-ping's rare 1.6 s first reply; mesh.test's rare "three hosts joined" with
 * no ping for 5 s). The initiator's usual move (remove the peer and add it afresh, so WireGuard
 * forgets a stale attempt) would lose the session WireGuard just answered, and its fresh
 * initiation, sent within 20 ms, is dropped by the other side as a flood. As the responder,
 * WireGuard shows no handshake time until the peer's first data packet, so only the relay's
 * record of the peer's initiation (RelayPath `lastInitiation`) can tell.
 */
import { describe, expect, it } from 'vitest';
import type { NodePublicKey } from '@weft/crypto';
import { silentLogger } from '../../src/log.js';
import { PeerPaths } from '../../src/peer-paths.js';
import { RELAY_KICK_MS, RELAY_UNREACHABLE_GRACE_MS, REKEY_TIMEOUT_MS } from '../../src/tunables.js';
import { fakeEngine, self, STUB_RELAY_SOCKET, stubRelay } from './fixtures.js';
import { p2, relayedPair } from './relayed-pair.js';

async function setup() {
  const { device, engine } = fakeEngine();
  await engine.applyFull(self, [p2]);
  const relay = stubRelay();
  let now = 1_000_000;
  let initiationAt: number | undefined;
  relay.lastInitiation = () => initiationAt;
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
    selfKey: () => self.nodeKey, selfPublicIp: () => undefined, punchingHopeless: () => false, log: silentLogger, now: () => now,
  });
  device.calls.length = 0;
  return {
    p2, device, paths, release, openAsked,
    removes: () => device.calls.filter((c) => c.startsWith('remove')),
    /** The relay brings the peer's handshake initiation now. */
    peerInitiates: () => (initiationAt = now),
    advance: (ms: number) => (now += ms),
  };
}

describe('a peer that begins a handshake over the relay while its first path is chosen', () => {
  it('relayed to this node first (`inbound` aims WireGuard while the socket opens): the peer is kept (no remove), aimed at the relay socket', async () => {
    const { p2, device, paths, release, openAsked, removes, peerInitiates } = await setup();
    const checking = paths.check();
    await openAsked;
    peerInitiates();
    paths.inbound(p2.nodeKey as NodePublicKey, STUB_RELAY_SOCKET);
    release();
    await checking;
    expect(removes()).toEqual([]);
    expect(device.peers.get(p2.nodeKey)?.endpoint).toBe(STUB_RELAY_SOCKET);
    expect(paths.view(p2.nodeKey)?.via).toBe('relay');
  });

  it('on the socket this node opened for it (no `inbound`): the peer is kept all the same', async () => {
    const { p2, device, paths, release, openAsked, removes, peerInitiates } = await setup();
    const checking = paths.check();
    await openAsked;
    peerInitiates();
    release();
    await checking;
    expect(removes()).toEqual([]);
    expect(device.peers.get(p2.nodeKey)?.endpoint).toBe(STUB_RELAY_SOCKET);
  });

  it('no handshake from the peer: the initiator starts the relayed pair from a fresh peer (removed, then added)', async () => {
    const { p2, device, paths, release, removes } = await setup();
    release();
    await paths.check();
    expect(removes()).toHaveLength(1);
    expect(device.peers.get(p2.nodeKey)?.endpoint).toBe(STUB_RELAY_SOCKET);
  });

  it(`a handshake from the peer ${REKEY_TIMEOUT_MS} ms ago or more is over: a fresh peer all the same`, async () => {
    const { paths, release, removes, peerInitiates, advance } = await setup();
    peerInitiates();
    advance(REKEY_TIMEOUT_MS);
    release();
    await paths.check();
    expect(removes()).toHaveLength(1);
  });

  it('no relay kick (remove and re-add) while the peer\'s handshake is under way; one once it is over with no handshake', async () => {
    const { paths, release, removes, peerInitiates, advance } = await setup();
    release();
    await paths.check(); // relayed at once: the one fresh peer
    expect(removes()).toHaveLength(1);
    advance(RELAY_KICK_MS);
    peerInitiates();
    await paths.check();
    expect(removes()).toHaveLength(1);
    advance(REKEY_TIMEOUT_MS);
    await paths.check();
    expect(removes()).toHaveLength(2);
  });
});

describe('a peer the relay cannot reach that reaches this node directly', () => {
  it('is not removed (no relay kick, no aim at its netmap endpoint) while WireGuard, the answering side, shows no handshake yet', async () => {
    const relay = stubRelay();
    relay.cannotReach = () => true; // the peer is not connected to the relay (a phone, say)
    const pair = await relayedPair(relay);
    await pair.run(250); // relayed at once: the one fresh peer
    const removes = () => pair.device.calls.filter((c) => c.startsWith('remove')).length;
    expect(removes()).toBe(1);
    // The peer's initiation arrives directly: WireGuard answers it and roams to where it came from.
    const roamed = '198.51.100.7:51820';
    pair.device.peers.set(p2.nodeKey, { ...pair.device.peers.get(p2.nodeKey)!, endpoint: roamed });
    await pair.run(RELAY_UNREACHABLE_GRACE_MS + 500);
    expect(removes()).toBe(1);
    expect(pair.endpoint()).toBe(roamed);
    // Its first data packet: the handshake shows, and the pair is direct where the peer is.
    pair.counters.lastHandshake = new Date(pair.now());
    pair.counters.rxBytes += 100;
    await pair.run(250);
    expect(pair.paths.view(p2.nodeKey)?.via).toBe('direct');
    expect(pair.endpoint()).toBe(roamed);
  });
});

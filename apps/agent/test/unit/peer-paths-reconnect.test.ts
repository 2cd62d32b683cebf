/**
 * A relayed pair whose peer went away and came back (its daemon restarted: a fresh WireGuard with
 * no session) is not hole-punched on the handshake it had before (issue 9; e2e/restart-ping.test.ts).
 * The probe's keepalives would travel in a session the peer forgot, and the relay's packets are
 * held while it runs: the peer's new handshake among them, retried by WireGuard only after
 * RekeyTimeout (5 s). PeerPaths with the in-memory device and a stand-in relay, as in
 * peer-paths-probe.test.ts.
 */
import { describe, expect, it } from 'vitest';
import type { NodePublicKey } from '@weft/crypto';
import type { Peer } from '@weft/protocol';
import type { PeerConfig, PeerStats } from '@weft/wg';
import { silentLogger } from '../../src/log.js';
import { PeerPaths } from '../../src/peer-paths.js';
import { PROBE_KEEPALIVE_S } from '../../src/tunables.js';
import { fakeEngine, peer, self, STUB_RELAY_SOCKET, stubRelay } from './fixtures.js';

const p2 = peer(2, { lastSeen: '2026-12-01T10:00:00.000Z' });
const candidate = p2.endpoints[0]!;

async function setup() {
  const { device, engine } = fakeEngine();
  await engine.applyFull(self, [p2]);
  let now = 1_000_000;
  let current: Peer = p2;
  const relay = stubRelay();
  let relayGone = false;
  relay.cannotReach = () => relayGone;
  const paths = new PeerPaths({
    engine: () => engine, peers: () => [current], relay, forced: () => false,
    selfKey: () => self.nodeKey, selfPublicIp: () => undefined, punchingHopeless: () => false,
    log: silentLogger, now: () => now,
  });
  const counters = { rxBytes: 0, txBytes: 0, lastHandshake: null as Date | null };
  device.stats = async (): Promise<PeerStats[]> => [{
    publicKey: p2.nodeKey as NodePublicKey, endpoint: device.peers.get(p2.nodeKey)?.endpoint ?? null, ...counters,
  }];
  /** Each time WireGuard is aimed at the candidate with the probe's keepalive: one probe. */
  const probes: number[] = [];
  const upsert = device.upsertPeer.bind(device);
  device.upsertPeer = async (cfg: PeerConfig) => {
    await upsert(cfg);
    if (cfg.endpoint === candidate && cfg.persistentKeepalive === PROBE_KEEPALIVE_S) probes.push(now);
  };
  /** Moves the clock in 250 ms checks, the pair carrying traffic while on the relay (nothing answers the candidate). */
  const run = async (ms: number) => {
    for (let t = 0; t < ms; t += 250) {
      now += 250;
      if (device.peers.get(p2.nodeKey)?.endpoint === STUB_RELAY_SOCKET) {
        counters.rxBytes += 1000;
        counters.txBytes += 1000;
      }
      await paths.check();
    }
  };
  /** WireGuard completes a handshake with the peer now (the fake clock's now). */
  const handshake = () => (counters.lastHandshake = new Date(now));
  /** The peer's daemon stops and starts again: offline, then online, as the netmap says. */
  const restartPeer = async () => {
    current = { ...p2, online: false, lastSeen: new Date(now).toISOString() };
    await run(250);
    current = { ...p2, online: true, lastSeen: new Date(now).toISOString() };
  };
  const endpoint = () => device.peers.get(p2.nodeKey)?.endpoint;
  return { paths, run, probes, handshake, restartPeer, endpoint, setRelayGone: (v: boolean) => (relayGone = v) };
}

describe('hole punching a peer that reconnected', () => {
  it('a peer that went offline and came back is punched only once it has a handshake newer than that', async () => {
    const { run, probes, handshake, restartPeer } = await setup();
    await run(250); // relayed at once
    handshake();
    await restartPeer(); // before the pair's first slot (1 s)
    await run(5_000);
    expect(probes).toEqual([]); // the old session's handshake does not count
    handshake(); // the peer's new session, over the relay
    await run(1_500);
    expect(probes.length).toBe(1);
  });

  it('a peer the relay says is not connected is not punched on the handshake it had before', async () => {
    const { run, probes, handshake, setRelayGone } = await setup();
    await run(250);
    handshake();
    setRelayGone(true);
    await run(250);
    setRelayGone(false); // back on the relay: its packets come again
    await run(5_000);
    expect(probes).toEqual([]);
    handshake();
    await run(1_500);
    expect(probes.length).toBe(1);
  });

  it('a probe under way when the peer goes away is abandoned at once: the relay carries the pair again', async () => {
    const { paths, run, probes, handshake, restartPeer, endpoint } = await setup();
    await run(250);
    handshake();
    for (let i = 0; i < 8 && probes.length === 0; i++) await run(250); // to the first slot (1 s)
    expect(probes.length).toBe(1);
    expect(endpoint()).toBe(candidate);
    await restartPeer(); // one check, well inside the probe window (1 s)
    expect(endpoint()).toBe(STUB_RELAY_SOCKET);
    expect(paths.view(p2.nodeKey)).toMatchObject({ via: 'relay', reason: expect.stringContaining('the peer reconnected') });
  });
});

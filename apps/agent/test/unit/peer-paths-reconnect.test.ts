/**
 * A relayed pair whose peer begins a new session over the relay (its daemon restarted: a fresh
 * WireGuard that forgot the old session) is not hole-punched on the handshake from before (issue
 * 9; e2e/restart-ping.test.ts). The probe's keepalives would travel in a session the peer forgot,
 * and the relay's packets are held while it runs: the peer's new handshake among them, retried by
 * WireGuard only after RekeyTimeout (5 s). PeerPaths with the in-memory device and a stand-in
 * relay, as in peer-paths-probe.test.ts; RelayPath's part (a held pair's handshakes still reach
 * WireGuard) is `wireguardHandshake` below.
 */
import { describe, expect, it } from 'vitest';
import type { NodePublicKey } from '@weft/crypto';
import type { PeerConfig, PeerStats } from '@weft/wg';
import { silentLogger } from '../../src/log.js';
import { PeerPaths } from '../../src/peer-paths.js';
import { wireguardHandshake } from '../../src/relay-path.js';
import { PROBE_KEEPALIVE_S } from '../../src/tunables.js';
import { fakeEngine, peer, self, STUB_RELAY_SOCKET, stubRelay } from './fixtures.js';

const p2 = peer(2);
const candidate = p2.endpoints[0]!;

async function setup() {
  const { device, engine } = fakeEngine();
  await engine.applyFull(self, [p2]);
  let now = 1_000_000;
  const relay = stubRelay();
  let initiationAt: number | undefined;
  relay.lastInitiation = () => initiationAt;
  const paths = new PeerPaths({
    engine: () => engine, peers: () => [p2], relay, forced: () => false,
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
  const endpoint = () => device.peers.get(p2.nodeKey)?.endpoint;
  /** Moves the clock in 250 ms checks, the pair carrying traffic while on the relay (nothing answers the candidate). */
  const run = async (ms: number) => {
    for (let t = 0; t < ms; t += 250) {
      now += 250;
      if (endpoint() === STUB_RELAY_SOCKET) {
        counters.rxBytes += 1000;
        counters.txBytes += 1000;
      }
      await paths.check();
    }
  };
  return {
    paths, run, probes, endpoint,
    /** WireGuard completes a handshake with the peer now (the fake clock's now). */
    handshake: () => (counters.lastHandshake = new Date(now)),
    /** The relay brings the peer's handshake initiation now: its restarted daemon begins a new session. */
    peerInitiates: () => (initiationAt = now),
  };
}

describe('hole punching a peer that begins a new session over the relay', () => {
  it('is punched only once WireGuard has a handshake newer than the peer\'s initiation', async () => {
    const { run, probes, handshake, peerInitiates } = await setup();
    await run(250); // relayed at once
    handshake();
    await run(250);
    peerInitiates(); // before the pair's first slot (1 s)
    await run(5_000);
    expect(probes).toEqual([]); // the old session's handshake does not count
    handshake(); // the new session, over the relay
    await run(1_500);
    expect(probes.length).toBe(1);
  });

  it('a probe under way when the peer initiates is abandoned at once: the relay carries the pair again', async () => {
    const { paths, run, probes, handshake, peerInitiates, endpoint } = await setup();
    await run(250);
    handshake();
    for (let i = 0; i < 8 && probes.length === 0; i++) await run(250); // to the first slot (1 s)
    expect(probes.length).toBe(1);
    expect(endpoint()).toBe(candidate);
    peerInitiates();
    await run(250); // one check, well inside the probe window (1 s)
    expect(endpoint()).toBe(STUB_RELAY_SOCKET);
    expect(paths.view(p2.nodeKey)).toMatchObject({ via: 'relay', reason: expect.stringContaining('the peer began a new session') });
  });

  it('a probe holds only data: WireGuard handshake messages still reach WireGuard', () => {
    const packet = (type: number) => Buffer.from([type, 0, 0, 0]);
    expect([1, 2, 3].map((t) => wireguardHandshake(packet(t)))).toEqual([true, true, true]);
    expect([0, 4, 5].map((t) => wireguardHandshake(packet(t)))).toEqual([false, false, false]);
  });
});

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
import { wireguardHandshake } from '../../src/relay-path.js';
import { STUB_RELAY_SOCKET, stubRelay } from './fixtures.js';
import { candidate, p2, relayedPair } from './relayed-pair.js';

async function setup() {
  const relay = stubRelay();
  let initiationAt: number | undefined;
  relay.lastInitiation = () => initiationAt;
  const pair = await relayedPair(relay);
  return {
    paths: pair.paths, probes: pair.probes, endpoint: pair.endpoint,
    /** Moves the clock in 250 ms checks, the pair carrying traffic while on the relay (nothing answers the candidate). */
    run: (ms: number) => pair.run(ms, 1000),
    /** WireGuard completes a handshake with the peer now (the fake clock's now). */
    handshake: () => (pair.counters.lastHandshake = new Date(pair.now())),
    /** The relay brings the peer's handshake initiation now: its restarted daemon begins a new session. */
    peerInitiates: () => (initiationAt = pair.now()),
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

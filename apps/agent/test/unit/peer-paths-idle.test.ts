/**
 * Idle peers cost nothing (issue 9): keepalive and punching follow one "in use" (path-choice.ts
 * `inUse`), read from WireGuard's counters. PeerPaths with the in-memory device and a stand-in
 * relay (which side of a socket packets take is RelayPath's, tested in integration/ and e2e/).
 */
import { describe, expect, it } from 'vitest';
import type { NodePublicKey } from '@weft/crypto';
import type { PeerStats } from '@weft/wg';
import { silentLogger } from '../../src/log.js';
import { PeerPaths } from '../../src/peer-paths.js';
import { IN_USE_WINDOW_MS, PERSISTENT_KEEPALIVE_S, PROBE_KEEPALIVE_S, RELAY_DOWN_DIRECT_MS } from '../../src/tunables.js';
import { fakeEngine, peer, self, STUB_RELAY_SOCKET, stubRelay } from './fixtures.js';

const p2 = peer(2); // self (01..01) initiates to it

async function setup(opts: { punching: boolean }) {
  const { device, engine } = fakeEngine();
  await engine.applyFull(self, [p2]);
  let now = 1_000_000;
  const theRelay = stubRelay();
  const paths = new PeerPaths({
    engine: () => engine, peers: () => [p2], relay: theRelay, forced: () => false,
    selfKey: () => self.nodeKey, selfPublicIp: () => undefined, punchingHopeless: () => !opts.punching,
    log: silentLogger, now: () => now,
  });
  // WireGuard's view of p2: counters the test moves, the endpoint the agent last programmed.
  const counters = { rxBytes: 0, txBytes: 0, lastHandshake: null as Date | null };
  device.stats = async (): Promise<PeerStats[]> => [{
    publicKey: p2.nodeKey as NodePublicKey, endpoint: device.peers.get(p2.nodeKey)?.endpoint ?? null, ...counters,
  }];
  const wg = () => device.peers.get(p2.nodeKey)!;
  /** Moves the clock by `ms` in 250 ms checks, adding `perCheck` bytes each way each check. */
  const run = async (ms: number, perCheck = 0) => {
    for (let t = 0; t < ms; t += 250) {
      now += 250;
      counters.rxBytes += perCheck;
      counters.txBytes += perCheck;
      await paths.check();
    }
  };
  return { device, engine, paths, counters, wg, run, relay: theRelay };
}

describe('idle peers cost nothing', () => {
  it('a pair gets keepalive while in use, none once idle (keepalives and rekeys do not count), and keepalive again with its first packet', async () => {
    const { counters, wg, run } = await setup({ punching: false });
    await run(250);
    expect(wg()).toMatchObject({ endpoint: STUB_RELAY_SOCKET, persistentKeepalive: PERSISTENT_KEEPALIVE_S }); // new: about to be used
    counters.lastHandshake = new Date();
    await run(10_000, 1000); // data both ways
    expect(wg().persistentKeepalive).toBe(PERSISTENT_KEEPALIVE_S);
    // Only WireGuard's upkeep from here: a keepalive each way, then a rekey (initiation + keepalive out, response in).
    await run(25_000);
    counters.txBytes += 32;
    counters.rxBytes += 32;
    await run(25_000);
    counters.txBytes += 148 + 32;
    counters.rxBytes += 92;
    await run(IN_USE_WINDOW_MS - 50_000 + 250);
    expect(wg()).not.toHaveProperty('persistentKeepalive');
    // A peer that never answers: initiations every 5 s are upkeep too, the pair stays idle.
    for (let i = 0; i < 4; i++) {
      counters.txBytes += 148;
      await run(5_000);
    }
    expect(wg()).not.toHaveProperty('persistentKeepalive');
    // The first packet: WireGuard's handshake for it and the ping itself (84-byte IPv4 -> 128 on the wire).
    counters.txBytes += 148 + 128;
    await run(250);
    expect(wg().persistentKeepalive).toBe(PERSISTENT_KEEPALIVE_S);
  });

  it('a direct pair that goes idle (the peer quiet too) is parked on the relay with no keepalive and no punching; traffic punches it in the next 1 s slot', async () => {
    const { device, paths, counters, wg, run } = await setup({ punching: true });
    counters.lastHandshake = new Date();
    device.peers.set(p2.nodeKey, { ...wg(), endpoint: p2.endpoints[0]! }); // already talking directly
    await run(250, 1000);
    expect(paths.view(p2.nodeKey)?.via).toBe('direct');
    await run(IN_USE_WINDOW_MS + 250);
    expect(paths.view(p2.nodeKey)).toMatchObject({ via: 'relay', reason: expect.stringContaining('idle') });
    expect(wg()).toMatchObject({ endpoint: STUB_RELAY_SOCKET });
    expect(wg()).not.toHaveProperty('persistentKeepalive');
    device.calls = [];
    await run(40_000); // past every punch slot (1 s, 5 s, 10 s, 30 s): nothing sent, nothing reprogrammed
    expect(device.calls).toEqual([]);
    // Traffic over the relay (the first packet got through there): punched within the first slot.
    await run(250, 1000);
    await run(1_000);
    expect(wg()).toMatchObject({ endpoint: p2.endpoints[0], persistentKeepalive: PROBE_KEEPALIVE_S });
  });

  it('a parked pair goes back to its direct endpoint when the relay goes away (server down: tunnels keep working)', async () => {
    const { device, paths, counters, wg, run, relay: r } = await setup({ punching: true });
    counters.lastHandshake = new Date();
    device.peers.set(p2.nodeKey, { ...wg(), endpoint: p2.endpoints[0]! });
    await run(250, 1000);
    await run(IN_USE_WINDOW_MS + 250);
    expect(wg()).toMatchObject({ endpoint: STUB_RELAY_SOCKET });
    r.connected = false;
    await run(RELAY_DOWN_DIRECT_MS + 250);
    expect(paths.view(p2.nodeKey)?.via).toBe('direct');
    expect(wg()).toMatchObject({ endpoint: p2.endpoints[0] });
  });

  it('a relayed pair (not parked) is aimed at the peer\'s endpoint once the relay has been gone a moment, not on a blip; back on the relay when it returns if direct does not answer', async () => {
    const { paths, counters, wg, run, relay: r } = await setup({ punching: false });
    await run(250);
    counters.lastHandshake = new Date();
    await run(1_000, 1000);
    expect(wg()).toMatchObject({ endpoint: STUB_RELAY_SOCKET });
    // A blip: gone for less than RELAY_DOWN_DIRECT_MS, nothing moves.
    r.connected = false;
    await run(RELAY_DOWN_DIRECT_MS - 250, 1000);
    r.connected = true;
    await run(250, 1000);
    expect(wg()).toMatchObject({ endpoint: STUB_RELAY_SOCKET });
    // Gone for good (the server stopped): the tunnel goes direct and says why.
    r.connected = false;
    await run(RELAY_DOWN_DIRECT_MS + 250, 1000);
    expect(wg()).toMatchObject({ endpoint: p2.endpoints[0] });
    expect(paths.view(p2.nodeKey)).toMatchObject({ via: 'direct', reason: expect.stringContaining('the relay is not connected') });
    // The relay is back and nothing comes back on the direct path: on the relay again.
    r.connected = true;
    for (let i = 0; i < 40 && wg().endpoint !== STUB_RELAY_SOCKET; i++) {
      counters.txBytes += 1000; // data out, nothing in
      await run(250);
    }
    expect(wg()).toMatchObject({ endpoint: STUB_RELAY_SOCKET });
  });

  it('an idle direct pair whose peer keeps sending its own keepalives (a phone) stays direct, with no keepalive from this side', async () => {
    const { device, paths, counters, wg, run } = await setup({ punching: true });
    counters.lastHandshake = new Date();
    device.peers.set(p2.nodeKey, { ...wg(), endpoint: p2.endpoints[0]! });
    await run(250, 1000);
    for (let i = 0; i < 8; i++) { // 200 s
      counters.rxBytes += 32;
      await run(25_000);
    }
    expect(paths.view(p2.nodeKey)?.via).toBe('direct');
    expect(wg()).toMatchObject({ endpoint: p2.endpoints[0] });
    expect(wg()).not.toHaveProperty('persistentKeepalive');
  });
});

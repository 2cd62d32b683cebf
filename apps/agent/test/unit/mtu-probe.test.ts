/**
 * MtuProber's bookkeeping of which path a measurement belongs to, with real UDP probes and acks on
 * loopback (its own responder answers them) and a fake engine whose peer endpoint the test moves
 * in the middle of a search. The search itself is tested in mtu.test.ts.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Peer } from '@weft/protocol';
import type { PeerStats } from '@weft/wg';
import type { Engine } from '../../src/engine.js';
import { MtuProber } from '../../src/mtu-probe.js';

const KEY = `nodekey:${'ab'.repeat(32)}`;
const peer = { nodeKey: KEY, name: 'b', ipv4: '127.0.0.1/32', endpoints: [] } as unknown as Peer;

/** An engine with one peer, a live session, and an endpoint the test sets. */
function fakeEngine() {
  const e = {
    endpoint: '10.0.0.2:41641' as string | null,
    /** Set: the peer is relayed (its endpoint is the local relay socket). */
    relayed: false,
    /** Times the peer was aimed somewhere (Engine.pathChanges). */
    aimed: 0,
    pathChanges: () => e.aimed,
    mtu: 1420,
    up: true,
    isIdle: () => false,
    relayEndpointOf: () => (e.relayed ? e.endpoint ?? undefined : undefined),
    setMtu: async (m: number) => { e.mtu = m; },
    stats: async (): Promise<Map<string, PeerStats>> => new Map([[KEY, {
      publicKey: KEY, endpoint: e.endpoint, lastHandshake: new Date(), rxBytes: 0, txBytes: 0,
    } as unknown as PeerStats]]),
  };
  return e;
}

let prober: MtuProber | undefined;
afterEach(() => prober?.stop());

type Route = { transport: 'udp'; host: string } | { transport: 'websocket' } | null;

function start(engine: ReturnType<typeof fakeEngine>, duringSearch: () => void, relay: { route: Route } = { route: null }) {
  const searches: string[] = [];
  prober = new MtuProber({
    adaptive: true,
    engine: () => engine as unknown as Engine,
    peers: () => [peer],
    selfIpv4: () => '127.0.0.1/32',
    log: () => {},
    relayTransport: () => relay.route,
    setLink: async () => {},
    // Called once at the start of each search, with the endpoint's host.
    underlayMtu: async (host) => {
      searches.push(host);
      if (searches.length === 1) duringSearch();
      return 1500;
    },
  });
  return { prober, searches };
}

describe('path MTU prober', () => {
  it('a peer relayed over UDP is searched under the relay\'s header (no IP fragments); over the WebSocket up to the ceiling; a transport change is a path change', async () => {
    const engine = fakeEngine();
    engine.relayed = true;
    engine.endpoint = '127.0.0.1:50000';
    const relay: { route: Route } = { route: { transport: 'udp', host: '10.0.0.1' } };
    const { prober: p, searches } = start(engine, () => {}, relay);
    await p.tick();
    await p.tick();
    expect(searches).toEqual(['10.0.0.1']); // the device toward the relay, not lo
    // 1500 - 41 (relay UDP header) - 80 (WireGuard over IPv6): every probe acks on loopback, so the result is the ceiling.
    expect(p.view(KEY).pathMtu).toBe(1379);
    relay.route = { transport: 'websocket' };
    await p.tick(); // the path changed: seen once
    await p.tick(); // held: searched, with no underlay of its own
    expect(searches).toEqual(['10.0.0.1']);
    expect(p.view(KEY).pathMtu).toBe(1420);
  });

  it('a path whose endpoint moves to the relay mid-search and back is searched again once it holds', async () => {
    const engine = fakeEngine();
    const { prober: p, searches } = start(engine, () => { engine.endpoint = '127.0.0.1:50000'; });
    await p.tick(); // first sight of the endpoint
    await p.tick(); // it held: searched; it moved to the relay meanwhile
    expect(searches).toEqual(['10.0.0.2']);
    expect(p.view(KEY).pathMtu).toBeNull();
    engine.endpoint = '10.0.0.2:41641'; // direct again, to the same endpoint
    await p.tick();
    expect(searches).toEqual(['10.0.0.2', '10.0.0.2']);
    expect(p.view(KEY).pathMtu).toBe(1420);
    await p.tick(); // measured and unchanged: not searched again
    expect(searches).toHaveLength(2);
  });

  it('a search during which the peer was aimed elsewhere and back (a relay kick, a hole punch\'s window) is searched again, though it ends on the endpoint it began on', async () => {
    const engine = fakeEngine();
    const { prober: p, searches } = start(engine, () => { engine.aimed += 2; }); // away, then back to the same endpoint
    await p.tick();
    await p.tick(); // held: searched; aimed twice meanwhile
    expect(searches).toEqual(['10.0.0.2']);
    expect(p.view(KEY).pathMtu).toBeNull();
    await p.tick(); // searched again, nothing moving now
    expect(searches).toEqual(['10.0.0.2', '10.0.0.2']);
    expect(p.view(KEY).pathMtu).toBe(1420);
  });

  it('a search during which this host\'s network changed is searched again, even on the same endpoint', async () => {
    const engine = fakeEngine();
    const { prober: p, searches } = start(engine, () => p.networkChanged());
    await p.tick();
    await p.tick();
    expect(p.view(KEY).pathMtu).toBeNull();
    await p.tick();
    expect(searches).toHaveLength(2);
    expect(p.view(KEY).pathMtu).toBe(1420);
  });
});

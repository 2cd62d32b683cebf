import { describe, expect, it } from 'vitest';
import {
  directDead, forcedRelay, inUse, pairOffsetMs, probeCandidates, probeIntervalMs, probeSlot, shouldRelay, TrafficWatch, upkeepOnly,
} from '../../src/path-choice.js';
import { pathOf, peerStatus } from '../../src/status.js';
import { PROBE_BACKOFF_S, RELAY_AFTER_NO_HANDSHAKE_MS } from '../../src/tunables.js';

describe('shouldRelay', () => {
  it('relays a peer whose endpoint has not handshaken within the window, not before', () => {
    expect(shouldRelay({ forced: false, sinceMs: RELAY_AFTER_NO_HANDSHAKE_MS - 1, lastHandshake: null })).toBe(false);
    expect(shouldRelay({ forced: false, sinceMs: RELAY_AFTER_NO_HANDSHAKE_MS, lastHandshake: null })).toBe(true);
  });

  it('never relays a peer that handshook directly, unless forced', () => {
    expect(shouldRelay({ forced: false, sinceMs: 10 * RELAY_AFTER_NO_HANDSHAKE_MS, lastHandshake: new Date() })).toBe(false);
    expect(shouldRelay({ forced: true, sinceMs: 0, lastHandshake: new Date() })).toBe(true);
  });
});

describe('forcedRelay (WEFT_RELAY_PEERS)', () => {
  const peer = { name: 'db-1', nodeKey: 'nodekey:' + 'ab'.repeat(32) };
  it('is off when unset or empty, * forces all, names and keys force one', () => {
    expect(forcedRelay(undefined)(peer)).toBe(false);
    expect(forcedRelay(' ')(peer)).toBe(false);
    expect(forcedRelay('*')(peer)).toBe(true);
    expect(forcedRelay('web, db-1')(peer)).toBe(true);
    expect(forcedRelay(peer.nodeKey)(peer)).toBe(true);
    expect(forcedRelay('db-2')(peer)).toBe(false);
  });
});

describe('pathOf', () => {
  const now = new Date('2026-12-01T12:00:00Z');
  const recent = new Date(now.getTime() - 5000);
  it('says relay when WireGuard sends to the local relay socket and handshook, direct for another endpoint, none without a handshake', () => {
    const stats = (endpoint: string, lastHandshake: Date | null) => ({ publicKey: 'nodekey:x' as never, endpoint, lastHandshake, rxBytes: 0, txBytes: 0 });
    expect(pathOf(stats('127.0.0.1:4000', recent), now, '127.0.0.1:4000')).toBe('relay');
    expect(pathOf(stats('192.0.2.1:41641', recent), now, '127.0.0.1:4000')).toBe('direct');
    expect(pathOf(stats('192.0.2.1:41641', recent), now)).toBe('direct');
    expect(pathOf(stats('127.0.0.1:4000', null), now, '127.0.0.1:4000')).toBe('none');
  });
});

describe('hole-punch slots', () => {
  const ka = 'nodekey:' + '01'.repeat(32);
  const kb = 'nodekey:' + 'fe'.repeat(32);

  it('both sides of a pair compute the same offset, inside the smallest interval', () => {
    expect(pairOffsetMs(ka, kb)).toBe(pairOffsetMs(kb, ka));
    expect(pairOffsetMs(ka, kb)).toBeGreaterThanOrEqual(0);
    expect(pairOffsetMs(ka, kb)).toBeLessThan(probeIntervalMs(0));
  });

  it('backs off 1 s, 5 s, 10 s, 30 s, 60 s, then 120 s, each interval dividing the next', () => {
    expect([0, 1, 2, 3, 4, 5, 9].map(probeIntervalMs)).toEqual([1000, 5000, 10_000, 30_000, 60_000, 120_000, 120_000]);
    for (let i = 1; i < PROBE_BACKOFF_S.length; i++) expect(PROBE_BACKOFF_S[i]! % PROBE_BACKOFF_S[i - 1]!).toBe(0);
  });

  it('a slot is strictly after now, on the pair offset of the interval grid', () => {
    const off = 137;
    for (const now of [0, 136, 137, 138, 4_999_999, 1_733_000_000_123]) {
      for (const f of [0, 1, 2, 3]) {
        const slot = probeSlot(now, f, off);
        expect(slot).toBeGreaterThan(now);
        expect(slot - now).toBeLessThanOrEqual(probeIntervalMs(f));
        expect((slot - off) % probeIntervalMs(f)).toBe(0);
      }
    }
  });

  it('two sides at different backoff steps still meet: the slower side\'s slot is one of the faster side\'s', () => {
    const off = pairOffsetMs(ka, kb);
    let now = 1_733_000_000_000;
    for (let step = 0; step < 50; step++) {
      const slow = probeSlot(now, 3, off);
      // The fast side (1 s) probes at every one of its slots up to the slow one: it lands on it exactly.
      let fast = probeSlot(now, 0, off);
      while (fast < slow) fast = probeSlot(fast, 0, off);
      expect(fast).toBe(slow);
      now += 7_777;
    }
  });
});

describe('probeCandidates', () => {
  it('keeps the netmap order (reflexive first), without duplicates, at most three', () => {
    expect(probeCandidates(['203.0.113.5:41641', '10.0.0.2:41641', '10.0.0.2:41641', '192.168.1.2:41641', '172.16.0.2:41641'], '198.51.100.1'))
      .toEqual(['203.0.113.5:41641', '10.0.0.2:41641', '192.168.1.2:41641']);
  });

  it('a peer behind this node\'s own public address (same NAT) is tried on its local address first', () => {
    expect(probeCandidates(['203.0.113.5:1024', '10.0.0.2:41641'], '203.0.113.5')).toEqual(['10.0.0.2:41641', '203.0.113.5:1024']);
  });
});

describe('upkeepOnly', () => {
  it('keepalives, handshakes and the keepalive after one are upkeep, in any number (a late check), judged both ways together', () => {
    const upkeep: [number, number][] = [
      [0, 0], [32, 32], [64, 32],
      [92, 148 + 32], // a rekey this side began: initiation and keepalive out, response in
      [148 + 32, 92], // one the peer began
      [0, 148], [0, 148 * 7], // a peer that never answers, one check or a late one
      [148 + 92, 148 + 92], // crossing handshakes
      [92 * 3 + 32, 148 * 3 + 32 * 3], // three rekeys in one late check
    ];
    for (const [rx, tx] of upkeep) expect(upkeepOnly(rx, tx), `${rx}/${tx}`).toBe(true);
  });

  it('a ping, the first packet with its handshake, answers to nothing, or a flow are data', () => {
    const data: [number, number][] = [
      [0, 148 + 128], // the first ping to an idle peer (84-byte IPv4 -> 128 on the wire) with its handshake
      [92 + 128, 148 + 128], // and its reply
      [128, 128], [144, 0], [80, 0], // a ping each way, an IPv6 ping, a TCP ACK
      [0, 92 * 3], // "responses" with no initiation received: data
      [0, 1420 * 10], [1420 * 1000, 80 * 1000],
    ];
    for (const [rx, tx] of data) expect(upkeepOnly(rx, tx), `${rx}/${tx}`).toBe(false);
  });
});

describe('TrafficWatch', () => {
  it('a watch made with a moment is in use from it (a pair that just appeared is about to be used)', () => {
    expect(inUse(new TrafficWatch(5000).lastUseAt, 65_000, 60_000)).toBe(true);
    expect(inUse(new TrafficWatch(5000).lastUseAt, 65_001, 60_000)).toBe(false);
    expect(new TrafficWatch().lastUseAt).toBeNull();
  });

  it('marks data sent with nothing back, clears it when anything comes back, ignores keepalives', () => {
    const w = new TrafficWatch();
    w.observe({ rxBytes: 0, txBytes: 0 }, 0);
    w.observe({ rxBytes: 0, txBytes: 32 }, 250); // a keepalive of ours: not data
    expect(w.unansweredSince).toBeNull();
    w.observe({ rxBytes: 0, txBytes: 32 + 128 }, 500);
    expect(w.unansweredSince).toBe(500);
    w.observe({ rxBytes: 0, txBytes: 32 + 256 }, 750);
    expect(w.unansweredSince).toBe(500);
    expect(directDead(w.unansweredSince, 2499, 2000)).toBe(false);
    expect(directDead(w.unansweredSince, 2500, 2000)).toBe(true);
    w.observe({ rxBytes: 32, txBytes: 32 + 256 }, 1000); // the peer's keepalive answers
    expect(w.unansweredSince).toBeNull();
    expect(directDead(w.unansweredSince, 10_000, 2000)).toBe(false);
  });

  it('is in use while data moved within the window; keepalives and handshakes are not data', () => {
    const w = new TrafficWatch();
    w.observe({ rxBytes: 0, txBytes: 0 }, 0);
    w.observe({ rxBytes: 32, txBytes: 32 }, 1000);
    expect(inUse(w.lastUseAt, 1000, 60_000)).toBe(false);
    w.observe({ rxBytes: 32 + 148, txBytes: 32 + 92 }, 1500); // a rekey the peer started
    expect(inUse(w.lastUseAt, 1500, 60_000)).toBe(false);
    w.observe({ rxBytes: 32 + 148 + 128, txBytes: 32 + 92 }, 2000); // a ping
    expect(inUse(w.lastUseAt, 2000, 60_000)).toBe(true);
    expect(inUse(w.lastUseAt, 62_000, 60_000)).toBe(true);
    expect(inUse(w.lastUseAt, 62_001, 60_000)).toBe(false);
  });
});

describe('peerStatus path, region and reason', () => {
  const now = new Date('2026-12-01T12:00:00Z');
  const peer = { id: 7, name: 'b', user: 'ops', ipv4: '100.64.0.2', ipv6: 'fd7a::2', nodeKey: 'nodekey:' + 'ab'.repeat(32), online: true, endpoints: ['192.0.2.9:41641'], allowedIps: [] } as never;
  const stats = (endpoint: string, hsAgoMs: number | null) => ({ publicKey: 'nodekey:x' as never, endpoint, lastHandshake: hsAgoMs === null ? null : new Date(now.getTime() - hsAgoMs), rxBytes: 10, txBytes: 20 });
  const since = new Date(now.getTime() - 60_000);

  it('relayed: relay (REGION), since when, and why', () => {
    const st = peerStatus(peer, stats('127.0.0.1:4000', 1000), now, '127.0.0.1:4000', { via: 'relay', since, reason: 'hole punch timed out; retrying in 30 s', region: 'embedded' });
    expect(st).toMatchObject({ path: 'relay', region: 'embedded', pathSince: since.toISOString(), reason: 'hole punch timed out; retrying in 30 s', endpoint: '127.0.0.1:4000' });
  });

  it('direct: no region, no reason', () => {
    const st = peerStatus(peer, stats('192.0.2.9:41641', 1000), now, undefined, { via: 'direct', since, reason: null, region: 'embedded' });
    expect(st).toMatchObject({ path: 'direct', region: null, reason: null });
  });

  it('a probe aims WireGuard at a candidate for a moment: still relay, on the relay socket, until it succeeds', () => {
    const st = peerStatus(peer, stats('192.0.2.9:41641', 1000), now, undefined, { via: 'relay', since, reason: 'trying a direct path now (hole punch to 192.0.2.9:41641)', region: 'embedded', relayEndpoint: '127.0.0.1:4000' });
    expect(st).toMatchObject({ path: 'relay', region: 'embedded', endpoint: '127.0.0.1:4000', reason: 'trying a direct path now (hole punch to 192.0.2.9:41641)' });
  });

  it('none says why in words', () => {
    expect(peerStatus(peer, stats('192.0.2.9:41641', null), now).reason).toBe('no handshake yet');
    expect(peerStatus(peer, undefined, now).reason).toBe('not configured in WireGuard');
    expect(peerStatus(peer, stats('192.0.2.9:41641', 200_000), now).reason).toBe('no handshake in the last 3 minutes');
  });
});

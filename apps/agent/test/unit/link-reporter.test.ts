import { describe, expect, it } from 'vitest';
import { LinksMessage, MAX_LINKS_PER_MESSAGE, MAX_LINKS_PER_NODE } from '@weft/protocol';
import { LinkReporter } from '../../src/link-reporter.js';
import { staleHandshakeS } from '../../src/tunables.js';
import type { PeerStatus } from '../../src/status.js';

function peer(id: number, over: Partial<PeerStatus> = {}): PeerStatus {
  return {
    id, name: `n${id}`, user: 'u', ipv4: `100.64.0.${id}`, ipv6: `fd00::${id}`, nodeKey: `nodekey:${'0'.repeat(62)}${String(id).padStart(2, '0')}`,
    online: true, path: 'direct', endpoint: `192.0.${id >> 8}.${id & 255}:51820`, lastHandshake: null, handshakeAgeSeconds: 10, rxBytes: 100, txBytes: 100, region: null, pathSince: null, reason: null, pathMtu: null, ...over,
  };
}

function rig() {
  let now = 1_000_000;
  const sent: LinksMessage[] = [];
  let connected = true;
  const r = new LinkReporter({ send: (m) => (connected ? (sent.push(LinksMessage.parse(m)), true) : false), now: () => now, intervalMs: 30_000, minGapMs: 5_000 });
  return { r, sent, advance: (ms: number) => (now += ms), setConnected: (c: boolean) => (connected = c) };
}

describe('link reporter', () => {
  it('sends a full report at once on a new connection, then nothing while nothing changes', () => {
    const { r, sent, advance } = rig();
    r.observe([peer(1), peer(2)]);
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({ full: true, links: [{ peer: 1, path: 'direct', stale: false }, { peer: 2 }] });
    for (let age = 20; age <= 170; age += 10) {
      advance(10_000);
      r.observe([peer(1, { handshakeAgeSeconds: age }), peer(2, { handshakeAgeSeconds: age })]);
    }
    // Ages counting up with the clock are not a change.
    expect(sent).toHaveLength(1);
    // A rekey (the age drops) is a counter change, sent with the next interval.
    advance(10_000);
    r.observe([peer(1, { handshakeAgeSeconds: 2 }), peer(2, { handshakeAgeSeconds: 180 })]);
    expect(sent).toHaveLength(2);
    expect(sent[1]!.links.map((l) => l.peer)).toEqual([1]);
  });

  it('counters that move are sent at most once per interval, with only the links that changed', () => {
    const { r, sent, advance } = rig();
    r.observe([peer(1), peer(2)]);
    let tx = 100;
    for (let i = 0; i < 60; i++) {
      advance(1_000);
      tx += 1000;
      r.observe([peer(1, { txBytes: tx }), peer(2)]);
    }
    // 60 s of changing counters: the full report plus one per 30 s.
    expect(sent).toHaveLength(3);
    expect(sent[1]).toMatchObject({ full: false, links: [{ peer: 1, txBytes: 100 + 30 * 1000 }] });
    expect(sent[1]!.links).toHaveLength(1);
  });

  it('a path change is sent at the next observation after the minimum gap, not after the interval', () => {
    const { r, sent, advance } = rig();
    r.observe([peer(1)]);
    advance(1_000);
    r.observe([peer(1, { path: 'relay' })]);
    expect(sent).toHaveLength(1); // within the 5 s gap
    advance(4_000);
    r.observe([peer(1, { path: 'relay' })]);
    expect(sent).toHaveLength(2);
    expect(sent[1]).toMatchObject({ full: false, links: [{ peer: 1, path: 'relay' }] });
  });

  it('a link becomes stale when its handshake is older than 3 minutes while tx grows, and fresh again on a handshake', () => {
    const { r, sent, advance } = rig();
    r.observe([peer(1, { handshakeAgeSeconds: 100, txBytes: 500 })]);
    advance(100_000);
    // 200 s old, tx unchanged since the handshake was fresh: idle, not stale (and no longer reported).
    r.observe([peer(1, { path: 'none', handshakeAgeSeconds: 200, txBytes: 500 })]);
    expect(sent.at(-1)).toMatchObject({ full: false, links: [], removed: [1] });
    advance(10_000);
    r.observe([peer(1, { path: 'none', handshakeAgeSeconds: 210, txBytes: 648 })]);
    expect(sent.at(-1)).toMatchObject({ links: [{ peer: 1, path: 'none', stale: true, txBytes: 648 }] });
    // Still old, tx no longer growing: stays stale (sticky until a fresh handshake).
    advance(10_000);
    r.observe([peer(1, { path: 'none', handshakeAgeSeconds: 220, txBytes: 648 })]);
    expect(sent.at(-1)!.links[0]!.stale).toBe(true);
    advance(10_000);
    r.observe([peer(1, { path: 'direct', handshakeAgeSeconds: 1, txBytes: 800 })]);
    expect(sent.at(-1)).toMatchObject({ links: [{ peer: 1, path: 'direct', stale: false }] });
  });

  it('a peer that never had a handshake is stale once it was known for 3 minutes and tx grew', () => {
    const { r, sent, advance } = rig();
    r.observe([peer(1, { path: 'none', handshakeAgeSeconds: null, txBytes: 0 })]);
    expect(sent[0]).toMatchObject({ full: true, links: [] }); // idle: nothing to report
    advance(60_000);
    r.observe([peer(1, { path: 'none', handshakeAgeSeconds: null, txBytes: 296 })]);
    expect(sent).toHaveLength(1); // not 3 minutes yet
    advance(121_000);
    r.observe([peer(1, { path: 'none', handshakeAgeSeconds: null, txBytes: 444 })]);
    expect(sent.at(-1)).toMatchObject({ links: [{ peer: 1, stale: true, handshakeAgeS: null }] });
  });

  it('the default threshold is 180 s: a handshake 180 s old with tx growing is not stale, 181 s is', () => {
    const r = new LinkReporter({ send: () => true, now: () => 0 });
    expect(r.staleAfterS).toBe(180);
    r.links([peer(1, { handshakeAgeSeconds: 100, txBytes: 500 })]);
    expect(r.links([peer(1, { handshakeAgeSeconds: 180, txBytes: 900 })])[0]!.stale).toBe(false);
    expect(r.links([peer(1, { handshakeAgeSeconds: 181, txBytes: 1000 })])[0]!.stale).toBe(true);
  });

  it('staleAfterS (WEFT_STALE_HANDSHAKE_S) moves the threshold: 10 s makes an 11 s old handshake with tx growing stale', () => {
    const r = new LinkReporter({ send: () => true, now: () => 0, staleAfterS: 10 });
    r.links([peer(1, { handshakeAgeSeconds: 5, txBytes: 500 })]);
    expect(r.links([peer(1, { handshakeAgeSeconds: 10, txBytes: 600 })])[0]!.stale).toBe(false);
    expect(r.links([peer(1, { handshakeAgeSeconds: 11, txBytes: 700 })])[0]!.stale).toBe(true);
    expect([...r.staleIds]).toEqual([1]);
  });

  it('WEFT_STALE_HANDSHAKE_S: unset or empty = 180 s; whole seconds 1-86400 taken; anything else refused naming the variable', () => {
    expect(staleHandshakeS(undefined)).toBe(180);
    expect(staleHandshakeS(' ')).toBe(180);
    expect(staleHandshakeS('8')).toBe(8);
    for (const bad of ['0', '-5', '1.5', 'ten', '86401']) expect(() => staleHandshakeS(bad), bad).toThrow(/WEFT_STALE_HANDSHAKE_S must be whole seconds from 1 to 86400/);
  });

  it('a peer leaving the netmap is sent as removed', () => {
    const { r, sent, advance } = rig();
    r.observe([peer(1), peer(2)]);
    advance(6_000);
    r.observe([peer(1)]);
    expect(sent.at(-1)).toMatchObject({ full: false, links: [], removed: [2] });
  });

  it('not connected: the report is tried again at the next observation; a reset sends a full one', () => {
    const { r, sent, advance, setConnected } = rig();
    setConnected(false);
    r.observe([peer(1)]);
    expect(sent).toHaveLength(0);
    setConnected(true);
    advance(1_000);
    r.observe([peer(1)]);
    expect(sent).toHaveLength(1);
    r.reset();
    advance(1_000);
    r.observe([peer(1)]);
    expect(sent).toHaveLength(2);
    expect(sent[1]!.full).toBe(true);
  });

  it('a large report is split into messages the protocol accepts, capped per node with stale links first', () => {
    const { r, sent } = rig();
    const peers = Array.from({ length: MAX_LINKS_PER_NODE + 40 }, (_, i) => peer(i + 1, { path: i === 290 ? 'relay' : 'direct' }));
    r.observe(peers);
    const links = sent.flatMap((m) => m.links);
    expect(links).toHaveLength(MAX_LINKS_PER_NODE);
    expect(sent.every((m) => m.links.length <= MAX_LINKS_PER_MESSAGE)).toBe(true);
    expect(sent.map((m) => m.full)).toEqual([true, false, false, false]);
    expect(links[0]!.peer).toBe(291); // the relayed link ranks before direct ones
  });
});

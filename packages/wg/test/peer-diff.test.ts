import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { NodePublicKey } from '@weft/crypto';
import { diffPeers, normalizeCidr, normalizeEndpoint, peerOps } from '../src/index.js';
import type { PeerConfig, PeerOp, PeerState } from '../src/index.js';
import { PUB_1, PUB_2, PUB_3 } from './fixtures.js';

const state = (p: Partial<PeerState> & { publicKey: NodePublicKey }): PeerState => ({
  endpoint: null, allowedIps: [], persistentKeepalive: 0, lastHandshake: null, rxBytes: 0, txBytes: 0, ...p,
});

describe('diffPeers', () => {
  it('touches nothing when the device already matches', () => {
    const current = [state({ publicKey: PUB_1, endpoint: '10.0.0.1:1', allowedIps: ['100.64.0.1/32'], persistentKeepalive: 25 })];
    const want: PeerConfig[] = [{ publicKey: PUB_1, endpoint: '10.0.0.1:1', allowedIps: ['100.64.0.1/32'], persistentKeepalive: 25 }];
    expect(diffPeers(current, want)).toEqual([]);
  });

  it('a responder peer (endpoint, keepalive, no allowed IPs, never a handshake) is created once and then left alone', () => {
    const responder: PeerConfig = { publicKey: PUB_3, endpoint: '192.0.2.1:3478', allowedIps: [], persistentKeepalive: 25 };
    const peer: PeerConfig = { publicKey: PUB_1, endpoint: '10.0.0.1:1', allowedIps: ['100.64.0.1/32'], persistentKeepalive: 25 };
    const created = diffPeers([], [peer, responder]);
    expect(created).toContainEqual({ kind: 'upsert', publicKey: PUB_3, create: true, endpoint: '192.0.2.1:3478', allowedIps: [], persistentKeepalive: 25 });
    // As the device reports it afterwards: no handshake ever completes with a responder.
    const onDevice = [state({ publicKey: PUB_1, endpoint: '10.0.0.1:1', allowedIps: ['100.64.0.1/32'], persistentKeepalive: 25 }), state({ publicKey: PUB_3, endpoint: '192.0.2.1:3478', persistentKeepalive: 25 })];
    const asked = new Map([[PUB_1, peer], [PUB_3, responder]]);
    expect(diffPeers(onDevice, [peer, responder], asked)).toEqual([]);
    expect(diffPeers(onDevice, [peer, responder])).toEqual([]);
    // Dropped from the netmap: removed, the peer untouched.
    expect(diffPeers(onDevice, [peer], asked)).toEqual([{ kind: 'remove', publicKey: PUB_3 }]);
  });

  it('adds a new peer without touching the existing one', () => {
    const current = [state({ publicKey: PUB_1, allowedIps: ['100.64.0.1/32'] })];
    const want: PeerConfig[] = [
      { publicKey: PUB_1, allowedIps: ['100.64.0.1/32'] },
      { publicKey: PUB_2, endpoint: '10.0.0.2:51820', allowedIps: ['100.64.0.2/32'] },
    ];
    expect(diffPeers(current, want)).toEqual([
      { kind: 'upsert', publicKey: PUB_2, create: true, endpoint: '10.0.0.2:51820', allowedIps: ['100.64.0.2/32'] },
    ]);
  });

  it('removes first, then updates only the fields that differ', () => {
    const current = [
      state({ publicKey: PUB_1, allowedIps: ['100.64.0.1/32'] }),
      state({ publicKey: PUB_3, allowedIps: ['100.64.0.3/32'] }),
    ];
    const want: PeerConfig[] = [{ publicKey: PUB_1, allowedIps: ['100.64.0.1/32', '100.64.0.3/32'], persistentKeepalive: 25 }];
    expect(diffPeers(current, want)).toEqual([
      { kind: 'remove', publicKey: PUB_3 },
      { kind: 'upsert', publicKey: PUB_1, create: false, allowedIps: ['100.64.0.1/32', '100.64.0.3/32'], persistentKeepalive: 25 },
    ]);
  });

  it('compares allowed IPs canonically and as sets', () => {
    const current = [state({ publicKey: PUB_1, allowedIps: ['fd7a:115c:a1e0::1/128', '100.64.0.0/10'] })];
    expect(diffPeers(current, [{ publicKey: PUB_1, allowedIps: ['100.64.9.9/10', 'FD7A:115C:A1E0:0:0:0:0:1/128'] }])).toEqual([]);
  });

  it('keeps an endpoint WireGuard roamed to when the control plane has not changed its mind', () => {
    const current = [state({ publicKey: PUB_1, endpoint: '198.51.100.7:40000', allowedIps: ['100.64.0.1/32'] })];
    const want: PeerConfig[] = [{ publicKey: PUB_1, endpoint: '10.0.0.1:51820', allowedIps: ['100.64.0.1/32'] }];
    const asked = new Map([[PUB_1, want[0]!]]);
    expect(diffPeers(current, want, asked)).toEqual([]);
    // ...but writes a new endpoint the control plane now asks for.
    const moved: PeerConfig[] = [{ ...want[0]!, endpoint: '10.0.0.9:51820' }];
    expect(diffPeers(current, moved, asked)).toEqual([
      { kind: 'upsert', publicKey: PUB_1, create: false, endpoint: '10.0.0.9:51820' },
    ]);
  });

  it('turns keepalive off explicitly', () => {
    const current = [state({ publicKey: PUB_1, persistentKeepalive: 25 })];
    expect(diffPeers(current, [{ publicKey: PUB_1, allowedIps: [] }])).toEqual([
      { kind: 'upsert', publicKey: PUB_1, create: false, persistentKeepalive: 0 },
    ]);
  });

  it('rejects bad CIDRs and endpoints before anything is written', () => {
    expect(() => diffPeers([], [{ publicKey: PUB_1, allowedIps: ['100.64.0.300/32'] }])).toThrow(TypeError);
    expect(() => diffPeers([], [{ publicKey: PUB_1, allowedIps: [], endpoint: 'fd00::1:51820' }])).toThrow(TypeError);
  });

  // Reference check: applying the ops to a naive model of a device yields exactly the wanted set,
  // and peers that already matched are never named in an op.
  it('converges on random inputs and leaves matching peers alone', () => {
    const keys = [PUB_1, PUB_2, PUB_3];
    const peer = fc.record({
      publicKey: fc.constantFrom(...keys),
      endpoint: fc.option(fc.constantFrom('10.0.0.1:1', '10.0.0.2:2', '[fd00::1]:3'), { nil: undefined }),
      allowedIps: fc.uniqueArray(fc.constantFrom('100.64.0.1/32', '100.64.0.2/32', 'fd7a::1/128'), { maxLength: 3 }),
      persistentKeepalive: fc.option(fc.constantFrom(0, 25), { nil: undefined }),
    });
    const uniq = (ps: PeerConfig[]) => [...new Map(ps.map((p) => [p.publicKey, p])).values()];
    fc.assert(fc.property(fc.array(peer, { maxLength: 3 }), fc.array(peer, { maxLength: 3 }), (before, after) => {
      const device = new Map<NodePublicKey, PeerState>();
      const apply = (ops: PeerOp[]) => {
        for (const op of ops) {
          if (op.kind === 'remove') { device.delete(op.publicKey); continue; }
          const p = device.get(op.publicKey) ?? state({ publicKey: op.publicKey });
          expect(op.create).toBe(!device.has(op.publicKey));
          if (op.endpoint !== undefined) p.endpoint = op.endpoint;
          if (op.allowedIps !== undefined) p.allowedIps = op.allowedIps;
          if (op.persistentKeepalive !== undefined) p.persistentKeepalive = op.persistentKeepalive;
          device.set(op.publicKey, p);
        }
      };
      apply(diffPeers([], uniq(before)));
      const snapshot = new Map([...device].map(([k, v]) => [k, JSON.stringify(v)]));
      const ops = diffPeers([...device.values()], uniq(after));
      apply(ops);
      const want = uniq(after);
      expect([...device.keys()].sort()).toEqual(want.map((p) => p.publicKey).sort());
      for (const w of want) {
        const got = device.get(w.publicKey)!;
        expect([...got.allowedIps].sort()).toEqual(w.allowedIps.map(normalizeCidr).sort());
        expect(got.persistentKeepalive).toBe(w.persistentKeepalive ?? 0);
        if (w.endpoint) expect(got.endpoint).toBe(normalizeEndpoint(w.endpoint));
      }
      // Second diff is empty: the result is a fixed point.
      expect(diffPeers([...device.values()], want)).toEqual([]);
      // Peers whose state already matched were not named in any op.
      const touched = new Set(ops.map((o) => o.publicKey));
      for (const w of want) {
        const before = snapshot.get(w.publicKey);
        if (before !== undefined && before === JSON.stringify(device.get(w.publicKey))) expect(touched.has(w.publicKey)).toBe(false);
      }
    }), { numRuns: 300 });
  });
});

describe('peerOps', () => {
  const want: PeerConfig = { publicKey: PUB_2, endpoint: '10.0.0.2:51820', allowedIps: ['100.64.0.2/32'], persistentKeepalive: 25 };
  const device = (p: Partial<PeerState>): PeerState => ({
    publicKey: PUB_2, endpoint: null, allowedIps: ['100.64.0.2/32'], persistentKeepalive: 0, lastHandshake: null, rxBytes: 0, txBytes: 0, ...p,
  });

  it('a first endpoint for a peer that never handshook recreates it (WireGuard holds off handshakes 5 s after one it could not send)', () => {
    expect(peerOps(want, device({}))).toEqual([
      { kind: 'remove', publicKey: PUB_2 },
      { kind: 'upsert', publicKey: PUB_2, create: true, endpoint: '10.0.0.2:51820', allowedIps: ['100.64.0.2/32'], persistentKeepalive: 25 },
    ]);
  });

  it('a full netmap applies the same rule: a first endpoint for a peer that never handshook recreates it', () => {
    expect(diffPeers([device({})], [want])).toEqual([
      { kind: 'remove', publicKey: PUB_2 },
      { kind: 'upsert', publicKey: PUB_2, create: true, endpoint: '10.0.0.2:51820', allowedIps: ['100.64.0.2/32'], persistentKeepalive: 25 },
    ]);
    expect(diffPeers([device({ lastHandshake: new Date() })], [want])).toMatchObject([{ kind: 'upsert', create: false }]);
  });

  it('the answering side of a pair (no keepalive) gets its first endpoint in place: recreating it would drop the handshake the initiator may have completed', () => {
    const answering: PeerConfig = { publicKey: PUB_2, endpoint: '10.0.0.2:51820', allowedIps: ['100.64.0.2/32'] };
    expect(peerOps(answering, device({}))).toEqual([{ kind: 'upsert', publicKey: PUB_2, create: false, endpoint: '10.0.0.2:51820' }]);
    expect(diffPeers([device({})], [answering])).toEqual([{ kind: 'upsert', publicKey: PUB_2, create: false, endpoint: '10.0.0.2:51820' }]);
  });

  it('a peer with a session is updated in place', () => {
    const ops = peerOps(want, device({ lastHandshake: new Date() }));
    expect(ops).toHaveLength(1);
    expect(ops[0]).toMatchObject({ kind: 'upsert', create: false, endpoint: '10.0.0.2:51820' });
    expect(peerOps(want, device({ endpoint: '10.0.0.2:51820', persistentKeepalive: 25 }))).toEqual([]);
  });
});


import { describe, expect, it } from 'vitest';
import { resumeStateChar, resumeStateOf, type Peer, type SelfNode } from '@weft/protocol';
import { Netmap } from '../../src/netmap.js';
import { peer, self } from './fixtures.js';

const netmap = (seq: number, peers: Peer[], s: SelfNode = self) => ({ type: 'netmap' as const, seq, protocolVersion: 1, self: s, peers });

describe('Netmap sequencing', () => {
  it('applies a netmap then in-order deltas as remove, upsert, patch', () => {
    const nm = new Netmap();
    nm.resetConnection();
    expect(nm.apply(netmap(1, [peer(2), peer(3)])).kind).toBe('full');
    const change = nm.apply({
      type: 'delta', seq: 2,
      remove: [2],
      upsert: [peer(4)],
      patch: [{ id: 3, endpoints: ['192.0.2.3:41641'] }, { id: 4, online: false }],
    });
    expect(change.kind).toBe('delta');
    if (change.kind !== 'delta') return;
    expect(change.removed.map((p) => p.id)).toEqual([2]);
    expect(change.upserted.map((u) => [u.peer.id, u.previous])).toEqual([[4, undefined]]);
    // the patch to 4 lands on the peer upserted in the same delta
    expect(change.patched.map((p) => p.peer.id)).toEqual([3, 4]);
    expect(nm.peers.map((p) => p.id)).toEqual([3, 4]);
    expect(nm.peer(3)!.endpoints).toEqual(['192.0.2.3:41641']);
    expect(nm.peer(4)!.online).toBe(false);
  });

  it('a remove and re-upsert of the same id in one delta leaves the new peer', () => {
    const nm = new Netmap();
    nm.apply(netmap(1, [peer(2)]));
    const replacement = { ...peer(2), nodeKey: `nodekey:${'b'.repeat(64)}` };
    nm.apply({ type: 'delta', seq: 2, remove: [2], upsert: [replacement] });
    expect(nm.peer(2)!.nodeKey).toBe(replacement.nodeKey);
  });

  it('asks for a resync on a seq gap and ignores deltas until the fresh netmap', () => {
    const nm = new Netmap();
    nm.apply(netmap(1, [peer(2)]));
    expect(nm.apply({ type: 'delta', seq: 3, remove: [2] })).toMatchObject({ kind: 'resync' });
    expect(nm.apply({ type: 'delta', seq: 4, remove: [2] })).toEqual({ kind: 'ignored' });
    expect(nm.peers.map((p) => p.id)).toEqual([2]); // nothing applied from the stale deltas
    expect(nm.apply(netmap(5, [peer(7)])).kind).toBe('full');
    expect(nm.apply({ type: 'delta', seq: 6, upsert: [peer(8)] }).kind).toBe('delta');
    expect(nm.peers.map((p) => p.id)).toEqual([7, 8]);
  });

  it('asks for a resync when a delta comes before any netmap on a connection', () => {
    const nm = new Netmap({ self, peers: [peer(2)] });
    nm.resetConnection();
    expect(nm.apply({ type: 'delta', seq: 1 })).toMatchObject({ kind: 'resync' });
    expect(nm.apply({ type: 'delta', seq: 2 })).toEqual({ kind: 'ignored' });
  });

  it('a new connection starts a new seq space', () => {
    const nm = new Netmap();
    nm.apply(netmap(1, []));
    nm.apply({ type: 'delta', seq: 2 });
    nm.resetConnection();
    expect(nm.apply(netmap(1, [peer(3)])).kind).toBe('full');
    expect(nm.apply({ type: 'delta', seq: 2 }).kind).toBe('delta');
  });

  it('a duplicate (replayed) seq is a gap too', () => {
    const nm = new Netmap();
    nm.apply(netmap(1, []));
    nm.apply({ type: 'delta', seq: 2 });
    expect(nm.apply({ type: 'delta', seq: 2 }).kind).toBe('resync');
  });

  it('a nat patch sets the peer\'s netcheck verdict and null clears it, leaving the rest of the peer alone', () => {
    const nm = new Netmap();
    nm.apply(netmap(1, [peer(2)]));
    nm.apply({ type: 'delta', seq: 2, patch: [{ id: 2, nat: { udp: true, mappingVariesByDestination: true } }] });
    expect(nm.peer(2)).toEqual({ ...peer(2), nat: { udp: true, mappingVariesByDestination: true } });
    nm.apply({ type: 'delta', seq: 3, patch: [{ id: 2, online: false }] });
    expect(nm.peer(2)!.nat).toEqual({ udp: true, mappingVariesByDestination: true });
    nm.apply({ type: 'delta', seq: 4, patch: [{ id: 2, nat: null }] });
    expect(nm.peer(2)!.nat).toBeNull();
  });

  it('ignores a patch for an unknown peer and records self changes', () => {
    const nm = new Netmap();
    nm.apply(netmap(1, []));
    const renamed = { ...self, name: 'renamed' };
    const change = nm.apply({ type: 'delta', seq: 2, patch: [{ id: 99, online: true }], self: renamed });
    expect(change).toMatchObject({ kind: 'delta', patched: [], self: renamed });
    expect(nm.self!.name).toBe('renamed');
  });
});

describe('Netmap packet filter (stored for enforcement, not enforced here)', () => {
  const rule = { srcIPs: ['100.64.0.2'], dstPorts: [{ ip: '100.64.0.1', ports: '22-22' }], protos: [6] };
  it('a netmap without a filter means allow all; with one it is kept; a delta replaces it, null resets it, absent leaves it', () => {
    const nm = new Netmap();
    expect(nm.apply(netmap(1, [peer(2)]))).toMatchObject({ kind: 'full', packetFilter: null });
    expect(nm.packetFilter).toBeNull();
    const full = nm.apply({ ...netmap(1, [peer(2)]), packetFilter: [rule] });
    expect(full).toMatchObject({ kind: 'full', packetFilter: [rule] });
    expect(nm.packetFilter).toEqual([rule]);
    const untouched = nm.apply({ type: 'delta', seq: 2, remove: [2] });
    expect(untouched.kind === 'delta' && 'packetFilter' in untouched).toBe(false);
    expect(nm.packetFilter).toEqual([rule]);
    expect(nm.apply({ type: 'delta', seq: 3, packetFilter: [] })).toMatchObject({ kind: 'delta', packetFilter: [] });
    expect(nm.packetFilter).toEqual([]);
    expect(nm.apply({ type: 'delta', seq: 4, packetFilter: null })).toMatchObject({ kind: 'delta', packetFilter: null });
    expect(nm.packetFilter).toBeNull();
  });
});

describe('Netmap resume', () => {
  const R1 = '1'.repeat(32);
  const R2 = '2'.repeat(32);
  const resume = (seq: number, revision: string, patch: { id: number; online?: boolean; endpoints?: string[] }[]) =>
    ({ type: 'resume' as const, seq, revision, protocolVersion: 1, self, patch });

  it('holds the revision a netmap or delta says, and forgets it on an upsert or removal without one', () => {
    const nm = new Netmap();
    nm.apply({ ...netmap(1, [peer(2)]), revision: R1 });
    expect(nm.revision).toBe(R1);
    nm.apply({ type: 'delta', seq: 2, patch: [{ id: 2, online: false }] });
    expect(nm.revision).toBe(R1); // volatile fields are not in the revision
    nm.apply({ type: 'delta', seq: 3, upsert: [peer(3)], revision: R2 });
    expect(nm.revision).toBe(R2);
    nm.apply({ type: 'delta', seq: 4, remove: [3] });
    expect(nm.revision).toBeNull();
    nm.apply(netmap(1, [peer(2)]));
    expect(nm.revision).toBeNull(); // a netmap without one (a policy, an older server)
  });

  it('a resume at the held revision keeps the peers across the reconnect and takes their volatile fields', () => {
    const nm = new Netmap();
    nm.apply({ ...netmap(1, [peer(2), peer(3)]), revision: R1 });
    nm.resetConnection();
    const change = nm.apply(resume(1, R1, [{ id: 2, online: false, endpoints: ['192.0.2.9:41641'] }, { id: 3, online: true }]));
    expect(change.kind).toBe('full');
    expect(nm.peers.map((p) => p.id)).toEqual([2, 3]);
    expect(nm.peer(2)).toMatchObject({ online: false, endpoints: ['192.0.2.9:41641'] });
    expect(nm.apply({ type: 'delta', seq: 2, remove: [3], revision: R2 }).kind).toBe('delta');
    expect(nm.revision).toBe(R2);
  });

  it('a compact resume sets every peer by position to what a netmap would give, with its filter', () => {
    const rule = { srcIPs: ['100.64.0.2'], dstPorts: [{ ip: '100.64.0.1', ports: '22-22' }], protos: [6] };
    const nm = new Netmap();
    nm.apply({ ...netmap(1, [{ ...peer(2), nat: { udp: true, mappingVariesByDestination: false } }, peer(3)]), revision: R1 });
    expect(nm.endpointsRevision).toMatch(/^[0-9a-f]{32}$/);
    nm.resetConnection();
    const base = Date.parse('2026-12-02T09:00:00.000Z');
    const change = nm.apply({
      type: 'resume', seq: 1, revision: R1, protocolVersion: 1, self, packetFilter: [rule],
      presence: { base, state: resumeStateChar(false, null) + resumeStateChar(true, { udp: false, mappingVariesByDestination: null }), lastSeen: [0, 1234] },
      endpoints: [['192.0.2.2:41641'], []],
    });
    expect(change).toMatchObject({ kind: 'full', packetFilter: [rule] });
    expect(nm.packetFilter).toEqual([rule]);
    expect(nm.peer(2)).toEqual({ ...peer(2), online: false, lastSeen: '2026-12-02T09:00:00.000Z', endpoints: ['192.0.2.2:41641'] });
    expect(nm.peer(3)).toEqual({ ...peer(3), online: true, lastSeen: '2026-12-02T09:00:01.234Z', endpoints: [], nat: { udp: false, mappingVariesByDestination: null } });
    // Without endpoints: the held ones stay. Without a filter: allow all.
    nm.resetConnection();
    nm.apply({ type: 'resume', seq: 1, revision: R1, protocolVersion: 1, self, presence: { base, state: 'aa', lastSeen: [null, null] } });
    expect(nm.peer(2)?.endpoints).toEqual(['192.0.2.2:41641']);
    expect(nm.peer(2)?.lastSeen).toBeNull();
    expect(nm.packetFilter).toBeNull();
  });

  it('a compact resume for another number of peers asks for a resync; an agent holding a skipped entry sends no revision', () => {
    const nm = new Netmap();
    nm.apply({ ...netmap(1, [peer(2), peer(3)]), revision: R1 });
    nm.resetConnection();
    expect(nm.apply({ type: 'resume', seq: 1, revision: R1, protocolVersion: 1, self, presence: { base: 0, state: 'a', lastSeen: [null] } })).toMatchObject({ kind: 'resync' });
    nm.apply({ ...netmap(1, [peer(2), { ...peer(3), nodeKey: peer(2).nodeKey }]), revision: R1 });
    expect(nm.skipped.length).toBe(1);
    expect(nm.revision).toBeNull();
  });

  it('every state character round-trips', () => {
    const nats = [null, ...[false, true].flatMap((udp) => [null, false, true].map((m) => ({ udp, mappingVariesByDestination: m })))];
    const seen = new Set<string>();
    for (const online of [false, true]) for (const nat of nats) {
      const c = resumeStateChar(online, nat);
      seen.add(c);
      expect(resumeStateOf(c)).toEqual({ online, nat });
    }
    expect(seen.size).toBe(14);
    expect(resumeStateOf('o')).toBeNull();
  });

  it('a resume at another revision, or with none held, is not trusted: resync', () => {
    const nm = new Netmap({ self, peers: [peer(2)] }); // restored from disk: no revision
    nm.resetConnection();
    expect(nm.apply(resume(1, R1, []))).toMatchObject({ kind: 'resync' });
    nm.apply({ ...netmap(1, [peer(2)]), revision: R1 });
    nm.resetConnection();
    expect(nm.apply(resume(1, R2, []))).toMatchObject({ kind: 'resync' });
    expect(nm.peers.map((p) => p.id)).toEqual([2]);
  });
});

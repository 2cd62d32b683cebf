import { describe, expect, it } from 'vitest';
import type { Peer } from '@weft/protocol';
import { ListRevision } from '../../src/mapper/list-revision.js';

const peer = (id: number, over: Partial<Peer> = {}): Peer => ({
  id, name: `n${id}`, user: 'ops', nodeKey: `nodekey:${String(id).padStart(64, '0')}`, ipv4: `100.64.0.${id}`, ipv6: `fd7a:115c:a1e0::${id}`,
  allowedIps: [`100.64.0.${id}/32`, `fd7a:115c:a1e0::${id}/128`], endpoints: [], online: false, lastSeen: null, ...over,
});
const of = (peers: Peer[]) => {
  const r = new ListRevision();
  r.reset(peers);
  return r;
};

describe('ListRevision', () => {
  it('is the same for the same content whatever order it was built in (a restart, another replica)', () => {
    const a = of([peer(1), peer(2), peer(3)]);
    const b = new ListRevision();
    for (const p of [peer(3), peer(1), peer(9), peer(2)]) b.set(p);
    b.delete(9);
    expect(b.text).toBe(a.text);
    expect(a.text).toMatch(/^[0-9a-f]{32}$/);
  });

  it('ignores volatile fields and changes with any stable one', () => {
    const base = of([peer(1), peer(2)]).text;
    expect(of([peer(1, { online: true, endpoints: ['192.0.2.1:41641'], lastSeen: '2026-12-02T00:00:00.000Z', nat: { udp: true, mappingVariesByDestination: false } }), peer(2)]).text).toBe(base);
    for (const change of [{ name: 'renamed' }, { nodeKey: `nodekey:${'f'.repeat(64)}` }, { ipv4: '100.64.9.9' }, { allowedIps: ['100.64.0.1/32'] }, { user: 'dev' }]) {
      expect(of([peer(1, change), peer(2)]).text, JSON.stringify(change)).not.toBe(base);
    }
    expect(of([peer(1)]).text).not.toBe(base);
    // The same entry under another id is another entry.
    expect(of([peer(1), { ...peer(2), id: 3 }]).text).not.toBe(base);
  });
});

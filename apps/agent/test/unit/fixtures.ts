import type { Peer, SelfNode } from '@weft/protocol';

const hex = (n: number) => n.toString(16).padStart(2, '0').repeat(32);

export const self: SelfNode = {
  id: 1, name: 'self', user: 'alice', ipv4: '100.64.0.1', ipv6: 'fd7a:115c:a1e0::1',
  nodeKey: `nodekey:${hex(1)}`, expiresAt: null,
};

export function peer(id: number, over: Partial<Peer> = {}): Peer {
  return {
    id, name: `peer${id}`, user: 'alice', nodeKey: `nodekey:${hex(id)}`,
    ipv4: `100.64.0.${id}`, ipv6: `fd7a:115c:a1e0::${id}`,
    allowedIps: [`100.64.0.${id}/32`, `fd7a:115c:a1e0::${id}/128`],
    endpoints: [`192.0.2.${id}:41641`], online: true, lastSeen: null, ...over,
  };
}

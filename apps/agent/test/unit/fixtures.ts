import { generateNodeKey } from '@weft/crypto';
import { Engine } from '../../src/engine.js';
import type { CommandRunner } from '../../src/firewall/exec.js';
import { silentLogger } from '../../src/log.js';
import type { RelayPath } from '../../src/relay-path.js';
import type { Peer, SelfNode } from '@weft/protocol';
import { FakeDevice } from './fake-device.js';

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

/**
 * nft and conntrack for agent tests that are not about the packet filter: no table, every command
 * succeeds. Without it an agent test run as root would ask the host's own nftables (and remove a
 * real `inet weft` table it found there).
 */
export const noFirewall: CommandRunner = async (argv) =>
  argv[0] === 'nft' && argv[1] === 'list' ? { code: 1, stdout: '', stderr: 'Error: No such file or directory', missing: false } : { code: 0, stdout: '', stderr: '', missing: false };

/** The local socket `stubRelay` hands out for every peer. */
export const STUB_RELAY_SOCKET = '127.0.0.1:50002';

/**
 * A connected relay for PeerPaths tests of pure path logic: every peer gets STUB_RELAY_SOCKET;
 * `connected` can be set to false. What the socket carries is RelayPath's (integration/, e2e/).
 */
export function stubRelay(): RelayPath & { connected: boolean } {
  const open = new Set<string>();
  const stub = {
    connected: true,
    start() {}, stop() {}, reconnectNow() {}, hold() {}, deliverEarly() {}, udpSuspect() {},
    cannotReach: () => false,
    lastInitiation: () => undefined,
    endpointOf: (k: string) => (open.has(k) ? STUB_RELAY_SOCKET : undefined),
    open: async (k: string) => (open.add(k), STUB_RELAY_SOCKET),
    release: (k: string) => void open.delete(k),
  };
  return stub as unknown as RelayPath & { connected: boolean };
}

/** An Engine on the in-memory device, with a fresh key: what the engine and path tests drive. */
export function fakeEngine(): { device: FakeDevice; engine: Engine } {
  const device = new FakeDevice();
  const engine = new Engine({
    openDevice: () => device, interfaceName: 'weft0', backend: 'userspace',
    privateKey: generateNodeKey().privateKey, listenPort: 41641, mtu: 1280, log: silentLogger,
  });
  return { device, engine };
}

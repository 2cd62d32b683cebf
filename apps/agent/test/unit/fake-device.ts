/** In-memory Device for unit tests of pure agent logic; real WireGuard is exercised in e2e/. */
import type { NodePublicKey } from '@weft/crypto';
import type { Device, InterfaceConfig, PeerConfig, PeerStats } from '@weft/wg';

export class FakeDevice implements Device {
  readonly backend = 'userspace' as const;
  calls: string[] = [];
  peers = new Map<string, PeerConfig>();
  config: InterfaceConfig | undefined;
  isUp = false;
  closed = false;
  stat: PeerStats[] = [];

  constructor(readonly name = 'weft0') {}

  async configure(config: InterfaceConfig): Promise<void> {
    this.calls.push(`configure ${config.addresses.join(',')}`);
    this.config = config;
    this.isUp = true;
  }
  async setPeers(peers: PeerConfig[]): Promise<void> {
    this.calls.push(`setPeers ${peers.length}`);
    this.peers = new Map(peers.map((p) => [p.publicKey, p]));
  }
  async upsertPeer(peer: PeerConfig): Promise<void> {
    this.calls.push(`upsert ${peer.publicKey.slice(8, 12)}`);
    this.peers.set(peer.publicKey, peer);
  }
  async removePeer(publicKey: NodePublicKey): Promise<void> {
    this.calls.push(`remove ${publicKey.slice(8, 12)}`);
    this.peers.delete(publicKey);
  }
  async stats(): Promise<PeerStats[]> {
    return this.stat;
  }
  async listenPort(): Promise<number> {
    return this.config?.listenPort ?? 41641;
  }
  async down(): Promise<void> {
    this.calls.push('down');
    this.isUp = false;
  }
  async close(): Promise<void> {
    this.calls.push('close');
    this.closed = true;
    this.isUp = false;
    this.peers.clear();
  }
}

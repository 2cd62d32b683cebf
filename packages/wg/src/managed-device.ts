/**
 * The Device both backends share: desired state kept in memory, every change computed as a diff
 * against what the device reports, one operation at a time. A backend only supplies a Driver.
 */
import type { NodePublicKey } from '@weft/crypto';
import { nodePublicKeyOf } from '@weft/crypto';
import type { Backend, Device, InterfaceConfig, OpenOptions, PeerConfig, PeerStats } from './device.js';
import { WgError } from './errors.js';
import type { Runner } from './exec.js';
import { diffPeers, normalizePeer, peerOps } from './peer-diff.js';
import type { PeerOp } from './peer-diff.js';
import { applyLink, DEFAULT_MTU, linkDown } from './routes.js';
import type { DeviceState, InterfaceSet } from './uapi.js';

export interface Driver {
  readonly backend: Backend;
  readonly name: string;
  /** Runs `ip` for this interface (in its namespace, if any). */
  readonly runner: Runner;
  /**
   * Makes sure the interface exists (starting wireguard-go if needed). True = it was just
   * created, i.e. it holds no configuration.
   */
  ensure(): Promise<boolean>;
  read(): Promise<DeviceState>;
  write(iface: InterfaceSet, ops: PeerOp[]): Promise<void>;
  /** Removes the interface; stops wireguard-go if ours. */
  destroy(): Promise<void>;
}

export type Log = NonNullable<OpenOptions['log']>;

export class ManagedDevice implements Device {
  private config: InterfaceConfig | null = null;
  /** The listen port WireGuard actually bound, so a restart keeps peers' endpoints for us valid. */
  private boundPort = 0;
  private appliedRoutes: string[] = [];
  /** What the control plane last asked for, per peer (the desired peer set). */
  private peers = new Map<NodePublicKey, PeerConfig>();
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;
  /** `down()` was called and no `configure` since: a re-apply must leave the link down. */
  private isDown = false;
  private stale = false;

  constructor(private readonly driver: Driver, protected readonly log: Log) {}

  get name(): string {
    return this.driver.name;
  }

  get backend(): Backend {
    return this.driver.backend;
  }

  /** Runs `fn` after every earlier operation, with the interface present and configured. */
  protected serialize<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(async () => {
      if (this.closed) throw new WgError('closed', `device ${this.name} is closed`);
      // A recreated interface is stale until a re-apply fully succeeds (it may fail half-way).
      if (await this.driver.ensure()) this.stale = true;
      if (this.stale) {
        await this.reapply();
        this.stale = false;
      }
      return fn();
    });
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** After the interface was recreated (wireguard-go restart, link deleted): restore everything. */
  private async reapply(): Promise<void> {
    if (!this.config) return;
    this.log('warn', 'wireguard interface was recreated; re-applying configuration', {
      name: this.name, peers: this.peers.size,
    });
    await this.applyConfig(this.config);
    await this.applyPeers();
    if (this.isDown) await linkDown(this.driver.runner, this.name);
  }

  /** Re-applies the last configuration if the interface had to be recreated. */
  recover(): Promise<void> {
    return this.serialize(async () => undefined);
  }

  async configure(config: InterfaceConfig): Promise<void> {
    nodePublicKeyOf(config.privateKey); // validates
    return this.serialize(async () => {
      await this.applyConfig(config);
      this.config = config;
      this.isDown = false;
    });
  }

  private async applyConfig(config: InterfaceConfig): Promise<void> {
    const now = await this.driver.read();
    const wantPort = config.listenPort || this.boundPort || undefined;
    const set: InterfaceSet = {};
    // WireGuard stores the key clamped, so compare what it implies: the public key.
    if (!now.privateKey || nodePublicKeyOf(now.privateKey) !== nodePublicKeyOf(config.privateKey)) {
      set.privateKey = config.privateKey;
    }
    if (wantPort !== undefined && now.listenPort !== wantPort) set.listenPort = wantPort;
    await this.driver.write(set, []);
    const routes = config.routes ?? [];
    await applyLink(this.driver.runner, this.name, {
      addresses: config.addresses, routes, mtu: config.mtu ?? DEFAULT_MTU,
    }, this.appliedRoutes);
    this.appliedRoutes = routes;
    this.boundPort = (await this.driver.read()).listenPort;
  }

  private async applyPeers(): Promise<void> {
    const now = await this.driver.read();
    // Compare endpoints against the device only: after a recreation nothing we asked for is there.
    await this.driver.write({}, diffPeers(now.peers, [...this.peers.values()]));
  }

  async setPeers(peers: PeerConfig[]): Promise<void> {
    const want = new Map(peers.map((p) => [p.publicKey, normalizePeer(p)]));
    return this.serialize(async () => {
      const now = await this.driver.read();
      await this.driver.write({}, diffPeers(now.peers, [...want.values()], this.peers));
      this.peers = want;
    });
  }

  async upsertPeer(peer: PeerConfig): Promise<void> {
    const want = normalizePeer(peer);
    return this.serialize(async () => {
      const now = await this.driver.read();
      const current = now.peers.find((p) => p.publicKey === want.publicKey);
      const ops = peerOps(want, current, this.peers.get(want.publicKey));
      if (ops.length > 0) await this.driver.write({}, ops);
      this.peers.set(want.publicKey, want);
    });
  }

  removePeer(publicKey: NodePublicKey): Promise<void> {
    return this.serialize(async () => {
      const now = await this.driver.read();
      if (now.peers.some((p) => p.publicKey === publicKey)) {
        await this.driver.write({}, [{ kind: 'remove', publicKey }]);
      }
      this.peers.delete(publicKey);
    });
  }

  stats(): Promise<PeerStats[]> {
    return this.serialize(async () => (await this.driver.read()).peers.map((p) => ({
      publicKey: p.publicKey, endpoint: p.endpoint, lastHandshake: p.lastHandshake, rxBytes: p.rxBytes, txBytes: p.txBytes,
    })));
  }

  listenPort(): Promise<number> {
    return this.serialize(async () => (await this.driver.read()).listenPort);
  }

  down(): Promise<void> {
    return this.serialize(async () => {
      await linkDown(this.driver.runner, this.name);
      this.isDown = true;
    });
  }

  close(): Promise<void> {
    const next = this.queue.then(async () => {
      if (this.closed) return;
      this.closed = true;
      await this.driver.destroy();
    });
    this.queue = next.catch(() => undefined);
    return next;
  }
}
